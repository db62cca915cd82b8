"""Google (OpenID Connect with discovery).

Needs GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET and the redirect URI
<PUBLIC_URL>/auth/google/callback. Everything else comes from the discovery document at
GOOGLE_ISSUER; the email pre-fills only when `email_verified` is true.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from app.providers.base import configured
from app.providers.oidc import OIDCProvider


class GoogleProvider(OIDCProvider):
    slug = "google"
    name = "Google"


def from_config(config: Mapping[str, Any], http: requests.Session) -> GoogleProvider | None:
    if not configured(config, ("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET"), "Google"):
        return None
    return GoogleProvider(
        http,
        config["HTTP_TIMEOUT_SECONDS"],
        client_id=config["GOOGLE_CLIENT_ID"],
        client_secret=config["GOOGLE_CLIENT_SECRET"],
        issuer=config["GOOGLE_ISSUER"],
    )
