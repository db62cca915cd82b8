"""How long from a VK like to points in the ledger through the Callback API.

    python bench/callbacks.py [--likes 60] [--posts 20] [--members 30] [--database-url URL]

Builds the sandbox and the portal on live loopback ports (SQLite in a temporary file by
default), a tracked VK group with its baseline taken and callbacks on, and the sandbox's
callback hub in its automatic mode (as in the demo). Each like is made through the sandbox's
control endpoint (what the tester page calls), and the time is taken until the member's
new event is in the database (committed in one transaction with its points), read from
another connection every 2 ms. Half the likes are first likes (counted at once), half are
likes again after an unlike (checked against the VK API first).

Baseline, in the same run: a plain HTTP round trip to the portal (VK's confirmation request
to /hooks/vk). `ratio = median latency / median round trip`. The last line is
machine-readable:

    callbacks likes=<n> first_median_ms=<x> again_median_ms=<x> p95_ms=<x>
        roundtrip_ms=<x> ratio=<r>      (one line)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import create_engine, func, select  # noqa: E402

from app.collect.engine import collect_group  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Event  # noqa: E402
from app.services.groups import add_group, set_callbacks  # noqa: E402
from app.services.offers import install_seed_offers  # noqa: E402
from bench.accuracy import (  # noqa: E402
    LiveServer,
    add_member,
    build_portal,
    prepare_database,
    quiet_logs,
)
from sandbox import create_sandbox_app  # noqa: E402

GROUP_ID = 778001
TOKEN = "callbacks-bench-token"
SECRET = "benchCallbackSecret1"
CONFIRMATION = "b3nchc0n"
FIRST_USER = 430_000_001


def events_of(engine, member_id: int) -> int:
    """The member's events so far (each committed with its ledger entries)."""
    with engine.connect() as connection:
        return connection.scalar(select(func.count(Event.id)).where(Event.member_id == member_id))


def wait_for_entry(engine, member_id: int, before: int, started: float) -> float:
    while events_of(engine, member_id) == before:
        if time.perf_counter() - started > 10:
            raise RuntimeError(f"no event for member {member_id} within 10 s")
        time.sleep(0.002)
    return time.perf_counter() - started


def act(http: requests.Session, sandbox_url: str, **body) -> None:
    answer = http.post(f"{sandbox_url}/vk-api/control/act", json=body, timeout=5)
    answer.raise_for_status()


def measure(args, vk, sandbox_url: str, portal_url: str, url: str) -> dict[str, float]:
    vk.create_group(GROUP_ID, "Callback bench")
    posts = [vk.add_post(GROUP_ID, f"post {i}") for i in range(args.posts)]
    users = list(range(FIRST_USER, FIRST_USER + args.members))
    members = {user: add_member(user) for user in users}
    install_seed_offers()
    group = add_group("vk", str(GROUP_ID), "Callback bench", TOKEN, posts_to_scan=100)
    if collect_group(group.id).status != "succeeded":
        raise RuntimeError("the baseline cycle failed")
    set_callbacks(group.id, secret=SECRET, confirmation=CONFIRMATION)
    vk.callbacks.set_server(
        GROUP_ID, f"{portal_url}/hooks/vk", secret=SECRET, confirmation=CONFIRMATION
    )
    engine = create_engine(url)
    http = requests.Session()
    first: list[float] = []
    again: list[float] = []
    try:
        for index in range(args.likes):
            user = users[index % len(users)]
            post = posts[(index // len(users)) % len(posts)]
            member = members[user]
            before = events_of(engine, member)
            started = time.perf_counter()
            act(http, sandbox_url, action="like", group_id=GROUP_ID, user_id=user, post_id=post)
            first.append(wait_for_entry(engine, member, before, started))
            # Unliked and liked again: the second like is checked against VK before it counts.
            act(http, sandbox_url, action="unlike", group_id=GROUP_ID, user_id=user, post_id=post)
            vk.callbacks.wait_idle()
            before = events_of(engine, member)
            started = time.perf_counter()
            act(http, sandbox_url, action="like", group_id=GROUP_ID, user_id=user, post_id=post)
            again.append(wait_for_entry(engine, member, before, started))
        roundtrips = []
        for _ in range(max(20, args.likes)):
            started = time.perf_counter()
            http.post(
                f"{portal_url}/hooks/vk",
                json={"type": "confirmation", "group_id": GROUP_ID},
                timeout=5,
            ).raise_for_status()
            roundtrips.append(time.perf_counter() - started)
    finally:
        http.close()
        engine.dispose()
    every = sorted(first + again)
    return {
        "first": statistics.median(first),
        "again": statistics.median(again),
        "p95": every[int(0.95 * (len(every) - 1))],
        "roundtrip": statistics.median(roundtrips),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--likes", type=int, default=60)
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--members", type=int, default=30)
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: SQLite in a temporary file; PostgreSQL's public schema is DROPPED",
    )
    args = parser.parse_args(argv)
    if args.likes < 1 or args.posts < 1 or args.members < 1:
        parser.error("--likes, --posts and --members must be at least 1")
    if args.likes > args.posts * args.members:
        parser.error("--likes must be at most --posts times --members (one like a pair)")
    sandbox_app = create_sandbox_app()
    vk = sandbox_app.extensions["sandbox"].vk
    vk.rate_limit_per_second = None
    vk.register_token(TOKEN, kind="service")
    with quiet_logs(False), tempfile.TemporaryDirectory() as workdir:
        sandbox = LiveServer(sandbox_app)
        try:
            url = prepare_database(args.database_url, workdir)
            app = build_portal(url, sandbox.url, max_retries=2)
            portal = LiveServer(app)
            try:
                with app.app_context():
                    try:
                        figures = measure(args, vk, sandbox.url, portal.url, url)
                    finally:
                        db.session.remove()
                        db.engine.dispose()
            finally:
                portal.stop()
        finally:
            sandbox.stop()
    ms = {name: value * 1000 for name, value in figures.items()}
    median = statistics.median([figures["first"], figures["again"]])
    print(
        f"callbacks likes={args.likes * 2} first_median_ms={ms['first']:.1f} "
        f"again_median_ms={ms['again']:.1f} p95_ms={ms['p95']:.1f} "
        f"roundtrip_ms={ms['roundtrip']:.1f} ratio={median / figures['roundtrip']:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
