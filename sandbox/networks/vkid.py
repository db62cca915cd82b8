"""VK ID (OAuth 2.1 with mandatory PKCE), mounted at /vkid in place of https://id.vk.com."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox.networks.common import (
    AuthRequest,
    ProviderError,
    authenticate,
    consent_flow,
    issue_code,
    parse_code_request,
    provider_error,
    redeem_code,
    require_grant_type,
    store,
    token_endpoint,
    token_person,
    with_state,
)
from sandbox.networks.persons import avatar_url, profile

NETWORK = "vkid"
CODE_LIFETIME = 600
TOKEN_LIFETIME = 3600
SCOPE = "vkid.personal_info email"

bp = Blueprint("vkid", __name__, url_prefix="/vkid")


def _parse(params: Mapping[str, str]) -> AuthRequest:
    return parse_code_request(NETWORK, params, pkce_required=True, pkce_methods=("S256",))


def _consent(req: AuthRequest, person: dict[str, Any]) -> dict[str, str]:
    device_id = secrets.token_urlsafe(32)
    # VK ID wants the authorize request's state repeated in the token request.
    bindings = {"device_id": device_id, "state": req.state or ""}
    code = issue_code(req, person, bindings=bindings, lifetime=CODE_LIFETIME)
    fields = with_state(req, {"code": code})
    fields.update(
        device_id=device_id,
        type="code_v2",
        expires_in=str(CODE_LIFETIME),
        ext_id=secrets.token_urlsafe(48),
    )
    return fields


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> ResponseReturnValue:
    """The VK ID sign-in page; the POST is the person's choice."""
    return consent_flow(NETWORK, _parse, _consent)


@bp.post("/oauth2/auth")
def token() -> ResponseReturnValue:
    """Exchange a code (with code_verifier and device_id) for tokens."""
    return token_endpoint(NETWORK, _exchange)


def _exchange() -> dict[str, Any]:
    form = request.form
    require_grant_type(form)
    client = authenticate(NETWORK, form.get("client_id", ""), None, check_secret=False)
    code, person = redeem_code(
        client,
        form,
        bindings={"device_id": form.get("device_id", ""), "state": form.get("state", "")},
    )
    access, refresh = store().issue_tokens(code, lifetime=TOKEN_LIFETIME)
    user_id = profile(person, NETWORK)["user_id"]
    now = int(time.time())
    id_token = store().sign_id_token(
        NETWORK,
        {
            "iss": request.url_root.rstrip("/") + (bp.url_prefix or ""),
            "aud": client.client_id,
            "sub": str(user_id),
            "iat": now,
            "exp": now + TOKEN_LIFETIME,
        },
    )
    return {
        "access_token": access.value,
        "refresh_token": refresh.value,
        "id_token": id_token,
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME,
        "user_id": user_id,
        "state": form.get("state", ""),
        "scope": SCOPE,
    }


@bp.post("/oauth2/user_info")
def user_info() -> ResponseReturnValue:
    """The profile behind an access token."""
    form = request.form
    try:
        _, person = token_person(NETWORK, form.get("access_token"), form.get("client_id", ""))
    except ProviderError as exc:
        return provider_error(exc)
    data = profile(person, NETWORK)
    return jsonify(
        {
            "user": {
                "user_id": str(data["user_id"]),
                "first_name": data["first_name"],
                "last_name": data["last_name"],
                "avatar": avatar_url(person),
                "email": data.get("email", ""),
                "sex": 0,
                "verified": False,
                "birthday": "",
            }
        }
    )


@bp.post("/oauth2/revoke")
def revoke() -> ResponseReturnValue:
    """Revoke an access token of this client; ``{"response": 1}``."""
    form = request.form
    try:
        client = authenticate(NETWORK, form.get("client_id", ""), None, check_secret=False)
    except ProviderError as exc:
        return provider_error(exc)
    store().revoke_token(NETWORK, form.get("access_token", ""), client.client_id)
    return jsonify({"response": 1})
