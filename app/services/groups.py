"""Tracked groups: the communities whose members and activity the collector reads."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import CollectionRun, TrackedGroup
from app.services.crypto import encrypt_text

NETWORKS_WITH_COLLECTORS = ("vk",)


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
    group_id = group_id.strip().lstrip("-")
    if network not in NETWORKS_WITH_COLLECTORS:
        raise GroupError(f"no collector reads {network!r} groups yet (try: vk)")
    if not group_id.isdigit():
        raise GroupError(f"the {network} group id must be a number, got {group_id!r}")
    if not token.strip():
        raise GroupError("an access token is required (a user or service token for VK)")
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


def remove_group(tracked_group_id: int) -> None:
    group = db.session.get(TrackedGroup, tracked_group_id)
    if group is None:
        raise GroupError(f"no tracked group has id {tracked_group_id}")
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
