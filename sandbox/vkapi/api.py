"""The VK API at /vk-api (in place of https://api.vk.com) and its JSON control endpoints."""

from __future__ import annotations

import json
import time

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox.control_api import add_state_controls, int_field, invalid, json_body
from sandbox.vkapi.dispatch import error_body, handle
from sandbox.vkapi.methods import VkError
from sandbox.vkapi.model import VkApiState

bp = Blueprint("vkapi", __name__, url_prefix="/vk-api")


def vk_state() -> VkApiState:
    """The VK API state of the current sandbox app."""
    return current_app.extensions["sandbox"].vk


@bp.route("/method/<name>", methods=["GET", "POST"])
def method(name: str) -> Response:
    """``/method/<name>``: parameters from the query or the form; always HTTP 200."""
    params = dict(request.values.items())
    authorization = request.headers.get("Authorization", "")
    if "access_token" not in params and authorization.lower().startswith("bearer "):
        params["access_token"] = authorization[len("bearer ") :].strip()
    try:
        body = handle(vk_state(), name, params)
    except Exception as exc:
        # Like VK: even a failure of the sandbox itself is an API error with HTTP 200.
        current_app.logger.exception("sandbox VK API failed on %s", name)
        body = {"error": error_body(VkError(10, f"Internal server error: {exc}"), name, params)}
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(text, mimetype="application/json")


# Control (for tests in other processes and the benchmark)


@bp.post("/control/groups")
def create_group() -> ResponseReturnValue:
    """Create (or rename) a group: ``{"group_id", "name", "screen_name"?}``."""
    try:
        body = json_body()
        group_id = int_field(body, "group_id")
        vk_state().create_group(
            group_id, body.get("name") or "", screen_name=body.get("screen_name")
        )
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify({"group_id": group_id}), 201


@bp.post("/control/generate")
def generate() -> ResponseReturnValue:
    """Build a random group: ``{"group_id", "members", "posts", "likes", "comments",
    "reposts", "seed"?}``; answers the seconds it took."""
    try:
        body = json_body()
        group_id = int_field(body, "group_id")
        sizes = {
            name: int_field(body, name, 0)
            for name in ("members", "posts", "likes", "comments", "reposts")
        }
        started = time.perf_counter()
        vk_state().generate_group(group_id, seed=int_field(body, "seed", 0), **sizes)
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify({"group_id": group_id, "seconds": time.perf_counter() - started}), 201


@bp.post("/control/mutate")
def mutate() -> ResponseReturnValue:
    """Change part of a group's activity: ``{"group_id", "fraction", "seed"?}``."""
    try:
        body = json_body()
        fraction = body.get("fraction")
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise ValueError("fraction must be a number")
        changes = vk_state().mutate(
            int_field(body, "group_id"), fraction, seed=int_field(body, "seed", 0)
        )
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify(changes)


@bp.post("/control/posts")
def add_post() -> ResponseReturnValue:
    """Publish a post: ``{"group_id", "text"?, "comments_closed"?}``."""
    try:
        body = json_body()
        post_id = vk_state().add_post(
            int_field(body, "group_id"),
            str(body.get("text", "")),
            comments_closed=bool(body.get("comments_closed", False)),
        )
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify({"post_id": post_id}), 201


@bp.post("/control/act")
def act() -> ResponseReturnValue:
    """Act as a user: ``{"action", "group_id", "post_id"?, "user_id", "text"?,
    "comment_id"?}``."""
    try:
        body = json_body()
        post_id = body.get("post_id")
        comment_id = body.get("comment_id")
        result = vk_state().act(
            str(body.get("action", "")),
            group_id=int_field(body, "group_id"),
            user_id=int_field(body, "user_id"),
            post_id=None if post_id is None else int_field(body, "post_id"),
            text=str(body.get("text", "")),
            comment_id=None if comment_id is None else int_field(body, "comment_id"),
        )
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify(result)


@bp.post("/control/users")
def set_user() -> ResponseReturnValue:
    """Set a user's flags: ``{"user_id", "private"?: bool, "deactivated"?: str|null}``."""
    try:
        body = json_body()
        user_id = int_field(body, "user_id")
        if "private" in body:
            vk_state().set_private(user_id, bool(body["private"]))
        if "deactivated" in body:
            vk_state().set_deactivated(user_id, body["deactivated"])
    except ValueError as exc:
        return invalid(str(exc))
    user = vk_state().user(user_id)
    return jsonify({"user_id": user_id, "private": user.is_closed, "deactivated": user.deactivated})


@bp.route("/control/callback-server", methods=["POST", "DELETE"])
def callback_server() -> ResponseReturnValue:
    """POST ``{"group_id", "url", "secret"?, "confirmation"}``: confirm and set the group's
    Callback API server (400 with what the server answered if it is refused); DELETE
    ``{"group_id"}`` (or ``?group_id=``): remove it."""
    hub = vk_state().callbacks
    try:
        if request.method == "DELETE":
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                body = {"group_id": _arg_group_id()}
            group_id = int_field(body, "group_id")
            return jsonify({"group_id": group_id, "removed": hub.remove_server(group_id)})
        body = json_body()
        group_id = int_field(body, "group_id")
        url = str(body.get("url", ""))
        hub.set_server(
            group_id,
            url,
            secret=str(body.get("secret") or ""),
            confirmation=str(body.get("confirmation") or ""),
        )
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify({"group_id": group_id, "url": url, "confirmed": True})


def _arg_group_id() -> int | None:
    raw = request.args.get("group_id", "").strip()
    return int(raw) if raw.lstrip("-").isdigit() else None


@bp.route("/control/callback-faults", methods=["POST", "DELETE"])
def callback_faults() -> ResponseReturnValue:
    """POST ``{"drop"?, "duplicate"?, "delay"?, "seed"?}`` (shares 0..1): fault the Callback
    API deliveries; DELETE: deliver normally again."""
    hub = vk_state().callbacks
    if request.method == "DELETE":
        hub.clear_faults()
        return jsonify({"cleared": True})
    try:
        body = json_body()
        shares = {name: body.get(name, 0.0) for name in ("drop", "duplicate", "delay")}
        hub.set_faults(**shares, seed=int_field(body, "seed", 0))
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify({"faults": hub.faults(), "seed": body.get("seed", 0)})


@bp.get("/control/callbacks")
def callbacks_status() -> ResponseReturnValue:
    """The Callback API servers, delivery counters, faults and the last deliveries."""
    hub = vk_state().callbacks
    servers = [{"group_id": s.group_id, "url": s.url} for s in hub.servers()]
    return jsonify(
        {
            "mode": hub.mode,
            "servers": servers,
            "stats": hub.stats(),
            "faults": hub.faults(),
            "log": hub.log(limit=50),
        }
    )


add_state_controls(bp, vk_state, access=True)
