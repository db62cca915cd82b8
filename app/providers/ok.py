"""Odnoklassniki (OK.ru).

Needs OK_CLIENT_ID (application id), OK_APPLICATION_KEY (public key) and OK_CLIENT_SECRET
(secret key, server only), and the redirect URI <PUBLIC_URL>/auth/ok/callback. OAuth 2 without
PKCE; the profile comes from the signed API call users.getCurrentUser:
secret = md5(access_token + secret_key), sig = md5(sorted "k=v" pairs without access_token +
secret). The email needs a separate permission and is never treated as verified.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import requests

from app.providers.base import AuthorizationRequest, ProviderError, ProviderProfile, configured
from app.providers.oauth import OAuth2Provider, require


def ok_signature(params: Mapping[str, str], access_token: str, secret_key: str) -> str:
    session_secret = hashlib.md5((access_token + secret_key).encode()).hexdigest()  # noqa: S324
    pairs = "".join(f"{key}={params[key]}" for key in sorted(params))
    return hashlib.md5((pairs + session_secret).encode()).hexdigest()  # noqa: S324


class OKProvider(OAuth2Provider):
    slug = "ok"
    name = "Odnoklassniki"
    scope = "VALUABLE_ACCESS;GET_EMAIL"

    def __init__(
        self,
        http: requests.Session,
        timeout: float,
        *,
        client_id: str,
        client_secret: str,
        application_key: str,
        connect_url: str,
        api_url: str,
    ) -> None:
        super().__init__(http, timeout, client_id=client_id, client_secret=client_secret)
        self.application_key = application_key
        self.api_url = api_url.rstrip("/")
        self.authorize_url = f"{connect_url.rstrip('/')}/oauth/authorize"
        self.token_url = f"{self.api_url}/oauth/token.do"

    def call(self, method: str, access_token: str, **fields: str) -> Any:
        params = {
            "application_key": self.application_key,
            "format": "json",
            "method": method,
            **fields,
        }
        params["sig"] = ok_signature(params, access_token, self.client_secret or "")
        body = self.api_json(
            "GET", f"{self.api_url}/fb.do", params={**params, "access_token": access_token}
        )
        if isinstance(body, dict) and body.get("error_code"):
            raise ProviderError(
                f"Odnoklassniki refused the request ({body.get('error_msg', 'error')[:80]}). "
                "Nothing was changed."
            )
        return body

    def profile(self, token: dict[str, Any], request: AuthorizationRequest) -> ProviderProfile:
        user = self.call("users.getCurrentUser", str(token.get("access_token", "")))
        return ProviderProfile(
            network=self.network,
            subject=require(user.get("uid"), self.name),
            first_name=str(user.get("first_name") or "")[:100],
            last_name=str(user.get("last_name") or "")[:100],
            email=user.get("email") or None,
            email_verified=False,
            token=None,  # OK offers no revocation endpoint: nothing to keep
        )


def from_config(config: Mapping[str, Any], http: requests.Session) -> OKProvider | None:
    if not configured(
        config, ("OK_CLIENT_ID", "OK_APPLICATION_KEY", "OK_CLIENT_SECRET"), "Odnoklassniki"
    ):
        return None
    return OKProvider(
        http,
        config["HTTP_TIMEOUT_SECONDS"],
        client_id=config["OK_CLIENT_ID"],
        client_secret=config["OK_CLIENT_SECRET"],
        application_key=config["OK_APPLICATION_KEY"],
        connect_url=config["OK_CONNECT_URL"],
        api_url=config["OK_API_URL"],
    )
