"""Sign in with Apple (web).

What Apple needs: a Services ID (APPLE_CLIENT_ID), the developer team id (APPLE_TEAM_ID), and a
Sign in with Apple private key (APPLE_PRIVATE_KEY or APPLE_PRIVATE_KEY_FILE, a .p8 PEM) with its
key id (APPLE_KEY_ID); the redirect URI <PUBLIC_URL>/auth/apple/callback and the notification
endpoint <PUBLIC_URL>/hooks/apple registered for the Services ID.

Protocol: authorization code with response_mode=form_post (the callback is a cross-site POST),
scope "name email", state and nonce. The client secret is an ES256 JWT we sign ourselves and
renew long before Apple's six-month limit. The id_token is checked here in full (signature with
Apple's JWKS, iss, aud, exp, nonce) because without the "openid" scope no library does it. The
`user` form field, with the name, comes only on the first authorization.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from cryptography.hazmat.primitives import serialization

from app.providers.base import (
    AuthorizationRequest,
    Provider,
    ProviderError,
    ProviderProfile,
    configured,
)
from app.providers.jwks import JWKSCache
from app.providers.tokens import ID_TOKEN_CLAIMS, check_nonce, verify_jws

log = logging.getLogger(__name__)

CLIENT_SECRET_MAX_SECONDS = 15_777_000  # Apple's limit: six months


def _truthy(value: Any) -> bool:
    """Apple sends some booleans as JSON booleans and some as the strings "true"/"false"."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


class AppleProvider(Provider):
    slug = "apple"
    name = "Apple"
    uses_form_post = True

    def __init__(
        self,
        http: requests.Session,
        timeout: float,
        *,
        client_id: str,
        team_id: str,
        key_id: str,
        private_key_pem: str,
        base_url: str,
        issuer: str,
        client_secret_ttl: int,
        jwks_ttl: int,
        jwks_min_refetch: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(http, timeout)
        if not 0 < client_secret_ttl <= CLIENT_SECRET_MAX_SECONDS:
            raise ValueError("the Apple client secret may live at most six months")
        self.client_id = client_id
        self.team_id = team_id
        self.key_id = key_id
        self.private_key_pem = private_key_pem
        self.base_url = base_url.rstrip("/")
        self.issuer = issuer
        self.client_secret_ttl = client_secret_ttl
        self.clock = clock
        self.jwks = JWKSCache(
            f"{self.base_url}/auth/keys",
            http,
            timeout=timeout,
            ttl_seconds=jwks_ttl,
            min_refetch_seconds=jwks_min_refetch,
        )
        self._secret: tuple[str, float] | None = None
        self._secret_lock = threading.Lock()

    def client_secret(self) -> str:
        """The cached ES256 client secret, renewed once half of its lifetime has passed."""
        with self._secret_lock:
            now = self.clock()
            if self._secret is None or self._secret[1] - now < self.client_secret_ttl / 2:
                issued = int(now)
                expires = issued + self.client_secret_ttl
                claims = {
                    "iss": self.team_id,
                    "iat": issued,
                    "exp": expires,
                    "aud": self.issuer,
                    "sub": self.client_id,
                }
                token = jwt.encode(
                    claims, self.private_key_pem, algorithm="ES256", headers={"kid": self.key_id}
                )
                self._secret = (token, float(expires))
            return self._secret[0]

    def authorization_url(self, request: AuthorizationRequest) -> str:
        query = {
            "response_type": "code",
            "response_mode": "form_post",
            "client_id": self.client_id,
            "redirect_uri": request.redirect_uri,
            "scope": "name email",
            "state": request.state,
            "nonce": request.nonce,
        }
        return f"{self.base_url}/auth/authorize?{urlencode(query)}"

    def complete(
        self, callback: Mapping[str, str], request: AuthorizationRequest
    ) -> ProviderProfile:
        error = callback.get("error")
        if error == "user_cancelled_authorize":
            raise ProviderError("You cancelled signing in with Apple. Nothing was changed.")
        if error:
            raise ProviderError(f"Apple did not sign you in ({error}). Nothing was changed.")
        code = callback.get("code")
        if not code:
            raise ProviderError("Apple's answer carried no authorization code. Please try again.")
        tokens = self._token_request(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": request.redirect_uri}
        )
        claims = self.verify_id_token(tokens.get("id_token", ""), nonce=request.nonce)
        first_name, last_name = self._name_from_user_field(callback.get("user"))
        return ProviderProfile(
            network=self.slug,
            subject=str(claims["sub"]),
            first_name=first_name,
            last_name=last_name,
            email=claims.get("email"),
            email_verified=_truthy(claims.get("email_verified")),
            is_private_email=_truthy(claims.get("is_private_email")),
            token=tokens.get("refresh_token"),
        )

    def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        claims = self._verify_jws(id_token, what="sign-in token")
        check_nonce(claims, nonce, self.name)
        return claims

    def verify_notification(self, payload: str) -> dict[str, Any]:
        """Verify a server-to-server notification JWS and return its decoded `events`."""
        claims = self._verify_jws(payload, what="notification")
        events = claims.get("events")
        if isinstance(events, str):
            try:
                events = json.loads(events)
            except ValueError:
                raise ProviderError("the notification's events are not valid JSON") from None
        if not isinstance(events, dict) or not events.get("type") or not events.get("sub"):
            raise ProviderError("the notification carries no event type or subject")
        events["_jti"] = claims.get("jti")
        return events

    def revoke(self, token: str) -> bool:
        try:
            response = self.http.post(
                f"{self.base_url}/auth/revoke",
                data={
                    "client_id": self.client_id,
                    "client_secret": self.client_secret(),
                    "token": token,
                    "token_type_hint": "refresh_token",
                },
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            log.warning("Apple token revocation failed: %s", type(exc).__name__)
            return False
        if response.status_code != 200:
            log.warning("Apple token revocation answered HTTP %s", response.status_code)
        return response.status_code == 200

    def _token_request(self, data: dict[str, str]) -> dict[str, Any]:
        data = {**data, "client_id": self.client_id, "client_secret": self.client_secret()}
        try:
            response = self.http.post(
                f"{self.base_url}/auth/token", data=data, timeout=self.timeout
            )
        except requests.RequestException as exc:
            log.warning("Apple token endpoint unreachable: %s", type(exc).__name__)
            raise ProviderError(
                "Apple could not be reached. Please try again in a minute."
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and isinstance(body, dict) and body.get("id_token"):
            return body
        error = body.get("error") if isinstance(body, dict) else None
        log.warning("Apple token endpoint answered HTTP %s (%s)", response.status_code, error)
        if error == "invalid_grant":
            raise ProviderError(
                "This Apple sign-in has already been used or has expired. "
                "Nothing was changed; please sign in again."
            )
        if error == "invalid_client":
            raise ProviderError(
                "Apple refused this portal's credentials. The operator must check the Apple "
                "key configuration; nothing was changed."
            )
        raise ProviderError("Apple could not complete the sign-in. Please try again.")

    def _verify_jws(self, token: str, *, what: str) -> dict[str, Any]:
        required = ("iss", "aud", "iat") if what == "notification" else ID_TOKEN_CLAIMS
        return verify_jws(
            token,
            self.jwks,
            issuer=self.issuer,
            audience=self.client_id,
            provider_name=self.name,
            what=what,
            required=required,
        )

    @staticmethod
    def _name_from_user_field(raw: str | None) -> tuple[str, str]:
        if not raw:
            return "", ""
        try:
            name = json.loads(raw).get("name") or {}
            return str(name.get("firstName") or "")[:100], str(name.get("lastName") or "")[:100]
        except (ValueError, AttributeError):
            log.warning("Apple sent a malformed user field; the name is left empty")
            return "", ""


def from_config(config: Mapping[str, Any], http: requests.Session) -> AppleProvider | None:
    """The Apple provider, or None when Apple is not configured (then it is hidden)."""
    names = ("APPLE_CLIENT_ID", "APPLE_TEAM_ID", "APPLE_KEY_ID", "APPLE_PRIVATE_KEY")
    if not configured(config, names, "Apple"):
        return None
    try:
        serialization.load_pem_private_key(config["APPLE_PRIVATE_KEY"].encode(), password=None)
    except ValueError as exc:
        raise ValueError("APPLE_PRIVATE_KEY is not a readable PEM private key") from exc
    return AppleProvider(
        http,
        config["HTTP_TIMEOUT_SECONDS"],
        client_id=config["APPLE_CLIENT_ID"],
        team_id=config["APPLE_TEAM_ID"],
        key_id=config["APPLE_KEY_ID"],
        private_key_pem=config["APPLE_PRIVATE_KEY"],
        base_url=config["APPLE_BASE_URL"],
        issuer=config["APPLE_ISSUER"],
        client_secret_ttl=config["APPLE_CLIENT_SECRET_TTL_SECONDS"],
        jwks_ttl=config["APPLE_JWKS_TTL_SECONDS"],
        jwks_min_refetch=config["APPLE_JWKS_MIN_REFETCH_SECONDS"],
    )
