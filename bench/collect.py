"""Benchmark: one VK collection cycle of a big group, against the fewest requests possible.

    python bench/collect.py [--members 100000] [--posts 100] [--likes 300000]
        [--comments 20000] [--reposts 5000] [--fraction 0.01] [--linked 0] [--seed 1]
        [--per-second 3] [--database-url URL] [--in-process]

The sandbox runs in a subprocess (so the CPU time measured here is the portal's: collector,
diff, snapshot and event writes), with its VK rate limit at --per-second, and the portal's
collector paces itself at the same rate (VK_REQUESTS_PER_SECOND): the times are honest. The
sandbox generates the group (`generate_group`); the first cycle is the baseline and reads
everything; then `mutate(fraction)` changes about that share of the activity and members, and
a second, incremental cycle reads the group again. The last line printed is machine-readable.
"""

from __future__ import annotations

import argparse
import logging
import math
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from app.collect.engine import collect_group  # noqa: E402
from app.collect.vk import EXECUTE_LIMIT, PAGE  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import ActivitySnapshot, MemberSnapshot, TrackedGroup  # noqa: E402
from app.services.groups import add_group  # noqa: E402
from app.services.offers import install_seed_offers  # noqa: E402
from bench.accuracy import LiveServer, build_portal, prepare_database, quiet_logs  # noqa: E402

GROUP_ID = 888001
TOKEN = "collect-bench-token"  # the sandbox's own
INSPECTOR = "collect-bench-inspector"  # reads the sizes; TOKEN's rate window stays clean
VERSION = "5.199"

LAUNCHER = """
import logging, sys
sys.path.insert(0, {root!r})
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from werkzeug.serving import make_server
from sandbox import create_sandbox_app
server = make_server("127.0.0.1", 0, create_sandbox_app(), threaded=True)
print(server.server_port, flush=True)
server.serve_forever()
"""


class SandboxProcess:
    """The sandbox in its own process, driven through its /vk-api/control endpoints."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER.format(root=str(ROOT))],
            stdout=subprocess.PIPE,
            text=True,
        )
        port = self.process.stdout.readline().strip()
        if not port.isdigit():
            self.stop()
            raise RuntimeError("the sandbox process did not start")
        self.url = f"http://127.0.0.1:{port}"
        self.http = requests.Session()

    def control(self, path: str, body: dict | None = None, method: str = "POST") -> Any:
        response = self.http.request(method, f"{self.url}/vk-api/control/{path}", json=body)
        response.raise_for_status()
        return response.json()

    def api(self, method: str, **params) -> Any:
        data = {**params, "v": VERSION, "access_token": INSPECTOR}
        body = self.http.post(f"{self.url}/vk-api/method/{method}", data=data).json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["response"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class SandboxInProcess:
    """The same controls on an in-process sandbox (its work then counts in the CPU time)."""

    def __init__(self) -> None:
        from sandbox import create_sandbox_app

        self.app = create_sandbox_app()
        self.server = LiveServer(self.app)
        self.url = self.server.url
        self.http = requests.Session()

    control = SandboxProcess.control
    api = SandboxProcess.api

    def stop(self) -> None:
        self.server.stop()


def sizes(sandbox) -> tuple[int, list[dict]]:
    """Members, and each post's like, repost and comment counts, as the API reports them."""
    members = sandbox.api("groups.getMembers", group_id=GROUP_ID, count=0)["count"]
    posts = sandbox.api("wall.get", owner_id=-GROUP_ID, count=100, filter="owner")["items"]
    return members, [
        {
            "id": post["id"],
            "likes": post["likes"]["count"],
            "reposts": post["reposts"]["count"],
            "comments": post["comments"]["count"],
        }
        for post in posts
    ]


def minimum_requests(members: int, posts: list[dict]) -> tuple[int, int]:
    """N = the fewest API calls the page limits allow; the fewest executes, ceil(N / 25)."""
    calls = math.ceil(members / PAGE["groups.getMembers"])
    calls += math.ceil(len(posts) / PAGE["wall.get"])
    for post in posts:
        calls += math.ceil(post["likes"] / PAGE["likes.getList"])
        calls += math.ceil(post["reposts"] / PAGE["likes.getList"])
        calls += math.ceil(post["comments"] / PAGE["wall.getComments"])
    return calls, math.ceil(calls / EXECUTE_LIMIT)


def link_members(count: int, sandbox) -> int:
    """Link `count` of the group's members (first by id) to programme members."""
    if not count:
        return 0
    from app.models import LinkedProfile, Member
    from app.models.types import utcnow

    now = utcnow()
    ids = sandbox.api("groups.getMembers", group_id=GROUP_ID, count=min(count, 1000))["items"]
    offset = len(ids)
    while len(ids) < count:
        page = sandbox.api(
            "groups.getMembers", group_id=GROUP_ID, offset=offset, count=min(1000, count - offset)
        )["items"]
        if not page:
            break
        ids += page
        offset += len(page)
    for user in ids:
        member = Member(
            first_name=str(user),
            terms_version="bench",
            terms_accepted_at=now,
            data_processing_accepted_at=now,
        )
        member.profiles.append(LinkedProfile(network="vk", subject=str(user)))
        db.session.add(member)
    db.session.commit()
    return len(ids)


@dataclass(frozen=True)
class RunFigures:
    status: str
    requests: int
    items_read: int
    events_found: int
    errors: int
    error_log: str
    retries: dict[str, int]  # why, from the collector's "retrying" log lines


class RetryLog(logging.Handler):
    """Counts the collector's retries by reason (the run row does not keep them)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.reasons: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.endswith("retrying"):
            self.reasons[message.split(": ", 1)[-1].removesuffix(", retrying")] += 1


def timed_cycle(
    group_id: int, http: requests.Session, verbose: bool
) -> tuple[RunFigures, float, float]:
    """One cycle; its run's figures, wall seconds and this process's CPU seconds."""
    logger = logging.getLogger("app.collect.vk")
    counter, level, propagate = RetryLog(), logger.level, logger.propagate
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    logger.propagate = verbose
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        run = collect_group(group_id, http=http)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
        logger.propagate = propagate
    if run is None:
        raise RuntimeError("the collection lease was held by someone else")
    figures = RunFigures(
        run.status,
        run.requests,
        run.items_read,
        run.events_found,
        run.errors,
        run.error_log,
        dict(counter.reasons),
    )
    return figures, wall, cpu


def describe_retries(run: RunFigures) -> str:
    if not run.retries:
        return "no retries"
    total = sum(run.retries.values())
    return f"{total} retried (" + ", ".join(f"{k} x{v}" for k, v in run.retries.items()) + ")"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--likes", type=int, default=300_000)
    parser.add_argument("--comments", type=int, default=20_000)
    parser.add_argument("--reposts", type=int, default=5_000)
    parser.add_argument("--fraction", type=float, default=0.01, help="share mutated")
    parser.add_argument("--linked", type=int, default=0, help="members linked (make events)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-second", type=float, default=3.0, help="pacing and rate limit")
    parser.add_argument("--max-retries", type=int, default=5, help="VK_MAX_RETRIES")
    parser.add_argument("--timeout", type=float, default=10, help="HTTP_TIMEOUT_SECONDS")
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: SQLite in a temporary file; PostgreSQL's public schema is DROPPED",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="serve the sandbox in this process (its work then counts in collector_cpu_s)",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.posts > 100:
        parser.error("a tracked group scans at most 100 posts")

    sandbox = SandboxInProcess() if args.in_process else SandboxProcess()
    http = requests.Session()
    try:
        with quiet_logs(args.verbose), tempfile.TemporaryDirectory() as workdir:
            sandbox.control("tokens", {"token": TOKEN, "kind": "service"})
            sandbox.control("tokens", {"token": INSPECTOR, "kind": "service"})
            sandbox.control("rate-limit", {"per_second": None})  # until the cycles
            started = time.perf_counter()
            sandbox.control(
                "generate",
                {
                    "group_id": GROUP_ID,
                    "members": args.members,
                    "posts": args.posts,
                    "likes": args.likes,
                    "comments": args.comments,
                    "reposts": args.reposts,
                    "seed": args.seed,
                },
            )
            generated_s = time.perf_counter() - started
            members, posts = sizes(sandbox)
            calls_min, minimum = minimum_requests(members, posts)

            url = prepare_database(args.database_url, workdir)
            app = build_portal(
                url,
                sandbox.url,
                max_retries=args.max_retries,
                per_second=args.per_second,
                timeout=args.timeout,
            )
            with app.app_context():
                install_seed_offers()
                linked = link_members(args.linked, sandbox)
                group_id = add_group(
                    "vk", str(GROUP_ID), "Bench group", TOKEN, posts_to_scan=args.posts or 1
                ).id
                sandbox.control("rate-limit", {"per_second": args.per_second})
                sandbox.control("counts", method="DELETE")
                full, full_s, full_cpu = timed_cycle(group_id, http, args.verbose)
                full_counts = sandbox.control("counts", method="GET")
                snapshot_rows = db.session.scalar(
                    select(func.count()).select_from(ActivitySnapshot)
                ) + db.session.scalar(select(func.count()).select_from(MemberSnapshot))

                changes = sandbox.control(
                    "mutate", {"group_id": GROUP_ID, "fraction": args.fraction, "seed": args.seed}
                )
                sandbox.control("counts", method="DELETE")
                incremental, incremental_s, incremental_cpu = timed_cycle(
                    group_id, http, args.verbose
                )
                incremental_counts = sandbox.control("counts", method="GET")
                baseline_ok = db.session.get(TrackedGroup, group_id).baseline_at is not None
                db.session.remove()
                db.engine.dispose()
    finally:
        http.close()
        sandbox.stop()

    calls_made = sum(
        count for name, count in full_counts.items() if name not in ("execute", "total")
    )
    ratio = full.requests / minimum if minimum else float("nan")
    rows = [
        ("group", f"{members:,} members, {len(posts)} posts (generated in {generated_s:.1f} s)"),
        (
            "activity",
            f"{sum(p['likes'] for p in posts):,} likes, "
            f"{sum(p['comments'] for p in posts):,} comments, "
            f"{sum(p['reposts'] for p in posts):,} reposts",
        ),
        ("pacing / sandbox rate limit", f"{args.per_second:g} requests/s"),
        ("fewest API calls N", f"{calls_min:,}; fewest requests ceil(N/25) = {minimum}"),
        (
            "full cycle (baseline)",
            f"{full.status}, {full.requests} requests as recorded, {describe_retries(full)}; "
            f"{full_counts.get('total', 0)} reached the sandbox, {calls_made:,} API calls, "
            f"{full.items_read:,} items, {snapshot_rows:,} snapshot rows",
        ),
        ("  wall / CPU seconds", f"{full_s:.1f} / {full_cpu:.1f}"),
        (
            "mutation",
            ", ".join(f"{name} {value:,}" for name, value in changes.items()),
        ),
        (
            "incremental cycle",
            f"{incremental.status}, {incremental.requests} requests as recorded, "
            f"{describe_retries(incremental)}; "
            f"{incremental_counts.get('total', 0)} reached the sandbox, "
            f"{incremental.events_found:,} events ({linked:,} linked members)",
        ),
        ("  wall / CPU seconds", f"{incremental_s:.1f} / {incremental_cpu:.1f}"),
        (
            "sandbox",
            "in this process: its work is in the CPU time"
            if args.in_process
            else "in a subprocess: its work is not in the CPU time",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    problems = []
    if full.status != "succeeded" or incremental.status != "succeeded":
        problems.append(f"cycles ended {full.status} / {incremental.status}")
    if not baseline_ok:
        problems.append("the baseline was not recorded")
    for label, run in (("full", full), ("incremental", incremental)):
        if run.error_log:
            print(f"  {label} cycle errors: {run.error_log.strip()}")
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    print(
        f"collect requests={full.requests} minimum={minimum} request_ratio={ratio:.3f} "
        f"full_s={full_s:.1f} incremental_s={incremental_s:.1f} "
        f"collector_cpu_s={full_cpu + incremental_cpu:.1f}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
