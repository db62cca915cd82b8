"""OpenID Connect providers: Telegram (/telegram) and Google (/google), one implementation."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox.networks.common import (
    AuthRequest,
    ProviderError,
    Refused,
    authorization_token,
    code_consent,
    consent_flow,
    exchange_code,
    parse_code_request,
    provider_error,
    store,
    token_endpoint,
    token_person,
)
from sandbox.networks.persons import avatar_url, full_name, profile

TOKEN_LIFETIME = 3600
SCOPES = ["openid", "profile", "email"]


@dataclass(frozen=True)
class OidcProvider:
    """What differs between the OpenID Connect networks."""

    network: str
    mount: str
    pkce_required: bool
    refresh_tokens: bool
    claims: Callable[[dict[str, Any]], dict[str, Any]]
    claim_names: tuple[str, ...]


def _telegram_claims(person: dict[str, Any]) -> dict[str, Any]:
    data = profile(person, "telegram")
    return {
        "sub": str(data["id"]),
        "id": data["id"],
        "name": full_name(data),
        "preferred_username": data["username"],
        "picture": avatar_url(person),
    }


def _google_claims(person: dict[str, Any]) -> dict[str, Any]:
    data = profile(person, "google")
    return {
        "sub": data["sub"],
        "email": data["email"],
        "email_verified": bool(data["email_verified"]),
        "name": full_name(data),
        "given_name": data["first_name"],
        "family_name": data["last_name"],
    }


TELEGRAM = OidcProvider(
    network="telegram",
    mount="/telegram",
    pkce_required=True,
    refresh_tokens=False,
    claims=_telegram_claims,
    claim_names=("sub", "id", "name", "preferred_username", "picture"),
)
GOOGLE = OidcProvider(
    network="google",
    mount="/google",
    pkce_required=False,
    refresh_tokens=True,
    claims=_google_claims,
    claim_names=("sub", "email", "email_verified", "name", "given_name", "family_name"),
)
ID_TOKEN_CLAIMS = ("iss", "aud", "iat", "exp", "nonce", "auth_time")


def create_blueprint(provider: OidcProvider) -> Blueprint:
    """The blueprint of one provider, mounted at its issuer path."""
    bp = Blueprint(provider.network, __name__, url_prefix=provider.mount)
    network = provider.network

    def issuer() -> str:
        configured = store().issuers.get(network)
        return configured or request.url_root.rstrip("/") + provider.mount

    def parse(params: Mapping[str, str]) -> AuthRequest:
        req = parse_code_request(
            network,
            params,
            pkce_required=provider.pkce_required,
            pkce_methods=("S256",),
            response_extra={"iss": issuer()},
        )
        if "openid" not in req.scope.split():
            raise Refused("invalid_scope: scope must include openid.")
        return req

    @bp.get("/.well-known/openid-configuration")
    def openid_configuration() -> Response:
        """Discovery document with the sandbox's own URLs."""
        base = issuer()
        return jsonify(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/auth",
                "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/userinfo",
                "revocation_endpoint": f"{base}/revoke",
                "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": SCOPES,
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                ],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": True,
                "claims_supported": sorted({*ID_TOKEN_CLAIMS, *provider.claim_names}),
            }
        )

    @bp.route("/auth", methods=["GET", "POST"])
    def authorize() -> ResponseReturnValue:
        """The sign-in page; the POST is the person's choice."""
        return consent_flow(network, parse, code_consent)

    @bp.post("/token")
    def token() -> ResponseReturnValue:
        """Exchange a code for tokens and an RS256 id_token."""
        return token_endpoint(network, exchange)

    def exchange() -> dict[str, Any]:
        grant = exchange_code(network, request.form, lifetime=TOKEN_LIFETIME)
        code = grant.code
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer(),
            "aud": grant.client.client_id,
            "iat": now,
            "exp": now + TOKEN_LIFETIME,
            "auth_time": code.auth_time,
        }
        if code.nonce is not None:
            claims["nonce"] = code.nonce
        claims.update(provider.claims(grant.person))
        body: dict[str, Any] = {
            "access_token": grant.access.value,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "id_token": store().sign_id_token(network, claims),
            "scope": code.scope,
        }
        if provider.refresh_tokens:
            body["refresh_token"] = grant.refresh.value
        return body

    @bp.get("/jwks")
    def jwks() -> Response:
        """The public keys id_tokens are signed with."""
        return jsonify(store().jwks(network))

    @bp.route("/userinfo", methods=["GET", "POST"])
    def userinfo() -> ResponseReturnValue:
        """The id_token's person claims for ``Authorization: Bearer <token>``."""
        try:
            _, person = token_person(network, authorization_token("Bearer"))
        except ProviderError as exc:
            response, status = provider_error(exc)
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return response, status
        return jsonify(provider.claims(person))

    @bp.post("/revoke")
    def revoke() -> Response:
        """Revoke an access or refresh token; 200 also for unknown ones."""
        store().revoke_token(network, request.values.get("token", ""))
        return Response(status=200)

    return bp


telegram_bp = create_blueprint(TELEGRAM)
google_bp = create_blueprint(GOOGLE)
