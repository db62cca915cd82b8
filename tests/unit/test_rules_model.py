"""Offer data is validated: invalid offers are refused naming the field, valid ones round-trip."""

from __future__ import annotations

import copy

import pytest

from app.rules import Offer, OfferInvalid, parse_offer
from app.rules.seed_offers import SEED_OFFERS

ACCRUE = {"type": "accrue", "id": "pay", "amount": 5}


def offer(**fields) -> dict:
    """A valid activity offer with the given fields replaced."""
    return {
        "id": "sample",
        "title": "Sample",
        "state": "active",
        "event": "activity",
        "chains": [{"actions": [ACCRUE]}],
        **fields,
    }


def chain(*actions, filters=()) -> list[dict]:
    return [{"filters": list(filters), "actions": list(actions)}]


INVALID = {
    "negative amount": (
        offer(chains=chain({**ACCRUE, "amount": -5})),
        ["chains.0.actions.0", "amount", "greater than 0"],
    ),
    "zero amount": (offer(chains=chain({**ACCRUE, "amount": 0})), ["amount"]),
    "unknown event": (offer(event="posted"), ["event", "activity_deleted"]),
    "counter filter on an undeclared counter": (
        offer(
            chains=chain(
                ACCRUE, filters=[{"type": "counter", "counter": "nope", "op": "eq", "value": 0}]
            )
        ),
        ["chains.0", "undeclared counter 'nope'"],
    ),
    "cap on an undeclared counter": (
        offer(chains=chain({**ACCRUE, "cap": {"counter": "nope", "limit": 10}})),
        ["chains.0", "'pay'", "undeclared counter 'nope'"],
    ),
    "activity filter on a joined_group offer": (
        offer(
            event="joined_group",
            chains=chain(ACCRUE, filters=[{"type": "activity", "kinds": ["like"]}]),
        ),
        ["chains.0", "activity filter", "activity event"],
    ),
    "objects filter on a profile offer": (
        offer(
            event="profile_linked",
            chains=chain(ACCRUE, filters=[{"type": "objects", "objects": ["p1"]}]),
        ),
        ["chains.0", "objects filter"],
    ),
    "group filter on a profile offer": (
        offer(
            event="profile_linked",
            chains=chain(ACCRUE, filters=[{"type": "group", "groups": ["g"]}]),
        ),
        ["chains.0", "group filter"],
    ),
    "valid_until before valid_from": (
        offer(valid_from="2026-12-01T00:00:00+03:00", valid_until="2026-11-01T00:00:00+03:00"),
        ["valid_until", "valid_from"],
    ),
    "valid_until equal to valid_from": (
        offer(valid_from="2026-12-01T00:00:00+03:00", valid_until="2026-11-30T21:00:00+00:00"),
        ["valid_until"],
    ),
    "duplicate action ids": (
        offer(chains=chain(ACCRUE, {**ACCRUE, "amount": 1})),
        ["action ids", "unique"],
    ),
    "duplicate action ids across chains": (
        offer(chains=[*chain(ACCRUE), *chain(ACCRUE)]),
        ["action ids", "unique"],
    ),
    "deduct with both amount and reverse": (
        offer(chains=chain({"type": "deduct", "id": "back", "amount": 5, "reverse": True})),
        ["chains.0.actions.0", "amount", "reverse"],
    ),
    "deduct with neither amount nor reverse": (
        offer(chains=chain({"type": "deduct", "id": "back"})),
        ["chains.0.actions.0", "amount", "reverse"],
    ),
    "from_offer without reverse": (
        offer(chains=chain({"type": "deduct", "id": "back", "amount": 5, "from_offer": "x"})),
        ["from_offer"],
    ),
    "naive valid_from": (offer(valid_from="2026-12-01T00:00:00"), ["valid_from", "time zone"]),
    "naive valid_until": (offer(valid_until="2026-12-01T00:00:00"), ["valid_until", "time zone"]),
    "unknown filter type": (
        offer(chains=chain(ACCRUE, filters=[{"type": "weather"}])),
        ["chains.0.filters.0", "'weather'", "type"],
    ),
    "unknown action type": (
        offer(chains=chain({"type": "teleport", "id": "x"})),
        ["chains.0.actions.0", "'teleport'"],
    ),
    "no chains": (offer(chains=[]), ["chains", "at least 1"]),
    "a chain without actions": (offer(chains=chain()), ["chains.0.actions"]),
    "unknown top-level field": (offer(colour="red"), ["colour"]),
    "bad offer id": (offer(id="Not A Slug"), ["id"]),
    "empty title": (offer(title=""), ["title"]),
    "unknown state": (offer(state="live"), ["state"]),
    "between without an upper bound": (
        offer(
            counters=[{"name": "n"}],
            chains=chain(
                ACCRUE, filters=[{"type": "counter", "counter": "n", "op": "between", "value": 2}]
            ),
        ),
        ["chains.0.filters.0", "upper"],
    ),
    "every_nth of zero": (
        offer(
            counters=[{"name": "n"}],
            chains=chain(
                ACCRUE, filters=[{"type": "counter", "counter": "n", "op": "every_nth", "value": 0}]
            ),
        ),
        ["chains.0.filters.0", "every_nth"],
    ),
    "duplicate counter names": (
        offer(counters=[{"name": "n"}, {"name": "n", "period": "month"}]),
        ["counter names", "unique"],
    ),
    "schedule ending before it starts": (
        offer(
            chains=chain(ACCRUE, filters=[{"type": "schedule", "start_hour": 18, "end_hour": 9}])
        ),
        ["chains.0.filters.0", "end_hour"],
    ),
    "weekday out of range": (
        offer(chains=chain(ACCRUE, filters=[{"type": "schedule", "weekdays": [7]}])),
        ["chains.0.filters.0", "weekdays"],
    ),
    "zero cap limit": (
        offer(
            counters=[{"name": "n"}], chains=chain({**ACCRUE, "cap": {"counter": "n", "limit": 0}})
        ),
        ["cap", "limit"],
    ),
    "unknown message channel": (
        offer(chains=chain({"type": "message", "id": "m", "channel": "fax", "template": "hi"})),
        ["chains.0.actions.0", "channel"],
    ),
}


@pytest.mark.parametrize(("data", "named"), INVALID.values(), ids=INVALID.keys())
def test_an_invalid_offer_is_refused_naming_the_field(data, named):
    with pytest.raises(OfferInvalid) as refused:
        parse_offer(data)
    message = str(refused.value)
    for part in named:
        assert part in message, f"{part!r} not in {message!r}"
    assert "\n" not in message and "pydantic" not in message.lower()


def test_a_refusal_lists_every_faulty_field():
    data = offer(event="posted", chains=chain({**ACCRUE, "amount": -1}))
    with pytest.raises(OfferInvalid) as refused:
        parse_offer(data)
    message = str(refused.value)
    assert "event:" in message and "amount" in message


def test_an_invalid_offer_is_a_value_error():
    assert issubclass(OfferInvalid, ValueError)


RICH = offer(
    id="rich-offer",
    version=3,
    description="Every kind of filter and action",
    priority=5,
    valid_from="2026-12-01T00:00:00+03:00",
    valid_until="2027-01-01T00:00:00+03:00",
    reversal_frees_cap=True,
    counters=[
        {"name": "points", "period": "month"},
        {"name": "seen", "key": ["network", "object"], "period": "week"},
    ],
    chains=[
        {
            "filters": [
                {"type": "network", "networks": ["vk", "ok"]},
                {"type": "group", "groups": ["club"]},
                {"type": "activity", "kinds": ["like", "comment"]},
                {"type": "objects", "objects": ["p1", "p2"]},
                {"type": "counter", "counter": "seen", "op": "between", "value": 1, "upper": 3},
                {"type": "schedule", "weekdays": [0, 4], "start_hour": 9, "end_hour": 18},
                {"type": "member", "attribute": "marketing_opt_in", "equals": False},
            ],
            "actions": [
                {
                    "type": "accrue",
                    "id": "pay",
                    "amount": 7,
                    "activation_delay_minutes": 30,
                    "expires_after_days": 90,
                    "cap": {"counter": "points", "limit": 20},
                },
                {"type": "counter", "id": "count", "counter": "seen", "operation": "increase"},
                {"type": "message", "id": "tell", "channel": "push", "template": "{network}!"},
            ],
        },
        {
            "filters": [{"type": "counter", "counter": "seen", "op": "every_nth", "value": 3}],
            "actions": [
                {"type": "deduct", "id": "fine", "amount": 2, "description": "A fine"},
                {"type": "deduct", "id": "back", "reverse": True, "from_offer": "other"},
            ],
        },
    ],
)


@pytest.mark.parametrize(
    "data", [*SEED_OFFERS, RICH], ids=[*(o["id"] for o in SEED_OFFERS), "rich-offer"]
)
def test_a_valid_offer_round_trips_through_json(data):
    original = copy.deepcopy(data)
    parsed = parse_offer(data)
    assert data == original, "parsing leaves the input alone"
    dumped = parsed.model_dump(mode="json")
    again = parse_offer(dumped)
    assert again == parsed
    assert again.model_dump(mode="json") == dumped
    assert isinstance(again, Offer)


def test_round_tripped_times_keep_their_instant():
    parsed = parse_offer(RICH)
    again = parse_offer(parsed.model_dump(mode="json"))
    assert again.valid_from == parsed.valid_from
    assert again.valid_from.utcoffset() is not None
    assert again.valid_from.isoformat() == "2026-12-01T00:00:00+03:00"
