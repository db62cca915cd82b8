"""Verifying signed tokens (id_tokens, notifications) with a provider's published keys."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import jwt

from app.providers.base import ProviderError
from app.providers.jwks import JWKSCache, JWKSError

log = logging.getLogger(__name__)

ID_TOKEN_CLAIMS = ("iss", "aud", "exp", "iat", "sub")


def verify_jws(
    token: str,
    jwks: JWKSCache,
    *,
    issuer: str,
    audience: str,
    provider_name: str,
    what: str = "sign-in token",
    required: tuple[str, ...] = ID_TOKEN_CLAIMS,
) -> dict[str, Any]:
    """Signature with the provider's keys (refetched on an unknown kid), iss, aud, exp."""
    try:
        header = jwt.get_unverified_header(token)
        key = jwks.key(str(header.get("kid", "")))
        return jwt.decode(
            token,
            key=key,
            algorithms=["RS256", "ES256"],
            audience=audience,
            issuer=issuer,
            leeway=30,
            options={"require": list(required)},
        )
    except (jwt.PyJWTError, JWKSError) as exc:
        log.warning("%s %s rejected: %s", provider_name, what, exc)
        raise ProviderError(
            f"{provider_name}'s {what} could not be verified ({describe(exc)}). "
            "Nothing was changed."
        ) from exc


def check_nonce(claims: dict[str, Any], nonce: str, provider_name: str) -> None:
    if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        log.warning("%s id_token nonce mismatch", provider_name)
        raise ProviderError(
            f"{provider_name}'s sign-in token was not issued for this sign-in (nonce mismatch). "
            "Nothing was changed; please sign in again."
        )


def describe(exc: Exception) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "it has expired"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "it was issued for another application"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "it was not issued by the provider"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "its signature is invalid"
    if isinstance(exc, JWKSError):
        return "it is signed with an unknown key"
    return "it is malformed"
