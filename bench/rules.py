"""Benchmark: events per second through `process_events`, against a raw ledger insert.

    python bench/rules.py [--events 100000] [--members 1000] [--batch 500]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/test] [--skip-postgres]
        [--skip-sqlite] [--seed 20261201] [--profile N]

For each database (SQLite in a fresh temporary file, then PostgreSQL with its public schema
dropped and recreated): migrate, install the seed offers, bulk-insert the members, generate the
events deterministically, then time `process_events` in batches, each batch committed (as the
collector uses it). Right after, on the same database, the baseline: as many raw ledger rows as
events, inserted with Core `insert(LedgerEntry)` executemany in the same batches, each committed.
ratio = events_per_s / raw_rows_per_s. The last line printed is the machine-readable summary.
"""

from __future__ import annotations

import argparse
import bisect
import cProfile
import io
import itertools
import os
import pstats
import random
import sys
import tempfile
import time
from collections import Counter as Tally
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Counter, EntryKind, LedgerEntry, Member, OutboxMessage  # noqa: E402
from app.models import Event as EventRow  # noqa: E402
from app.rules import ActivityKind, Event, EventKind, LedgerState, MemberFacts, evaluate  # noqa: E402
from app.services.ledger import balance  # noqa: E402
from app.services.offers import install_seed_offers  # noqa: E402
from app.services.processing import current_offers, policy, process_events  # noqa: E402
from config import normalise_database_url  # noqa: E402

MIGRATIONS = ROOT / "migrations"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

START = datetime(2026, 9, 1, 6, 0, tzinfo=UTC)
SPAN = timedelta(days=91)  # about three months: the monthly like cap resets twice or three times

# The event mix, in percent.
MIX = (
    ("like", 60),
    ("comment", 15),
    ("repost", 5),
    ("delete", 8),
    ("join", 5),
    ("leave", 3),
    ("link", 4),
)
NETWORKS = ("vk", "ok", "telegram")
GROUPS = (("vk", "loyalink-club"), ("vk", "loyalink-news"), ("ok", "loyalink-ok"))
POST_EVERY = timedelta(hours=6)  # each group publishes a post this often


# --- events ----------------------------------------------------------------------------------


@dataclass
class World:
    """What members have done so far, so that deletions, leaves and links are plausible."""

    live_activities: list[tuple] = field(default_factory=list)  # can be deleted
    live_likes: set[tuple] = field(default_factory=set)
    memberships: list[tuple[int, int]] = field(default_factory=list)  # (member, group index)
    joined: set[tuple[int, int]] = field(default_factory=set)
    linked: set[tuple[int, str]] = field(default_factory=set)


def generate_events(seed: int, member_ids: list[int], count: int) -> tuple[list[Event], Tally]:
    """`count` events over ~3 months: strictly increasing times, unique keys, skewed members."""
    rng = random.Random(seed)
    # A few members do most of the activity, as on any network.
    ranks = list(range(len(member_ids)))
    rng.shuffle(ranks)
    cum_weights = list(itertools.accumulate(1.0 / (rank + 1) ** 0.8 for rank in ranks))
    total_weight = cum_weights[-1]
    mix_names = [name for name, _ in MIX]
    mix_cum = list(itertools.accumulate(share for _, share in MIX))

    def pick_member() -> int:
        return member_ids[bisect.bisect_left(cum_weights, rng.random() * total_weight)]

    def pop_random(items: list):
        index = rng.randrange(len(items))
        items[index], items[-1] = items[-1], items[index]
        return items.pop()

    world = World()
    events: list[Event] = []
    tally: Tally = Tally()
    mean_gap = SPAN.total_seconds() / count
    now = START
    for serial in range(count):
        now += timedelta(microseconds=max(1, int(rng.expovariate(1 / mean_gap) * 1e6)))
        kind = mix_names[bisect.bisect_right(mix_cum, rng.random() * mix_cum[-1])]
        event = _make_event(kind, serial, now, rng, world, pick_member, pop_random)
        tally[event.kind.value + (f":{event.activity.value}" if event.activity else "")] += 1
        events.append(event)
    return events, tally


def _make_event(kind, serial, now, rng, world: World, pick_member, pop_random) -> Event:
    def event(event_kind: EventKind, member: int, network: str, **fields) -> Event:
        return Event(
            key=f"bench:{serial:09d}:{kind}",
            kind=event_kind,
            member_id=member,
            network=network,
            occurred_at=now,
            subject=f"{network}-user-{member}",
            **fields,
        )

    if kind == "delete" and world.live_activities:
        member, network, group, post, activity, item = pop_random(world.live_activities)
        world.live_likes.discard((member, post))
        return event(
            EventKind.ACTIVITY_DELETED,
            member,
            network,
            group_id=group,
            object_id=post,
            activity=activity,
            activity_id=item,
        )
    if kind == "leave" and world.memberships:
        member, group_index = pop_random(world.memberships)
        world.joined.discard((member, group_index))
        network, group = GROUPS[group_index]
        return event(EventKind.LEFT_GROUP, member, network, group_id=group)
    if kind in ("join", "leave"):  # a leave before anyone joined is a join
        member, group_index = pick_member(), rng.randrange(len(GROUPS))
        for _ in range(5):
            if (member, group_index) not in world.joined:
                break
            member, group_index = pick_member(), rng.randrange(len(GROUPS))
        if (member, group_index) not in world.joined:
            world.joined.add((member, group_index))
            world.memberships.append((member, group_index))
        network, group = GROUPS[group_index]
        return event(EventKind.JOINED_GROUP, member, network, group_id=group)
    if kind == "link":
        member, network = pick_member(), rng.choice(NETWORKS)
        for _ in range(5):
            if (member, network) not in world.linked:
                break
            member, network = pick_member(), rng.choice(NETWORKS)
        world.linked.add((member, network))
        return event(EventKind.PROFILE_LINKED, member, network)
    # An activity (a delete before anything can be deleted is a like) on a recent post.
    activity = ActivityKind.LIKE if kind == "delete" else ActivityKind(kind)
    member = pick_member()
    network, group = GROUPS[rng.randrange(len(GROUPS))]
    latest = int((now - START) / POST_EVERY)
    post = f"{group}-post-{max(0, latest - int(rng.expovariate(0.4)))}"
    item = f"c{serial}" if activity is ActivityKind.COMMENT else None
    if activity is ActivityKind.LIKE:
        if (member, post) in world.live_likes:
            item = None  # a repeated like (the collector may send one): recorded, pays nothing
        else:
            world.live_likes.add((member, post))
            world.live_activities.append((member, network, group, post, activity, item))
    else:
        world.live_activities.append((member, network, group, post, activity, item))
    return event(
        EventKind.ACTIVITY,
        member,
        network,
        group_id=group,
        object_id=post,
        activity=activity,
        activity_id=item,
    )


# --- setup -----------------------------------------------------------------------------------


def reset_postgres(url: str) -> str | None:
    """Drop and recreate the public schema; returns why PostgreSQL is unusable, or None."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    except Exception as exc:  # any failure means "no usable PostgreSQL"
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    finally:
        engine.dispose()
    return None


def build_app(url: str):
    from flask_migrate import upgrade

    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=url,
        TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
    )
    with app.app_context():
        upgrade(directory=str(MIGRATIONS))
    return app


def create_members(count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    rows = [
        {
            "first_name": f"Bench{index}",
            "last_name": "Member",
            "contact_email": f"member{index}@example.com" if rng.random() < 0.7 else None,
            "terms_version": "bench",
            "terms_accepted_at": now,
            "data_processing_accepted_at": now,
            "marketing_opt_in": rng.random() < 0.3,
            "created_at": now,
        }
        for index in range(count)
    ]
    db.session.execute(insert(Member), rows)
    db.session.commit()
    return list(db.session.scalars(select(Member.id).order_by(Member.id)))


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Result:
    label: str
    events: int
    seconds: float
    ledger_entries: int
    messages: int
    raw_rows: int
    raw_seconds: float
    first_fifth_eps: float
    last_fifth_eps: float
    checks: list[tuple[str, bool, str]]

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def raw_rows_per_s(self) -> float:
        return self.raw_rows / self.raw_seconds

    @property
    def ratio(self) -> float:
        return self.events_per_s / self.raw_rows_per_s

    @property
    def ok(self) -> bool:
        return all(passed for _, passed, _ in self.checks)


def run_processing(events: list[Event], batch: int, profile_top: int) -> tuple:
    """Time process_events over all the batches; returns totals and per-batch times."""
    batches = [events[start : start + batch] for start in range(0, len(events), batch)]
    profiler = cProfile.Profile() if profile_top else None
    recorded = ledger_entries = messages = 0
    batch_seconds: list[float] = []
    if profiler:
        profiler.enable()
    started = time.perf_counter()
    for chunk in batches:
        batch_started = time.perf_counter()
        result = process_events(chunk)
        db.session.commit()
        batch_seconds.append(time.perf_counter() - batch_started)
        recorded += result.recorded
        ledger_entries += result.ledger_entries
        messages += result.messages
    elapsed = time.perf_counter() - started
    if profiler:
        profiler.disable()
        print_profile(profiler, profile_top)
    return elapsed, recorded, ledger_entries, messages, batches, batch_seconds


def print_profile(profiler: cProfile.Profile, top: int) -> None:
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(top)
        print(f"--- profile of the processing loop, by {order} (timings inflated) ---")
        print(out.getvalue().strip())


def run_raw_baseline(member_ids: list[int], count: int, batch: int) -> float:
    """Insert `count` raw ledger rows with Core executemany, `batch` per commit."""
    now = datetime.now(UTC)
    rows = [
        {
            "member_id": member_ids[index % len(member_ids)],
            "kind": EntryKind.ACCRUAL,
            "amount": 1,
            "idempotency_key": f"raw:{index}",
            "description": "Liked our post",
            "offer_id": "likes-monthly",
            "offer_version": 1,
            "action_id": "next-like",
            "fact_key": f"raw:m{member_ids[index % len(member_ids)]}:{index}",
            "cap_counter": None,
            "available_at": START + timedelta(seconds=index),
            "expires_at": None,
            "shortfall": 0,
            "created_at": now,
        }
        for index in range(count)
    ]
    statement = insert(LedgerEntry)
    started = time.perf_counter()
    for start in range(0, count, batch):
        db.session.connection().execute(statement, rows[start : start + batch])
        db.session.commit()
    return time.perf_counter() - started


def check_processing(events, member_ids, recorded, ledger_entries, messages) -> list:
    """Cheap consistency checks, and a pure in-memory replay of all events in one batch."""
    checks: list[tuple[str, bool, str]] = []
    s = db.session
    event_rows, distinct_keys = s.execute(
        select(func.count(EventRow.id), func.count(func.distinct(EventRow.key)))
    ).one()
    checks.append(
        (
            "each event recorded once",
            event_rows == distinct_keys == recorded == len(events),
            f"rows={event_rows} distinct keys={distinct_keys} recorded={recorded}",
        )
    )
    entries, distinct_entry_keys, ledger_sum = s.execute(
        select(
            func.count(LedgerEntry.id),
            func.count(func.distinct(LedgerEntry.idempotency_key)),
            func.coalesce(func.sum(LedgerEntry.amount), 0),
        )
    ).one()
    checks.append(
        (
            "ledger rows = entries reported, keys unique",
            entries == distinct_entry_keys == ledger_entries,
            f"rows={entries} distinct keys={distinct_entry_keys} reported={ledger_entries}",
        )
    )
    balances = {member_id: balance(member_id) for member_id in member_ids}
    checks.append(
        (
            "sum of ledger amounts = sum of balances",
            int(ledger_sum) == sum(balances.values()),
            f"ledger={int(ledger_sum)} balances={sum(balances.values())}",
        )
    )
    negative = sum(1 for value in balances.values() if value < 0)
    checks.append(("no negative balance", negative == 0, f"negative={negative}"))
    outbox = s.scalar(select(func.count(OutboxMessage.id)))
    checks.append(("outbox rows = messages reported", outbox == messages, f"rows={outbox}"))

    # The same events evaluated in memory as one batch: batching must not change any result.
    offers = current_offers()
    rules_policy = policy()
    facts = {
        member_id: MemberFacts(has_contact_email=bool(email), marketing_opt_in=opt_in)
        for member_id, email, opt_in in s.execute(
            select(Member.id, Member.contact_email, Member.marketing_opt_in)
        )
    }
    state = LedgerState()
    replay_entries = replay_messages = 0
    for event in events:
        evaluation = evaluate(event, offers, facts[event.member_id], state, rules_policy)
        replay_entries += len(evaluation.ledger)
        replay_messages += len(evaluation.messages)
    replay_balances = {m: v for m, v in state.balances.items() if v}
    db_balances = {m: v for m, v in balances.items() if v}
    checks.append(
        (
            "in-memory replay gives the same ledger, balances, messages",
            replay_entries == entries
            and replay_balances == db_balances
            and replay_messages == outbox,
            f"entries={replay_entries} messages={replay_messages} "
            f"members with points={len(replay_balances)}",
        )
    )
    db_counters = dict(s.execute(select(Counter.key, Counter.value)).tuples().all())
    checks.append(
        (
            "counters equal the replay's",
            db_counters == state.counters,
            f"counters={len(db_counters)}",
        )
    )
    return checks


def fifth_rates(batches, batch_seconds) -> tuple[float, float]:
    fifth = max(1, len(batches) // 5)
    first = sum(len(b) for b in batches[:fifth]) / sum(batch_seconds[:fifth])
    last = sum(len(b) for b in batches[-fifth:]) / sum(batch_seconds[-fifth:])
    return first, last


def describe_load() -> str:
    """Other processes on the machine skew the timings: say how busy it is."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return "load average unknown"
    return f"load average {load:.2f} on {os.cpu_count()} CPUs (other processes skew timings)"


def bench_database(label: str, url: str, args: argparse.Namespace) -> Result:
    app = build_app(url)
    with app.app_context():
        install_seed_offers()
        member_ids = create_members(args.members, args.seed)
        events, tally = generate_events(args.seed, member_ids, args.events)
        mix = ", ".join(f"{name} {n / len(events):.1%}" for name, n in sorted(tally.items()))
        print(f"[{label}] {len(events)} events, {len(member_ids)} members: {mix}")
        print(f"[{label}] {describe_load()}")
        db.session.commit()

        elapsed, recorded, entries, messages, batches, batch_seconds = run_processing(
            events, args.batch, args.profile
        )
        first, last = fifth_rates(batches, batch_seconds)
        checks = check_processing(events, member_ids, recorded, entries, messages)
        db.session.commit()

        before = db.session.scalar(select(func.count(LedgerEntry.id)))
        raw_seconds = run_raw_baseline(member_ids, len(events), args.batch)
        after = db.session.scalar(select(func.count(LedgerEntry.id)))
        checks.append(
            (
                "raw baseline rows all written",
                after - before == len(events),
                f"rows={after - before}",
            )
        )
        db.session.remove()
        db.engine.dispose()
    return Result(
        label=label,
        events=len(events),
        seconds=elapsed,
        ledger_entries=entries,
        messages=messages,
        raw_rows=len(events),
        raw_seconds=raw_seconds,
        first_fifth_eps=first,
        last_fifth_eps=last,
        checks=checks,
    )


def print_table(result: Result, batch: int) -> None:
    rows = [
        ("events processed", f"{result.events}"),
        ("processing seconds", f"{result.seconds:.2f}"),
        ("events/s", f"{result.events_per_s:,.0f}"),
        (
            "  first fifth / last fifth",
            f"{result.first_fifth_eps:,.0f} / {result.last_fifth_eps:,.0f}",
        ),
        ("ledger entries written", f"{result.ledger_entries}"),
        ("outbox messages written", f"{result.messages}"),
        ("raw ledger rows", f"{result.raw_rows} (batches of {batch})"),
        ("raw seconds", f"{result.raw_seconds:.2f}"),
        ("raw rows/s", f"{result.raw_rows_per_s:,.0f}"),
        ("ratio events/s : raw rows/s", f"{result.ratio:.3f}"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"== {result.label} ==")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    for name, passed, detail in result.checks:
        print(f"  check {'OK  ' if passed else 'FAIL'} {name} ({detail})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="cProfile the processing loop and print its top N functions (slows it down)",
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.members < 1 or args.batch < 1:
        parser.error("--events, --members and --batch must be positive")

    results: dict[str, Result] = {}
    if args.skip_sqlite:
        print("sqlite: skipped (--skip-sqlite)")
    else:
        with tempfile.TemporaryDirectory(prefix="loyalink-bench-") as folder:
            url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
            results["sqlite"] = bench_database("sqlite", url, args)
            print_table(results["sqlite"], args.batch)
    if args.skip_postgres:
        print("postgres: skipped (--skip-postgres)")
    else:
        url = normalise_database_url(args.postgres_url)
        reason = reset_postgres(url)
        if reason:
            print(f"postgres: unavailable at {args.postgres_url}: {reason}")
        else:
            results["postgres"] = bench_database("postgres", url, args)
            print_table(results["postgres"], args.batch)

    def fields(label: str) -> str:
        result = results.get(label)
        if result is None:
            return f"{label}_events_per_s=nan {label}_ratio=nan"
        return f"{label}_events_per_s={round(result.events_per_s)} {label}_ratio={result.ratio:.3f}"

    failed = [label for label, result in results.items() if not result.ok]
    if failed:
        print(f"correctness checks FAILED on: {', '.join(failed)}")
    print(f"rules {fields('sqlite')} {fields('postgres')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
