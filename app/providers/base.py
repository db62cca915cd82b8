"""What every sign-in provider offers the portal, whatever protocol it speaks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import requests


class ProviderError(Exception):
    """A sign-in step failed; the message is safe and useful to show to the member."""


@dataclass(frozen=True)
class ProviderProfile:
    """A person as a provider vouches for them: (network, subject) is the identity."""

    network: str
    subject: str
    first_name: str = ""
    last_name: str = ""
    email: str | None = None
    email_verified: bool = False
    is_private_email: bool = False
    refresh_token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProviderProfile:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


@dataclass(frozen=True)
class AuthorizationRequest:
    """What the portal keeps about one sign-in in flight (bound to the browser session)."""

    state: str
    nonce: str
    redirect_uri: str


class Provider(ABC):
    """A sign-in provider. Subclasses set `slug` and `name` and speak their protocol."""

    slug: str
    name: str
    # True when the provider answers with a cross-site POST (form_post) to the callback.
    uses_form_post: bool = False

    def __init__(self, http: requests.Session, timeout: float) -> None:
        self.http = http
        self.timeout = timeout

    @abstractmethod
    def authorization_url(self, request: AuthorizationRequest) -> str:
        """Where to send the browser to start signing in."""

    @abstractmethod
    def complete(
        self, callback: Mapping[str, str], request: AuthorizationRequest
    ) -> ProviderProfile:
        """Turn the provider's callback parameters into a verified profile, or raise."""

    def revoke(self, refresh_token: str) -> bool:
        """Withdraw our tokens at the provider; False when it could not be done."""
        return False
