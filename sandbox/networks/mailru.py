"""Mail.ru OAuth, mounted at /mailru in place of https://oauth.mail.ru."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox.networks.common import (
    AuthRequest,
    ProviderError,
    code_consent,
    consent_flow,
    exchange_code,
    parse_code_request,
    provider_error,
    token_endpoint,
    token_person,
)
from sandbox.networks.persons import avatar_url, full_name, profile

NETWORK = "mailru"
TOKEN_LIFETIME = 3600

bp = Blueprint("mailru", __name__, url_prefix="/mailru")


def _parse(params: Mapping[str, str]) -> AuthRequest:
    return parse_code_request(NETWORK, params)


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The Mail.ru sign-in page; the POST is the person's choice."""
    return consent_flow(NETWORK, _parse, code_consent)


@bp.post("/token")
def token() -> ResponseReturnValue:
    """Exchange a code; the client authenticates by HTTP Basic or form parameters."""
    return token_endpoint(NETWORK, _exchange)


def _exchange() -> dict[str, Any]:
    grant = exchange_code(NETWORK, request.form, lifetime=TOKEN_LIFETIME)
    return {
        "access_token": grant.access.value,
        "refresh_token": grant.refresh.value,
        "expires_in": TOKEN_LIFETIME,
        "token_type": "bearer",
    }


@bp.get("/userinfo")
def userinfo() -> ResponseReturnValue:
    """The profile behind ``?access_token=``."""
    try:
        _, person = token_person(
            NETWORK, request.args.get("access_token"), description="access token is invalid"
        )
    except ProviderError as exc:
        return provider_error(exc)
    data = profile(person, NETWORK)
    return jsonify(
        {
            "id": data["id"],
            "email": data["email"],
            "first_name": data["first_name"],
            "last_name": data["last_name"],
            "name": full_name(data),
            "image": avatar_url(person),
            "locale": "ru_RU",
        }
    )
