"""Row-level serialisation that works the same on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import update

from app.extensions import db
from app.models import Member, TrackedGroup


def lock_member(member_id: int) -> None:
    """Serialise changes to one member: a no-op write takes the row lock on PostgreSQL and the
    write lock on SQLite, so whatever is read after it cannot go stale before the commit."""
    db.session.execute(update(Member).where(Member.id == member_id).values(id=Member.id))


def lock_group(tracked_group_id: int) -> None:
    """Serialise changes to one tracked group's snapshot: callbacks and polling cycles."""
    db.session.execute(
        update(TrackedGroup).where(TrackedGroup.id == tracked_group_id).values(id=TrackedGroup.id)
    )
