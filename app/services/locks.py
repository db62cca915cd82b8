"""Row-level serialisation that works the same on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import update

from app.extensions import db
from app.models import Member


def lock_member(member_id: int) -> None:
    """Serialise changes to one member: a no-op write takes the row lock on PostgreSQL and the
    write lock on SQLite, so whatever is read after it cannot go stale before the commit."""
    db.session.execute(update(Member).where(Member.id == member_id).values(id=Member.id))
