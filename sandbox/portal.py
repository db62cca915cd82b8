"""Wiring a portal to this sandbox: the clients it registers, the settings it needs.

Used by the demo and by the tests, so that both configure the portal exactly as an operator
configures it for the real networks, only with the sandbox's base URLs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

TELEGRAM_BOT_TOKEN = "7000001:sandbox-widget-secret"  # noqa: S105 - the sandbox's own bot

# network in the sandbox: (client id, client secret, extra, the portal's provider slugs using it)
CLIENTS: dict[str, tuple[str, str | None, dict[str, Any] | None, tuple[str, ...]]] = {
    "vkid": ("51000001", None, None, ("vkid",)),
    "ok": (
        "512000001",
        "ok-secret-key",
        {"application_key": "CBAOKTEST", "email_permission": True},
        ("ok",),
    ),
    "mailru": ("mailru-test-app", "mailru-secret", None, ("mailru",)),
    "yandex": ("yandex-test-app", "yandex-secret", None, ("yandex",)),
    "telegram": (
        "7000001",
        "telegram-secret",
        {"bot_token": TELEGRAM_BOT_TOKEN},
        ("telegram", "telegram-widget"),
    ),
    "google": ("google-test-app.apps.example", "google-secret", None, ("google",)),
}


def register_portal(state: Any, portal_origins: Iterable[str]) -> None:
    """Register the portal's callback URIs with every sandbox network."""
    origins = list(portal_origins)
    for network, (client_id, secret, extra, slugs) in CLIENTS.items():
        state.register_oauth_client(
            network,
            client_id,
            client_secret=secret,
            redirect_uris=[f"{o}/auth/{slug}/callback" for o in origins for slug in slugs],
            extra=extra,
        )


def portal_settings(sandbox_url: str) -> dict[str, Any]:
    """The portal's configuration for every network, pointing at the sandbox at this URL."""
    ids = {network: values[0] for network, values in CLIENTS.items()}
    secrets = {network: values[1] for network, values in CLIENTS.items()}
    return {
        "VKID_CLIENT_ID": ids["vkid"],
        "VKID_BASE_URL": f"{sandbox_url}/vkid",
        "OK_CLIENT_ID": ids["ok"],
        "OK_CLIENT_SECRET": secrets["ok"],
        "OK_APPLICATION_KEY": CLIENTS["ok"][2]["application_key"],
        "OK_CONNECT_URL": f"{sandbox_url}/ok-connect",
        "OK_API_URL": f"{sandbox_url}/ok-api",
        "MAILRU_CLIENT_ID": ids["mailru"],
        "MAILRU_CLIENT_SECRET": secrets["mailru"],
        "MAILRU_OAUTH_URL": f"{sandbox_url}/mailru",
        "YANDEX_CLIENT_ID": ids["yandex"],
        "YANDEX_CLIENT_SECRET": secrets["yandex"],
        "YANDEX_OAUTH_URL": f"{sandbox_url}/yandex-oauth",
        "YANDEX_LOGIN_URL": f"{sandbox_url}/yandex-login",
        "TELEGRAM_CLIENT_ID": ids["telegram"],
        "TELEGRAM_CLIENT_SECRET": secrets["telegram"],
        "TELEGRAM_ISSUER": f"{sandbox_url}/telegram",
        "TELEGRAM_BOT_TOKEN": TELEGRAM_BOT_TOKEN,
        "TELEGRAM_WIDGET_URL": f"{sandbox_url}/telegram-widget",
        "TELEGRAM_BOT_API_URL": f"{sandbox_url}/telegram-bot-api",
        "GOOGLE_CLIENT_ID": ids["google"],
        "GOOGLE_CLIENT_SECRET": secrets["google"],
        "GOOGLE_ISSUER": f"{sandbox_url}/google",
    }
