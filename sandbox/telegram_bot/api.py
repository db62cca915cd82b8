"""The Bot API at /telegram-bot-api (in place of https://api.telegram.org) and its JSON
control endpoints.

``/telegram-bot-api/bot<token>/<method>`` takes GET or POST, parameters in the query string,
a form or a JSON body, and answers as Telegram does: ``{"ok": true, "result": ...}``, or
``{"ok": false, "error_code", "description", "parameters"?}`` with the same HTTP status. A
502 comes, as from Telegram's front servers, as an HTML page.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox.control_api import add_state_controls, int_field, invalid, json_body, optional_int
from sandbox.telegram_bot.model import ApiError, TelegramBotState

bp = Blueprint("telegram_bot", __name__, url_prefix="/telegram-bot-api")

BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def telegram_state() -> TelegramBotState:
    """The Bot API state of the current sandbox app."""
    return current_app.extensions["sandbox"].telegram


def _params() -> dict[str, Any]:
    params: dict[str, Any] = dict(request.values.items())
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: can't parse JSON body")
        params.update(body)
    return params


def _int_param(params: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name, default)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ApiError(400, f'Bad Request: field "{name}" must be a Number')
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f'Bad Request: field "{name}" must be a Number') from None


def _float_param(params: dict[str, Any], name: str) -> float:
    """Telegram takes whole seconds; the sandbox also takes fractions for fast tests."""
    value = params.get(name, 0)
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        raise ApiError(400, f'Bad Request: field "{name}" must be a Number') from None


def _bool_param(params: dict[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def _list_param(params: dict[str, Any], name: str) -> list[str] | None:
    """A list, given as JSON in a query or a form ("JSON-serialized list")."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ApiError(400, f"Bad Request: can't parse {name} JSON array") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ApiError(400, f"Bad Request: {name} must be an Array of String")
    return value


def _get_me(state: TelegramBotState, token: str, params: dict[str, Any]) -> Any:
    return state.get_me(token)


def _get_chat(state: TelegramBotState, token: str, params: dict[str, Any]) -> Any:
    chat = params.get("chat_id")
    if chat is None or chat == "":
        raise ApiError(400, "Bad Request: chat_id is empty")
    return state.get_chat(token, str(chat))


def _get_updates(state: TelegramBotState, token: str, params: dict[str, Any]) -> Any:
    return state.get_updates(
        token,
        offset=_int_param(params, "offset"),
        limit=_int_param(params, "limit", 100) or 100,
        timeout=_float_param(params, "timeout"),
        allowed=_list_param(params, "allowed_updates"),
    )


def _set_webhook(state: TelegramBotState, token: str, params: dict[str, Any]) -> Any:
    secret = params.get("secret_token")
    return state.set_webhook(
        token,
        url=str(params.get("url") or ""),
        secret_token=None if secret in (None, "") else str(secret),
        allowed=_list_param(params, "allowed_updates"),
        drop_pending_updates=_bool_param(params, "drop_pending_updates"),
        max_connections=_int_param(params, "max_connections", 40) or 40,
    )


def _delete_webhook(state: TelegramBotState, token: str, params: dict[str, Any]) -> Any:
    return state.delete_webhook(
        token, drop_pending_updates=_bool_param(params, "drop_pending_updates")
    )


def _get_webhook_info(state: TelegramBotState, token: str, params: dict[str, Any]) -> Any:
    return state.webhook_info(token)


Method = Callable[[TelegramBotState, str, dict[str, Any]], Any]
# Telegram's method names are case-insensitive.
METHODS: dict[str, tuple[str, Method]] = {
    name.lower(): (name, handler)
    for name, handler in (
        ("getMe", _get_me),
        ("getChat", _get_chat),
        ("getUpdates", _get_updates),
        ("setWebhook", _set_webhook),
        ("deleteWebhook", _delete_webhook),
        ("getWebhookInfo", _get_webhook_info),
    )
}
# The result and, for webhook changes, the description Telegram sends beside it.
DESCRIBED = frozenset({"setWebhook", "deleteWebhook"})


@bp.route("/bot<token>/<method_name>", methods=["GET", "POST"])
def method(token: str, method_name: str) -> ResponseReturnValue:
    state = telegram_state()
    name, handler = METHODS.get(method_name.lower(), (method_name, None))
    state.record(name)
    try:
        delay, fault = state.take_fault(name)
        if delay:
            time.sleep(delay)
        if fault is not None:
            raise fault
        if handler is None:
            state.bot(token)  # a bad token is 401 before an unknown method is 404
            raise ApiError(404, "Not Found")
        result = handler(state, token, _params())
    except ApiError as exc:
        return _error(exc)
    if name in DESCRIBED:
        return jsonify({"ok": True, "result": True, "description": result})
    return jsonify({"ok": True, "result": result})


def _error(exc: ApiError) -> ResponseReturnValue:
    if exc.code == 502:
        return Response(BAD_GATEWAY_PAGE, status=502, mimetype="text/html")
    body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
    if exc.retry_after is not None:
        body["parameters"] = {"retry_after": exc.retry_after}
    return jsonify(body), exc.code


# Control (for tests in other processes, the benchmark and the tester page)


@bp.post("/control/bots")
def create_bot() -> ResponseReturnValue:
    """Accept a bot token: ``{"token": "<id>:<secret>", "username"?, "name"?}``."""
    try:
        body = json_body()
        token = str(body.get("token", ""))
        telegram_state().create_bot(
            token, username=body.get("username"), name=str(body.get("name", ""))
        )
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify({"token": token}), 201


@bp.post("/control/channels")
def create_channel() -> ResponseReturnValue:
    """Create a channel and its discussion group, the bots admins of both: ``{"chat_id",
    "title", "discussion_id"?, "discussion_title"?, "admins": [token], "username"?}``."""
    try:
        body = json_body()
        admins = body.get("admins", [])
        if not isinstance(admins, list):
            raise ValueError("admins must be a list of bot tokens")
        telegram_state().create_channel(
            int_field(body, "chat_id"),
            str(body.get("title", "")),
            discussion_id=optional_int(body, "discussion_id"),
            discussion_title=str(body.get("discussion_title", "")),
            admins=[str(token) for token in admins],
            username=body.get("username"),
        )
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify({"chat_id": body["chat_id"], "discussion_id": body.get("discussion_id")}), 201


@bp.post("/control/posts")
def publish() -> ResponseReturnValue:
    """Publish a channel post: ``{"chat_id", "text"?}``."""
    try:
        body = json_body()
        post_id = telegram_state().publish(int_field(body, "chat_id"), str(body.get("text", "")))
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify({"post_id": post_id}), 201


@bp.post("/control/act")
def act() -> ResponseReturnValue:
    """Act as a user: ``{"action", "chat_id", "user_id", "post_id"?, "text"?, "emoji"?,
    "where"?: "discussion"|"channel", "message_id"?}``."""
    try:
        body = json_body()
        result = telegram_state().act(
            str(body.get("action", "")),
            channel_id=int_field(body, "chat_id"),
            user_id=int_field(body, "user_id", 0),
            post_id=optional_int(body, "post_id"),
            text=str(body.get("text", "")),
            emoji=str(body.get("emoji", "👍")),
            where=str(body.get("where", "discussion")),
            message_id=optional_int(body, "message_id"),
        )
    except ValueError as exc:
        return invalid(str(exc))
    return jsonify(result)


add_state_controls(bp, telegram_state, telegram=True, codes_name="HTTP error codes")
