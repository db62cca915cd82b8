"""Mail.ru (My World / MyMail).

Needs MAILRU_CLIENT_ID and MAILRU_CLIENT_SECRET and the redirect URI
<PUBLIC_URL>/auth/mailru/callback. OAuth 2 at oauth.mail.ru: login, token (client credentials
in HTTP Basic), userinfo with the access token. The address is the member's own mailbox, which
Mail.ru has verified, so it may pre-fill the contact field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from app.providers.base import AuthorizationRequest, ProviderProfile, configured
from app.providers.oauth import OAuth2Provider, require


class MailRuProvider(OAuth2Provider):
    slug = "mailru"
    name = "Mail.ru"
    scope = "userinfo"
    client_auth_method = "client_secret_basic"

    def __init__(self, http, timeout, *, client_id: str, client_secret: str, base_url: str):
        super().__init__(http, timeout, client_id=client_id, client_secret=client_secret)
        self.base_url = base_url.rstrip("/")
        self.authorize_url = f"{self.base_url}/login"
        self.token_url = f"{self.base_url}/token"

    def profile(self, token: dict[str, Any], request: AuthorizationRequest) -> ProviderProfile:
        user = self.api_json(
            "GET", f"{self.base_url}/userinfo", params={"access_token": token.get("access_token")}
        )
        return ProviderProfile(
            network=self.network,
            subject=require(user.get("id"), self.name),
            first_name=str(user.get("first_name") or "")[:100],
            last_name=str(user.get("last_name") or "")[:100],
            email=user.get("email") or None,
            email_verified=bool(user.get("email")),
            token=None,  # Mail.ru publishes no revocation endpoint
        )


def from_config(config: Mapping[str, Any], http: requests.Session) -> MailRuProvider | None:
    if not configured(config, ("MAILRU_CLIENT_ID", "MAILRU_CLIENT_SECRET"), "Mail.ru"):
        return None
    return MailRuProvider(
        http,
        config["HTTP_TIMEOUT_SECONDS"],
        client_id=config["MAILRU_CLIENT_ID"],
        client_secret=config["MAILRU_CLIENT_SECRET"],
        base_url=config["MAILRU_OAUTH_URL"],
    )
