"""Leases in the database: who may run the scheduler, who is collecting a group.

An UPDATE that only succeeds when the lease is ours or has expired, or an INSERT that only
succeeds when nobody holds it yet: atomic on SQLite and PostgreSQL alike. A holder that dies
stops renewing, and its lease passes to the next asker after it expires.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, insert, or_, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Lease
from app.models.types import utcnow


def acquire(name: str, holder: str, seconds: float) -> bool:
    """Take or renew the lease; commits. True when `holder` holds it now."""
    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    db.session.rollback()
    taken = db.session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))
        .values(holder=holder, expires_at=expires)
    ).rowcount
    if taken:
        db.session.commit()
        return True
    try:
        db.session.execute(insert(Lease).values(name=name, holder=holder, expires_at=expires))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


def release(name: str, holder: str) -> None:
    db.session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))
    db.session.commit()
