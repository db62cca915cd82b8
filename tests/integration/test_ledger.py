"""The ledger is append-only, in the code and in the database itself."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.extensions import db as app_db
from app.models import EntryKind, LedgerEntry, LedgerIsAppendOnly, Member
from app.models.types import utcnow
from app.services import ledger

pytestmark = pytest.mark.database


@pytest.fixture
def member_id(app):
    with app.app_context():
        now = utcnow()
        member = Member(
            first_name="L",
            terms_version="t",
            terms_accepted_at=now,
            data_processing_accepted_at=now,
        )
        app_db.session.add(member)
        app_db.session.commit()
        return member.id


def entry(member_id: int, amount: int, key: str) -> LedgerEntry:
    return LedgerEntry(
        member_id=member_id, kind=EntryKind.ACCRUAL, amount=amount, idempotency_key=key
    )


def test_idempotency_key_is_unique(app, member_id):
    with app.app_context():
        app_db.session.add(entry(member_id, 5, "event-1:offer-1:v1:action-0"))
        app_db.session.commit()
        app_db.session.add(entry(member_id, 5, "event-1:offer-1:v1:action-0"))
        with pytest.raises(IntegrityError):
            app_db.session.commit()
        app_db.session.rollback()
        assert ledger.balance(member_id) == 5


def test_orm_refuses_to_change_or_delete_an_entry(app, member_id):
    with app.app_context():
        row = entry(member_id, 5, "k1")
        app_db.session.add(row)
        app_db.session.commit()
        row.amount = 500
        with pytest.raises(LedgerIsAppendOnly):
            app_db.session.commit()
        app_db.session.rollback()
        app_db.session.delete(row)
        with pytest.raises(LedgerIsAppendOnly):
            app_db.session.commit()
        app_db.session.rollback()


@pytest.mark.parametrize(
    "statement",
    ["UPDATE ledger_entries SET amount = 500", "DELETE FROM ledger_entries"],
    ids=["update", "delete"],
)
def test_database_refuses_to_change_or_delete_an_entry(app, member_id, statement):
    with app.app_context():
        app_db.session.add(entry(member_id, 5, "k1"))
        app_db.session.commit()
        with pytest.raises(DBAPIError, match="append-only"):
            app_db.session.execute(text(statement))
        app_db.session.rollback()
        assert ledger.balance(member_id) == 5


def test_zero_amount_is_refused_by_the_database(app, member_id):
    with app.app_context():
        app_db.session.add(entry(member_id, 0, "k0"))
        with pytest.raises(IntegrityError):
            app_db.session.commit()
        app_db.session.rollback()


def test_bulk_update_through_the_orm_is_refused_too(app, member_id):
    with app.app_context():
        app_db.session.add(entry(member_id, 5, "k1"))
        app_db.session.commit()
        with pytest.raises(DBAPIError):
            app_db.session.execute(update(LedgerEntry).values(amount=1))
        app_db.session.rollback()
        assert app_db.session.scalar(select(LedgerEntry.amount)) == 5
