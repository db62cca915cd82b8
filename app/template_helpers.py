"""Filters and globals for the templates."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app, request
from flask_login import current_user

from app.models import EntryKind
from app.providers import provider_for_network

ENTRY_LABELS = {
    EntryKind.ACCRUAL: "Points earned",
    EntryKind.DEDUCTION: "Points deducted",
    EntryKind.REVERSAL: "Reversal",
    EntryKind.EXPIRY: "Points expired",
    EntryKind.ADJUSTMENT: "Adjustment by the programme",
}


def local_time(value: datetime | None, fmt: str = "%d %b %Y, %H:%M") -> str:
    """A timestamp in the programme's time zone."""
    if value is None:
        return ""
    zone = ZoneInfo(current_app.config["PROGRAMME_TIMEZONE"])
    return value.astimezone(zone).strftime(fmt)


def network_name(network: str) -> str:
    """The name members know a network by (its provider's), e.g. "VK ID" for vk."""
    provider = provider_for_network(network)
    return provider.name if provider else network.title()


def points(value: int) -> str:
    return f"{value:+,}".replace(",", "\u202f") if value else "0"


def register(app: Flask) -> None:
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(points, "points")
    app.add_template_filter(network_name, "network_name")

    @app.context_processor
    def portal_globals():
        user = current_user._get_current_object() if current_user else None
        return {
            "programme_name": current_app.config["PROGRAMME_NAME"],
            "entry_labels": ENTRY_LABELS,
            "is_member": bool(user and user.is_authenticated and not user.is_staff),
            "is_staff": bool(user and user.is_authenticated and user.is_staff),
            "is_htmx": request.headers.get("HX-Request") == "true",
        }
