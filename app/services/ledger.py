"""Reading the points ledger and appending to it. Entries are never changed or deleted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import EntryKind, LedgerEntry, Member, StaffUser
from app.services.locks import lock_member

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


@dataclass(frozen=True)
class PointsSummary:
    available: int
    pending: int
    expiring_soon: int
    next_expiry: datetime | None


@dataclass
class _Lot:
    entry: LedgerEntry
    remaining: int


def _lots(member_id: int) -> tuple[list[_Lot], list[LedgerEntry]]:
    """The member's credits with what is left of each: debits burn the oldest points first.

    A reversal or an expiry takes from the very entry it names; other debits (deductions,
    negative adjustments) take from the oldest available credits.
    """
    entries = list(
        db.session.scalars(
            select(LedgerEntry).where(LedgerEntry.member_id == member_id).order_by(LedgerEntry.id)
        )
    )
    lots = [_Lot(e, e.amount) for e in entries if e.amount > 0]
    by_id = {lot.entry.id: lot for lot in lots}
    floating = 0
    for entry in entries:
        if entry.amount >= 0:
            continue
        target = by_id.get(entry.reverses_id) if entry.reverses_id else None
        if target is not None:
            left = target.remaining + entry.amount
            target.remaining = max(0, left)
            floating += max(0, -left)  # what the named entry no longer had comes from the rest
        else:
            floating += -entry.amount
    for lot in sorted(lots, key=lambda lot: (_available_at(lot.entry), lot.entry.id)):
        if floating <= 0:
            break
        burned = min(lot.remaining, floating)
        lot.remaining -= burned
        floating -= burned
    return lots, entries


def _available_at(entry: LedgerEntry) -> datetime:
    return entry.available_at or entry.created_at


def points_summary(member_id: int, now: datetime, warning_days: int) -> PointsSummary:
    lots, entries = _lots(member_id)
    pending = sum(lot.remaining for lot in lots if _available_at(lot.entry) > now)
    total = sum(e.amount for e in entries)
    horizon = now + timedelta(days=warning_days)
    soon = [
        lot
        for lot in lots
        if lot.remaining > 0 and lot.entry.expires_at and now < lot.entry.expires_at <= horizon
    ]
    return PointsSummary(
        available=total - pending,
        pending=pending,
        expiring_soon=sum(lot.remaining for lot in soon),
        next_expiry=min((lot.entry.expires_at for lot in soon), default=None),
    )


def expire_points(now: datetime) -> int:
    """Burn what is left of every accrual past its expiry; returns the entries written."""
    expired = aliased(LedgerEntry)
    due_members = db.session.scalars(
        select(LedgerEntry.member_id)
        .where(
            LedgerEntry.expires_at <= now,
            ~exists().where(
                expired.reverses_id == LedgerEntry.id, expired.kind == EntryKind.EXPIRY
            ),
        )
        .distinct()
    ).all()
    written = 0
    for member_id in due_members:
        lock_member(member_id)
        lots, entries = _lots(member_id)
        done = {e.reverses_id for e in entries if e.kind is EntryKind.EXPIRY}
        added = 0
        for lot in lots:
            entry = lot.entry
            if entry.expires_at is None or entry.expires_at > now or entry.id in done:
                continue
            db.session.add(
                LedgerEntry(
                    member_id=member_id,
                    kind=EntryKind.EXPIRY,
                    amount=-lot.remaining,
                    idempotency_key=f"expiry:{entry.id}",
                    description=f"Expired: {entry.description}"[:255],
                    reverses_id=entry.id,
                )
            )
            added += 1
        try:
            db.session.commit()
        except IntegrityError:
            # Another run expired the same entries a moment ago: theirs stand, ours are dropped.
            db.session.rollback()
            continue
        written += added
    return written
