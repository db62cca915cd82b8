"""Telegram: "Log In with Telegram" (OpenID Connect) and the legacy Login Widget.

OpenID Connect needs TELEGRAM_CLIENT_ID (the bot id) and TELEGRAM_CLIENT_SECRET, and the
redirect URI <PUBLIC_URL>/auth/telegram/callback; discovery at TELEGRAM_ISSUER, code + PKCE.
The legacy widget needs TELEGRAM_BOT_TOKEN (its id is the part before the colon): the
widget sends id, names, username, photo_url, auth_date and hash, valid when
hash = hex(HMAC-SHA256(key=SHA256(bot_token), data-check-string)) and auth_date is fresh.
Either way the person is ("telegram", user id), so both find the same member.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import requests

from app.providers.base import (
    AuthorizationRequest,
    Provider,
    ProviderError,
    ProviderProfile,
    configured,
)
from app.providers.oauth import require
from app.providers.oidc import OIDCProvider

WIDGET_FIELDS = ("id", "first_name", "last_name", "username", "photo_url", "auth_date")
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


class TelegramProvider(OIDCProvider):
    slug = "telegram"
    name = "Telegram"

    def map_claims(self, claims: dict[str, Any], token: dict[str, Any]) -> ProviderProfile:
        name = str(claims.get("name") or "")
        first, _, last = name.partition(" ")
        return ProviderProfile(
            network=self.network,
            subject=require(claims.get("id") or claims.get("sub"), self.name),
            first_name=first[:100],
            last_name=last[:100],
            token=token.get("refresh_token") or token.get("access_token"),
        )


def widget_hash(fields: Mapping[str, str], bot_token: str) -> str:
    data_check = "\n".join(f"{key}={fields[key]}" for key in sorted(fields))
    secret = hashlib.sha256(bot_token.encode()).digest()
    return hmac.new(secret, data_check.encode(), hashlib.sha256).hexdigest()


class TelegramWidgetProvider(Provider):
    slug = "telegram-widget"
    network = "telegram"
    name = "Telegram (widget)"

    def __init__(
        self,
        http: requests.Session,
        timeout: float,
        *,
        bot_token: str,
        widget_url: str,
        origin: str,
        max_age_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(http, timeout)
        self.bot_token = bot_token
        self.bot_id = bot_token.split(":", 1)[0]
        self.widget_url = widget_url.rstrip("/")
        self.origin = origin
        self.max_age_seconds = max_age_seconds
        self.clock = clock

    def authorization_url(self, request: AuthorizationRequest) -> str:
        # The widget knows no state: ours rides in the return address and comes back with it.
        return_to = f"{request.redirect_uri}?{urlencode({'state': request.state})}"
        query = {"bot_id": self.bot_id, "origin": self.origin, "return_to": return_to}
        return f"{self.widget_url}/auth?{urlencode(query)}"

    def complete(
        self, callback: Mapping[str, str], request: AuthorizationRequest
    ) -> ProviderProfile:
        received = callback.get("hash", "").lower()
        fields = {key: callback[key] for key in WIDGET_FIELDS if callback.get(key)}
        if not received or "id" not in fields or "auth_date" not in fields:
            raise ProviderError("Telegram's answer is incomplete. Nothing was changed.")
        if not HEX_DIGEST.fullmatch(received) or not hmac.compare_digest(
            widget_hash(fields, self.bot_token).encode(), received.encode()
        ):
            raise ProviderError(
                "Telegram's answer failed its signature check, so it was refused. "
                "Nothing was changed."
            )
        try:
            age = self.clock() - int(fields["auth_date"])
        except ValueError:
            raise ProviderError(
                "Telegram's answer has an invalid date. Nothing was changed."
            ) from None
        if age > self.max_age_seconds or age < -60:
            raise ProviderError(
                "This Telegram sign-in is too old to be trusted. Nothing was changed; "
                "please sign in again."
            )
        return ProviderProfile(
            network=self.network,
            subject=fields["id"],
            replay_key=f"telegram-widget:{received}",
            first_name=fields.get("first_name", "")[:100],
            last_name=fields.get("last_name", "")[:100],
        )


def from_config(config: Mapping[str, Any], http: requests.Session) -> TelegramProvider | None:
    if not configured(config, ("TELEGRAM_CLIENT_ID", "TELEGRAM_CLIENT_SECRET"), "Telegram"):
        return None
    return TelegramProvider(
        http,
        config["HTTP_TIMEOUT_SECONDS"],
        client_id=config["TELEGRAM_CLIENT_ID"],
        client_secret=config["TELEGRAM_CLIENT_SECRET"],
        issuer=config["TELEGRAM_ISSUER"],
    )


def widget_from_config(
    config: Mapping[str, Any], http: requests.Session
) -> TelegramWidgetProvider | None:
    token = config.get("TELEGRAM_BOT_TOKEN")
    if not token:
        return None
    if ":" not in token:
        raise ValueError("TELEGRAM_BOT_TOKEN must look like <bot id>:<secret>")
    return TelegramWidgetProvider(
        http,
        config["HTTP_TIMEOUT_SECONDS"],
        bot_token=token,
        widget_url=config["TELEGRAM_WIDGET_URL"],
        origin=config["PUBLIC_URL"],
        max_age_seconds=config["TELEGRAM_AUTH_MAX_AGE_SECONDS"],
    )
