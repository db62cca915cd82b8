"""Processing events: record each once, evaluate it with the rules, write its effects.

`process_events` works inside the caller's transaction so that a collector can commit its
snapshot changes, the events and their effects together; `process_event` is the one-event
form that commits. The event rows are inserted first: on SQLite that takes the write lock
before anything is read, on PostgreSQL the unique key makes a second process processing the
same event wait and then do nothing; the members concerned are locked before their state is
read, so caps and balances are never read stale.
"""

from __future__ import annotations

import json
import logging
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models import Counter, EntryKind, LedgerEntry, Member, OfferVersion, OutboxMessage
from app.models import Event as EventRow
from app.models.types import utcnow
from app.rules import (
    Award,
    Evaluation,
    Event,
    LedgerEffect,
    LedgerState,
    MemberFacts,
    Offer,
    Policy,
    counter_keys,
    evaluate,
    parse_offer,
)
from app.rules.model import DeductAction

log = logging.getLogger(__name__)

IN_CHUNK = 500  # bound parameters per IN (...) list
# Rows with NULLs in different columns would otherwise be split into one INSERT per shape:
# sending every column keeps a batch a single multi-row statement (3x faster on SQLite).
SAME_SHAPE = {"render_nulls": True}


@dataclass(frozen=True)
class ProcessResult:
    recorded: int  # events new to the database (the rest had been processed before)
    ledger_entries: int
    messages: int


def dialect_insert(table):
    """INSERT with ON CONFLICT support, for the database in use (SQLite or PostgreSQL)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _chunks(items: Sequence, size: int = IN_CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def policy() -> Policy:
    return Policy(
        timezone=ZoneInfo(current_app.config["PROGRAMME_TIMEZONE"]),
        allow_negative_balance=current_app.config["ALLOW_NEGATIVE_BALANCE"],
    )


_parsed: dict[str, Offer] = {}


def current_offers() -> list[Offer]:
    """The latest version of every offer (each parsed once per process)."""
    latest = (
        select(OfferVersion.offer_id, func.max(OfferVersion.version).label("version"))
        .group_by(OfferVersion.offer_id)
        .subquery()
    )
    rows = db.session.execute(
        select(OfferVersion.offer_id, OfferVersion.version, OfferVersion.data).join(
            latest,
            (OfferVersion.offer_id == latest.c.offer_id)
            & (OfferVersion.version == latest.c.version),
        )
    )
    offers = []
    for offer_id, version, data in rows:
        # Keyed by content, not by (id, version): two databases may number differently.
        key = json.dumps([offer_id, version, data], sort_keys=True)
        offer = _parsed.get(key)
        if offer is None:
            offer = _parsed[key] = parse_offer({**data, "id": offer_id, "version": version})
        offers.append(offer)
    return offers


def process_event(event: Event) -> ProcessResult:
    """Process one event in its own transaction and commit."""
    result = process_events([event])
    db.session.commit()
    return result


def process_events(events: Sequence[Event]) -> ProcessResult:
    """Record, evaluate and apply a batch of events in the caller's transaction."""
    unique = list({event.key: event for event in events}.values())
    if not unique:
        return ProcessResult(0, 0, 0)
    new_ids = _record(unique)
    fresh = [event for event in unique if event.key in new_ids]
    if not fresh:
        return ProcessResult(0, 0, 0)
    member_ids = sorted({event.member_id for event in fresh})
    offers = current_offers()
    rules_policy = policy()
    # A reversal takes from whoever was paid for the fact, who may own the profile no more:
    # they are locked too (all in one sorted order).
    paying = _paying_events(fresh, offers, rules_policy)
    _lock_members(sorted(set(member_ids) | _award_owners(paying)))
    members = _member_facts(member_ids)
    state, award_ids = _load_state(fresh, paying, offers, rules_policy)
    ledger_effects: list[LedgerEffect] = []
    messages = []
    changed_counters: dict[str, int] = {}
    event_by_key = {event.key: event for event in fresh}
    for event in fresh:
        evaluation = evaluate(
            event, offers, members.get(event.member_id, MemberFacts()), state, rules_policy
        )
        ledger_effects.extend(evaluation.ledger)
        messages.extend(evaluation.messages)
        changed_counters.update(evaluation.counters)
    _write_ledger(ledger_effects, new_ids, award_ids)
    _write_counters(changed_counters)
    _write_messages(messages, event_by_key)
    return ProcessResult(len(fresh), len(ledger_effects), len(messages))


def _record(events: Sequence[Event]) -> dict[str, int]:
    """Insert the events that are new; returns key -> id for those only."""
    now = utcnow()
    rows = [
        {
            "key": event.key,
            "kind": event.kind.value,
            "member_id": event.member_id,
            "network": event.network,
            "subject": event.subject,
            "group_id": event.group_id,
            "object_id": event.object_id,
            "activity": event.activity.value if event.activity else None,
            "activity_id": event.activity_id,
            "occurred_at": event.occurred_at,
            "processed_at": now,
        }
        # Sorted by key: two batches inserting overlapping keys wait for each other in one order.
        for event in sorted(events, key=lambda e: e.key)
    ]
    statement = (
        dialect_insert(EventRow)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(EventRow.key, EventRow.id)
    )
    return {
        key: event_id
        for key, event_id in db.session.execute(statement, rows, execution_options=SAME_SHAPE)
    }


def _lock_members(member_ids: Sequence[int]) -> None:
    """Serialise processing per member on PostgreSQL (SQLite has one writer anyway).

    FOR NO KEY UPDATE, not FOR UPDATE: the event rows just inserted hold KEY SHARE locks on
    their members through the foreign key, and FOR UPDATE would deadlock against them.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            select(Member.id)
            .where(Member.id.in_(member_ids))
            .order_by(Member.id)
            .with_for_update(key_share=True)
        ).all()


def _award_owners(events: Sequence[Event]) -> set[int]:
    """The members paid for any of these events' facts (one query for the batch)."""
    facts = sorted({event.fact_key for event in events})
    owners: set[int] = set()
    for chunk in _chunks(facts):
        owners.update(
            db.session.scalars(
                select(LedgerEntry.member_id)
                .where(LedgerEntry.fact_key.in_(chunk), LedgerEntry.kind == EntryKind.ACCRUAL)
                .distinct()
            )
        )
    return owners


def _member_facts(member_ids: Sequence[int]) -> dict[int, MemberFacts]:
    facts = {}
    for chunk in _chunks(member_ids):
        for member_id, email, opt_in in db.session.execute(
            select(Member.id, Member.contact_email, Member.marketing_opt_in).where(
                Member.id.in_(chunk)
            )
        ):
            facts[member_id] = MemberFacts(has_contact_email=bool(email), marketing_opt_in=opt_in)
    return facts


def _load_state(
    events: Sequence[Event], paying: Sequence[Event], offers: Sequence[Offer], rules_policy
) -> tuple[LedgerState, dict[str, int]]:
    state = LedgerState()
    keys = sorted(
        {key for event in events for key in counter_keys(event, offers, rules_policy.timezone)}
    )
    for chunk in _chunks(keys):
        state.counters.update(
            db.session.execute(select(Counter.key, Counter.value).where(Counter.key.in_(chunk)))
            .tuples()
            .all()
        )
    facts = sorted({event.fact_key for event in events})
    award_ids: dict[str, int] = {}
    by_id: dict[int, Award] = {}
    for chunk in _chunks(facts):
        rows = db.session.execute(
            select(
                LedgerEntry.id,
                LedgerEntry.fact_key,
                LedgerEntry.idempotency_key,
                LedgerEntry.offer_id,
                LedgerEntry.action_id,
                LedgerEntry.amount,
                LedgerEntry.cap_counter,
                LedgerEntry.member_id,
            ).where(LedgerEntry.fact_key.in_(chunk), LedgerEntry.kind == EntryKind.ACCRUAL)
        )
        for entry_id, fact, key, offer_id, action_id, amount, cap, owner in rows:
            award = Award(key, offer_id, action_id, amount, cap, member_id=owner)
            state.awards.setdefault(fact, []).append(award)
            award_ids[key] = entry_id
            by_id[entry_id] = award
    award_entry_ids = list(by_id)
    for chunk in _chunks(award_entry_ids):
        for entry_id, kind, amount in db.session.execute(
            select(LedgerEntry.reverses_id, LedgerEntry.kind, LedgerEntry.amount).where(
                LedgerEntry.reverses_id.in_(chunk),
                LedgerEntry.kind.in_((EntryKind.REVERSAL, EntryKind.EXPIRY)),
            )
        ):
            if kind is EntryKind.REVERSAL:
                by_id[entry_id].reversed = True
            else:
                by_id[entry_id].expired += -amount
    # Points are available once their time has come, as of the latest event of the batch.
    now = max(utcnow(), max(event.occurred_at for event in events))
    payers = {event.member_id for event in paying}
    for event in paying:  # a reversal takes from whoever was paid
        payers.update(a.member_id for a in state.awards.get(event.fact_key, ()) if a.member_id)
    for chunk in _chunks(sorted(payers)):
        # Only available points can be taken: pending ones are not the member's yet.
        state.balances.update(
            db.session.execute(
                select(LedgerEntry.member_id, func.sum(LedgerEntry.amount))
                .where(
                    LedgerEntry.member_id.in_(chunk),
                    or_(LedgerEntry.available_at.is_(None), LedgerEntry.available_at <= now),
                )
                .group_by(LedgerEntry.member_id)
            )
            .tuples()
            .all()
        )
    return state, award_ids


def _paying_events(events: Sequence[Event], offers: Sequence[Offer], rules_policy) -> list:
    """The events a deduction may follow, clamped at zero: only their balances matter."""
    if rules_policy.allow_negative_balance:
        return []
    deducting = {
        offer.event
        for offer in offers
        if any(isinstance(a, DeductAction) for chain in offer.chains for a in chain.actions)
    }
    return [event for event in events if event.kind in deducting]


def _entry_row(effect: LedgerEffect, event_ids: dict[str, int], now: datetime) -> dict:
    return {
        "member_id": effect.member_id,
        "kind": EntryKind(effect.kind),
        "amount": effect.amount,
        "idempotency_key": effect.idempotency_key,
        "description": effect.description[:255],
        "event_id": event_ids[effect.event_key],
        "offer_id": effect.offer_id,
        "offer_version": effect.offer_version,
        "action_id": effect.action_id,
        "fact_key": effect.fact_key,
        "cap_counter": effect.cap_counter,
        "available_at": effect.available_at,
        "expires_at": effect.expires_at,
        "shortfall": effect.shortfall,
        "created_at": now,
    }


def _write_ledger(
    effects: Sequence[LedgerEffect], event_ids: dict[str, int], award_ids: dict[str, int]
) -> None:
    now = utcnow()
    first = [e for e in effects if e.reverses_key is None]
    reversals = [e for e in effects if e.reverses_key is not None]
    if first:
        inserted = db.session.execute(
            insert(LedgerEntry).returning(LedgerEntry.idempotency_key, LedgerEntry.id),
            [_entry_row(effect, event_ids, now) for effect in first],
            execution_options=SAME_SHAPE,
        )
        award_ids = {**award_ids, **dict(inserted.tuples().all())}
    if reversals:
        rows = []
        for effect in reversals:
            row = _entry_row(effect, event_ids, now)
            row["reverses_id"] = award_ids[effect.reverses_key]
            rows.append(row)
        db.session.execute(insert(LedgerEntry), rows, execution_options=SAME_SHAPE)


def _write_counters(values: dict[str, int]) -> None:
    if not values:
        return
    now = utcnow()
    statement = dialect_insert(Counter)
    statement = statement.on_conflict_do_update(
        index_elements=["key"],
        set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
    )
    db.session.execute(
        statement,
        [{"key": key, "value": value, "updated_at": now} for key, value in values.items()],
    )


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render_template_text(template: str, event: Event) -> str:
    """Fill {network}, {group}, {activity} and {object}; unknown names stay as written."""
    fields = _Fields(
        network=event.network,
        group=event.group_id or "",
        activity=event.activity.value if event.activity else "",
        object=event.object_id or "",
    )
    return string.Formatter().vformat(template, (), fields)


def _write_messages(messages, events_by_key: dict[str, Event]) -> None:
    if not messages:
        return
    now = utcnow()
    rows = []
    for message in messages:
        event = events_by_key[message.event_key]
        rows.append(
            {
                "idempotency_key": message.idempotency_key,
                "member_id": message.member_id,
                "channel": message.channel,
                "subject": message.subject,
                "body": render_template_text(message.template, event)[:2000],
                "offer_id": message.offer_id,
                "offer_version": message.offer_version,
                "status": "pending",
                "created_at": now,
            }
        )
    db.session.execute(
        dialect_insert(OutboxMessage).on_conflict_do_nothing(index_elements=["idempotency_key"]),
        rows,
    )


def dry_run(event: Event) -> Evaluation:
    """Evaluate an event against the current offers and the member's real state; write nothing."""
    offers = current_offers()
    rules_policy = policy()
    members = _member_facts([event.member_id])
    paying = _paying_events([event], offers, rules_policy)
    state, _ = _load_state([event], paying, offers, rules_policy)
    return evaluate(event, offers, members.get(event.member_id, MemberFacts()), state, rules_policy)
