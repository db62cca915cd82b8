"""Telegram collection against the sandbox Bot API over real HTTP: getUpdates cycles, the
webhook, and the accuracy driver. Every change is one event, whatever is read twice."""

from __future__ import annotations

import re
import time

import pytest
import requests
from sqlalchemy import select

from app.collect.base import CollectorError, GroupTarget
from app.collect.engine import apply_stream_changes, collect_group
from app.collect.telegram import TelegramCollector, delete_webhook, set_webhook
from app.extensions import db as app_db
from app.models import Event as EventRow
from app.models import TrackedGroup
from app.services.crypto import decrypt_text
from app.services.groups import add_group
from app.services.ledger import balance
from app.services.offers import install_seed_offers
from tests.helpers import linked_member, recorded_events

TOKEN = "7300001:loyalink-collector-bot"
CHANNEL, DISCUSSION = -1001500000001, -1001500000002
ANNA, BORIS, CHEN = 7001001, 7001002, 7001003
SUMMARY = re.compile(
    r"accuracy expected=(\d+) found=(\d+) missing=(\d+) extra=(\d+) ledger_mismatch=(\d+)"
)


@pytest.fixture
def tg(sandbox):
    state = sandbox.state.telegram
    state.clear()
    state.create_bot(TOKEN)
    state.create_channel(CHANNEL, "Loyalink news", discussion_id=DISCUSSION, admins=[TOKEN])
    yield state
    state.clear()


@pytest.fixture
def collecting(settings, tg):
    settings.update(
        HTTP_TIMEOUT_SECONDS=1,
        TELEGRAM_BACKOFF_SECONDS=0.01,
        TELEGRAM_MAX_RETRIES=3,
        TELEGRAM_POLL_TIMEOUT_SECONDS=0,
    )
    return settings


@pytest.fixture
def ctx(collecting, app):
    with app.app_context():
        install_seed_offers()
        yield app
        app_db.session.remove()


def member_for(user: int) -> int:
    return linked_member("telegram", user)


def tracked() -> int:
    return add_group("telegram", str(CHANNEL), "Loyalink news", TOKEN).id


def events() -> list[tuple]:
    return recorded_events(with_item=True)


def started(group_id: int) -> None:
    """The first cycle: it names chat_member and message_reaction in allowed_updates, and
    Telegram creates such updates only from then on."""
    run = collect_group(group_id)
    assert run.status == "succeeded", run.error_log


@pytest.mark.database
def test_updates_become_events_and_ledger_effects_exactly_once(ctx, tg):
    anna = member_for(ANNA)
    member_for(BORIS)
    group_id = tracked()
    started(group_id)
    post = tg.publish(CHANNEL, "Hello")
    tg.join(CHANNEL, ANNA)
    tg.react(CHANNEL, post, ANNA, "👍")
    tg.react(CHANNEL, post, ANNA, "❤")  # a changed emoji is the same like
    comment = tg.comment(CHANNEL, post, ANNA, "Nice")
    tg.comment(CHANNEL, post, BORIS, "Me too", reply_to=comment)
    tg.delete_comment(CHANNEL, comment)  # Telegram says nothing: the comment keeps its points
    tg.react(CHANNEL, post, ANNA, None)
    tg.react(CHANNEL, post, BORIS, "🔥", where="channel")  # anonymous: nobody to reward
    tg.react(CHANNEL, post, CHEN, "🔥")  # not a member of the programme
    tg.leave(CHANNEL, ANNA)
    run = collect_group(group_id)
    assert run.status == "succeeded", run.error_log
    assert events() == [
        ("joined_group", str(ANNA), None, None, None),
        ("activity", str(ANNA), str(post), "like", None),
        ("activity", str(ANNA), str(post), "comment", str(comment)),
        ("activity", str(BORIS), str(post), "comment", str(comment + 1)),
        ("activity_deleted", str(ANNA), str(post), "like", None),
        ("left_group", str(ANNA), None, None, None),
    ]
    assert balance(anna) == 20 + 5 + 3 - 20
    assert collect_group(group_id).status == "succeeded"
    assert len(events()) == 6, "nothing new the second time"


@pytest.mark.database
def test_the_run_counts_the_events_it_found(ctx, tg):
    member_for(ANNA)
    group_id = tracked()
    started(group_id)
    tg.join(CHANNEL, ANNA)
    assert collect_group(group_id).events_found == 1


@pytest.mark.database
def test_the_cursor_is_kept_so_a_restart_reads_nothing_twice(ctx, tg):
    member_for(ANNA)
    group_id = tracked()
    started(group_id)
    tg.join(CHANNEL, ANNA)
    collect_group(group_id)
    cursor = app_db.session.get(TrackedGroup, group_id).cursor
    assert cursor is not None and int(cursor) > 0
    # A new process: a new collector, only the stored cursor to go by.
    app_db.session.remove()
    tg.reset_counts()
    run = collect_group(group_id, http=requests.Session())
    assert run.status == "succeeded"
    assert tg.request_counts["getUpdates"] == 1
    assert len(events()) == 1


@pytest.mark.database
def test_a_batch_fetched_but_not_applied_counts_once_later(ctx, tg):
    member_for(ANNA)
    group_id = tracked()
    started(group_id)
    post = tg.publish(CHANNEL, "Hello")
    tg.join(CHANNEL, ANNA)
    tg.react(CHANNEL, post, ANNA, "👍")
    group = app_db.session.get(TrackedGroup, group_id)
    target = GroupTarget(group.group_id, TOKEN, group.posts_to_scan)
    collector = TelegramCollector.from_config(ctx.config, requests.Session())
    lost = collector.fetch(target, group.cursor, lambda phase, percent: None)
    assert len(lost.changes) == 2  # ... and the process dies before applying them
    assert events() == []
    assert collect_group(group_id).status == "succeeded"
    assert [e[0] for e in events()] == ["joined_group", "activity"]
    # Now a crash between the events and the cursor: the same updates come again, and their
    # keys make them nothing new.
    tg.leave(CHANNEL, ANNA)
    group = app_db.session.get(TrackedGroup, group_id)
    again = TelegramCollector.from_config(ctx.config, requests.Session())
    batch = again.fetch(target, group.cursor, lambda phase, percent: None)
    assert apply_stream_changes(group, batch.changes) == 1
    assert collect_group(group_id).status == "succeeded"
    assert [e[0] for e in events()] == ["joined_group", "activity", "left_group"]


@pytest.mark.database
@pytest.mark.parametrize(
    "fault",
    [
        {"code": 429, "retry_after": 1},
        {"code": 502},
        {"code": 500},
        {"timeout": 1.5},
    ],
)
def test_rate_limits_bad_gateways_and_timeouts_are_retried(ctx, tg, fault):
    member_for(ANNA)
    group_id = tracked()
    started(group_id)
    tg.join(CHANNEL, ANNA)
    if "timeout" in fault:
        tg.inject_timeout(fault["timeout"])
    else:
        tg.inject_error(fault["code"], method="getUpdates", retry_after=fault.get("retry_after"))
    before = time.monotonic()
    run = collect_group(group_id)
    assert run.status == "succeeded", run.error_log
    assert events() == [("joined_group", str(ANNA), None, None, None)]
    if fault.get("retry_after"):
        assert time.monotonic() - before >= 1, "retry_after is honoured"


@pytest.mark.database
def test_giving_up_applies_nothing_and_the_next_cycle_catches_up(ctx, tg):
    member_for(ANNA)
    group_id = tracked()
    started(group_id)
    tg.join(CHANNEL, ANNA)
    tg.inject_error(502, method="getUpdates", times=10)
    failed = collect_group(group_id)
    assert failed.status == "failed" and "getUpdates failed 4 times" in failed.error_log
    assert events() == []
    tg.clear_faults()
    assert collect_group(group_id).status == "succeeded"
    assert len(events()) == 1


@pytest.mark.database
def test_a_bad_token_or_an_unseen_chat_fails_with_a_clear_error(ctx, tg):
    bad = add_group("telegram", str(CHANNEL), "Wrong token", "7300001:not-the-secret").id
    run = collect_group(bad)
    assert run.status == "failed" and "refused the bot token (401" in run.error_log
    hidden = add_group("telegram", "-1009999999999", "Hidden", TOKEN).id
    run = collect_group(hidden)
    assert run.status == "failed" and "administrator of the channel" in run.error_log


def wait_until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.database
def test_the_webhook_records_each_update_once(live_portal, collecting, tg, db):
    url, app = live_portal
    with app.app_context():
        install_seed_offers()
        anna = member_for(ANNA)
        group = app_db.session.get(TrackedGroup, tracked())
        hook = f"{url}/hooks/telegram/{group.id}"
        set_webhook(group, hook)
        group_id = group.id

    # A delivery without the secret is refused and changes nothing.
    update = {
        "update_id": 1,
        "chat_member": {
            "chat": {"id": CHANNEL, "type": "channel", "title": "x"},
            "from": {"id": ANNA, "is_bot": False, "first_name": "A"},
            "date": 1,
            "old_chat_member": {
                "user": {"id": ANNA, "is_bot": False, "first_name": "A"},
                "status": "left",
            },
            "new_chat_member": {
                "user": {"id": ANNA, "is_bot": False, "first_name": "A"},
                "status": "member",
            },
        },
    }
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
        answer = requests.post(hook, json=update, headers=headers, timeout=5)
        assert answer.status_code == 403
    assert db.session.scalars(select(EventRow.id)).all() == []
    with app.app_context():
        real = decrypt_text(app_db.session.get(TrackedGroup, group_id).callback_secret_encrypted)
    malformed = requests.post(
        hook, data=b"{not json", headers={"X-Telegram-Bot-Api-Secret-Token": real}, timeout=5
    )
    assert malformed.status_code == 400 and "update_id" in malformed.json()["error"]

    # The sandbox pushes; one answer is lost, so Telegram sends that update twice.
    tg.inject_lost_answers(1)
    post = tg.publish(CHANNEL, "Pushed")
    tg.join(CHANNEL, ANNA)
    tg.react(CHANNEL, post, ANNA, "👍")
    tg.comment(CHANNEL, post, ANNA, "Pushed comment")
    wait_until(lambda: tg.webhook_info(TOKEN)["pending_update_count"] == 0)
    assert tg.request_counts["webhook"] == 5 + 1
    kinds = [row.kind for row in db.session.execute(select(EventRow.kind).order_by(EventRow.id))]
    assert kinds == ["joined_group", "activity", "activity"]
    with app.app_context():
        assert balance(anna) == 20 + 5 + 3

        # Polling is refused while the webhook is set: a failed run that says why.
        run = collect_group(group_id)
        assert run.status == "failed"
        assert "409" in run.error_log and "webhook is set" in run.error_log
        delete_webhook(app_db.session.get(TrackedGroup, group_id))
        assert collect_group(group_id).status == "succeeded"
        app_db.session.remove()
    after = requests.post(hook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": real})
    assert after.status_code == 403, "the secret is forgotten with the webhook"


# Not `database`: the driver builds its own portal on SQLite and its own sandbox.
@pytest.mark.parametrize("mode", ["poll", "webhook"])
def test_the_accuracy_driver_finds_every_change_once(capsys, mode):
    from bench.accuracy_telegram import main

    status = main(
        ["--seed", "5", "--actions", "60", "--persons", "8", "--fault-rate", "0.15", "--mode", mode]
    )
    output = capsys.readouterr().out
    match = SUMMARY.fullmatch(output.strip().splitlines()[-1])
    assert match, output
    expected, found, missing, extra, ledger_mismatch = map(int, match.groups())
    assert (missing, extra, ledger_mismatch) == (0, 0, 0), output
    assert expected > 0 and found == expected
    assert status == 0


@pytest.mark.database
def test_the_webhook_command_switches_polling_off_and_on(ctx, tg):
    from app.collect.scheduler import due_groups

    group_id = tracked()
    runner = ctx.test_cli_runner()
    refused = runner.invoke(
        args=["groups", "webhook", str(group_id), "--url", "https://portal.example/elsewhere"]
    )
    assert refused.exit_code != 0 and f"/hooks/telegram/{group_id}" in refused.output
    assert group_id in due_groups()

    # Nothing listens on port 9: the sandbox keeps the updates for later, as Telegram would.
    hook = f"http://127.0.0.1:9/hooks/telegram/{group_id}"
    started_hook = runner.invoke(args=["groups", "webhook", str(group_id), "--url", hook])
    assert started_hook.exit_code == 0, started_hook.output
    assert tg.webhook_info(TOKEN)["url"] == hook
    assert group_id not in due_groups(), "Telegram refuses getUpdates while a webhook is set"
    wrong = runner.invoke(args=["groups", "callbacks", str(group_id), "--off"])
    assert wrong.exit_code != 0 and "callbacks are VK's" in wrong.output
    assert group_id not in due_groups(), "the webhook's secret is untouched"

    stopped = runner.invoke(args=["groups", "webhook", str(group_id), "--off"])
    assert stopped.exit_code == 0, stopped.output
    assert tg.webhook_info(TOKEN)["url"] == ""
    assert group_id in due_groups()


@pytest.mark.database
def test_a_channel_is_added_by_its_negative_chat_id_on_the_command_line(ctx, tg):
    runner = ctx.test_cli_runner()
    added = runner.invoke(
        args=[
            "groups",
            "add",
            "--network",
            "telegram",
            "--group-id",
            str(CHANNEL),
            "--token",
            TOKEN,
        ]
    )
    assert added.exit_code == 0, added.output
    assert f"telegram group {CHANNEL}" in added.output
    wrong = runner.invoke(
        args=["groups", "add", "--network", "telegram", "--group-id", "@news", "--token", TOKEN]
    )
    assert wrong.exit_code != 0 and "chat id" in wrong.output


@pytest.mark.database
def test_a_webhook_telegram_refuses_keeps_the_secret_it_had(ctx, tg):
    group = app_db.session.get(TrackedGroup, tracked())
    set_webhook(group, f"http://127.0.0.1:9/hooks/telegram/{group.id}")
    kept = decrypt_text(group.callback_secret_encrypted)
    with pytest.raises(CollectorError, match="HTTPS"):
        set_webhook(group, "ftp://portal.example/hooks")
    app_db.session.expire_all()
    group = app_db.session.get(TrackedGroup, group.id)
    assert decrypt_text(group.callback_secret_encrypted) == kept
    assert tg.webhook_info(TOKEN)["url"] == f"http://127.0.0.1:9/hooks/telegram/{group.id}"
