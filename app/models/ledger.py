"""The append-only points ledger: the balance is the sum of a member's entries."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Enum, ForeignKey, String, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class EntryKind(enum.StrEnum):
    ACCRUAL = "accrual"
    DEDUCTION = "deduction"
    REVERSAL = "reversal"
    EXPIRY = "expiry"
    ADJUSTMENT = "adjustment"


class LedgerEntry(db.Model):
    __tablename__ = "ledger_entries"
    # Zero only records a deduction's shortfall (the balance stopped at zero) or that an expired
    # accrual had nothing left to burn.
    __table_args__ = (
        CheckConstraint("amount <> 0 OR shortfall > 0 OR kind = 'expiry'", name="nonzero_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    kind: Mapped[EntryKind] = mapped_column(
        Enum(
            EntryKind, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]
        )
    )
    amount: Mapped[int]
    # Unique in the database: replaying whatever produced an entry can never pay twice.
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), index=True)
    offer_id: Mapped[str | None] = mapped_column(String(64))
    offer_version: Mapped[int | None]
    action_id: Mapped[str | None] = mapped_column(String(64))
    # What the entry is about (a profile, a membership, one activity): anti-farming works on it.
    fact_key: Mapped[str | None] = mapped_column(String(255), index=True)
    cap_counter: Mapped[str | None] = mapped_column(String(255))
    # Pending until then; None means at once.
    available_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    shortfall: Mapped[int] = mapped_column(default=0, server_default="0")


class LedgerIsAppendOnly(RuntimeError):
    pass


@event.listens_for(Session, "before_flush")
def _refuse_ledger_rewrites(session: Session, flush_context, instances) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, LedgerEntry) and (obj in session.deleted or session.is_modified(obj)):
            raise LedgerIsAppendOnly("ledger entries are never changed or deleted; append one")
