"""Yandex ID.

Needs YANDEX_CLIENT_ID and YANDEX_CLIENT_SECRET and the redirect URI
<PUBLIC_URL>/auth/yandex/callback. OAuth 2 with PKCE (S256) at oauth.yandex.ru; the profile
comes from login.yandex.ru/info with the header `Authorization: OAuth <token>` (never the query).
The default address is the member's Yandex mailbox, verified by Yandex. Revocation:
revoke_token with the access token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from app.providers.base import AuthorizationRequest, ProviderProfile, configured
from app.providers.oauth import OAuth2Provider, require


class YandexProvider(OAuth2Provider):
    slug = "yandex"
    name = "Yandex ID"
    uses_pkce = True

    def __init__(
        self, http, timeout, *, client_id: str, client_secret: str, oauth_url: str, login_url: str
    ):
        super().__init__(http, timeout, client_id=client_id, client_secret=client_secret)
        self.oauth_url = oauth_url.rstrip("/")
        self.login_url = login_url.rstrip("/")
        self.authorize_url = f"{self.oauth_url}/authorize"
        self.token_url = f"{self.oauth_url}/token"

    def profile(self, token: dict[str, Any], request: AuthorizationRequest) -> ProviderProfile:
        user = self.api_json(
            "GET",
            f"{self.login_url}/info",
            params={"format": "json"},
            headers={"Authorization": f"OAuth {token.get('access_token', '')}"},
        )
        return ProviderProfile(
            network=self.network,
            subject=require(user.get("id"), self.name),
            first_name=str(user.get("first_name") or "")[:100],
            last_name=str(user.get("last_name") or "")[:100],
            email=user.get("default_email") or None,
            email_verified=bool(user.get("default_email")),
            token=token.get("access_token"),
        )

    def revoke(self, token: str) -> bool:
        return self.revoke_request(
            "POST",
            f"{self.oauth_url}/revoke_token",
            data={
                "access_token": token,
                "client_id": self.client_id,
                "client_secret": self.client_secret or "",
            },
        )


def from_config(config: Mapping[str, Any], http: requests.Session) -> YandexProvider | None:
    if not configured(config, ("YANDEX_CLIENT_ID", "YANDEX_CLIENT_SECRET"), "Yandex ID"):
        return None
    return YandexProvider(
        http,
        config["HTTP_TIMEOUT_SECONDS"],
        client_id=config["YANDEX_CLIENT_ID"],
        client_secret=config["YANDEX_CLIENT_SECRET"],
        oauth_url=config["YANDEX_OAUTH_URL"],
        login_url=config["YANDEX_LOGIN_URL"],
    )
