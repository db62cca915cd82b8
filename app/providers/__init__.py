"""Sign-in providers: a slug-keyed registry built from configuration.

Adding a network is one module exposing `from_config(config, http) -> Provider | None`
plus its entry in PROVIDER_FACTORIES; a network without credentials returns None and is hidden.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import requests
from flask import Flask, current_app

from app.providers import apple, google, mailru, ok, telegram, vkid, yandex
from app.providers.base import Provider, ProviderError, ProviderProfile

__all__ = ["Provider", "ProviderError", "ProviderProfile", "enabled_providers", "get_provider"]

ProviderFactory = Callable[[Mapping[str, Any], requests.Session], Provider | None]

PROVIDER_FACTORIES: dict[str, ProviderFactory] = {
    "apple": apple.from_config,
    "vkid": vkid.from_config,
    "ok": ok.from_config,
    "mailru": mailru.from_config,
    "yandex": yandex.from_config,
    "telegram": telegram.from_config,
    "telegram-widget": telegram.widget_from_config,
    "google": google.from_config,
}

EXTENSION_KEY = "loyalink.providers"


def init_providers(app: Flask) -> None:
    http = requests.Session()
    http.headers["User-Agent"] = "Loyalink/0.1"
    registry: dict[str, Provider] = {}
    for slug, factory in PROVIDER_FACTORIES.items():
        provider = factory(app.config, http)
        if provider is not None:
            registry[slug] = provider
    app.extensions[EXTENSION_KEY] = registry


def enabled_providers() -> list[Provider]:
    return list(current_app.extensions[EXTENSION_KEY].values())


def get_provider(slug: str) -> Provider | None:
    return current_app.extensions[EXTENSION_KEY].get(slug)


def provider_for_network(network: str) -> Provider | None:
    """A configured provider of this network (to revoke its tokens, to name it)."""
    return next((p for p in enabled_providers() if p.network == network), None)
