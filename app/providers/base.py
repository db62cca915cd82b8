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
    # The token the portal keeps to revoke its access at unlink (a refresh token where the
    # network revokes by one, an access token elsewhere); encrypted at rest.
    token: str | None = None
    # Set when the provider's answer is a bearer credential by itself (the Telegram widget's
    # signed fields): the portal accepts it once.
    replay_key: str | None = None

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
    code_verifier: str = ""  # PKCE: its S256 hash goes to the provider, it stays with us


class Provider(ABC):
    """A sign-in provider. Subclasses set `slug` and `name` and speak their protocol."""

    slug: str
    name: str
    # The network a profile belongs to; two sign-in methods (Telegram's OIDC and its legacy
    # widget) may share one, so that either finds the same person.
    network: str = ""
    # True when the provider answers with a cross-site POST (form_post) to the callback.
    uses_form_post: bool = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "slug", None) and not cls.__dict__.get("network"):
            cls.network = cls.slug

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

    def revoke(self, token: str) -> bool:
        """Withdraw our tokens at the provider; False when it could not be done."""
        return False


def configured(config: Mapping[str, Any], names: tuple[str, ...], provider_name: str) -> bool:
    """True when every setting is given, False when none is (the provider is hidden).

    Half a configuration is a mistake worth stopping for, not a provider to hide silently.
    """
    given = [name for name in names if config.get(name)]
    if not given:
        return False
    if len(given) != len(names):
        missing = ", ".join(name for name in names if name not in given)
        raise ValueError(f"{provider_name} sign-in is half configured: set {missing} as well")
    return True
