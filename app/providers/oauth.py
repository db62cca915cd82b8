"""The OAuth 2 authorization-code flow shared by the networks, spoken through Authlib.

A network module subclasses `OAuth2Provider`, sets its endpoints and scopes, and maps the
profile its API returns; PKCE (S256) is sent whenever the network supports it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from app.providers.base import AuthorizationRequest, Provider, ProviderError, ProviderProfile

log = logging.getLogger(__name__)


class OAuth2Provider(Provider):
    authorize_url: str
    token_url: str
    scope: str = ""
    uses_pkce: bool = False
    client_auth_method: str = "client_secret_post"  # or client_secret_basic, none

    def __init__(
        self,
        http: requests.Session,
        timeout: float,
        *,
        client_id: str,
        client_secret: str | None,
    ) -> None:
        super().__init__(http, timeout)
        self.client_id = client_id
        self.client_secret = client_secret

    def oauth_session(self, redirect_uri: str) -> OAuth2Session:
        session = OAuth2Session(
            self.client_id,
            self.client_secret,
            redirect_uri=redirect_uri,
            scope=self.scope or None,
            code_challenge_method="S256" if self.uses_pkce else None,
            token_endpoint_auth_method=self.client_auth_method,
        )
        session.headers.update(self.http.headers)
        return session

    def authorization_params(self, request: AuthorizationRequest) -> dict[str, str]:
        """Extra query parameters of the authorize URL (a nonce for OIDC, for example)."""
        return {}

    def token_params(self, callback: Mapping[str, str], request: AuthorizationRequest) -> dict:
        """Extra body parameters of the token request (VK ID's device_id, for example)."""
        return {}

    def authorization_url(self, request: AuthorizationRequest) -> str:
        session = self.oauth_session(request.redirect_uri)
        extra = self.authorization_params(request)
        if self.uses_pkce:
            extra["code_verifier"] = request.code_verifier
        url, _ = session.create_authorization_url(self.authorize_url, state=request.state, **extra)
        return url

    def complete(
        self, callback: Mapping[str, str], request: AuthorizationRequest
    ) -> ProviderProfile:
        self.check_callback(callback)
        token = self.fetch_token(callback, request)
        return self.profile(token, request)

    def check_callback(self, callback: Mapping[str, str]) -> None:
        error = callback.get("error")
        if error in {"access_denied", "user_cancelled_authorize", "user_denied"}:
            raise ProviderError(f"You cancelled signing in with {self.name}. Nothing was changed.")
        if error:
            raise ProviderError(
                f"{self.name} did not sign you in ({error[:60]}). Nothing was changed."
            )
        if not callback.get("code"):
            raise ProviderError(
                f"{self.name}'s answer carried no authorization code. Please try again."
            )

    def fetch_token(
        self, callback: Mapping[str, str], request: AuthorizationRequest
    ) -> dict[str, Any]:
        session = self.oauth_session(request.redirect_uri)
        params = self.token_params(callback, request)
        if self.uses_pkce:
            params["code_verifier"] = request.code_verifier
        # Authlib keeps `state` for itself; a network that wants it in the body gets it there.
        body = urlencode({"state": params.pop("state")}) if "state" in params else ""
        try:
            return dict(
                session.fetch_token(
                    self.token_url, body=body, code=callback["code"], timeout=self.timeout, **params
                )
            )
        except AuthlibBaseError as exc:
            log.warning("%s token endpoint refused: %s", self.name, exc.error)
            if exc.error == "invalid_grant":
                raise ProviderError(
                    f"This {self.name} sign-in has already been used, has expired or could not "
                    "be verified. Nothing was changed; please sign in again."
                ) from exc
            if exc.error in {"invalid_client", "unauthorized_client"}:
                raise ProviderError(
                    f"{self.name} refused this portal's credentials. The operator must check "
                    "its configuration; nothing was changed."
                ) from exc
            raise ProviderError(
                f"{self.name} could not complete the sign-in. Please try again."
            ) from exc
        except (requests.RequestException, ValueError) as exc:
            log.warning("%s token endpoint failed: %s", self.name, type(exc).__name__)
            raise ProviderError(
                f"{self.name} could not be reached. Please try again in a minute."
            ) from exc

    def profile(self, token: dict[str, Any], request: AuthorizationRequest) -> ProviderProfile:
        raise NotImplementedError

    def api_json(self, method: str, url: str, **kwargs) -> Any:
        """Call the network's API; a transport error or a non-JSON answer is a ProviderError."""
        try:
            response = self.http.request(method, url, timeout=self.timeout, **kwargs)
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            log.warning("%s API call failed: %s", self.name, type(exc).__name__)
            raise ProviderError(
                f"{self.name} could not be reached for your profile. Please try again."
            ) from exc
        if response.status_code >= 400 or (isinstance(body, dict) and body.get("error")):
            log.warning("%s API answered HTTP %s", self.name, response.status_code)
            raise ProviderError(f"{self.name} refused to give your profile. Please try again.")
        return body

    def revoke_request(self, method: str, url: str, **kwargs) -> bool:
        try:
            response = self.http.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            log.warning("%s token revocation failed: %s", self.name, type(exc).__name__)
            return False
        if response.status_code != 200:
            log.warning("%s token revocation answered HTTP %s", self.name, response.status_code)
        return response.status_code == 200


def require(profile_id: Any, provider_name: str) -> str:
    """A profile without an id cannot be linked to anyone."""
    if profile_id in (None, ""):
        raise ProviderError(f"{provider_name} did not say who you are. Nothing was changed.")
    return str(profile_id)
