"""VK ID (OAuth 2.1).

Needs VKID_CLIENT_ID (the app id; a web app using PKCE needs no secret) and the redirect URI
<PUBLIC_URL>/auth/vkid/callback registered for it. PKCE S256 is mandatory; the callback brings
`device_id`, which the token request must repeat. The profile comes from oauth2/user_info.
Revocation: oauth2/revoke with the access token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from app.providers.base import AuthorizationRequest, ProviderError, ProviderProfile
from app.providers.oauth import OAuth2Provider, require


class VKIDProvider(OAuth2Provider):
    slug = "vkid"
    network = "vk"
    name = "VK ID"
    scope = "vkid.personal_info email"
    uses_pkce = True
    client_auth_method = "none"

    def __init__(self, http: requests.Session, timeout: float, *, client_id: str, base_url: str):
        super().__init__(http, timeout, client_id=client_id, client_secret=None)
        self.base_url = base_url.rstrip("/")
        self.authorize_url = f"{self.base_url}/authorize"
        self.token_url = f"{self.base_url}/oauth2/auth"

    def token_params(self, callback: Mapping[str, str], request: AuthorizationRequest) -> dict:
        device_id = callback.get("device_id")
        if not device_id:
            raise ProviderError("VK ID's answer carried no device_id. Please try again.")
        return {"device_id": device_id, "state": request.state}

    def profile(self, token: dict[str, Any], request: AuthorizationRequest) -> ProviderProfile:
        body = self.api_json(
            "POST",
            f"{self.base_url}/oauth2/user_info",
            data={"access_token": token.get("access_token", ""), "client_id": self.client_id},
        )
        user = body.get("user") or {}
        return ProviderProfile(
            network=self.network,
            subject=require(user.get("user_id"), self.name),
            first_name=str(user.get("first_name") or "")[:100],
            last_name=str(user.get("last_name") or "")[:100],
            email=user.get("email") or None,
            # VK ID does not say the address was confirmed: it never pre-fills anything.
            email_verified=False,
            token=token.get("access_token"),
        )

    def revoke(self, token: str) -> bool:
        return self.revoke_request(
            "POST",
            f"{self.base_url}/oauth2/revoke",
            data={"access_token": token, "client_id": self.client_id},
        )


def from_config(config: Mapping[str, Any], http: requests.Session) -> VKIDProvider | None:
    if not config.get("VKID_CLIENT_ID"):
        return None
    return VKIDProvider(
        http,
        config["HTTP_TIMEOUT_SECONDS"],
        client_id=config["VKID_CLIENT_ID"],
        base_url=config["VKID_BASE_URL"],
    )
