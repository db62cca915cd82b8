"""Row-level serialisation that works the same on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select, update

from app.extensions import db
from app.models import Member, TrackedGroup


def lock_member(member_id: int) -> None:
    """Serialise changes to one member: a no-op write takes the row lock on PostgreSQL and the
    write lock on SQLite, so whatever is read after it cannot go stale before the commit."""
    db.session.execute(update(Member).where(Member.id == member_id).values(id=Member.id))


def lock_group(tracked_group_id: int) -> int:
    """Serialise changes to one tracked group's snapshot (callbacks and polling chunks), and
    raise its change_seq; returns the new value, which the changes made now are marked with."""
    db.session.execute(
        update(TrackedGroup)
        .where(TrackedGroup.id == tracked_group_id)
        .values(change_seq=TrackedGroup.change_seq + 1)
    )
    return db.session.scalar(
        select(TrackedGroup.change_seq).where(TrackedGroup.id == tracked_group_id)
    )
