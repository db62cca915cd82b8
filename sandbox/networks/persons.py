"""The sandbox persons as the social networks see them, and their avatars."""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint, Response, abort, current_app, url_for
from markupsafe import escape

bp = Blueprint("sandbox_persons", __name__, url_prefix="/persons")

# Network name (as in register_oauth_client) -> key of the profile in person["networks"].
PROFILE_KEYS = {
    "vkid": "vk",
    "ok": "ok",
    "mailru": "mailru",
    "yandex": "yandex",
    "telegram": "telegram",
    "google": "google",
}

_AVATAR_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200">
<rect width="200" height="200" fill="#{color}"/>
<text x="100" y="125" font-family="sans-serif" font-size="80" fill="#fff"
 text-anchor="middle">{initials}</text></svg>"""


def _persons() -> list[dict[str, Any]]:
    return current_app.extensions["sandbox"].persons


def persons_on(network: str) -> list[dict[str, Any]]:
    """The persons with a profile at this network, in sandbox order."""
    key = PROFILE_KEYS[network]
    return [p for p in _persons() if p.get("networks", {}).get(key)]


def person_on(network: str, sub: str) -> dict[str, Any] | None:
    """The person with this (Apple-style) sub, if they have a profile at this network."""
    return next((p for p in persons_on(network) if p["sub"] == sub), None)


def profile(person: dict[str, Any], network: str) -> dict[str, Any]:
    """The person's profile at this network, with first_name and last_name filled in."""
    data = dict(person["networks"][PROFILE_KEYS[network]])
    data.setdefault("first_name", person["first_name"])
    data.setdefault("last_name", person["last_name"])
    return data


def full_name(data: dict[str, Any]) -> str:
    """First and last name joined."""
    return " ".join(part for part in (data["first_name"], data["last_name"]) if part)


def avatar_url(person: dict[str, Any]) -> str:
    """Absolute URL of the person's generated avatar (needs a request context)."""
    return url_for("sandbox_persons.avatar", sub=person["sub"], _external=True)


@bp.get("/<sub>/avatar.svg")
def avatar(sub: str) -> Response:
    """A coloured square with the person's initials."""
    person = next((p for p in _persons() if p["sub"] == sub), None)
    if person is None:
        abort(404)
    initials = f"{person['first_name'][:1]}{person['last_name'][:1]}".upper()
    # Half intensity on each channel keeps white initials readable.
    color = f"{int(hashlib.sha256(sub.encode()).hexdigest()[:6], 16) & 0x7F7F7F:06x}"
    svg = _AVATAR_SVG.format(color=color, initials=escape(initials))
    return Response(svg, mimetype="image/svg+xml")
