"""Accuracy of Telegram collection: a random script against the sandbox Bot API, checked
against the script's own record of what happened.

    python bench/accuracy_telegram.py [--mode poll|webhook] [--seed 1] [--actions 400]
        [--persons 30] [--fault-rate 0.1] [--database-url URL] [--verbose]

Builds a portal (SQLite in a fresh temporary file by default) and a sandbox on live loopback
ports, a bot that administers a channel and its discussion group, a few posts and `--persons`
subscribers (some linked members from the start, some linking midway, some never), installs
the seed offers and starts tracking: the first getUpdates (mode poll) or setWebhook (mode
webhook) names chat_member and message_reaction, and only from then on does Telegram create
such updates. Then `--actions` random steps: joins and leaves, reactions in the discussion
group (added, changed, taken back), anonymous reactions in the channel, comments (direct and
replies) and their deletion, new posts, links.

Ground truth: every join, leave, reaction added or taken back and comment by a user linked at
that moment, once. A changed emoji, a channel reaction (anonymous) and a deleted comment
(Telegram sends nothing) make no event. A link step first lets everything before it be
recorded (a clean cycle, or the webhook drained), so who was linked is never a race.

Mode poll: `collect_group` every few steps, under faults at `--fault-rate`: getUpdates
errors (429 with retry_after, 502) and timeouts, retried or beyond the retries (a failed run),
random 502s on any request, and crashes: a batch fetched and never applied (the cursor not
stored), or its events recorded but the cursor not stored; the next cycle re-reads both and
must count each change once. Mode webhook: the sandbox pushes every update to the portal's
/hooks/telegram/<id> on a live port, and loses about `--fault-rate` of the portal's answers,
so those updates come twice.

The events in the database and the per-member balances (against a pure replay of the expected
events through `app.rules`) are compared with the truth. The last line printed is the
summary; the exit status is 1 unless everything matches exactly.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from app.collect.base import CollectorError, GroupTarget  # noqa: E402
from app.collect.engine import apply_stream_changes, collect_group  # noqa: E402
from app.collect.telegram import TelegramCollector, set_webhook  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import TrackedGroup  # noqa: E402
from app.models.types import utcnow  # noqa: E402
from app.rules import (  # noqa: E402
    EventKind,
)
from app.services.groups import add_group  # noqa: E402
from app.services.offers import install_seed_offers  # noqa: E402
from bench.accuracy import (  # noqa: E402
    LiveServer,
    add_member,
    build_portal,
    found_facts,
    ledger_mismatches,
    prepare_database,
    quiet_logs,
)
from sandbox import create_sandbox_app  # noqa: E402
from sandbox.telegram_bot.model import REACTION_EMOJI, TelegramBotState  # noqa: E402

TOKEN = "7400001:accuracy-bot-token"  # the sandbox's own
CHANNEL, DISCUSSION = -1007770000001, -1007770000002
FIRST_USER = 7_420_000_001  # far from the sandbox persons (7001001...)
INITIAL_POSTS = 3
MAX_POSTS = 10
HTTP_TIMEOUT = 1
MAX_RETRIES = 2

ACTIONS = (
    ("react", 20),
    ("change_emoji", 5),
    ("unreact", 10),
    ("channel_react", 5),
    ("comment", 12),
    ("reply", 5),
    ("delete_comment", 6),
    ("join", 9),
    ("leave", 8),
    ("link", 4),
    ("new_post", 3),
)
FAULTS = (
    "retry",  # getUpdates answers 429 or 502 a few times: retried, the cycle succeeds
    "fail",  # 502 more times than the collector retries: the run fails, nothing lost
    "timeout",  # one request answered after the HTTP timeout: retried
    "crash-before-apply",  # a batch fetched, the process dies: neither events nor cursor
    "crash-after-events",  # the events recorded, the cursor not: the batch comes again
)

Fact = tuple  # (kind, subject, group, post, activity, activity_id), as Event rows store it


@dataclass
class World:
    """What the script did to the channel: the truth the collector must find."""

    posts: list[int] = field(default_factory=list)
    members: set[int] = field(default_factory=set)
    reactions: dict[int, dict[int, str]] = field(default_factory=dict)  # post -> user: emoji
    channel_reactions: dict[int, set[int]] = field(default_factory=dict)
    comments: dict[int, dict[int, int]] = field(default_factory=dict)  # post -> {message: user}
    linked: dict[int, int] = field(default_factory=dict)  # Telegram user -> member id
    unlinked: list[int] = field(default_factory=list)  # will link midway
    facts: list[Fact] = field(default_factory=list)  # expected events, in order

    def happened(
        self,
        kind: EventKind,
        user: int,
        post: int | None = None,
        activity: str | None = None,
        item: int | None = None,
    ) -> None:
        if user in self.linked:
            self.facts.append(
                (
                    kind.value,
                    str(user),
                    str(CHANNEL),
                    None if post is None else str(post),
                    activity,
                    None if item is None else str(item),
                )
            )


class Script:
    """Random steps on the sandbox channel, each recorded in the world."""

    def __init__(self, tg: TelegramBotState, world: World, rng: random.Random, users, settle):
        self.tg, self.world, self.rng, self.users = tg, world, rng, users
        self.settle = settle  # lets everything so far be recorded (before a link)
        self.names = [name for name, _ in ACTIONS]
        self.weights = [weight for _, weight in ACTIONS]
        self.done: Counter[str] = Counter()

    def step(self) -> None:
        action = self.rng.choices(self.names, self.weights)[0]
        if not getattr(self, f"_{action}")():
            action = "react" if self._react() else "join"
            if action == "join":
                self._join()
        self.done[action] += 1

    def _pick(self, items):
        items = sorted(items)
        return items[self.rng.randrange(len(items))] if items else None

    def _react(self) -> bool:
        w = self.world
        pair = self._pick((p, u) for p in w.posts for u in self.users if u not in w.reactions[p])
        if pair is None:
            return False
        post, user = pair
        emoji = self.rng.choice(REACTION_EMOJI)
        assert self.tg.react(CHANNEL, post, user, emoji)
        w.reactions[post][user] = emoji
        w.happened(EventKind.ACTIVITY, user, post, "like")
        return True

    def _change_emoji(self) -> bool:
        """Another emoji instead: still the same like, no event."""
        w = self.world
        pair = self._pick((p, u) for p in w.posts for u in w.reactions[p])
        if pair is None:
            return False
        post, user = pair
        emoji = self.rng.choice([e for e in REACTION_EMOJI if e != w.reactions[post][user]])
        assert self.tg.react(CHANNEL, post, user, emoji)
        w.reactions[post][user] = emoji
        return True

    def _unreact(self) -> bool:
        w = self.world
        pair = self._pick((p, u) for p in w.posts for u in w.reactions[p])
        if pair is None:
            return False
        post, user = pair
        assert self.tg.react(CHANNEL, post, user, None)
        del w.reactions[post][user]
        w.happened(EventKind.ACTIVITY_DELETED, user, post, "like")
        return True

    def _channel_react(self) -> bool:
        """A reaction on the channel post itself: anonymous, nobody to reward."""
        w = self.world
        post, user = self.rng.choice(w.posts), self.rng.choice(self.users)
        if user in w.channel_reactions[post]:
            assert self.tg.react(CHANNEL, post, user, None, where="channel")
            w.channel_reactions[post].discard(user)
        else:
            assert self.tg.react(CHANNEL, post, user, "🔥", where="channel")
            w.channel_reactions[post].add(user)
        return True

    def _comment(self, reply: bool = False) -> bool:
        w = self.world
        post, user = self.rng.choice(w.posts), self.rng.choice(self.users)
        reply_to = self._pick(w.comments[post]) if reply else None
        if reply and reply_to is None:
            return False
        message = self.tg.comment(CHANNEL, post, user, "a comment", reply_to=reply_to)
        w.comments[post][message] = user
        w.happened(EventKind.ACTIVITY, user, post, "comment", message)
        return True

    def _reply(self) -> bool:
        return self._comment(reply=True)

    def _delete_comment(self) -> bool:
        """Telegram sends no update: the comment's event stays."""
        w = self.world
        pair = self._pick((p, m) for p in w.posts for m in w.comments[p])
        if pair is None:
            return False
        post, message = pair
        assert self.tg.delete_comment(CHANNEL, message)
        del w.comments[post][message]
        return True

    def _join(self) -> bool:
        w = self.world
        user = self._pick(set(self.users) - w.members)
        if user is None:
            return False
        assert self.tg.join(CHANNEL, user)
        w.members.add(user)
        w.happened(EventKind.JOINED_GROUP, user)
        return True

    def _leave(self) -> bool:
        w = self.world
        user = self._pick(w.members)
        if user is None:
            return False
        assert self.tg.leave(CHANNEL, user)
        w.members.discard(user)
        w.happened(EventKind.LEFT_GROUP, user)
        return True

    def _link(self) -> bool:
        w = self.world
        if not w.unlinked:
            return False
        self.settle()
        user = w.unlinked.pop(self.rng.randrange(len(w.unlinked)))
        w.linked[user] = add_member(user, "telegram")
        return True

    def _new_post(self) -> bool:
        w = self.world
        if len(w.posts) >= MAX_POSTS:
            return False
        add_post(self.tg, w, f"post {len(w.posts) + 1}")
        return True


def add_post(tg: TelegramBotState, world: World, text: str) -> None:
    post = tg.publish(CHANNEL, text)
    world.posts.append(post)
    world.reactions[post], world.channel_reactions[post], world.comments[post] = {}, set(), {}


def setup_world(tg: TelegramBotState, rng: random.Random, persons: int) -> tuple[World, list]:
    """The channel before tracking: posts and subscribers that are not news."""
    users = list(range(FIRST_USER, FIRST_USER + persons))
    world = World()
    tg.create_bot(TOKEN)
    tg.create_channel(CHANNEL, "Accuracy news", discussion_id=DISCUSSION, admins=[TOKEN])
    for index in range(INITIAL_POSTS):
        add_post(tg, world, f"post {index + 1}")
    for user in users:
        if rng.random() < 0.6:
            tg.join(CHANNEL, user)  # before tracking: Telegram creates no update for it
            world.members.add(user)
    for user in users:
        roll = rng.random()
        if roll < 0.5:
            world.linked[user] = add_member(user, "telegram")
        elif roll < 0.85:
            world.unlinked.append(user)
    return world, users


@dataclass
class Cycle:
    number: int
    fault: str | None
    status: str
    note: str = ""


class Poller:
    """Mode poll: collection cycles under scripted and random faults."""

    def __init__(self, args, tg: TelegramBotState, app, group_id: int, rng: random.Random):
        self.args, self.tg, self.app, self.group_id, self.rng = args, tg, app, group_id, rng
        self.http = requests.Session()
        self.cycles: list[Cycle] = []

    def start(self) -> None:
        self.cycle(None)
        if self.cycles[-1].status != "succeeded":
            raise RuntimeError("the first cycle failed")

    def cycle(self, fault: str | None) -> None:
        self._arm(fault)
        note = ""
        if fault and fault.startswith("crash"):
            note = self._crash(fault)
            status = "crashed"
        else:
            run = collect_group(self.group_id, http=self.http)
            if run is None:
                raise RuntimeError("the collection lease was held by someone else")
            status = run.status
            if status == "failed":
                note = run.error_log.strip().splitlines()[-1]
        self.tg.clear_faults()
        self.tg.set_fault_rate(
            self.args.fault_rate / 3, seed=self.rng.randrange(2**31), codes=[502]
        )
        self.cycles.append(Cycle(len(self.cycles), fault, status, note))
        if self.args.verbose:
            print(f"cycle {len(self.cycles):3d} fault={fault or '-':<19} {status}  {note}")

    def _arm(self, fault: str | None) -> None:
        if fault == "retry":
            code = self.rng.choice((429, 502))
            self.tg.inject_error(
                code,
                method="getUpdates",
                times=self.rng.randint(1, MAX_RETRIES),
                retry_after=0 if code == 429 else None,
            )
        elif fault == "fail":
            self.tg.inject_error(502, method="getUpdates", times=MAX_RETRIES + 1)
        elif fault == "timeout":
            self.tg.inject_timeout(HTTP_TIMEOUT + 0.3)

    def _crash(self, fault: str) -> str:
        """Read a batch as a cycle would, then die before (or halfway through) recording it."""
        group = db.session.get(TrackedGroup, self.group_id)
        target = GroupTarget(group.group_id, TOKEN, group.posts_to_scan)
        collector = TelegramCollector.from_config(self.app.config, self.http)
        try:
            batch = collector.fetch(target, group.cursor, lambda phase, percent: None)
        except CollectorError as exc:
            return f"the crashed read failed anyway: {exc}" if self.args.verbose else ""
        if fault == "crash-after-events":
            apply_stream_changes(group, batch.changes)  # no cursor: as if it died right here
        db.session.remove()
        return ""

    def settle(self) -> None:
        """Clean cycles until one succeeds: everything so far is recorded."""
        self.tg.clear_faults()
        for _ in range(5):
            self.cycle(None)
            if self.cycles[-1].status == "succeeded":
                return
        raise RuntimeError("no clean cycle succeeded")

    def after_step(self, until: list[int]) -> None:
        until[0] -= 1
        if until[0]:
            return
        until[0] = self.rng.randint(1, 6)
        fault = self.rng.choice(FAULTS) if self.rng.random() < self.args.fault_rate else None
        self.cycle(fault)

    def finish(self) -> None:
        self.settle()
        self.cycle(None)


class Pusher:
    """Mode webhook: the sandbox pushes to the portal, losing some answers (duplicates)."""

    def __init__(self, args, tg: TelegramBotState, app, group_id: int, rng: random.Random):
        self.args, self.tg, self.app, self.group_id, self.rng = args, tg, app, group_id, rng
        self.cycles: list[Cycle] = []
        self.server: LiveServer | None = None

    def start(self) -> None:
        self.server = LiveServer(self.app)
        self.first_update = self.tg.bot(TOKEN).next_update_id - len(self.tg.bot(TOKEN).updates)
        self.tg.webhook_retry_min = 0.01
        group = db.session.get(TrackedGroup, self.group_id)
        set_webhook(group, f"{self.server.url}/hooks/telegram/{self.group_id}")
        db.session.remove()
        self.tg.set_fault_rate(self.args.fault_rate, seed=self.rng.randrange(2**31), codes=[502])

    def settle(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while self.tg.webhook_info(TOKEN)["pending_update_count"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"webhook not drained: {self.tg.webhook_info(TOKEN)}")
            time.sleep(0.01)

    def after_step(self, until: list[int]) -> None:
        return

    def finish(self) -> None:
        self.settle()
        self.tg.clear_faults()
        deliveries = self.tg.request_counts.get("webhook", 0)
        updates = self.tg.bot(TOKEN).next_update_id - self.first_update
        print(
            f"webhook: {deliveries} deliveries of {updates} updates ({deliveries - updates} again)"
        )
        self.cycles.append(Cycle(0, None, "drained"))
        if self.server is not None:
            self.server.stop()


@dataclass
class Outcome:
    expected: Counter
    found: Counter
    ledger_mismatches: list[tuple[int, int, int]]  # member, expected, found

    @property
    def missing(self) -> Counter:
        return self.expected - self.found

    @property
    def extra(self) -> Counter:
        return self.found - self.expected

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.ledger_mismatches)

    def summary(self) -> str:
        return (
            f"accuracy expected={self.expected.total()} found={self.found.total()} "
            f"missing={self.missing.total()} extra={self.extra.total()} "
            f"ledger_mismatch={len(self.ledger_mismatches)}"
        )


def compare(world: World) -> Outcome:
    """The database against the truth: events, and balances against a replay of the truth
    through the pure rules."""
    found = Counter(found_facts())
    timeline = [(utcnow(), world.facts)]
    return Outcome(
        Counter(world.facts), found, ledger_mismatches(timeline, world.linked, "telegram")
    )


def report(outcome: Outcome, actions: Counter, cycles: list[Cycle], limit: int = 25) -> None:
    print("actions: " + ", ".join(f"{k} {v}" for k, v in sorted(actions.items())))
    statuses = Counter(cycle.status for cycle in cycles)
    faults = Counter(cycle.fault for cycle in cycles if cycle.fault)
    print(
        f"cycles: {len(cycles)} ("
        + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        + "); scripted faults: "
        + (", ".join(f"{k} {v}" for k, v in sorted(faults.items())) or "none")
    )
    by_kind = Counter(f"{f[0]}:{f[4]}" if f[4] else f[0] for f in outcome.expected.elements())
    print("expected events: " + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
    for label, facts in (("missing", outcome.missing), ("extra", outcome.extra)):
        if facts:
            print(f"{label} ({facts.total()}):")
            for row, count in sorted(facts.items(), key=str)[:limit]:
                print(f"  {count} x {row}")
    for member_id, want, got in outcome.ledger_mismatches[:limit]:
        print(f"  ledger: member {member_id}: expected {want} points, database {got}")


def play(args: argparse.Namespace, tg: TelegramBotState, app) -> tuple[Outcome, Counter, list]:
    rng = random.Random(args.seed)
    world, users = setup_world(tg, rng, args.persons)
    install_seed_offers()
    group_id = add_group("telegram", str(CHANNEL), "Accuracy news", TOKEN).id
    driver = (Pusher if args.mode == "webhook" else Poller)(args, tg, app, group_id, rng)
    driver.start()
    script = Script(tg, world, rng, users, driver.settle)
    until = [rng.randint(1, 6)]
    for _ in range(args.actions):
        script.step()
        driver.after_step(until)
    driver.finish()
    db.session.remove()
    return compare(world), script.done, driver.cycles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", default="poll", choices=["poll", "webhook"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--actions", type=int, default=400)
    parser.add_argument("--persons", type=int, default=30)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: SQLite in a temporary file; PostgreSQL's public schema is DROPPED",
    )
    parser.add_argument("--verbose", action="store_true", help="a line per cycle, all logs")
    args = parser.parse_args(argv)
    if not 0 <= args.fault_rate <= 1 or args.persons < 2 or args.actions < 0:
        parser.error("--fault-rate must be in [0, 1], --persons at least 2")

    sandbox_app = create_sandbox_app()
    tg: TelegramBotState = sandbox_app.extensions["sandbox"].telegram
    started = time.perf_counter()
    with quiet_logs(args.verbose), tempfile.TemporaryDirectory() as workdir:
        server = LiveServer(sandbox_app)
        try:
            url = prepare_database(args.database_url, workdir)
            app = build_portal(url, server.url, max_retries=MAX_RETRIES, timeout=HTTP_TIMEOUT)
            app.config.update(
                TELEGRAM_BOT_API_URL=f"{server.url}/telegram-bot-api",
                TELEGRAM_MAX_RETRIES=MAX_RETRIES,
                TELEGRAM_BACKOFF_SECONDS=0.01,
                TELEGRAM_POLL_TIMEOUT_SECONDS=0,
            )
            with app.app_context():
                try:
                    outcome, actions, cycles = play(args, tg, app)
                finally:
                    db.session.remove()
                    db.engine.dispose()
        finally:
            tg.clear()
            server.stop()
    print(
        f"network=telegram mode={args.mode} seed={args.seed} actions={args.actions} "
        f"persons={args.persons} fault_rate={args.fault_rate} "
        f"seconds={time.perf_counter() - started:.1f}"
    )
    report(outcome, actions, cycles)
    print(outcome.summary())
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
