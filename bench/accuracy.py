"""Accuracy of the collection engine: a random script against the sandbox VK API, checked
against the script's own model of the group.

    python bench/accuracy.py [--network vk] [--seed 1] [--actions 400] [--persons 30]
        [--fault-rate 0.1] [--database-url URL] [--max-retries 2] [--verbose]

Builds a portal (SQLite in a fresh temporary file by default) and a sandbox on a live loopback
port, creates a VK group with some posts and `--persons` sandbox users (some linked members
from the start, some linking midway, some never), installs the seed offers, tracks the group,
runs the baseline cycle, then plays `--actions` random steps (likes, unlikes, re-likes,
comments and deletions, reposts and deletions, leaves and (re-)joins, links, private and
deactivated profiles, new posts) with `collect_group` every few steps, under injected API
faults. Ground truth: the script's model of every list (members, and each post's likes,
comments and reposts) diffed at each cycle that read it against the model at the last cycle
that read it, for the users linked at that moment. The events found in the database and the
per-member balances (against a pure replay of the expected events through `app.rules`) are
compared with it. The last line printed is the machine-readable summary; the exit status is
1 when anything is missing, extra or mismatched.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from app import create_app  # noqa: E402
from app.collect.engine import collect_group  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import CollectionRun, LedgerEntry, LinkedProfile, Member  # noqa: E402
from app.models import Event as EventRow  # noqa: E402
from app.models.types import utcnow  # noqa: E402
from app.rules import (  # noqa: E402
    ActivityKind,
    Event,
    EventKind,
    LedgerState,
    MemberFacts,
    evaluate,
    parse_offer,
)
from app.rules.seed_offers import SEED_OFFERS  # noqa: E402
from app.services.groups import add_group  # noqa: E402
from app.services.offers import install_seed_offers  # noqa: E402
from app.services.processing import policy  # noqa: E402
from config import normalise_database_url  # noqa: E402
from sandbox import create_sandbox_app  # noqa: E402

MIGRATIONS = ROOT / "migrations"
GROUP_ID = 777001
TOKEN = "accuracy-service-token"  # the sandbox's own
FIRST_USER = 420_000_001  # far from the sandbox persons (1001001...) and generated users
INITIAL_POSTS = 5
MAX_POSTS = 12  # all posts stay inside the scan window
HTTP_TIMEOUT = 2
RETRYABLE = (6, 9, 10, 29)
SKIPPABLE = (15, 18, 30, 212)

# The random script, by weight. A step that cannot apply (nothing to unlike...) is a like.
ACTIONS = (
    ("like", 22),
    ("unlike", 10),
    ("relike", 6),
    ("comment", 12),
    ("delete_comment", 6),
    ("repost", 7),
    ("delete_repost", 5),
    ("leave", 6),
    ("join", 6),
    ("link", 4),
    ("private", 4),
    ("deactivate", 2),
    ("new_post", 2),
)
# Scripted faults, one armed before a cycle with probability --fault-rate (on top of the
# random rate of whole-request errors the sandbox applies to every request).
FAULTS = (
    "fail",  # a retryable error more times than the collector retries: the cycle fails
    "retry",  # a retryable error a few times: retried, the cycle succeeds
    "timeout",  # one request answered after the HTTP timeout: retried
    "skip-members",  # groups.getMembers refused (15...): members left unread, partial
    "skip-likes",  # likes.getList refused: likes and reposts left unread, partial
    "skip-comments",  # wall.getComments refused: comments left unread, partial
    "skip-wall",  # wall.get refused: nothing can be read, the cycle fails
)

Key = tuple[str, str]  # ("members", "") or (post id, like|comment|repost)
Item = tuple[str, str]  # (subject, item id): a comment's id, "" for the rest
Fact = tuple  # (kind, subject, group, post, activity, activity_id), as Event rows store it


# --- the sandbox on a live port ---------------------------------------------------------------


class LiveServer:
    """A WSGI app on a loopback port, served by threads."""

    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def quiet_logs(verbose: bool) -> Iterator[None]:
    """Request logs and the collector's retry warnings would drown the report."""
    names = ("werkzeug", "app.collect", "app.collect.vk", "app.collect.engine")
    saved = {name: logging.getLogger(name).level for name in names}
    if not verbose:
        for name in names:
            logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


# --- the portal -------------------------------------------------------------------------------


def prepare_database(url: str | None, workdir: str) -> str:
    """A migrated, empty database; PostgreSQL's public schema is dropped and recreated."""
    if url is None:
        return f"sqlite:///{Path(workdir) / 'accuracy.sqlite3'}"
    url = normalise_database_url(url)
    if url.startswith("postgresql"):
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        finally:
            engine.dispose()
    return url


def build_portal(
    url: str,
    sandbox_url: str,
    *,
    max_retries: int,
    per_second: float = 1000,
    timeout: float = HTTP_TIMEOUT,
    backoff: float | None = None,
):
    """The portal's app on a migrated database, its VK collector pointed at the sandbox."""
    from flask_migrate import upgrade

    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=url,
        TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        VK_API_URL=f"{sandbox_url}/vk-api",
        VK_API_VERSION="5.199",
        VK_REQUESTS_PER_SECOND=per_second,
        VK_MAX_RETRIES=max_retries,
        HTTP_TIMEOUT_SECONDS=timeout,
        **({} if backoff is None else {"VK_BACKOFF_SECONDS": backoff}),
    )
    with app.app_context():
        logging.disable(logging.INFO)  # alembic's "Running upgrade..." lines
        try:
            upgrade(directory=str(MIGRATIONS))
        finally:
            logging.disable(logging.NOTSET)
        if db.session.scalar(select(func.count(EventRow.id))):
            raise SystemExit(f"{url} already holds events: give an empty database")
    return app


def add_member(user: int) -> int:
    now = utcnow()
    member = Member(
        first_name=f"User{user}",
        terms_version="accuracy",
        terms_accepted_at=now,
        data_processing_accepted_at=now,
    )
    db.session.add(member)
    db.session.flush()
    db.session.add(LinkedProfile(member_id=member.id, network="vk", subject=str(user)))
    db.session.commit()
    return member.id


# --- the model ----------------------------------------------------------------------------------


@dataclass
class World:
    """What the script did to the group: the truth the collector must find."""

    group: int
    posts: list[int] = field(default_factory=list)
    members: set[int] = field(default_factory=set)
    likes: dict[int, set[int]] = field(default_factory=dict)
    unliked: set[tuple[int, int]] = field(default_factory=set)  # (post, user) liked once
    comments: dict[int, dict[int, int]] = field(default_factory=dict)  # post -> {id: user}
    reposts: dict[int, set[int]] = field(default_factory=dict)
    left: set[int] = field(default_factory=set)
    linked: dict[int, int] = field(default_factory=dict)  # VK user -> member id
    unlinked: list[int] = field(default_factory=list)  # will link midway
    # Each list as the collector last read it: the next read's changes are against this.
    seen: dict[Key, set[Item]] = field(default_factory=dict)

    def lists(self) -> dict[Key, set[Item]]:
        current: dict[Key, set[Item]] = {("members", ""): {(str(u), "") for u in self.members}}
        for post in self.posts:
            p = str(post)
            current[(p, "like")] = {(str(u), "") for u in self.likes[post]}
            current[(p, "comment")] = {(str(u), str(c)) for c, u in self.comments[post].items()}
            current[(p, "repost")] = {(str(u), "") for u in self.reposts[post]}
        return current

    def unread(self, fault: str | None) -> set[Key]:
        """The lists a cycle under this fault cannot read (lists VK calls empty are read)."""
        if fault == "skip-members":
            return {("members", "")}
        unread: set[Key] = set()
        for post in self.posts:
            if fault == "skip-likes":
                if self.likes[post]:
                    unread.add((str(post), "like"))
                if self.reposts[post]:
                    unread.add((str(post), "repost"))
            elif fault == "skip-comments" and self.comments[post]:
                unread.add((str(post), "comment"))
        return unread

    def read(self, unread: set[Key]) -> list[Fact]:
        """A cycle read every list but `unread`: the expected events, and the new `seen`."""
        facts: list[Fact] = []
        group = str(self.group)
        for key, now in self.lists().items():
            if key in unread:
                continue
            before = self.seen.get(key, set())  # a post new since the baseline: all new
            for verb, items in (("added", now - before), ("removed", before - now)):
                for subject, item in sorted(items):
                    if int(subject) not in self.linked:
                        continue
                    facts.append(fact(verb, subject, group, key, item))
            self.seen[key] = now
        return facts


def fact(verb: str, subject: str, group: str, key: Key, item: str) -> Fact:
    if key[0] == "members":
        kind = EventKind.JOINED_GROUP if verb == "added" else EventKind.LEFT_GROUP
        return (kind.value, subject, group, None, None, None)
    kind = EventKind.ACTIVITY if verb == "added" else EventKind.ACTIVITY_DELETED
    return (kind.value, subject, group, key[0], key[1], item or None)


# --- the random script --------------------------------------------------------------------------


class Script:
    def __init__(self, vk, world: World, rng: random.Random, users: list[int]) -> None:
        self.vk = vk
        self.world = world
        self.rng = rng
        self.users = users
        self.names = [name for name, _ in ACTIONS]
        self.weights = [weight for _, weight in ACTIONS]
        self.done: Counter[str] = Counter()

    def step(self) -> None:
        action = self.rng.choices(self.names, self.weights)[0]
        if not getattr(self, f"_{action}")():
            self._like()
            action = "like"
        self.done[action] += 1

    def _pick(self, items):
        items = sorted(items)
        return items[self.rng.randrange(len(items))] if items else None

    def _like(self) -> bool:
        w = self.world
        for _ in range(20):
            post, user = self.rng.choice(w.posts), self.rng.choice(self.users)
            if user not in w.likes[post]:
                assert self.vk.like(w.group, post, user)
                w.likes[post].add(user)
                return True
        return False

    def _unlike(self) -> bool:
        w = self.world
        pair = self._pick((p, u) for p in w.posts for u in w.likes[p])
        if pair is None:
            return False
        post, user = pair
        assert self.vk.unlike(w.group, post, user)
        w.likes[post].discard(user)
        w.unliked.add(pair)
        return True

    def _relike(self) -> bool:
        w = self.world
        pair = self._pick(pair for pair in w.unliked if pair[1] not in w.likes[pair[0]])
        if pair is None:
            return False
        post, user = pair
        assert self.vk.like(w.group, post, user)
        w.likes[post].add(user)
        return True

    def _comment(self) -> bool:
        w = self.world
        post, user = self.rng.choice(w.posts), self.rng.choice(self.users)
        comment_id = self.vk.comment(w.group, post, user, f"comment by {user}")
        w.comments[post][comment_id] = user
        return True

    def _delete_comment(self) -> bool:
        w = self.world
        pair = self._pick((p, c) for p in w.posts for c in w.comments[p])
        if pair is None:
            return False
        post, comment_id = pair
        assert self.vk.delete_comment(w.group, post, comment_id)
        del w.comments[post][comment_id]
        return True

    def _repost(self) -> bool:
        w = self.world
        for _ in range(20):
            post, user = self.rng.choice(w.posts), self.rng.choice(self.users)
            if user not in w.reposts[post]:
                self.vk.repost(w.group, post, user)
                w.reposts[post].add(user)
                return True
        return False

    def _delete_repost(self) -> bool:
        w = self.world
        pair = self._pick((p, u) for p in w.posts for u in w.reposts[p])
        if pair is None:
            return False
        post, user = pair
        assert self.vk.delete_repost(w.group, post, user)
        w.reposts[post].discard(user)
        return True

    def _leave(self) -> bool:
        w = self.world
        user = self._pick(w.members)
        if user is None:
            return False
        assert self.vk.leave(w.group, user)
        w.members.discard(user)
        w.left.add(user)
        return True

    def _join(self) -> bool:
        """A re-join of someone who left, half the time; else anyone not a member."""
        w = self.world
        pool = w.left - w.members if self.rng.random() < 0.5 else set(self.users) - w.members
        user = self._pick(pool)
        if user is None:
            return False
        assert self.vk.join(w.group, user)
        w.members.add(user)
        return True

    def _link(self) -> bool:
        w = self.world
        if not w.unlinked:
            return False
        user = w.unlinked.pop(self.rng.randrange(len(w.unlinked)))
        w.linked[user] = add_member(user)
        return True

    def _private(self) -> bool:
        """A profile closed or opened: the group's lists still show its activity."""
        self.vk.set_private(self.rng.choice(self.users), self.rng.random() < 0.7)
        return True

    def _deactivate(self) -> bool:
        """A profile deleted or banned, or restored: its activity stays in the lists."""
        value = self.rng.choice(("deleted", "banned", None))
        self.vk.set_deactivated(self.rng.choice(self.users), value)
        return True

    def _new_post(self) -> bool:
        w = self.world
        if len(w.posts) >= MAX_POSTS:
            return False
        post = self.vk.add_post(w.group, f"post {len(w.posts) + 1}")
        w.posts.append(post)
        w.likes[post], w.comments[post], w.reposts[post] = set(), {}, set()
        return True


def arm(vk, fault: str | None, rng: random.Random, max_retries: int) -> None:
    if fault == "fail":
        vk.inject_error(rng.choice(RETRYABLE), times=max_retries + 1)
    elif fault == "retry":
        vk.inject_error(rng.choice(RETRYABLE), times=rng.randint(1, max_retries))
    elif fault == "timeout":
        vk.inject_timeout(HTTP_TIMEOUT + 0.5, times=1)
    elif fault is not None:
        method = {
            "skip-members": "groups.getMembers",
            "skip-likes": "likes.getList",
            "skip-comments": "wall.getComments",
            "skip-wall": "wall.get",
        }[fault]
        vk.inject_error(rng.choice(SKIPPABLE), method=method, times=10_000)


def expected_status(fault: str | None, unread: set[Key]) -> str | None:
    """What the run's status must be; None when the random faults decide (retries)."""
    if fault in ("fail", "skip-wall"):
        return "failed"
    if fault and fault.startswith("skip-"):
        return "partial" if unread else None
    return None


# --- one run ------------------------------------------------------------------------------------


@dataclass
class Cycle:
    number: int
    fault: str | None
    status: str
    events_found: int
    expected: list[Fact]
    at: datetime
    note: str = ""


@dataclass
class Outcome:
    expected: Counter
    found: Counter
    missing: Counter
    extra: Counter
    ledger_mismatches: list[tuple[int, int, int, int]]  # user, member, expected, found
    cycles: list[Cycle]
    actions: Counter

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.ledger_mismatches)

    def summary(self) -> str:
        return (
            f"accuracy expected={self.expected.total()} found={self.found.total()} "
            f"missing={self.missing.total()} extra={self.extra.total()} "
            f"ledger_mismatch={len(self.ledger_mismatches)}"
        )


def setup_world(vk, rng: random.Random, persons: int) -> tuple[World, list[int]]:
    """The group before the baseline: posts, members and activity that are not news."""
    users = list(range(FIRST_USER, FIRST_USER + persons))
    world = World(group=GROUP_ID)
    vk.create_group(GROUP_ID, "Accuracy club")
    day_ago = int(time.time()) - 86400
    for index in range(INITIAL_POSTS):
        post = vk.add_post(GROUP_ID, f"post {index + 1}", date=day_ago + 600 * index)
        world.posts.append(post)
        world.likes[post], world.comments[post], world.reposts[post] = set(), {}, set()
    for user in users:
        if rng.random() < 0.6:
            vk.join(GROUP_ID, user)
            world.members.add(user)
        for post in world.posts:
            if rng.random() < 0.3:
                vk.like(GROUP_ID, post, user)
                world.likes[post].add(user)
            if rng.random() < 0.1:
                world.comments[post][vk.comment(GROUP_ID, post, user, "before")] = user
            if rng.random() < 0.05:
                vk.repost(GROUP_ID, post, user)
                world.reposts[post].add(user)
    for user in users:
        roll = rng.random()
        if roll < 0.5:
            world.linked[user] = add_member(user)
        elif roll < 0.85:
            world.unlinked.append(user)  # links midway; the rest never do
    return world, users


def run_cycle(group_id: int, http: requests.Session) -> CollectionRun:
    run = collect_group(group_id, http=http)
    if run is None:
        raise RuntimeError("the collection lease was held by someone else")
    return run


def play(args: argparse.Namespace, vk, http: requests.Session) -> Outcome:
    rng = random.Random(args.seed)
    world, users = setup_world(vk, rng, args.persons)
    install_seed_offers()
    group_id = add_group(
        "vk", str(GROUP_ID), "Accuracy club", TOKEN, posts_to_scan=100, interval_seconds=60
    ).id
    members_of = {}  # member id -> VK user, for the report
    cycles: list[Cycle] = []

    baseline = run_cycle(group_id, http)
    if baseline.status != "succeeded":
        raise RuntimeError(f"the baseline cycle {baseline.status}: {baseline.error_log}")
    world.seen = world.lists()
    cycles.append(Cycle(0, None, baseline.status, baseline.events_found, [], baseline.started_at))

    script = Script(vk, world, rng, users)
    fault_seed = rng.randrange(2**31)
    vk.set_fault_rate(args.fault_rate, seed=fault_seed)
    until_cycle = rng.randint(1, 6)
    for _ in range(args.actions):
        script.step()
        until_cycle -= 1
        if until_cycle:
            continue
        until_cycle = rng.randint(1, 6)
        fault = rng.choice(FAULTS) if rng.random() < args.fault_rate else None
        cycles.append(collect_and_check(world, vk, rng, args, group_id, http, fault, len(cycles)))
        vk.clear_faults()  # also stops the random rate: set it again, reseeded
        vk.set_fault_rate(args.fault_rate, seed=rng.randrange(2**31))

    # Catching up, with faults off: one cycle that reads everything, and one to see that
    # nothing more is found.
    vk.clear_faults()
    for _ in range(3):
        cycles.append(collect_and_check(world, vk, rng, args, group_id, http, None, len(cycles)))
        if cycles[-1].status == "succeeded":
            break
    cycles.append(collect_and_check(world, vk, rng, args, group_id, http, None, len(cycles)))

    for user, member_id in world.linked.items():
        members_of[member_id] = user
    return compare(world, cycles, members_of, script.done)


def collect_and_check(world, vk, rng, args, group_id, http, fault, number) -> Cycle:
    unread = world.unread(fault)
    arm(vk, fault, rng, args.max_retries)
    run = run_cycle(group_id, http)
    must = expected_status(fault, unread)
    note = ""
    if must is not None and run.status != must:
        note = f"status {run.status}, expected {must}"
    if run.status == "failed":
        expected: list[Fact] = []  # nothing applied: the next cycle catches up
    elif run.status in ("succeeded", "partial"):
        if run.status == "succeeded" and unread:
            note = "succeeded although lists were refused"
        if run.status == "partial" and not unread:
            note = f"partial although no list was refused: {run.error_log}"
        expected = world.read(unread if run.status == "partial" else set())
    else:
        raise RuntimeError(f"cycle {number} ended {run.status!r}")
    if run.status != "failed" and run.events_found != len(expected):
        note = (note + "; " if note else "") + (
            f"events_found={run.events_found}, expected {len(expected)}"
        )
    cycle = Cycle(number, fault, run.status, run.events_found, expected, run.started_at, note)
    if args.verbose or note:
        print(
            f"cycle {number:3d} fault={fault or '-':<13} {run.status:<9} "
            f"requests={run.requests:<3} expected={len(expected):<3} found={run.events_found}"
            + (f"  ! {note}" if note else "")
        )
        if args.verbose and run.error_log:
            print("          " + run.error_log.strip().replace("\n", "\n          "))
    return cycle


# --- comparison ---------------------------------------------------------------------------------


def compare(world: World, cycles: list[Cycle], members_of: dict, actions: Counter) -> Outcome:
    expected = Counter(f for cycle in cycles for f in cycle.expected)
    found = Counter(
        tuple(row)
        for row in db.session.execute(
            select(
                EventRow.kind,
                EventRow.subject,
                EventRow.group_id,
                EventRow.object_id,
                EventRow.activity,
                EventRow.activity_id,
            )
        )
    )
    missing, extra = expected - found, found - expected

    # The ledger: the expected events through the pure rules, against the database.
    offers = [parse_offer(data) for data in SEED_OFFERS]
    rules_policy = policy()
    state = LedgerState()
    truth: Counter[int] = Counter()
    serial = 0
    for cycle in cycles:
        for kind, subject, group, post, activity, activity_id in cycle.expected:
            serial += 1
            event = Event(
                key=f"truth:{serial}",
                kind=EventKind(kind),
                member_id=world.linked[int(subject)],
                network="vk",
                occurred_at=cycle.at,
                subject=subject,
                group_id=group,
                object_id=post,
                activity=ActivityKind(activity) if activity else None,
                activity_id=activity_id,
            )
            for effect in evaluate(event, offers, MemberFacts(), state, rules_policy).ledger:
                truth[effect.member_id] += effect.amount
    balances = dict(
        db.session.execute(
            select(LedgerEntry.member_id, func.sum(LedgerEntry.amount)).group_by(
                LedgerEntry.member_id
            )
        )
        .tuples()
        .all()
    )
    mismatches = [
        (
            members_of.get(member_id, 0),
            member_id,
            truth.get(member_id, 0),
            balances.get(member_id, 0),
        )
        for member_id in sorted(set(world.linked.values()) | set(balances))
        if truth.get(member_id, 0) != int(balances.get(member_id, 0) or 0)
    ]
    return Outcome(expected, found, missing, extra, mismatches, cycles, actions)


def report(outcome: Outcome, limit: int = 25) -> None:
    statuses = Counter(cycle.status for cycle in outcome.cycles)
    faults = Counter(cycle.fault for cycle in outcome.cycles if cycle.fault)
    print("actions: " + ", ".join(f"{k} {v}" for k, v in sorted(outcome.actions.items())))
    print(
        f"cycles: {len(outcome.cycles)} ("
        + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        + "); scripted faults: "
        + (", ".join(f"{k} {v}" for k, v in sorted(faults.items())) or "none")
    )
    by_kind = Counter(f"{f[0]}:{f[4]}" if f[4] else f[0] for f in outcome.expected.elements())
    print("expected events: " + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
    for label, facts in (("missing", outcome.missing), ("extra", outcome.extra)):
        if not facts:
            continue
        print(f"{label} ({facts.total()}):")
        for fact_row, count in sorted(facts.items(), key=str)[:limit]:
            print(f"  {count} x {fact_row}")
        if len(facts) > limit:
            print(f"  ... and {len(facts) - limit} more")
    if outcome.ledger_mismatches:
        print(f"ledger mismatches ({len(outcome.ledger_mismatches)}):")
        for user, member_id, want, got in outcome.ledger_mismatches[:limit]:
            print(f"  member {member_id} (vk {user}): expected {want} points, database {got}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", default="vk", choices=["vk"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--actions", type=int, default=400)
    parser.add_argument("--persons", type=int, default=30)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: SQLite in a temporary file; PostgreSQL's public schema is DROPPED",
    )
    parser.add_argument("--max-retries", type=int, default=2, help="VK_MAX_RETRIES")
    parser.add_argument(
        "--backoff", type=float, default=0.05, help="VK_BACKOFF_SECONDS (first retry's wait)"
    )
    parser.add_argument("--verbose", action="store_true", help="a line per cycle, all logs")
    args = parser.parse_args(argv)
    if not 0 <= args.fault_rate <= 1 or args.persons < 2 or args.actions < 0:
        parser.error("--fault-rate must be in [0, 1], --persons at least 2")

    sandbox_app = create_sandbox_app()
    vk = sandbox_app.extensions["sandbox"].vk
    vk.rate_limit_per_second = None
    vk.register_token(TOKEN, kind="service")
    started = time.perf_counter()
    with quiet_logs(args.verbose), tempfile.TemporaryDirectory() as workdir:
        server = LiveServer(sandbox_app)
        http = requests.Session()
        try:
            url = prepare_database(args.database_url, workdir)
            app = build_portal(url, server.url, max_retries=args.max_retries, backoff=args.backoff)
            with app.app_context():
                try:
                    outcome = play(args, vk, http)
                finally:
                    db.session.remove()
                    db.engine.dispose()
        finally:
            http.close()
            server.stop()
    print(
        f"network={args.network} seed={args.seed} actions={args.actions} "
        f"persons={args.persons} fault_rate={args.fault_rate} "
        f"seconds={time.perf_counter() - started:.1f}"
    )
    report(outcome)
    print(outcome.summary())
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
