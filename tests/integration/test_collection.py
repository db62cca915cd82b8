"""Collection cycles against the sandbox VK API over real HTTP: every change exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select, update

from app.collect.engine import collect_group
from app.extensions import db as app_db
from app.models import CollectionRun, Lease, LedgerEntry
from app.models import Event as EventRow
from app.models.types import utcnow
from app.services.groups import GroupError, add_group
from app.services.ledger import balance
from tests.helpers import linked_member, recorded_events
from tests.integration.conftest import ANNA, BORIS, CHEN, GROUP, TOKEN

pytestmark = pytest.mark.database


def member_for(vk_user: int) -> int:
    return linked_member("vk", vk_user)


def tracked(**kwargs) -> int:
    return add_group("vk", str(GROUP), "Club", TOKEN, **kwargs).id


def events() -> list[tuple]:
    return recorded_events()


def test_first_cycle_is_the_baseline_then_changes_become_events(ctx, vk):
    post = vk.add_post(GROUP, "Hello")
    vk.like(GROUP, post, ANNA)
    anna = member_for(ANNA)
    group_id = tracked()
    first = collect_group(group_id)
    assert first.status == "succeeded" and first.events_found == 0
    assert events() == [], "what existed before is the baseline"

    vk.unlike(GROUP, post, ANNA)
    vk.comment(GROUP, post, ANNA, "Nice")
    vk.repost(GROUP, post, ANNA)
    vk.leave(GROUP, ANNA)
    second = collect_group(group_id)
    assert second.status == "succeeded"
    assert sorted(events()) == sorted(
        [
            ("left_group", str(ANNA), None, None),
            ("activity_deleted", str(ANNA), str(post), "like"),
            ("activity", str(ANNA), str(post), "comment"),
            ("activity", str(ANNA), str(post), "repost"),
        ]
    )
    assert balance(anna) == 3 + 10
    assert collect_group(group_id).events_found == 0, "nothing changed, nothing found"


def test_only_linked_members_make_events_and_linking_later_keeps_the_baseline(ctx, vk):
    post = vk.add_post(GROUP)
    group_id = tracked()
    collect_group(group_id)
    vk.like(GROUP, post, BORIS)  # Boris is not a member of the programme yet
    collect_group(group_id)
    assert events() == []
    boris = member_for(BORIS)
    collect_group(group_id)
    assert events() == [], "his earlier like is not news"
    second = vk.add_post(GROUP)
    vk.like(GROUP, second, BORIS)
    collect_group(group_id)
    assert events() == [("activity", str(BORIS), str(second), "like")]
    assert balance(boris) == 5


def test_a_list_vk_will_not_give_is_not_read_as_everyone_leaving(ctx, vk):
    post = vk.add_post(GROUP)
    vk.comment(GROUP, post, ANNA, "first")
    member_for(ANNA)
    group_id = tracked()
    collect_group(group_id)
    vk.inject_error(212, method="wall.getComments", times=1)
    run = collect_group(group_id)
    assert run.status == "partial" and run.errors >= 1
    assert events() == []
    vk.comment(GROUP, post, ANNA, "second")
    collect_group(group_id)
    assert [e[0] for e in events()] == ["activity"]


@pytest.mark.parametrize("code", [6, 9, 10, 29])
def test_rate_and_flood_errors_are_retried(ctx, vk, code):
    post = vk.add_post(GROUP)
    member_for(ANNA)
    group_id = tracked()
    collect_group(group_id)
    vk.like(GROUP, post, ANNA)
    vk.inject_error(code, times=2)
    run = collect_group(group_id)
    assert run.status == "succeeded"
    assert events() == [("activity", str(ANNA), str(post), "like")]


def test_timeouts_are_retried(ctx, vk):
    post = vk.add_post(GROUP)
    member_for(ANNA)
    group_id = tracked()
    collect_group(group_id)
    vk.like(GROUP, post, ANNA)
    vk.inject_timeout(3, times=1)
    run = collect_group(group_id)
    assert run.status == "succeeded" and len(events()) == 1


def test_a_run_that_cannot_finish_applies_nothing_and_the_next_catches_up(ctx, vk):
    post = vk.add_post(GROUP)
    member_for(ANNA)
    group_id = tracked()
    collect_group(group_id)
    vk.like(GROUP, post, ANNA)
    vk.inject_error(6, times=100)
    failed = collect_group(group_id)
    assert failed.status == "failed" and events() == []
    vk.clear_faults() if hasattr(vk, "clear_faults") else vk.inject_error(6, times=0)
    assert collect_group(group_id).events_found == 1


def test_requests_are_batched_through_execute(ctx, vk):
    posts = [vk.add_post(GROUP) for _ in range(30)]
    for post in posts:
        vk.like(GROUP, post, ANNA)
        vk.comment(GROUP, post, BORIS, "hi")
    group_id = tracked(posts_to_scan=30)
    vk.reset_counts()
    run = collect_group(group_id)
    # wall.get and the first members page, then 30 likes and 30 comments pages: 2 + 60 calls
    # in 1 + 3 executes (the second round needs the counts the first one gives).
    assert run.requests == vk.request_counts["execute"] == 4
    assert vk.request_counts.get("likes.getList") == 30


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"group_id": "club"}, "must be a number"),
        ({"token": " "}, "access token is required"),
        ({"posts_to_scan": 0}, "between 1 and 100"),
        ({"interval_seconds": 1}, "at least 10 seconds"),
        ({"network": "myspace"}, "no collector reads"),
    ],
)
def test_bad_group_settings_are_refused(ctx, kwargs, message):
    values = {"network": "vk", "group_id": "1", "name": "x", "token": "t", **kwargs}
    extra = {k: values.pop(k) for k in ("posts_to_scan", "interval_seconds") if k in values}
    with pytest.raises(GroupError, match=message):
        add_group(values["network"], values["group_id"], values["name"], values["token"], **extra)


def test_groups_cli(collecting, app, vk):
    runner = app.test_cli_runner()
    added = runner.invoke(
        args=[
            "groups",
            "add",
            "--group-id",
            str(GROUP),
            "--name",
            "Club",
            "--token",
            TOKEN,
            "--interval",
            "60",
        ]
    )
    assert added.exit_code == 0 and "as #1" in added.output
    assert "Club" in runner.invoke(args=["groups", "list"]).output
    run = runner.invoke(args=["collect", "run", "--group", "1"])
    assert run.exit_code == 0 and "#1: succeeded" in run.output
    again = runner.invoke(args=["groups", "add", "--group-id", str(GROUP), "--token", TOKEN])
    assert again.exit_code != 0 and "already tracked" in again.output


CRASHER = """
import os, sys
sys.path.insert(0, {root!r})
from app import create_app
from app.collect.engine import collect_group
app = create_app("testing", **{settings!r})
with app.app_context():
    print("started", flush=True)
    collect_group({group_id})
"""


def test_killed_mid_run_the_next_run_makes_exactly_the_missing_events(ctx, collecting, vk):
    """Kill a collecting process right after it committed a chunk, twice; then run again."""
    posts = [vk.add_post(GROUP) for _ in range(20)]
    users = list(range(2000000, 2000200))
    for user in users:
        vk.join(GROUP, user)
        member_for(user)
    group_id = tracked(posts_to_scan=20)
    collect_group(group_id)
    for user in users:
        for post in posts:
            vk.like(GROUP, post, user)
    expected = len(users) * len(posts)  # 4,000 changes: four chunks
    root = str(Path(__file__).resolve().parents[2])
    seen = [0]
    for _ in range(2):
        script = CRASHER.format(root=root, settings=dict(collecting), group_id=group_id)
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        process.stdout.readline()
        deadline = time.monotonic() + 60
        while _event_count() == seen[-1] and time.monotonic() < deadline:
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        seen.append(_event_count())
        # The dead process's lease on the group runs out (fast-forwarded here).
        app_db.session.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
        app_db.session.commit()
    assert 0 < seen[1] < seen[2] < expected, f"each kill landed mid-run: {seen}"
    assert collect_group(group_id).status == "succeeded"
    pairs = app_db.session.execute(select(EventRow.subject, EventRow.object_id)).all()
    assert len(pairs) == expected and len(set(pairs)) == expected
    # Twenty likes each: 5 for the first, then 1 each, up to the monthly cap of 15.
    paid = app_db.session.scalar(select(func.sum(LedgerEntry.amount)))
    assert paid == len(users) * 15


def _event_count() -> int:
    app_db.session.rollback()
    return app_db.session.scalar(select(func.count()).select_from(EventRow))


def test_the_scheduler_tick_collects_due_groups_once_per_interval(ctx, vk):
    from app.collect.scheduler import tick

    post = vk.add_post(GROUP)
    member_for(ANNA)
    group_id = tracked(interval_seconds=3600)
    assert tick(ctx) is True
    vk.like(GROUP, post, ANNA)
    assert tick(ctx) is True
    runs = app_db.session.scalars(select(CollectionRun)).all()
    assert len(runs) == 1, "not due again before its interval"
    app_db.session.execute(update(CollectionRun).values(started_at=utcnow() - timedelta(hours=2)))
    app_db.session.commit()
    tick(ctx)
    assert events() == [("activity", str(ANNA), str(post), "like")]
    assert group_id


def test_operator_page_shows_runs_to_staff_only(collecting, app, vk, sandbox):
    from tests.helpers import csrf_token, sign_up

    with app.app_context():
        tracked_id = tracked()
        collect_group(tracked_id)
    member = app.test_client()
    sign_up(member, "001001.anna")
    assert member.get("/ops/runs").status_code == 403
    staff = app.test_client()
    assert staff.get("/ops/runs").headers["Location"].startswith("/staff/login")
    runner = app.test_cli_runner()
    runner.invoke(
        args=[
            "staff",
            "create",
            "--email",
            "ops@example.com",
            "--password",
            "correct horse battery",
        ]
    )
    staff.post(
        "/staff/login",
        data={
            "csrf_token": csrf_token(staff, "/staff/login"),
            "email": "ops@example.com",
            "password": "correct horse battery",
        },
    )
    page = staff.get("/ops/runs").get_data(as_text=True)
    assert 'data-test="run-1"' in page and "succeeded" in page and "last success" in page
    assert 'hx-trigger="every 2s"' in page
    partial = staff.get("/ops/runs", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in partial and 'data-test="run-1"' in partial


def test_a_partial_first_reading_postpones_the_baseline(ctx, vk):
    post = vk.add_post(GROUP)
    vk.comment(GROUP, post, ANNA, "before")
    anna = member_for(ANNA)
    group_id = tracked()
    vk.inject_error(15, method="groups.getMembers", times=1)
    vk.inject_error(212, method="wall.getComments", times=1)
    first = collect_group(group_id)
    assert first.status == "partial" and "baseline postponed" in first.error_log
    collect_group(group_id)
    collect_group(group_id)
    assert events() == [] and balance(anna) == 0


def test_a_baseline_cut_short_by_a_crash_is_redone(ctx, vk):
    from app.models import MemberSnapshot

    vk.add_post(GROUP)
    group_id = tracked()
    # What a baseline killed after its first chunk leaves: some rows, and no baseline_at.
    app_db.session.add_all(
        [MemberSnapshot(tracked_group_id=group_id, subject=s) for s in (str(ANNA), "999")]
    )
    app_db.session.commit()
    run = collect_group(group_id)
    assert run.status == "succeeded"
    members = set(app_db.session.scalars(select(MemberSnapshot.subject)))
    assert members == {str(ANNA), str(BORIS), str(CHEN)}


class ChurningSession(requests.Session):
    """Real HTTP; between the first and second request someone leaves the group."""

    def __init__(self, vk, user) -> None:
        super().__init__()
        self.vk, self.user, self.requests_made = vk, user, 0

    def post(self, *args, **kwargs):
        response = super().post(*args, **kwargs)
        self.requests_made += 1
        if self.requests_made == 1:
            self.vk.leave(GROUP, self.user)
        return response


def test_a_list_that_changes_between_its_pages_is_read_again_not_guessed(ctx, vk):
    users = list(range(3000000, 3001500))
    for user in users:
        vk.join(GROUP, user)
    watched = member_for(users[1000])  # first on the second page
    group_id = tracked()
    collect_group(group_id)
    run = collect_group(group_id, http=ChurningSession(vk, users[0]))
    assert run.status == "partial" and "changed while being read" in run.error_log
    assert events() == [], "no false leave for the member who moved to the first page"
    collect_group(group_id)
    assert events() == [], "the next reading is consistent; the leaver is not linked"
    assert balance(watched) == 0
