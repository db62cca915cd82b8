"""Telegram's legacy Login Widget, simulated at /telegram-widget (the bot is a telegram client)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox.networks.common import AuthRequest, Refused, consent_flow, registered_client, store
from sandbox.networks.persons import avatar_url, person_on, profile

NETWORK = "telegram"

bp = Blueprint("telegram_widget", __name__, url_prefix="/telegram-widget")


def login_hash(fields: Mapping[str, str], bot_token: str) -> str:
    """HMAC-SHA256 of the sorted ``k=v`` lines, keyed with SHA256(bot_token)."""
    check_string = "\n".join(sorted(f"{k}={v}" for k, v in fields.items() if k != "hash"))
    key = hashlib.sha256(bot_token.encode()).digest()
    return hmac.new(key, check_string.encode(), hashlib.sha256).hexdigest()


def signed_fields(person: dict[str, Any], bot_token: str, auth_date: int) -> dict[str, str]:
    """The widget's answer for this person: its non-empty fields plus their hash."""
    data = profile(person, NETWORK)
    candidates = {
        "id": str(data["id"]),
        "first_name": data["first_name"],
        "last_name": data["last_name"],
        "username": data.get("username", ""),
        "photo_url": avatar_url(person),
        "auth_date": str(auth_date),
    }
    fields = {k: v for k, v in candidates.items() if v}
    fields["hash"] = login_hash(fields, bot_token)
    return fields


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _parse(params: Mapping[str, str]) -> AuthRequest:
    # The site may carry its own state in return_to's query, so only the rest must match.
    client, return_to = registered_client(
        NETWORK, params, client_param="bot_id", redirect_param="return_to", ignore_query=True
    )
    if not client.extra.get("bot_token"):
        raise Refused(f"invalid_client: bot {client.client_id!r} has no bot_token registered.")
    origin = params.get("origin", "").rstrip("/")
    if not origin:
        raise Refused("invalid_request: origin is missing.")
    if _origin(origin) != _origin(return_to):
        raise Refused(f"invalid_request: return_to is not on origin {origin!r}.")
    return AuthRequest(network=NETWORK, client=client, redirect_uri=return_to, state=None)


def _consent(req: AuthRequest, person: dict[str, Any]) -> dict[str, str]:
    return signed_fields(person, req.client.extra["bot_token"], int(time.time()))


@bp.route("/auth", methods=["GET", "POST"])
def auth() -> ResponseReturnValue:
    """The widget's pop-up: pick a person, go back to return_to with the signed fields."""
    return consent_flow(NETWORK, _parse, _consent)


@bp.get("/control/signed")
def control_signed() -> ResponseReturnValue:
    """Signed fields for ``bot_id`` and ``person`` (optionally at a given ``auth_date``)."""
    args = request.args
    client = store().get_client(NETWORK, args.get("bot_id", ""))
    if client is None or not client.extra.get("bot_token"):
        return _control_error("bot_id is not a registered bot with a bot_token", 404)
    person = person_on(NETWORK, args.get("person", ""))
    if person is None:
        return _control_error("person is not a sandbox person on telegram", 404)
    try:
        auth_date = int(args.get("auth_date") or time.time())
    except ValueError:
        return _control_error("auth_date must be an integer", 400)
    return jsonify(signed_fields(person, client.extra["bot_token"], auth_date))


def _control_error(message: str, status: int) -> ResponseReturnValue:
    return jsonify({"error": "invalid_request", "error_description": message}), status
