"""JSON control endpoints of the sandbox OK API at /ok-api/control (for tests in other
processes and for people); the data methods answer at /ok-api/fb.do (sandbox.networks.ok)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from flask.typing import ResponseReturnValue

from sandbox.control_api import add_state_controls, int_field, invalid, json_body
from sandbox.okapi.dispatch import handle
from sandbox.okapi.methods import OkError
from sandbox.okapi.model import OkApiState

bp = Blueprint("okapi", __name__, url_prefix="/ok-api")


def ok_state() -> OkApiState:
    """The OK API state of the current sandbox app."""
    return current_app.extensions["sandbox"].ok


def answer(params: dict[str, str], secret: str) -> Response:
    """A data method's answer, always HTTP 200 like OK (a sandbox failure is error 1)."""
    try:
        body = handle(ok_state(), params, secret)
    except Exception as exc:
        current_app.logger.exception("sandbox OK API failed on %s", params.get("method"))
        body = OkError(1, str(exc)).body()
    return jsonify(body)


@bp.post("/control/groups")
def create_group() -> ResponseReturnValue:
    """Create (or rename) a group: ``{"group_id", "name"}``."""
    try:
        body = json_body()
        group_id = int_field(body, "group_id")
        ok_state().create_group(group_id, body.get("name") or "")
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify({"group_id": group_id}), 201


@bp.post("/control/posts")
def add_post() -> ResponseReturnValue:
    """Publish a topic: ``{"group_id", "text"?}``."""
    try:
        body = json_body()
        post_id = ok_state().add_post(int_field(body, "group_id"), str(body.get("text", "")))
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify({"post_id": post_id}), 201


@bp.post("/control/act")
def act() -> ResponseReturnValue:
    """Act as a user: ``{"action", "group_id", "user_id", "post_id"?, "text"?,
    "comment_id"?}``."""
    try:
        body = json_body()
        post_id = body.get("post_id")
        comment_id = body.get("comment_id")
        result = ok_state().act(
            str(body.get("action", "")),
            group_id=int_field(body, "group_id"),
            user_id=int_field(body, "user_id"),
            post_id=None if post_id is None else int_field(body, "post_id"),
            text=str(body.get("text", "")),
            comment_id=None if comment_id is None else str(comment_id),
        )
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify(result)


@bp.post("/control/users")
def set_user() -> ResponseReturnValue:
    """Set a user's flags: ``{"user_id", "private"?: bool, "deactivated"?: str|null}``."""
    ok = ok_state()
    try:
        body = json_body()
        user_id = int_field(body, "user_id")
        if "private" in body:
            ok.set_private(user_id, bool(body["private"]))
        if "deactivated" in body:
            ok.set_deactivated(user_id, body["deactivated"])
    except ValueError as exc:
        return invalid(str(exc))
    user = ok.user(user_id)
    return jsonify({"user_id": user_id, "private": user.private, "deactivated": user.deactivated})


@bp.post("/control/quotas")
def quotas() -> ResponseReturnValue:
    """Set a method's calls left today: ``{"method", "calls": int|null}`` (null: no quota)."""
    ok = ok_state()
    try:
        body = json_body()
        calls = body.get("calls")
        ok.set_quota(
            str(body.get("method", "")), None if calls is None else int_field(body, "calls")
        )
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify({"method": body["method"], "calls": ok.calls_left(body["method"])})


add_state_controls(bp, ok_state, access=True)
