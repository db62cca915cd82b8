"""Tracked groups: the communities whose members and activity the collector reads."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import CollectionRun, TrackedGroup
from app.services.crypto import encrypt_text

# How each network spells a group's id: VK and Odnoklassniki numbers, a Telegram chat id
# (channels' are negative: -100...).
GROUP_ID_FORMS = {
    "vk": (re.compile(r"\d+"), "a number, e.g. 1"),
    "ok": (re.compile(r"\d+"), "a number, e.g. 53038939046008"),
    "telegram": (re.compile(r"-?\d+"), "a chat id, e.g. -1001234567890"),
}
NETWORKS_WITH_COLLECTORS = tuple(GROUP_ID_FORMS)


class GroupError(Exception):
    """A refused group operation; the message names what to fix."""


def add_group(
    network: str,
    group_id: str,
    name: str,
    token: str,
    *,
    posts_to_scan: int = 20,
    interval_seconds: int = 300,
) -> TrackedGroup:
    if network not in GROUP_ID_FORMS:
        raise GroupError(
            f"no collector reads {network!r} groups (try: {', '.join(NETWORKS_WITH_COLLECTORS)})"
        )
    group_id = group_id.strip()
    if network != "telegram":
        group_id = group_id.lstrip("-")  # VK writes communities as owner -id
    form, example = GROUP_ID_FORMS[network]
    if not form.fullmatch(group_id):
        raise GroupError(f"the {network} group id must be {example}; got {group_id!r}")
    if not token.strip():
        raise GroupError(
            "an access token is required (VK: a user or service token; Odnoklassniki: the "
            "group's access token; Telegram: the bot's token)"
        )
    if not 1 <= posts_to_scan <= 100:
        raise GroupError("posts to scan must be between 1 and 100")
    if interval_seconds < 10:
        raise GroupError("the interval must be at least 10 seconds")
    group = TrackedGroup(
        network=network,
        group_id=group_id,
        name=name.strip() or f"{network} {group_id}",
        token_encrypted=encrypt_text(token.strip()),
        posts_to_scan=posts_to_scan,
        interval_seconds=interval_seconds,
    )
    db.session.add(group)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise GroupError(f"{network} group {group_id} is already tracked") from None
    return group


def set_callbacks(tracked_group_id: int, *, secret: str, confirmation: str) -> TrackedGroup:
    """Accept VK Callback API events for the group: the confirmation string VK's community
    settings show, and the secret key entered there."""
    group = _tracked(tracked_group_id, "vk", "callbacks are VK's")
    secret, confirmation = secret.strip(), confirmation.strip()
    # VK's own limits: a secret of up to 50 letters and digits, an 8-character confirmation.
    if not 8 <= len(secret) <= 50 or not secret.isascii() or not secret.isalnum():
        raise GroupError("the secret key must be 8 to 50 Latin letters and digits")
    if not 1 <= len(confirmation) <= 64 or not confirmation.isascii() or not confirmation.isalnum():
        raise GroupError("the confirmation string must be 1 to 64 Latin letters and digits")
    group.callback_secret_encrypted = encrypt_text(secret)
    group.callback_confirmation = confirmation
    db.session.commit()
    return group


def clear_callbacks(tracked_group_id: int) -> TrackedGroup:
    group = _tracked(tracked_group_id, "vk", "callbacks are VK's")
    group.callback_secret_encrypted = None
    group.callback_confirmation = None
    db.session.commit()
    return group


def _tracked(tracked_group_id: int, network: str | None = None, feature: str = "") -> TrackedGroup:
    """The tracked group, on `network` if given (else the error says `feature`)."""
    group = db.session.get(TrackedGroup, tracked_group_id)
    if group is None:
        raise GroupError(f"no tracked group has id {tracked_group_id}")
    if network is not None and group.network != network:
        raise GroupError(f"{feature}; group #{group.id} is on {group.network}")
    return group


def start_telegram_webhook(tracked_group_id: int, url: str) -> TrackedGroup:
    """Telegram pushes the channel's updates to `url` (/hooks/telegram/<id>, https in
    production); scheduled polling of the group stops, as Telegram allows one or the other."""
    from app.collect.telegram import set_webhook

    group = _tracked(tracked_group_id, "telegram", "webhooks are Telegram's")
    expected = f"/hooks/telegram/{group.id}"
    if not url.startswith(("https://", "http://")) or not url.rstrip("/").endswith(expected):
        raise GroupError(f"the webhook URL must be the portal's {expected}, got {url!r}")
    set_webhook(group, url)
    return group


def stop_telegram_webhook(tracked_group_id: int) -> TrackedGroup:
    from app.collect.telegram import delete_webhook

    group = _tracked(tracked_group_id, "telegram", "webhooks are Telegram's")
    delete_webhook(group)
    return group


def remove_group(tracked_group_id: int) -> None:
    group = _tracked(tracked_group_id)
    db.session.delete(group)
    db.session.commit()


def groups_with_last_success() -> list[tuple[TrackedGroup, CollectionRun | None]]:
    last = (
        select(CollectionRun.tracked_group_id, func.max(CollectionRun.id).label("run_id"))
        .where(CollectionRun.status.in_(("succeeded", "partial")))
        .group_by(CollectionRun.tracked_group_id)
        .subquery()
    )
    rows = db.session.execute(
        select(TrackedGroup, CollectionRun)
        .outerjoin(last, last.c.tracked_group_id == TrackedGroup.id)
        .outerjoin(CollectionRun, CollectionRun.id == last.c.run_id)
        .order_by(TrackedGroup.id)
    )
    return [(group, run) for group, run in rows]
