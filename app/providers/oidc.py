"""OpenID Connect with discovery: the code path Google and Telegram share.

Everything comes from the issuer's discovery document (cached): endpoints, keys, whether the
callback carries `iss` (RFC 9207). The id_token is checked in full: signature with the
issuer's keys (refetched on an unknown kid), iss, aud, exp and the nonce of this sign-in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import requests

from app.providers.base import AuthorizationRequest, ProviderError, ProviderProfile
from app.providers.jwks import JWKSCache
from app.providers.oauth import OAuth2Provider, require
from app.providers.tokens import check_nonce, verify_jws

log = logging.getLogger(__name__)


class OIDCProvider(OAuth2Provider):
    scope = "openid profile email"
    uses_pkce = True

    def __init__(
        self,
        http: requests.Session,
        timeout: float,
        *,
        client_id: str,
        client_secret: str | None,
        issuer: str,
        jwks_ttl: int = 3600,
        jwks_min_refetch: int = 30,
    ) -> None:
        super().__init__(http, timeout, client_id=client_id, client_secret=client_secret)
        self.issuer = issuer.rstrip("/")
        self._jwks_ttl = jwks_ttl
        self._jwks_min_refetch = jwks_min_refetch
        self._metadata: dict[str, Any] | None = None
        self._jwks: JWKSCache | None = None
        self._lock = threading.Lock()

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None:
                url = f"{self.issuer}/.well-known/openid-configuration"
                try:
                    response = self.http.get(url, timeout=self.timeout)
                    response.raise_for_status()
                    metadata = response.json()
                except (requests.RequestException, ValueError) as exc:
                    log.warning("%s discovery failed: %s", self.name, type(exc).__name__)
                    raise ProviderError(
                        f"{self.name} could not be reached. Please try again in a minute."
                    ) from exc
                if metadata.get("issuer", "").rstrip("/") != self.issuer:
                    raise ProviderError(
                        f"{self.name}'s discovery document names another issuer; "
                        "the operator must check the configuration."
                    )
                self._metadata = metadata
                self._jwks = JWKSCache(
                    metadata["jwks_uri"],
                    self.http,
                    timeout=self.timeout,
                    ttl_seconds=self._jwks_ttl,
                    min_refetch_seconds=self._jwks_min_refetch,
                )
            return self._metadata

    @property
    def authorize_url(self) -> str:  # type: ignore[override]
        return self.metadata()["authorization_endpoint"]

    @property
    def token_url(self) -> str:  # type: ignore[override]
        return self.metadata()["token_endpoint"]

    def authorization_params(self, request: AuthorizationRequest) -> dict[str, str]:
        return {"nonce": request.nonce}

    def check_callback(self, callback: Mapping[str, str]) -> None:
        # RFC 9207: the issuer says who answered; a callback from someone else is a mix-up.
        expected_iss = self.metadata().get("authorization_response_iss_parameter_supported")
        iss = callback.get("iss")
        if iss is not None and iss.rstrip("/") != self.issuer:
            raise ProviderError(
                f"This answer claims to come from {iss[:80]}, not {self.name}, so it was refused "
                "(a mix-up between providers). Nothing was changed."
            )
        if expected_iss and iss is None and not callback.get("error"):
            raise ProviderError(
                f"{self.name}'s answer did not say who issued it, so it was refused. "
                "Nothing was changed."
            )
        super().check_callback(callback)

    def profile(self, token: dict[str, Any], request: AuthorizationRequest) -> ProviderProfile:
        self.metadata()
        claims = verify_jws(
            str(token.get("id_token", "")),
            self._jwks,
            issuer=self.issuer,
            audience=self.client_id,
            provider_name=self.name,
        )
        check_nonce(claims, request.nonce, self.name)
        return self.map_claims(self._with_userinfo(claims, token), token)

    def _with_userinfo(self, claims: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        """Providers may give names and email only at userinfo; its `sub` must match."""
        endpoint = self.metadata().get("userinfo_endpoint")
        if not endpoint or ("email" in claims and "name" in claims):
            return claims
        info = self.api_json(
            "GET", endpoint, headers={"Authorization": f"Bearer {token.get('access_token', '')}"}
        )
        if not isinstance(info, dict) or info.get("sub") != claims.get("sub"):
            raise ProviderError(
                f"{self.name} described a different person than it signed in. Nothing was changed."
            )
        return {**info, **claims}

    def map_claims(self, claims: dict[str, Any], token: dict[str, Any]) -> ProviderProfile:
        return ProviderProfile(
            network=self.network,
            subject=require(claims.get("sub"), self.name),
            first_name=str(claims.get("given_name") or claims.get("name") or "")[:100],
            last_name=str(claims.get("family_name") or "")[:100],
            email=claims.get("email"),
            email_verified=claims.get("email_verified") is True,
            token=token.get("refresh_token") or token.get("access_token"),
        )

    def revoke(self, token: str) -> bool:
        endpoint = self.metadata().get("revocation_endpoint")
        if not endpoint:
            return False
        return self.revoke_request(
            "POST",
            endpoint,
            data={
                "token": token,
                "client_id": self.client_id,
                "client_secret": self.client_secret or "",
            },
        )
