"""Reading the points ledger and appending to it. Entries are never changed or deleted."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import EntryKind, LedgerEntry, Member, StaffUser

HISTORY_PAGE_SIZE = 20
MAX_ADJUSTMENT = 1_000_000


class LedgerError(Exception):
    """A refused ledger operation; the message is shown as it is."""


def balance(member_id: int) -> int:
    total = db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.member_id == member_id
        )
    )
    return int(total or 0)


def history(
    member_id: int, *, before_id: int | None = None, limit: int = HISTORY_PAGE_SIZE
) -> tuple[list[LedgerEntry], int | None]:
    """Newest first; returns the page and the id to continue before, or None at the end."""
    query = select(LedgerEntry).where(LedgerEntry.member_id == member_id)
    if before_id is not None:
        query = query.where(LedgerEntry.id < before_id)
    rows = list(db.session.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    page = rows[:limit]
    return page, (page[-1].id if more and page else None)


def adjust(
    member: Member, amount: int, reason: str, staff: StaffUser, request_key: str
) -> tuple[LedgerEntry, bool]:
    """A manual adjustment by staff; `request_key` makes a double submit write one entry.

    Returns the entry and whether it was created now (False: the same request came before).
    """
    reason = reason.strip()
    if not member.is_active:
        raise LedgerError("This member account has been deleted; its points cannot change.")
    if amount == 0 or abs(amount) > MAX_ADJUSTMENT:
        raise LedgerError(f"The amount must be non-zero and at most {MAX_ADJUSTMENT:,} points.")
    if len(reason) < 3:
        raise LedgerError("Give a reason of at least 3 characters; the member sees it.")
    key = f"adjustment:{request_key}"
    entry = LedgerEntry(
        member_id=member.id,
        kind=EntryKind.ADJUSTMENT,
        amount=amount,
        idempotency_key=key,
        description=reason[:255],
        created_by_staff_id=staff.id,
    )
    db.session.add(entry)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = db.session.scalar(select(LedgerEntry).where(LedgerEntry.idempotency_key == key))
        if existing is None:
            raise
        return existing, False
    return entry, True
