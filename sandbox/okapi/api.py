"""JSON control endpoints of the sandbox OK API at /ok-api/control (for tests in other
processes and for people); the data methods answer at /ok-api/fb.do (sandbox.networks.ok)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox.okapi.dispatch import handle
from sandbox.okapi.methods import OkError
from sandbox.okapi.model import DEFAULT_FAULT_CODES, OkApiState

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


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object body")
    return body


def _int(body: dict[str, Any], name: str, default: int | None = None) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    return value


def _error(message: str) -> ResponseReturnValue:
    return jsonify({"error": "invalid_request", "error_description": message}), 400


@bp.post("/control/groups")
def create_group() -> ResponseReturnValue:
    """Create (or rename) a group: ``{"group_id", "name"}``."""
    try:
        body = _body()
        group_id = _int(body, "group_id")
        ok_state().create_group(group_id, body.get("name") or "")
    except ValueError as exc:
        return _error(str(exc))
    return jsonify({"group_id": group_id}), 201


@bp.post("/control/posts")
def add_post() -> ResponseReturnValue:
    """Publish a topic: ``{"group_id", "text"?}``."""
    try:
        body = _body()
        post_id = ok_state().add_post(_int(body, "group_id"), str(body.get("text", "")))
    except ValueError as exc:
        return _error(str(exc))
    return jsonify({"post_id": post_id}), 201


@bp.post("/control/act")
def act() -> ResponseReturnValue:
    """Act as a user: ``{"action", "group_id", "user_id", "post_id"?, "text"?,
    "comment_id"?}``."""
    try:
        body = _body()
        post_id = body.get("post_id")
        comment_id = body.get("comment_id")
        result = ok_state().act(
            str(body.get("action", "")),
            group_id=_int(body, "group_id"),
            user_id=_int(body, "user_id"),
            post_id=None if post_id is None else _int(body, "post_id"),
            text=str(body.get("text", "")),
            comment_id=None if comment_id is None else str(comment_id),
        )
    except ValueError as exc:
        return _error(str(exc))
    return jsonify(result)


@bp.post("/control/users")
def set_user() -> ResponseReturnValue:
    """Set a user's flags: ``{"user_id", "private"?: bool, "deactivated"?: str|null}``."""
    ok = ok_state()
    try:
        body = _body()
        user_id = _int(body, "user_id")
        if "private" in body:
            ok.set_private(user_id, bool(body["private"]))
        if "deactivated" in body:
            ok.set_deactivated(user_id, body["deactivated"])
    except ValueError as exc:
        return _error(str(exc))
    user = ok.user(user_id)
    return jsonify({"user_id": user_id, "private": user.private, "deactivated": user.deactivated})


@bp.post("/control/tokens")
def register_token() -> ResponseReturnValue:
    """Accept an access token: ``{"token", "kind": "group"|"user"}``."""
    try:
        body = _body()
        kind = str(body.get("kind", "group"))
        ok_state().register_token(str(body.get("token", "")), kind=kind)
    except ValueError as exc:
        return _error(str(exc))
    return jsonify({"token": body["token"], "kind": kind}), 201


@bp.post("/control/quotas")
def quotas() -> ResponseReturnValue:
    """Set a method's calls left today: ``{"method", "calls": int|null}`` (null: no quota)."""
    ok = ok_state()
    try:
        body = _body()
        calls = body.get("calls")
        ok.set_quota(str(body.get("method", "")), None if calls is None else _int(body, "calls"))
    except ValueError as exc:
        return _error(str(exc))
    return jsonify({"method": body["method"], "calls": ok.calls_left(body["method"])})


@bp.post("/control/rate-limit")
def rate_limit() -> ResponseReturnValue:
    """Set the per-token limit: ``{"per_second": 5}`` or ``{"per_second": null}`` (off)."""
    try:
        value = _body().get("per_second")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError("per_second must be a number or null")
    except ValueError as exc:
        return _error(str(exc))
    ok_state().rate_limit_per_second = None if value is None else float(value)
    return jsonify({"per_second": ok_state().rate_limit_per_second})


@bp.route("/control/faults", methods=["POST", "DELETE"])
def faults() -> ResponseReturnValue:
    """Arm faults: ``{"error_code", "method"?, "times"?}``, ``{"timeout", "times"?}`` or
    ``{"rate", "seed"?, "codes"?}``; DELETE drops them all."""
    ok = ok_state()
    if request.method == "DELETE":
        ok.clear_faults()
        return jsonify({"cleared": True})
    try:
        body = _body()
        times = _int(body, "times", 1)
        if "error_code" in body:
            ok.inject_error(_int(body, "error_code"), method=body.get("method"), times=times)
        elif "timeout" in body:
            ok.inject_timeout(body["timeout"], times)
        elif "rate" in body:
            codes = body.get("codes", list(DEFAULT_FAULT_CODES))
            if not isinstance(codes, list):
                raise ValueError("codes must be a list of error codes")
            ok.set_fault_rate(body["rate"], seed=_int(body, "seed", 0), codes=codes)
        else:
            raise ValueError("expected error_code, timeout or rate")
    except ValueError as exc:
        return _error(str(exc))
    return jsonify({"armed": body})


@bp.route("/control/counts", methods=["GET", "DELETE"])
def counts() -> ResponseReturnValue:
    """GET: requests per method and "total"; DELETE: start from zero."""
    if request.method == "DELETE":
        ok_state().reset_counts()
    return jsonify(ok_state().request_counts)


@bp.post("/control/clear")
def clear() -> ResponseReturnValue:
    """Forget all OK data, quotas, faults and counts (tokens and the rate limit stay)."""
    ok_state().clear()
    return jsonify({"cleared": True})
