"""Evaluate one event against the active offers: plain data in, effects out.

No Flask and no database here. The caller loads a `LedgerState` (counter values, what each fact
has earned, balances) for the events it processes; `evaluate` updates that state in place, so
the next event of the same batch sees this one's effects, and returns the effects to write.

A fact is what an award is about: a profile, a membership of a group, one activity on one
object. A fact earns at most once from each offer while that award stands; only after
it has been taken back (unlike, then like again) can it earn again, and by default the
taken-back points keep their cap room used, so cycling never earns more than doing it once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.rules.model import (
    AccrueAction,
    ActivityFilter,
    ActivityKind,
    CounterAction,
    CounterFilter,
    CounterSpec,
    DeductAction,
    EventKind,
    GroupFilter,
    MemberFilter,
    MessageAction,
    NetworkFilter,
    ObjectsFilter,
    Offer,
    OfferState,
    Period,
    ScheduleFilter,
)

KEY_LIMIT = 255


def bounded_key(key: str) -> str:
    """Keys are stored in 255 characters: a longer one keeps its start and a digest of all."""
    if len(key) <= KEY_LIMIT:
        return key
    return f"{key[:190]}#{hashlib.sha256(key.encode()).hexdigest()}"


@dataclass(frozen=True, slots=True)
class Event:
    """Something a member did. `key` is its natural idempotency key."""

    key: str
    kind: EventKind
    member_id: int
    network: str
    occurred_at: datetime
    subject: str = ""
    group_id: str | None = None
    object_id: str | None = None
    activity: ActivityKind | None = None
    activity_id: str | None = None  # a comment's own id; likes and reposts have none

    @property
    def fact_key(self) -> str:
        """What happened, keyed by the social profile that did it (not by the member): a
        profile moved to another account brings its facts along and earns nothing twice.
        Events without a profile (none come from the networks) fall back to the member."""
        who = (
            f"s:{self.network}:{self.subject}"
            if self.subject
            else f"m{self.member_id}:{self.network}"
        )
        if self.kind in (EventKind.PROFILE_LINKED, EventKind.PROFILE_UNLINKED):
            return bounded_key(f"{who}:profile:{self.subject}")
        if self.kind in (EventKind.JOINED_GROUP, EventKind.LEFT_GROUP):
            return bounded_key(f"{who}:group:{self.group_id}")
        return bounded_key(
            f"{who}:activity:{self.group_id}:{self.object_id}:{self.activity}:"
            f"{self.activity_id or ''}"
        )


@dataclass(frozen=True, slots=True)
class MemberFacts:
    has_contact_email: bool = False
    marketing_opt_in: bool = False


@dataclass(slots=True)
class Award:
    """An accrual a fact earned; `reversed` once it has been taken back."""

    entry_key: str
    offer_id: str
    action_id: str
    amount: int
    cap_counter: str | None = None
    reversed: bool = False
    event_key: str = ""  # set for awards made in this batch; loaded ones are from earlier events
    expired: int = 0  # points of it the expiry job has already burned
    member_id: int | None = None  # who was paid: a reversal takes the points back from them


@dataclass
class LedgerState:
    counters: dict[str, int] = field(default_factory=dict)
    awards: dict[str, list[Award]] = field(default_factory=dict)  # by fact key
    balances: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Policy:
    timezone: ZoneInfo
    allow_negative_balance: bool = False


@dataclass(frozen=True, slots=True)
class LedgerEffect:
    kind: str  # accrual, deduction, reversal
    member_id: int
    amount: int  # signed: what the balance changes by
    idempotency_key: str
    event_key: str
    offer_id: str
    offer_version: int
    action_id: str
    description: str
    fact_key: str | None = None
    available_at: datetime | None = None
    expires_at: datetime | None = None
    cap_counter: str | None = None
    reverses_key: str | None = None
    shortfall: int = 0  # points a clamped deduction could not take


@dataclass(frozen=True, slots=True)
class MessageEffect:
    member_id: int
    channel: str
    template: str
    subject: str
    idempotency_key: str
    event_key: str
    offer_id: str
    offer_version: int


@dataclass
class Evaluation:
    ledger: list[LedgerEffect] = field(default_factory=list)
    messages: list[MessageEffect] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)  # final values of changed counters
    trace: list[str] = field(default_factory=list)  # why each offer paid or did not


def applicable_offers(event: Event, offers: Iterable[Offer]) -> list[Offer]:
    """Active offers for this event kind, valid when it happened, highest priority first."""
    chosen = [
        offer
        for offer in offers
        if offer.state is OfferState.ACTIVE
        and offer.event is event.kind
        and (offer.valid_from is None or offer.valid_from <= event.occurred_at)
        and (offer.valid_until is None or event.occurred_at < offer.valid_until)
    ]
    return sorted(chosen, key=lambda offer: (-offer.priority, offer.id))


def period_key(period: Period, moment: datetime, timezone: ZoneInfo) -> str:
    """Calendar periods in the programme's time zone."""
    local = moment.astimezone(timezone)
    if period is Period.DAY:
        return local.strftime("%Y-%m-%d")
    if period is Period.WEEK:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if period is Period.MONTH:
        return local.strftime("%Y-%m")
    if period is Period.YEAR:
        return local.strftime("%Y")
    return "all"


def counter_key(offer: Offer, spec: CounterSpec, event: Event, timezone: ZoneInfo) -> str:
    values = {
        "network": event.network,
        "group": event.group_id,
        "object": event.object_id,
        "activity": event.activity,
    }
    dims = "".join(f":{dim}={values[dim]}" for dim in spec.key)
    when = period_key(spec.period, event.occurred_at, timezone)
    return bounded_key(f"{offer.id}:{spec.name}:m{event.member_id}{dims}:{when}")


def counter_keys(event: Event, offers: Sequence[Offer], timezone: ZoneInfo) -> set[str]:
    """Every counter the evaluation of this event may read or write."""
    return {
        counter_key(offer, spec, event, timezone)
        for offer in applicable_offers(event, offers)
        for spec in offer.counters
    }


def evaluate(
    event: Event,
    offers: Sequence[Offer],
    member: MemberFacts,
    state: LedgerState,
    policy: Policy,
) -> Evaluation:
    result = Evaluation()
    by_id = {offer.id: offer for offer in offers}
    for offer in applicable_offers(event, offers):
        for index, chain in enumerate(offer.chains):
            failed = next(
                (f for f in chain.filters if not _passes(f, offer, event, member, state, policy)),
                None,
            )
            if failed is not None:
                result.trace.append(f"{offer.id} chain {index}: {failed.type} filter failed")
                continue
            result.trace.append(f"{offer.id} chain {index}: matched")
            for action in chain.actions:
                _run(action, offer, event, state, policy, result, by_id)
            break
    return result


def _passes(flt, offer: Offer, event: Event, member: MemberFacts, state, policy) -> bool:
    if isinstance(flt, NetworkFilter):
        return event.network in flt.networks
    if isinstance(flt, GroupFilter):
        return event.group_id in flt.groups
    if isinstance(flt, ActivityFilter):
        return event.activity in flt.kinds
    if isinstance(flt, ObjectsFilter):
        return event.object_id in flt.objects
    if isinstance(flt, ScheduleFilter):
        local = event.occurred_at.astimezone(policy.timezone)
        return local.weekday() in flt.weekdays and flt.start_hour <= local.hour < flt.end_hour
    if isinstance(flt, MemberFilter):
        return getattr(member, flt.attribute) is flt.equals
    if isinstance(flt, CounterFilter):
        key = counter_key(offer, offer.counter_spec(flt.counter), event, policy.timezone)
        return _compare(state.counters.get(key, 0), flt)
    raise TypeError(f"unknown filter {flt!r}")


def _compare(value: int, flt: CounterFilter) -> bool:
    match flt.op:
        case "eq":
            return value == flt.value
        case "ne":
            return value != flt.value
        case "lt":
            return value < flt.value
        case "le":
            return value <= flt.value
        case "gt":
            return value > flt.value
        case "ge":
            return value >= flt.value
        case "between":
            return flt.value <= value <= (flt.upper if flt.upper is not None else value)
        case "every_nth":
            # The counter holds the earlier occurrences: this event is the (value + 1)-th.
            return (value + 1) % flt.value == 0
    return False


def _run(action, offer: Offer, event: Event, state, policy, result, offers_by_id) -> None:
    key = bounded_key(f"{event.key}|{offer.id}@{offer.version}|{action.id}")
    if isinstance(action, AccrueAction):
        _accrue(action, offer, event, key, state, policy, result)
    elif isinstance(action, DeductAction):
        if action.reverse:
            _reverse(action, offer, event, key, state, policy, result, offers_by_id)
        else:
            _deduct(action, offer, event, key, state, policy, result)
    elif isinstance(action, MessageAction):
        result.messages.append(
            MessageEffect(
                member_id=event.member_id,
                channel=action.channel,
                template=action.template,
                subject=action.subject,
                idempotency_key=key,
                event_key=event.key,
                offer_id=offer.id,
                offer_version=offer.version,
            )
        )
    elif isinstance(action, CounterAction):
        counter = counter_key(offer, offer.counter_spec(action.counter), event, policy.timezone)
        current = state.counters.get(counter, 0)
        new = {
            "increase": current + action.value,
            "decrease": current - action.value,
            "set": action.value,
        }[action.operation]
        _set_counter(state, result, counter, new)


def _set_counter(state: LedgerState, result: Evaluation, key: str, value: int) -> None:
    state.counters[key] = value
    result.counters[key] = value


def _accrue(action: AccrueAction, offer, event, key, state, policy, result) -> None:
    fact = event.fact_key
    awards = state.awards.setdefault(fact, [])
    # One standing award per fact and offer: re-doing it through another chain pays nothing.
    if any(a.offer_id == offer.id and not a.reversed and a.event_key != event.key for a in awards):
        result.trace.append(f"{offer.id}/{action.id}: this {fact} has already earned")
        return
    amount = action.amount
    cap_counter = None
    if action.cap is not None:
        spec = offer.counter_spec(action.cap.counter)
        cap_counter = counter_key(offer, spec, event, policy.timezone)
        used = state.counters.get(cap_counter, 0)
        amount = min(amount, max(0, action.cap.limit - used))
        if amount == 0:
            result.trace.append(f"{offer.id}/{action.id}: cap of {action.cap.limit} reached")
            return
        _set_counter(state, result, cap_counter, used + amount)
    available_at = event.occurred_at + timedelta(minutes=action.activation_delay_minutes)
    expires_at = (
        available_at + timedelta(days=action.expires_after_days)
        if action.expires_after_days
        else None
    )
    awards.append(
        Award(
            key,
            offer.id,
            action.id,
            amount,
            cap_counter,
            event_key=event.key,
            member_id=event.member_id,
        )
    )
    if available_at <= event.occurred_at:  # pending points cannot be spent yet
        state.balances[event.member_id] = state.balances.get(event.member_id, 0) + amount
    result.ledger.append(
        LedgerEffect(
            kind="accrual",
            member_id=event.member_id,
            amount=amount,
            idempotency_key=key,
            event_key=event.key,
            offer_id=offer.id,
            offer_version=offer.version,
            action_id=action.id,
            description=action.description or offer.title,
            fact_key=fact,
            available_at=available_at,
            expires_at=expires_at,
            cap_counter=cap_counter,
        )
    )


def _take(amount: int, member_id: int, state: LedgerState, policy: Policy) -> tuple[int, int]:
    """How much can be taken now, and the shortfall the policy leaves unpaid."""
    balance = state.balances.get(member_id, 0)
    taken = amount if policy.allow_negative_balance else min(amount, max(0, balance))
    state.balances[member_id] = balance - taken
    return taken, amount - taken


def _deduct(action: DeductAction, offer, event, key, state, policy, result) -> None:
    taken, shortfall = _take(action.amount, event.member_id, state, policy)
    result.ledger.append(
        LedgerEffect(
            kind="deduction",
            member_id=event.member_id,
            amount=-taken,
            idempotency_key=key,
            event_key=event.key,
            offer_id=offer.id,
            offer_version=offer.version,
            action_id=action.id,
            description=action.description or offer.title,
            fact_key=event.fact_key,
            shortfall=shortfall,
        )
    )


def _reverse(action: DeductAction, offer, event, key, state, policy, result, offers_by_id):
    """Take back exactly what this fact earned (and has not already given back)."""
    fact = event.fact_key
    for award in state.awards.get(fact, []):
        if award.reversed or (action.from_offer and award.offer_id != action.from_offer):
            continue
        award.reversed = True
        left = award.amount - award.expired  # what expired is gone already
        if left <= 0:
            continue
        # From whoever was paid: the profile may belong to another account by now.
        owner = award.member_id if award.member_id is not None else event.member_id
        taken, shortfall = _take(left, owner, state, policy)
        paid_by = offers_by_id.get(award.offer_id)
        if award.cap_counter and paid_by is not None and paid_by.reversal_frees_cap:
            used = state.counters.get(award.cap_counter, 0)
            _set_counter(state, result, award.cap_counter, max(0, used - award.amount))
        result.ledger.append(
            LedgerEffect(
                kind="reversal",
                member_id=owner,
                amount=-taken,
                idempotency_key=bounded_key(f"{key}|{award.entry_key}"),
                event_key=event.key,
                offer_id=offer.id,
                offer_version=offer.version,
                action_id=action.id,
                description=action.description or f"Reversal: {offer.title}",
                fact_key=fact,
                reverses_key=award.entry_key,
                shortfall=shortfall,
            )
        )
