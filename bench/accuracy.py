"""Accuracy of the collection engine: a random script against the sandbox VK API, checked
against the script's own model of the group.

    python bench/accuracy.py [--network vk|ok|telegram] [--callbacks] [--seed 1]
        [--actions 400] [--persons 30] [--fault-rate 0.1] [--database-url URL]
        [--max-retries 2] [--verbose]

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

`--network ok` plays the same script against the sandbox Odnoklassniki API (no reposts: OK
does not list who reshared). `--network telegram` runs bench/accuracy_telegram.py.

`--callbacks` (VK): the sandbox also pushes Callback API events to the portal, served on a live
loopback port, after every step; at the fault rate each event is dropped, duplicated or
delayed (delivered after 1-5 later steps, so out of order). The model then also follows each
delivered callback as the portal must: an event_id once; an item the portal already knows
as claimed changes nothing; a first-time addition counts at once; anything else is settled by
what VK shows at that moment. On top of the exact comparison, every item's events must
alternate (added, removed, added...) and never count more additions than really happened.
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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count, pairwise
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
from app.services.groups import add_group, set_callbacks  # noqa: E402
from app.services.offers import install_seed_offers  # noqa: E402
from app.services.processing import policy  # noqa: E402
from config import normalise_database_url  # noqa: E402
from sandbox import create_sandbox_app  # noqa: E402
from sandbox.portal import portal_settings, register_portal  # noqa: E402

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


@dataclass(frozen=True)
class Network:
    """What differs between the networks the script plays: error codes, methods, lists."""

    name: str
    retryable: tuple[int, ...]
    skippable: tuple[int, ...]
    methods: dict[str, str]  # members, likes, comments, wall -> the API method reading it
    kinds: tuple[str, ...]  # the activity lists a post has
    skip_likes_hides: tuple[str, ...]  # the lists the likes method also reads


def network_profile(name: str) -> Network:
    if name == "ok":
        from sandbox.okapi import ACCURACY_PROFILE as ok

        return Network(
            "ok", ok["retryable"], ok["skippable"], ok["methods"], ("like", "comment"), ("like",)
        )
    methods = {
        "members": "groups.getMembers",
        "likes": "likes.getList",
        "comments": "wall.getComments",
        "wall": "wall.get",
    }
    return Network(
        "vk", RETRYABLE, SKIPPABLE, methods, ("like", "comment", "repost"), ("like", "repost")
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
    names = (
        "werkzeug",
        "app.collect",
        "app.collect.vk",
        "app.collect.ok",
        "app.collect.engine",
        "app.collect.vk_callbacks",
    )
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
        **portal_settings(sandbox_url),
        VK_API_URL=f"{sandbox_url}/vk-api",
        OK_REQUESTS_PER_SECOND=per_second,
        OK_MAX_RETRIES=max_retries,
        **({} if backoff is None else {"OK_BACKOFF_SECONDS": backoff}),
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


def add_member(user: int, network: str = "vk") -> int:
    now = utcnow()
    member = Member(
        first_name=f"User{user}",
        terms_version="accuracy",
        terms_accepted_at=now,
        data_processing_accepted_at=now,
    )
    db.session.add(member)
    db.session.flush()
    db.session.add(LinkedProfile(member_id=member.id, network=network, subject=str(user)))
    db.session.commit()
    return member.id


# --- the model ----------------------------------------------------------------------------------


@dataclass
class World:
    """What the script did to the group: the truth the collector must find."""

    group: int
    network: Network
    posts: list[int] = field(default_factory=list)
    members: set[int] = field(default_factory=set)
    likes: dict[int, set[int]] = field(default_factory=dict)
    unliked: set[tuple[int, int]] = field(default_factory=set)  # (post, user) liked once
    comments: dict[int, dict[int, int]] = field(default_factory=dict)  # post -> {id: user}
    reposts: dict[int, set[int]] = field(default_factory=dict)
    left: set[int] = field(default_factory=set)
    linked: dict[int, int] = field(default_factory=dict)  # VK user -> member id
    unlinked: list[int] = field(default_factory=list)  # will link midway
    # Each list as the portal knows it (read by a cycle, or changed by a callback): the next
    # read's changes are against this.
    seen: dict[Key, set[Item]] = field(default_factory=dict)
    # Items the portal saw removed, or changed by a callback: a callback about them is checked.
    history: set[tuple[Key, Item]] = field(default_factory=set)
    callbacks_seen: set[str] = field(default_factory=set)  # event_ids
    additions: Counter = field(default_factory=Counter)  # (key, item) -> times really added

    def lists(self) -> dict[Key, set[Item]]:
        current: dict[Key, set[Item]] = {("members", ""): {(str(u), "") for u in self.members}}
        for post in self.posts:
            p = str(post)
            current[(p, "like")] = {(str(u), "") for u in self.likes[post]}
            current[(p, "comment")] = {(str(u), str(c)) for c, u in self.comments[post].items()}
            if "repost" in self.network.kinds:
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
                if self.reposts[post] and "repost" in self.network.skip_likes_hides:
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
                    if verb == "removed":
                        self.history.add((key, (subject, item)))
                    if int(subject) not in self.linked:
                        continue
                    facts.append(fact(verb, subject, group, key, item))
            self.seen[key] = now
        return facts

    def added(self, key: Key, item: Item) -> None:
        """The script really added this item (a like, a join...)."""
        self.additions[(key, item)] += 1

    def deliver(self, event: dict) -> list[Fact]:
        """A callback the portal acknowledged: what it must have counted (see the docstring)."""
        if event["event_id"] in self.callbacks_seen:
            return []
        self.callbacks_seen.add(event["event_id"])
        claim = callback_claim(event)
        if claim is None:
            return []
        key, item, adds = claim
        known = self.seen.setdefault(key, set())
        if key[1] == "comment" and not adds:
            item = next((i for i in known if i[1] == item[1]), None)
            if item is None:
                return []
        present = item in known
        if present == adds:
            return []
        if not (adds and (key, item) not in self.history):
            actual = item in self.lists().get(key, set())
            if actual == present:
                return []
            adds = actual
        (known.add if adds else known.discard)(item)
        self.history.add((key, item))
        if int(item[0]) not in self.linked:
            return []
        return [fact("added" if adds else "removed", item[0], str(self.group), key, item[1])]


def callback_claim(event: dict) -> tuple[Key, Item, bool] | None:
    """What a VK callback says changed: the list, the item and whether it was added."""
    kind, obj = event["type"], event["object"]
    if kind in ("group_join", "group_leave"):
        return ("members", ""), (str(obj["user_id"]), ""), kind == "group_join"
    if kind in ("like_add", "like_remove"):
        return (str(obj["object_id"]), "like"), (str(obj["liker_id"]), ""), kind == "like_add"
    if kind == "wall_reply_new":
        return (str(obj["post_id"]), "comment"), (str(obj["from_id"]), str(obj["id"])), True
    if kind == "wall_reply_delete":
        return (str(obj["post_id"]), "comment"), ("", str(obj["id"])), False
    if kind == "wall_repost":
        original = obj["copy_history"][0]
        return (str(original["id"]), "repost"), (str(obj["owner_id"]), ""), True
    return None


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
        playable = [
            (name, weight)
            for name, weight in ACTIONS
            if "repost" not in name or "repost" in world.network.kinds
        ]
        self.names = [name for name, _ in playable]
        self.weights = [weight for _, weight in playable]
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
                w.added((str(post), "like"), (str(user), ""))
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
        w.added((str(post), "like"), (str(user), ""))
        return True

    def _comment(self) -> bool:
        w = self.world
        post, user = self.rng.choice(w.posts), self.rng.choice(self.users)
        comment_id = self.vk.comment(w.group, post, user, f"comment by {user}")
        w.comments[post][comment_id] = user
        w.added((str(post), "comment"), (str(user), str(comment_id)))
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
                w.added((str(post), "repost"), (str(user), ""))
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
        w.added(("members", ""), (str(user), ""))
        return True

    def _link(self) -> bool:
        w = self.world
        if not w.unlinked:
            return False
        user = w.unlinked.pop(self.rng.randrange(len(w.unlinked)))
        w.linked[user] = add_member(user, w.network.name)
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


def arm(vk, network: Network, fault: str | None, rng: random.Random, max_retries: int) -> None:
    if fault == "fail":
        vk.inject_error(rng.choice(network.retryable), times=max_retries + 1)
    elif fault == "retry":
        vk.inject_error(rng.choice(network.retryable), times=rng.randint(1, max_retries))
    elif fault == "timeout":
        vk.inject_timeout(HTTP_TIMEOUT + 0.5, times=1)
    elif fault is not None:
        method = network.methods[fault.removeprefix("skip-")]
        vk.inject_error(rng.choice(network.skippable), method=method, times=10_000)


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
    twice: list[str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.ledger_mismatches or self.twice)

    def summary(self) -> str:
        return (
            f"accuracy expected={self.expected.total()} found={self.found.total()} "
            f"missing={self.missing.total()} extra={self.extra.total()} "
            f"ledger_mismatch={len(self.ledger_mismatches)} counted_twice={len(self.twice)}"
        )


def setup_world(vk, network: Network, rng: random.Random, persons: int) -> tuple[World, list[int]]:
    """The group before the baseline: posts, members and activity that are not news."""
    users = list(range(FIRST_USER, FIRST_USER + persons))
    world = World(group=GROUP_ID, network=network)
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
            world.added(("members", ""), (str(user), ""))
        for post in world.posts:
            if rng.random() < 0.3:
                vk.like(GROUP_ID, post, user)
                world.likes[post].add(user)
                world.added((str(post), "like"), (str(user), ""))
            if rng.random() < 0.1:
                comment = vk.comment(GROUP_ID, post, user, "before")
                world.comments[post][comment] = user
                world.added((str(post), "comment"), (str(user), str(comment)))
            # The draw is made for every network so a seed plays the same elsewhere.
            if rng.random() < 0.05 and "repost" in network.kinds:
                vk.repost(GROUP_ID, post, user)
                world.reposts[post].add(user)
                world.added((str(post), "repost"), (str(user), ""))
    for user in users:
        roll = rng.random()
        if roll < 0.5:
            world.linked[user] = add_member(user, network.name)
        elif roll < 0.85:
            world.unlinked.append(user)  # links midway; the rest never do
    return world, users


def run_cycle(group_id: int, http: requests.Session) -> CollectionRun:
    run = collect_group(group_id, http=http)
    if run is None:
        raise RuntimeError("the collection lease was held by someone else")
    return run


class Callbacks:
    """The sandbox's VK Callback API pushing to the portal, delivered between the steps."""

    SECRET = "accuracyCallbackSecret1"
    CONFIRMATION = "acc0rd1n"

    def __init__(self, vk, world: World, rng: random.Random, args, group_id: int, portal_url):
        self.vk, self.world, self.rng, self.rate = vk, world, rng, args.fault_rate
        set_callbacks(group_id, secret=self.SECRET, confirmation=self.CONFIRMATION)
        self.hub = vk.callbacks
        self.hub.set_mode("manual")
        self.hub.set_server(
            GROUP_ID, f"{portal_url}/hooks/vk", secret=self.SECRET, confirmation=self.CONFIRMATION
        )
        rate = self.rate
        self.hub.set_faults(drop=rate, duplicate=rate, delay=rate, seed=rng.randrange(2**31))

    def deliver(self) -> list[Fact]:
        """Push what is due; the facts the portal must have counted, in delivery order."""
        # The portal checks some callbacks against VK: those checks see VK without faults,
        # the cycles' faults are armed right before each cycle.
        self.vk.clear_faults()
        self.hub.deliver()
        facts = [f for event in self.hub.take_delivered() for f in self.world.deliver(event)]
        self.vk.set_fault_rate(self.rate, seed=self.rng.randrange(2**31))
        return facts

    def drain(self) -> list[Fact]:
        """Everything still queued or held back, delivered without faults."""
        self.hub.clear_faults()
        facts: list[Fact] = []
        for _ in range(20):
            facts += self.deliver()
            if not self.hub.pending():
                break
        self.vk.clear_faults()
        return facts


def play(args: argparse.Namespace, vk, http: requests.Session, portal_url: str | None) -> Outcome:
    network = network_profile(args.network)
    rng = random.Random(args.seed)
    world, users = setup_world(vk, network, rng, args.persons)
    install_seed_offers()
    group_id = add_group(
        network.name, str(GROUP_ID), "Accuracy club", TOKEN, posts_to_scan=100, interval_seconds=60
    ).id
    members_of = {}  # member id -> network user, for the report
    cycles: list[Cycle] = []
    timeline: list[tuple[datetime, list[Fact]]] = []  # what the portal must count, in order

    baseline = run_cycle(group_id, http)
    if baseline.status != "succeeded":
        raise RuntimeError(f"the baseline cycle {baseline.status}: {baseline.error_log}")
    world.seen = world.lists()
    cycles.append(Cycle(0, None, baseline.status, baseline.events_found, [], baseline.started_at))
    callbacks = (
        Callbacks(vk, world, rng, args, group_id, portal_url) if portal_url is not None else None
    )

    def collect(fault: str | None) -> None:
        cycle = collect_and_check(world, vk, network, rng, args, group_id, http, fault, len(cycles))
        cycles.append(cycle)
        timeline.append((cycle.at, cycle.expected))

    script = Script(vk, world, rng, users)
    fault_seed = rng.randrange(2**31)
    vk.set_fault_rate(args.fault_rate, seed=fault_seed)
    until_cycle = rng.randint(1, 6)
    for _ in range(args.actions):
        script.step()
        if callbacks is not None:
            timeline.append((utcnow(), callbacks.deliver()))
        until_cycle -= 1
        if until_cycle:
            continue
        until_cycle = rng.randint(1, 6)
        collect(rng.choice(FAULTS) if rng.random() < args.fault_rate else None)
        vk.clear_faults()  # also stops the random rate: set it again, reseeded
        vk.set_fault_rate(args.fault_rate, seed=rng.randrange(2**31))

    # Catching up, with faults off: every callback delivered, one cycle that reads everything,
    # and one to see that nothing more is found.
    vk.clear_faults()
    if callbacks is not None:
        timeline.append((utcnow(), callbacks.drain()))
        by_cycles = sum(len(cycle.expected) for cycle in cycles)
        stats = callbacks.hub.stats()
        print(
            "callbacks: "
            + ", ".join(f"{k} {stats[k]}" for k in ("queued", "delivered", "dropped"))
            + ", "
            + ", ".join(f"{k} {stats[k]}" for k in ("duplicated", "delayed", "failed"))
            + f"; events counted by callbacks {sum(len(f) for _, f in timeline) - by_cycles},"
            f" by polling {by_cycles}"
        )
    for _ in range(3):
        collect(None)
        if cycles[-1].status == "succeeded":
            break
    collect(None)

    for user, member_id in world.linked.items():
        members_of[member_id] = user
    return compare(world, timeline, cycles, members_of, script.done)


def collect_and_check(world, vk, network, rng, args, group_id, http, fault, number) -> Cycle:
    unread = world.unread(fault)
    arm(vk, network, fault, rng, args.max_retries)
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


def compare(
    world: World,
    timeline: list[tuple[datetime, list[Fact]]],
    cycles: list[Cycle],
    members_of: dict,
    actions: Counter,
) -> Outcome:
    expected = Counter(f for _, facts in timeline for f in facts)
    rows = found_facts()
    found = Counter(rows)
    missing, extra = expected - found, found - expected
    mismatches = [
        (members_of.get(member_id, 0), member_id, want, got)
        for member_id, want, got in ledger_mismatches(timeline, world.linked, world.network.name)
    ]
    return Outcome(
        expected, found, missing, extra, mismatches, cycles, actions, counted_twice(world, rows)
    )


def found_facts() -> list[Fact]:
    """The events in the database, in the order they were recorded, as facts."""
    columns = (
        EventRow.kind,
        EventRow.subject,
        EventRow.group_id,
        EventRow.object_id,
        EventRow.activity,
        EventRow.activity_id,
    )
    return [tuple(row) for row in db.session.execute(select(*columns).order_by(EventRow.id))]


def ledger_mismatches(
    timeline: Iterable[tuple[datetime, Sequence[Fact]]], linked: dict[int, int], network: str
) -> list[tuple[int, int, int]]:
    """The expected facts, in order, through the pure rules against the database's balances:
    (member, expected points, points in the ledger) for each member who differs."""
    offers = [parse_offer(data) for data in SEED_OFFERS]
    rules_policy, state, truth = policy(), LedgerState(), Counter()
    serial = count(1)
    for at, facts in timeline:
        for kind, subject, group, post, activity, activity_id in facts:
            event = Event(
                key=f"truth:{next(serial)}",
                kind=EventKind(kind),
                member_id=linked[int(subject)],
                network=network,
                occurred_at=at,
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
    return [
        (member_id, truth.get(member_id, 0), int(balances.get(member_id, 0) or 0))
        for member_id in sorted(set(linked.values()) | set(balances))
        if truth.get(member_id, 0) != int(balances.get(member_id, 0) or 0)
    ]


def counted_twice(world: World, rows: list[Fact]) -> list[str]:
    """Items whose events do not alternate (added, removed, added...), or that were counted
    added more often than anyone really added them: whatever the model says."""
    adds = {EventKind.JOINED_GROUP.value, EventKind.ACTIVITY.value}
    history: dict[tuple[Key, Item], list[bool]] = {}
    for kind, subject, _group, post, activity, activity_id in rows:
        key: Key = ("members", "") if post is None else (post, activity)
        item = (subject, activity_id or "")
        history.setdefault((key, item), []).append(kind in adds)
    problems = []
    for (key, item), added in sorted(history.items()):
        if any(a == b for a, b in pairwise(added)):
            problems.append(f"{key} {item}: events do not alternate: {added}")
        if sum(added) > world.additions[(key, item)]:
            problems.append(
                f"{key} {item}: counted added {sum(added)} times, "
                f"really added {world.additions[(key, item)]} times"
            )
    return problems


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
        for fact_row, times in sorted(facts.items(), key=str)[:limit]:
            print(f"  {times} x {fact_row}")
        if len(facts) > limit:
            print(f"  ... and {len(facts) - limit} more")
    if outcome.twice:
        print(f"counted twice ({len(outcome.twice)}):")
        for line in outcome.twice[:limit]:
            print(f"  {line}")
    if outcome.ledger_mismatches:
        print(f"ledger mismatches ({len(outcome.ledger_mismatches)}):")
        for user, member_id, want, got in outcome.ledger_mismatches[:limit]:
            print(f"  member {member_id} (vk {user}): expected {want} points, database {got}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", default="vk", choices=["vk", "ok", "telegram"])
    parser.add_argument(
        "--callbacks", action="store_true", help="VK: Callback API pushes as well as polling"
    )
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
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = parser.parse_known_args(argv)
    if args.network == "telegram":
        from bench.accuracy_telegram import main as telegram_main

        return telegram_main([a for a in argv if a not in ("--network", "telegram")])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if not 0 <= args.fault_rate <= 1 or args.persons < 2 or args.actions < 0:
        parser.error("--fault-rate must be in [0, 1], --persons at least 2")
    if args.callbacks and args.network != "vk":
        parser.error("--callbacks is VK's Callback API: use it with --network vk")

    sandbox_app = create_sandbox_app()
    vk = getattr(sandbox_app.extensions["sandbox"], args.network)
    # The OK API checks the calling application: the portal's, as the tests register it.
    register_portal(sandbox_app.extensions["sandbox"], ["http://127.0.0.1"])
    vk.rate_limit_per_second = None
    vk.register_token(TOKEN, kind="service" if args.network == "vk" else "group")
    started = time.perf_counter()
    with quiet_logs(args.verbose), tempfile.TemporaryDirectory() as workdir:
        server = LiveServer(sandbox_app)
        http = requests.Session()
        try:
            url = prepare_database(args.database_url, workdir)
            app = build_portal(url, server.url, max_retries=args.max_retries, backoff=args.backoff)
            portal = LiveServer(app) if args.callbacks else None
            with app.app_context():
                try:
                    outcome = play(args, vk, http, portal.url if portal else None)
                finally:
                    if portal is not None:
                        portal.stop()
                    db.session.remove()
                    db.engine.dispose()
        finally:
            http.close()
            server.stop()
    print(
        f"network={args.network} callbacks={'on' if args.callbacks else 'off'} "
        f"seed={args.seed} actions={args.actions} "
        f"persons={args.persons} fault_rate={args.fault_rate} "
        f"seconds={time.perf_counter() - started:.1f}"
    )
    report(outcome)
    print(outcome.summary())
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
