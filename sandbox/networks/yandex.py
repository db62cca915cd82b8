"""Yandex ID: OAuth at /yandex-oauth (oauth.yandex.ru), the profile at /yandex-login."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox.keys import b64url
from sandbox.networks.common import (
    AuthRequest,
    ProviderError,
    authenticate,
    authorization_token,
    client_credentials,
    code_consent,
    consent_flow,
    exchange_code,
    parse_code_request,
    provider_error,
    store,
    token_endpoint,
    token_person,
)
from sandbox.networks.persons import full_name, profile

NETWORK = "yandex"
TOKEN_LIFETIME = 31_536_000

oauth_bp = Blueprint("yandex_oauth", __name__, url_prefix="/yandex-oauth")
login_bp = Blueprint("yandex_login", __name__, url_prefix="/yandex-login")


def _parse(params: Mapping[str, str]) -> AuthRequest:
    return parse_code_request(NETWORK, params, pkce_methods=("S256", "plain"))


@oauth_bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> ResponseReturnValue:
    """The Yandex ID sign-in page; the POST is the person's choice."""
    return consent_flow(NETWORK, _parse, code_consent)


@oauth_bp.post("/token")
def token() -> ResponseReturnValue:
    """Exchange a code (and code_verifier, if a challenge was given) for tokens."""
    return token_endpoint(NETWORK, _exchange)


def _exchange() -> dict[str, Any]:
    grant = exchange_code(
        NETWORK, request.form, lifetime=TOKEN_LIFETIME, redirect_uri_required=False
    )
    return {
        "access_token": grant.access.value,
        "refresh_token": grant.refresh.value,
        "token_type": "bearer",
        "expires_in": TOKEN_LIFETIME,
    }


@oauth_bp.post("/revoke_token")
def revoke_token() -> ResponseReturnValue:
    """Revoke an access token of the authenticated client."""
    form = request.form
    try:
        client = authenticate(NETWORK, *client_credentials(form))
    except ProviderError as exc:
        return provider_error(exc)
    store().revoke_token(NETWORK, form.get("access_token", ""), client.client_id)
    return jsonify({"status": "ok"})


@login_bp.get("/info")
def info() -> ResponseReturnValue:
    """The profile; the token must come as ``Authorization: OAuth <token>``, never in the query."""
    if "oauth_token" in request.args or "access_token" in request.args:
        return provider_error(
            ProviderError("invalid_token", "pass the token in the Authorization header", 401)
        )
    if request.args.get("format", "json") != "json":
        return provider_error(ProviderError("invalid_request", "the sandbox speaks json only"))
    try:
        token, person = token_person(
            NETWORK, authorization_token("OAuth"), description="expected Authorization: OAuth"
        )
    except ProviderError as exc:
        return provider_error(exc)
    data = profile(person, NETWORK)
    psuid_digest = hashlib.sha256(f"{token.client_id}:{data['id']}".encode()).digest()
    return jsonify(
        {
            "id": data["id"],
            "login": data["login"],
            "client_id": token.client_id,
            "first_name": data["first_name"],
            "last_name": data["last_name"],
            "display_name": data["login"],
            "real_name": full_name(data),
            "default_email": data["default_email"],
            "emails": [data["default_email"]],
            "psuid": f"1.{b64url(psuid_digest[:24])}",
        }
    )
