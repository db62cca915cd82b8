"""VK Callback API at /hooks/vk, with the sandbox VK API on a live port for the checks it makes:
a change seen by a callback and by polling, in either order, counts once."""

from __future__ import annotations

import itertools
import logging
import threading
import time

import pytest
import requests
from flask import current_app
from sqlalchemy import create_engine, func, select, text

from app.collect.base import GroupTarget
from app.collect.engine import ReadingStart, _committed_seq, _record, collect_group
from app.collect.registry import collector_for
from app.extensions import db as app_db
from app.models import CollectionRun, ProviderNotification, TrackedGroup
from app.models.types import utcnow
from app.services.groups import GroupError, set_callbacks
from app.services.ledger import balance
from tests.integration.conftest import ANNA, BORIS, GROUP, TOKEN
from tests.integration.test_collection import events, member_for, tracked

pytestmark = pytest.mark.database

SECRET = "callbackSecret2026"
CONFIRMATION = "a1b2c3d4"
_ids = itertools.count(1)


@pytest.fixture
def group_id(ctx, vk) -> int:
    """A tracked group with callbacks on and its baseline taken."""
    tracked_id = tracked()
    set_callbacks(tracked_id, secret=SECRET, confirmation=CONFIRMATION)
    run = collect_group(tracked_id)
    assert run.status == "succeeded", run.error_log
    return tracked_id


def push(client, kind: str, obj: dict, *, event_id: str | None = None, secret=SECRET, group=GROUP):
    payload = {
        "type": kind,
        "object": obj,
        "group_id": group,
        "event_id": event_id or f"{next(_ids):040x}",
        "v": "5.199",
    }
    if secret is not None:
        payload["secret"] = secret
    return client.post("/hooks/vk", json=payload)


def like(kind: str, post: int, user: int) -> dict:
    return {
        "liker_id": user,
        "object_type": "post",
        "object_owner_id": -GROUP,
        "object_id": post,
        "post_id": 0,
        "thread_reply_id": 0,
    }


def outcome(event_id: str) -> str:
    return app_db.session.scalar(
        select(ProviderNotification.outcome).where(
            ProviderNotification.dedup_key == f"vk-callback:{GROUP}:{event_id}"
        )
    )


def test_confirmation_answers_the_configured_string(group_id, client):
    answer = client.post("/hooks/vk", json={"type": "confirmation", "group_id": GROUP})
    assert answer.status_code == 200
    assert answer.get_data(as_text=True) == CONFIRMATION


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("not json", 400, "Expected a JSON object"),
        ({"type": "like_add"}, 400, '"group_id"'),
        ({"type": "confirmation", "group_id": 99}, 404, "no callbacks configured"),
        ({"type": "like_add", "group_id": GROUP, "secret": SECRET}, 400, '"event_id"'),
    ],
)
def test_malformed_callbacks_are_refused_clearly(group_id, client, body, status, message):
    if isinstance(body, str):
        answer = client.post("/hooks/vk", data=body, content_type="application/json")
    else:
        answer = client.post("/hooks/vk", json=body)
    assert answer.status_code == status
    assert message in answer.get_data(as_text=True)


@pytest.mark.parametrize("secret", [None, "", "wrongSecret2026", SECRET.upper(), "sécret", 12345])
def test_a_wrong_or_missing_secret_changes_nothing_and_is_logged(
    group_id, client, vk, caplog, secret
):
    post = vk.add_post(GROUP, "Hello")
    member_for(ANNA)
    vk.like(GROUP, post, ANNA)
    with caplog.at_level(logging.WARNING, logger="app.collect.vk_callbacks"):
        answer = push(client, "like_add", like("like_add", post, ANNA), secret=secret)
    assert answer.status_code == 403
    assert events() == []
    assert app_db.session.scalar(select(func.count(ProviderNotification.id))) == 0
    assert "wrong or missing secret" in caplog.text


def test_a_like_counts_at_once_and_once_for_callback_retries_and_polling(group_id, client, vk):
    post = vk.add_post(GROUP, "Hello")
    anna = member_for(ANNA)
    vk.like(GROUP, post, ANNA)
    answer = push(client, "like_add", like("like_add", post, ANNA), event_id="e1")
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "ok"
    assert events() == [("activity", str(ANNA), str(post), "like")]
    assert balance(anna) == 5, "the first like's points, without waiting for a poll"

    assert push(client, "like_add", like("like_add", post, ANNA), event_id="e1").status_code == 200
    assert outcome("e1") == "counted"
    push(client, "like_add", like("like_add", post, ANNA), event_id="e2")
    assert outcome("e2") == "already counted", "another event about the same like"
    run = collect_group(group_id)
    assert run.status == "succeeded" and run.events_found == 0
    assert len(events()) == 1 and balance(anna) == 5


def test_polling_first_then_the_late_callback_counts_once(group_id, client, vk):
    post = vk.add_post(GROUP, "Hello")
    anna = member_for(ANNA)
    vk.like(GROUP, post, ANNA)
    assert collect_group(group_id).events_found == 1
    push(client, "like_add", like("like_add", post, ANNA), event_id="late")
    assert outcome("late") == "already counted"
    assert len(events()) == 1 and balance(anna) == 5


def test_a_stale_callback_after_polling_saw_the_like_come_and_go_counts_nothing(
    group_id, client, vk
):
    post = vk.add_post(GROUP, "Hello")
    member_for(ANNA)
    vk.like(GROUP, post, ANNA)
    collect_group(group_id)
    vk.unlike(GROUP, post, ANNA)
    collect_group(group_id)
    assert [e[0] for e in events()] == ["activity", "activity_deleted"]

    push(client, "like_add", like("like_add", post, ANNA), event_id="stale-add")
    assert outcome("stale-add") == "stale: VK shows no change", "checked against VK"
    assert len(events()) == 2
    assert collect_group(group_id).events_found == 0


def test_a_real_like_again_after_an_unlike_is_checked_and_counted(group_id, client, vk):
    post = vk.add_post(GROUP, "Hello")
    member_for(ANNA)
    vk.like(GROUP, post, ANNA)
    push(client, "like_add", like("like_add", post, ANNA))
    vk.unlike(GROUP, post, ANNA)
    push(client, "like_remove", like("like_remove", post, ANNA), event_id="rm")
    assert outcome("rm") == "counted after checking VK"
    vk.like(GROUP, post, ANNA)
    push(client, "like_add", like("like_add", post, ANNA), event_id="again")
    assert outcome("again") == "counted after checking VK"
    assert [e[0] for e in events()] == ["activity", "activity_deleted", "activity"]
    assert collect_group(group_id).events_found == 0


def test_callbacks_out_of_order_never_count_a_change_twice(group_id, client, vk):
    post = vk.add_post(GROUP, "Hello")
    member_for(ANNA)
    vk.like(GROUP, post, ANNA)
    vk.unlike(GROUP, post, ANNA)
    # The removal arrives first: nothing to remove yet.
    push(client, "like_remove", like("like_remove", post, ANNA), event_id="rm")
    assert outcome("rm") == "already counted"
    # The like it undid arrives late: a real like, counted; polling then sees it gone.
    push(client, "like_add", like("like_add", post, ANNA), event_id="add")
    assert outcome("add") == "counted"
    collect_group(group_id)
    assert [e[0] for e in events()] == ["activity", "activity_deleted"]
    assert collect_group(group_id).events_found == 0


def test_a_reading_older_than_a_callback_leaves_that_item_to_the_next_cycle(group_id, client, vk):
    post = vk.add_post(GROUP, "Hello")
    anna = member_for(ANNA)
    group = app_db.session.get(TrackedGroup, group_id)
    # A cycle reads before Anna's like...
    started = ReadingStart(utcnow(), _committed_seq(group_id))
    collector = collector_for("vk", current_app.config, requests.Session())
    reading = collector.read(GroupTarget(str(GROUP), TOKEN, 20), lambda phase, percent: None)
    # ...the like and its callback land while the cycle is still reading...
    vk.like(GROUP, post, ANNA)
    push(client, "like_add", like("like_add", post, ANNA))
    assert balance(anna) == 5
    # ...and the cycle's older reading (no like) must not remove it.
    run = CollectionRun(tracked_group_id=group_id)
    app_db.session.add(run)
    app_db.session.commit()
    _record(run, group, reading, started, lambda phase, percent: None)
    assert [e[0] for e in events()] == ["activity"]
    assert balance(anna) == 5
    assert collect_group(group_id).events_found == 0


def test_membership_comments_and_reposts_by_callback(group_id, client, vk):
    post = vk.add_post(GROUP, "Hello")
    member_for(BORIS)
    vk.leave(GROUP, BORIS)
    push(client, "group_leave", {"user_id": BORIS, "self": 1}, event_id="leave")
    vk.join(GROUP, BORIS)
    push(client, "group_join", {"user_id": BORIS, "join_type": "join"}, event_id="join")
    comment = vk.comment(GROUP, post, BORIS, "Nice")
    push(
        client,
        "wall_reply_new",
        {
            "id": comment,
            "from_id": BORIS,
            "date": 1,
            "text": "Nice",
            "post_id": post,
            "post_owner_id": -GROUP,
            "owner_id": -GROUP,
        },
    )
    # A reply in a comment's thread: polling reads top-level comments only, so neither counts.
    push(
        client,
        "wall_reply_new",
        {
            "id": comment + 100,
            "from_id": BORIS,
            "post_id": post,
            "owner_id": -GROUP,
            "parents_stack": [comment],
        },
        event_id="thread",
    )
    assert outcome("thread") == "not counted"
    repost = vk.repost(GROUP, post, BORIS)
    push(
        client,
        "wall_repost",
        {
            "id": repost,
            "owner_id": BORIS,
            "from_id": BORIS,
            "copy_history": [{"id": post, "owner_id": -GROUP, "from_id": -GROUP}],
        },
    )
    # A moderator deletes the comment: the author's comment is the one removed.
    vk.delete_comment(GROUP, post, comment)
    push(
        client,
        "wall_reply_delete",
        {"owner_id": -GROUP, "id": comment, "deleter_id": 1, "post_id": post},
        event_id="delete",
    )
    assert outcome("delete") == "counted after checking VK"
    assert outcome("leave") == "counted after checking VK"
    assert outcome("join") == "counted after checking VK"
    assert events() == [
        ("left_group", str(BORIS), None, None),
        ("joined_group", str(BORIS), None, None),
        ("activity", str(BORIS), str(post), "comment"),
        ("activity", str(BORIS), str(post), "repost"),
        ("activity_deleted", str(BORIS), str(post), "comment"),
    ]
    assert collect_group(group_id).events_found == 0, "polling agrees with every callback"


def test_a_callback_vk_cannot_confirm_is_left_to_polling(group_id, client, vk):
    post = vk.add_post(GROUP, "Hello")
    member_for(ANNA)
    vk.like(GROUP, post, ANNA)
    collect_group(group_id)
    vk.unlike(GROUP, post, ANNA)
    vk.inject_error(15, method="likes.getList", times=10)
    push(client, "like_remove", like("like_remove", post, ANNA), event_id="unconfirmed")
    assert outcome("unconfirmed") == "left to polling: VK could not confirm it"
    assert [e[0] for e in events()] == ["activity"]
    vk.clear_faults()
    assert collect_group(group_id).events_found == 1
    assert [e[0] for e in events()] == ["activity", "activity_deleted"]


def test_callbacks_before_the_baseline_are_not_counted(ctx, client, vk):
    post = vk.add_post(GROUP, "Hello")
    member_for(ANNA)
    tracked_id = tracked()
    set_callbacks(tracked_id, secret=SECRET, confirmation=CONFIRMATION)
    vk.like(GROUP, post, ANNA)
    push(client, "like_add", like("like_add", post, ANNA), event_id="early")
    assert outcome("early") == "before the baseline"
    collect_group(tracked_id)
    assert events() == [], "the baseline holds the like"


def test_other_objects_and_walls_are_not_counted(group_id, client, vk):
    post = vk.add_post(GROUP, "Hello")
    member_for(ANNA)
    photo = {**like("like_add", post, ANNA), "object_type": "photo"}
    push(client, "like_add", photo, event_id="photo")
    other_wall = {**like("like_add", post, ANNA), "object_owner_id": -1}
    push(client, "like_add", other_wall, event_id="other")
    push(client, "message_new", {"message": {}}, event_id="message")
    assert {outcome(e) for e in ("photo", "other", "message")} == {"not counted"}
    assert events() == []


@pytest.mark.parametrize(
    ("secret", "confirmation", "message"),
    [
        ("short", "a1b2c3d4", "8 to 50"),
        ("has spaces in it", "a1b2c3d4", "8 to 50"),
        ("callbackSecret2026", "", "confirmation string"),
    ],
)
def test_callback_settings_are_checked(ctx, vk, secret, confirmation, message):
    tracked_id = tracked()
    with pytest.raises(GroupError, match=message):
        set_callbacks(tracked_id, secret=secret, confirmation=confirmation)


def test_the_callbacks_command_turns_callbacks_on_and_off(ctx, client, vk):
    tracked_id = tracked()
    runner = ctx.test_cli_runner()
    missing = runner.invoke(args=["groups", "callbacks", str(tracked_id), "--secret", SECRET])
    assert missing.exit_code != 0 and "--confirmation" in missing.output
    on = runner.invoke(
        args=[
            "groups",
            "callbacks",
            str(tracked_id),
            "--secret",
            SECRET,
            "--confirmation",
            CONFIRMATION,
        ]
    )
    assert on.exit_code == 0, on.output
    answer = client.post("/hooks/vk", json={"type": "confirmation", "group_id": GROUP})
    assert answer.get_data(as_text=True) == CONFIRMATION
    assert "callbacks on" in runner.invoke(args=["groups", "list"]).output
    off = runner.invoke(args=["groups", "callbacks", str(tracked_id), "--off"])
    assert off.exit_code == 0, off.output
    answer = client.post("/hooks/vk", json={"type": "confirmation", "group_id": GROUP})
    assert answer.status_code == 404


def test_a_malformed_repost_is_not_counted(group_id, client, vk):
    answer = push(
        client,
        "wall_repost",
        {"id": 5, "owner_id": ANNA, "copy_history": {"id": 1}},
        event_id="odd",
    )
    assert answer.status_code == 200 and outcome("odd") == "not counted"


def test_a_callback_about_a_post_polling_does_not_read_counts_nothing(ctx, client, vk):
    old = vk.add_post(GROUP, "old")
    new = vk.add_post(GROUP, "new")
    anna = member_for(ANNA)
    tracked_id = tracked(posts_to_scan=1)
    set_callbacks(tracked_id, secret=SECRET, confirmation=CONFIRMATION)
    collect_group(tracked_id)
    vk.like(GROUP, old, ANNA)
    push(client, "like_add", like("like_add", old, ANNA), event_id="old-like")
    assert outcome("old-like") == "not counted: older than the posts polling reads"
    assert balance(anna) == 0, "its removal would never be seen: nothing is counted"
    vk.like(GROUP, new, ANNA)
    push(client, "like_add", like("like_add", new, ANNA), event_id="new-like")
    newer = vk.add_post(GROUP, "newer")
    vk.like(GROUP, newer, ANNA)
    push(client, "like_add", like("like_add", newer, ANNA), event_id="newer-like")
    assert outcome("new-like") == "counted" and outcome("newer-like") == "counted"


def test_no_lock_is_held_while_vk_is_asked(group_id, client, vk, app, database_url):
    """A slow check must not stop the rest of the portal writing (SQLite has one writer)."""
    post = vk.add_post(GROUP, "Hello")
    member_for(ANNA)
    vk.like(GROUP, post, ANNA)
    collect_group(group_id)
    vk.unlike(GROUP, post, ANNA)
    vk.inject_timeout(1.5, times=1)  # VK answers the check slowly (within the check timeout)
    result = {}

    def callback() -> None:
        with app.test_client() as other_client:
            result["answer"] = push(
                other_client, "like_remove", like("like_remove", post, ANNA), event_id="slow"
            )

    thread = threading.Thread(target=callback)
    thread.start()
    time.sleep(0.5)
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"timeout": 0.5})
    else:
        engine = create_engine(database_url, connect_args={"options": "-c lock_timeout=500"})
    try:
        began = time.monotonic()
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE tracked_groups SET name = name WHERE id = :id"), {"id": group_id}
            )
        waited = time.monotonic() - began
    finally:
        thread.join()
        engine.dispose()
    assert waited < 0.5
    assert result["answer"].status_code == 200
    assert outcome("slow") == "counted after checking VK"
    assert [e[0] for e in events()] == ["activity", "activity_deleted"]


def test_a_cycle_never_counts_again_what_a_callback_waiting_for_a_member_counted(
    group_id, client, vk, app, database_url
):
    """PostgreSQL: the callback holds the group's lock and waits for the member's row (another
    transaction on that member holds it) while a cycle reads; the cycle must not count the
    like again once the callback commits."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    post = vk.add_post(GROUP, "Hello")
    anna = member_for(ANNA)
    vk.like(GROUP, post, ANNA)
    engine = create_engine(database_url)
    holder = engine.connect()
    transaction = holder.begin()
    holder.execute(text("SELECT id FROM members WHERE id = :m FOR NO KEY UPDATE"), {"m": anna})
    result = {}

    def callback() -> None:
        with app.test_client() as other_client:
            result["answer"] = push(
                other_client, "like_add", like("like_add", post, ANNA), event_id="waits"
            )

    def release() -> None:
        time.sleep(2.0)
        transaction.commit()
        holder.close()

    threads = [threading.Thread(target=callback), threading.Thread(target=release)]
    threads[0].start()
    time.sleep(0.5)
    threads[1].start()
    try:
        run = collect_group(group_id)
    finally:
        for thread in threads:
            thread.join()
        engine.dispose()
    assert result["answer"].status_code == 200 and outcome("waits") == "counted"
    assert run.events_found == 0
    assert [e[0] for e in events()] == ["activity"] and balance(anna) == 5
    assert collect_group(group_id).events_found == 0


def test_each_group_may_have_its_own_url(group_id, client, vk):
    own = client.post(f"/hooks/vk/{group_id}", json={"type": "confirmation", "group_id": GROUP})
    assert own.status_code == 200 and own.get_data(as_text=True) == CONFIRMATION
    other = client.post(
        f"/hooks/vk/{group_id + 1}", json={"type": "confirmation", "group_id": GROUP}
    )
    assert other.status_code == 400 and "the event is VK group" in other.get_data(as_text=True)


def test_old_event_ids_are_forgotten_after_the_keep_days(group_id, client, vk):
    from datetime import timedelta

    from app.collect.vk_callbacks import forget_old_callbacks

    post = vk.add_post(GROUP, "Hello")
    push(client, "like_add", like("like_add", post, ANNA), event_id="anna")
    push(client, "like_add", like("like_add", post, BORIS), event_id="boris")
    assert forget_old_callbacks(utcnow() + timedelta(days=6)) == 0, "kept for 7 days"
    assert outcome("anna") == "counted"
    assert forget_old_callbacks(utcnow() + timedelta(days=8)) == 2
    assert outcome("anna") is None and outcome("boris") is None
