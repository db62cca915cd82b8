"""The six seed offers pay exactly what they say, once, through the processing service."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db as app_db
from app.models import Counter, LedgerEntry, Member, OutboxMessage
from app.models import Event as EventRow
from app.models.types import utcnow
from app.rules import ActivityKind, Event, EventKind
from app.services.ledger import balance
from app.services.offers import install_seed_offers, save_offer
from app.services.processing import process_event, process_events

pytestmark = pytest.mark.database

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def ctx(app):
    with app.app_context():
        install_seed_offers()
        yield app
        app_db.session.remove()


@pytest.fixture
def member_id(ctx) -> int:
    now = utcnow()
    member = Member(
        first_name="M", terms_version="t", terms_accepted_at=now, data_processing_accepted_at=now
    )
    app_db.session.add(member)
    app_db.session.commit()
    return member.id


class Script:
    """Builds events for one member with unique keys and increasing times."""

    def __init__(self, member_id: int, start: datetime = T0) -> None:
        self.member_id = member_id
        self.now = start
        self.serial = 0
        self.prefix = f"test:{member_id}:{start.isoformat()}"

    def event(self, kind: EventKind, **fields) -> Event:
        self.serial += 1
        self.now += timedelta(minutes=1)
        return Event(
            key=f"{self.prefix}:{self.serial}",
            kind=kind,
            member_id=self.member_id,
            network="vk",
            occurred_at=fields.pop("at", self.now),
            subject=fields.pop("subject", f"vk-user-{self.member_id}"),
            **fields,
        )

    def link(self):
        return self.event(EventKind.PROFILE_LINKED)

    def join(self, group="club"):
        return self.event(EventKind.JOINED_GROUP, group_id=group)

    def leave(self, group="club"):
        return self.event(EventKind.LEFT_GROUP, group_id=group)

    def act(self, activity: str, post: str, item: str | None = None, **kw):
        return self.event(
            EventKind.ACTIVITY,
            group_id="club",
            object_id=post,
            activity=ActivityKind(activity),
            activity_id=item,
            **kw,
        )

    def undo(self, activity: str, post: str, item: str | None = None, **kw):
        return self.event(
            EventKind.ACTIVITY_DELETED,
            group_id="club",
            object_id=post,
            activity=ActivityKind(activity),
            activity_id=item,
            **kw,
        )


def run(*events: Event) -> None:
    for event in events:
        process_event(event)


def amounts(member_id: int) -> list[int]:
    return list(
        app_db.session.scalars(
            select(LedgerEntry.amount)
            .where(LedgerEntry.member_id == member_id)
            .order_by(LedgerEntry.id)
        )
    )


def test_linking_a_profile_pays_50_and_queues_a_message(member_id):
    script = Script(member_id)
    run(script.link())
    assert amounts(member_id) == [50]
    message = app_db.session.scalar(select(OutboxMessage))
    assert message.channel == "email"
    assert message.body == "You earned 50 points for linking your vk profile."
    entry = app_db.session.scalar(select(LedgerEntry))
    assert (entry.offer_id, entry.offer_version, entry.action_id) == ("link-bonus", 1, "bonus")


def test_joining_pays_and_leaving_takes_it_back(member_id):
    s = Script(member_id)
    run(s.join(), s.leave())
    assert amounts(member_id) == [20, -20]
    reversal = app_db.session.scalars(select(LedgerEntry).order_by(LedgerEntry.id)).all()[1]
    assert reversal.kind.value == "reversal" and reversal.reverses_id is not None
    # Join again after leaving: earns again; leave again: taken back again. Net never above 20.
    run(s.join(), s.leave(), s.join())
    assert amounts(member_id) == [20, -20, 20, -20, 20]
    assert balance(member_id) == 20


def test_reposts_and_comments_pay_and_a_deleted_repost_is_taken_back(member_id):
    s = Script(member_id)
    run(s.act("repost", "p1"), s.act("comment", "p1", "c1"), s.act("comment", "p1", "c2"))
    assert amounts(member_id) == [10, 3, 3]
    run(s.undo("repost", "p1"), s.undo("comment", "p1", "c1"))
    assert amounts(member_id) == [10, 3, 3, -10], "a deleted comment has no deduction offer"
    assert balance(member_id) == 6


def test_likes_five_then_one_at_most_fifteen_a_month(member_id):
    s = Script(member_id)
    run(*(s.act("like", f"p{i}") for i in range(1, 11)))
    assert amounts(member_id) == [5] + [1] * 9
    assert balance(member_id) == 14
    # At 14 the next like pays what is left under the cap: 1; after that nothing.
    run(s.act("like", "p11"), s.act("like", "p12"))
    assert balance(member_id) == 15
    assert len(amounts(member_id)) == 11
    # A new calendar month (in the programme's time zone) starts the count again.
    run(s.act("like", "p13", at=datetime(2026, 12, 31, 21, 30, tzinfo=UTC)))  # 00:30 Moscow
    assert amounts(member_id)[-1] == 5


def test_partial_award_when_the_five_point_chain_meets_the_cap(member_id):
    """The 5-point chain with only 1 point of room left pays 1, not 5 and not 0."""
    offer = {
        "id": "shared-cap",
        "title": "Shared cap",
        "state": "active",
        "event": "activity",
        "priority": 10,
        "counters": [{"name": "points", "period": "month"}],
        "chains": [
            {
                "filters": [{"type": "activity", "kinds": ["comment"]}],
                "actions": [
                    {
                        "type": "accrue",
                        "id": "c",
                        "amount": 7,
                        "cap": {"counter": "points", "limit": 15},
                    }
                ],
            },
            {
                "filters": [{"type": "activity", "kinds": ["repost"]}],
                "actions": [
                    {
                        "type": "accrue",
                        "id": "r",
                        "amount": 7,
                        "cap": {"counter": "points", "limit": 15},
                    }
                ],
            },
            {
                "filters": [{"type": "activity", "kinds": ["like"]}],
                "actions": [
                    {
                        "type": "accrue",
                        "id": "l",
                        "amount": 5,
                        "cap": {"counter": "points", "limit": 15},
                    }
                ],
            },
        ],
    }
    save_offer(offer)
    s = Script(member_id)
    run(s.act("comment", "p1", "c1"), s.act("repost", "p1"))  # 14 of 15 used
    entries_before = len(amounts(member_id))
    run(s.act("like", "p2"))
    shared = app_db.session.scalars(
        select(LedgerEntry.amount)
        .where(LedgerEntry.offer_id == "shared-cap")
        .order_by(LedgerEntry.id)
    ).all()
    assert shared == [7, 7, 1]
    assert len(amounts(member_id)) > entries_before


def test_unlike_and_like_again_never_earns_twice(member_id):
    s = Script(member_id)
    run(s.act("like", "p1"), s.undo("like", "p1"), s.act("like", "p1"))
    assert amounts(member_id) == [5]


def test_a_reversal_does_not_free_cap_room_unless_configured(member_id):
    take_back = {
        "id": "unlike-back",
        "title": "Unlike takes the like back",
        "state": "active",
        "event": "activity_deleted",
        "chains": [
            {
                "filters": [{"type": "activity", "kinds": ["like"]}],
                "actions": [{"type": "deduct", "id": "back", "reverse": True}],
            }
        ],
    }
    save_offer(take_back)
    s = Script(member_id)
    run(s.act("like", "p1"), s.undo("like", "p1"), s.act("like", "p2"))
    assert amounts(member_id) == [5, -5, 1], "the first-like room stays used"
    likes = {**_seed("likes-monthly"), "reversal_frees_cap": True}
    save_offer(likes)  # version 2
    s2 = Script(member_id, start=datetime(2027, 1, 10, tzinfo=UTC))
    run(s2.act("like", "q1"), s2.undo("like", "q1"), s2.act("like", "q2"))
    january = app_db.session.scalars(
        select(LedgerEntry).where(LedgerEntry.created_at.is_not(None)).order_by(LedgerEntry.id)
    ).all()[3:]
    assert [e.amount for e in january] == [5, -5, 5]
    assert {e.offer_version for e in january if e.offer_id == "likes-monthly"} == {2}


def test_a_deletion_reverses_only_what_that_activity_earned(member_id):
    s = Script(member_id)
    run(
        s.act("repost", "p1"), s.act("repost", "p2"), s.undo("repost", "p1"), s.undo("repost", "p1")
    )
    assert amounts(member_id) == [10, 10, -10]


def test_replaying_events_changes_nothing(member_id):
    s = Script(member_id)
    events = [
        s.link(),
        s.join(),
        s.act("like", "p1"),
        s.act("repost", "p1"),
        s.leave(),
        s.undo("repost", "p1"),
    ]
    run(*events)
    before = (amounts(member_id), _counters(), _count(OutboxMessage))
    run(*events)
    result = process_events(events)
    app_db.session.commit()
    assert result.recorded == 0
    assert (amounts(member_id), _counters(), _count(OutboxMessage)) == before
    assert _count(EventRow) == len(events)


def test_deduction_stops_at_zero_and_records_the_shortfall(member_id, ctx):
    s = Script(member_id)
    save_offer(
        {
            "id": "fine",
            "title": "Fine for leaving",
            "state": "active",
            "event": "left_group",
            "chains": [{"actions": [{"type": "deduct", "id": "fine", "amount": 30}]}],
        }
    )
    run(s.join(), s.leave())
    entries = app_db.session.scalars(select(LedgerEntry).order_by(LedgerEntry.id)).all()
    by_offer = {e.offer_id: e for e in entries}
    # Priority ties go by id: "fine" runs before "leave-group" and takes the 20 there is.
    assert (by_offer["fine"].amount, by_offer["fine"].shortfall) == (-20, 10)
    assert (by_offer["leave-group"].amount, by_offer["leave-group"].shortfall) == (0, 20)
    assert balance(member_id) == 0


def test_negative_balance_when_the_programme_allows_it(member_id, ctx):
    ctx.config["ALLOW_NEGATIVE_BALANCE"] = True
    save_offer(
        {
            "id": "fine",
            "title": "Fine",
            "state": "active",
            "event": "left_group",
            "chains": [{"actions": [{"type": "deduct", "id": "fine", "amount": 30}]}],
        }
    )
    s = Script(member_id)
    run(s.join(), s.leave())
    assert balance(member_id) == -30


def test_offers_outside_their_window_or_not_active_do_not_pay(member_id):
    for data in (
        {"id": "paused", "title": "P", "state": "paused", "event": "joined_group"},
        {
            "id": "later",
            "title": "L",
            "state": "active",
            "event": "joined_group",
            "valid_from": "2027-01-01T00:00:00+03:00",
        },
    ):
        save_offer(
            {**data, "chains": [{"actions": [{"type": "accrue", "id": "a", "amount": 100}]}]}
        )
    s = Script(member_id)
    run(s.join())
    assert amounts(member_id) == [20]


def test_two_processes_processing_the_same_event_make_one_effect(app, ctx, member_id):
    s = Script(member_id)
    event = s.link()
    results = _in_threads(app, [[event]] * 4)
    assert sorted(r.recorded for r in results) == [0, 0, 0, 1]
    assert amounts(member_id) == [50]


def test_concurrent_likes_never_pass_the_monthly_cap(app, ctx, member_id):
    s = Script(member_id)
    likes = [s.act("like", f"p{i}") for i in range(24)]
    _in_threads(app, [likes[i::4] for i in range(4)])
    assert balance(member_id) == 15
    assert _count(EventRow) == 24


def _in_threads(app, batches):
    barrier = threading.Barrier(len(batches))
    results, errors = [], []

    def work(batch):
        with app.app_context():
            try:
                barrier.wait()
                for event in batch:
                    results.append(process_event(event))
            except Exception as exc:  # surfaced below with the thread's error
                errors.append(exc)
            finally:
                app_db.session.remove()

    threads = [threading.Thread(target=work, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    app_db.session.expire_all()
    return results


def _seed(offer_id: str) -> dict:
    from app.rules.seed_offers import SEED_OFFERS

    return next(o for o in SEED_OFFERS if o["id"] == offer_id)


def _counters() -> dict[str, int]:
    return dict(app_db.session.execute(select(Counter.key, Counter.value)).tuples().all())


def _count(model) -> int:
    return app_db.session.scalar(select(func.count()).select_from(model))


def test_a_profile_moved_to_another_account_brings_its_facts_along(ctx, member_id):
    """Anna's VK profile earned its linking and joining bonuses; moved to Boris's account it
    earns neither again, and leaving the group takes the join back from Anna, who was paid."""
    now = utcnow()
    boris = Member(
        first_name="B", terms_version="t", terms_accepted_at=now, data_processing_accepted_at=now
    )
    app_db.session.add(boris)
    app_db.session.commit()
    anna_says, boris_says = Script(member_id), Script(boris.id, start=T0 + timedelta(hours=1))
    profile = {"subject": "vk-777"}
    process_event(anna_says.event(EventKind.PROFILE_LINKED, **profile))
    process_event(anna_says.event(EventKind.JOINED_GROUP, group_id="1", **profile))
    assert balance(member_id) == 50 + 20

    process_event(boris_says.event(EventKind.PROFILE_LINKED, **profile))
    process_event(boris_says.event(EventKind.JOINED_GROUP, group_id="1", **profile))
    assert balance(boris.id) == 0, "the profile's bonuses were paid already"

    process_event(boris_says.event(EventKind.LEFT_GROUP, group_id="1", **profile))
    assert balance(member_id) == 50, "the join is taken back from whoever was paid for it"
    assert balance(boris.id) == 0
    process_event(boris_says.event(EventKind.JOINED_GROUP, group_id="1", **profile))
    assert (balance(member_id), balance(boris.id)) == (50, 20), "joining again earns anew"
