"""Tests of the sandbox Telegram Bot API: methods, updates, long polling, webhooks, faults,
control endpoints and the tester page."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from sandbox import SandboxState, create_sandbox_app
from sandbox.telegram_bot.model import TelegramBotState

TOKEN = "7100123:sandbox-bot-secret"
OTHER = "7100999:another-bot"
CHANNEL, DISCUSSION = -1001000000001, -1001000000002
ANNA, BORIS = 7001001, 7001002
ALL = ["chat_member", "message_reaction", "message", "channel_post"]


@pytest.fixture
def sandbox_app() -> Flask:
    return create_sandbox_app()


@pytest.fixture
def tg(sandbox_app: Flask) -> Iterator[TelegramBotState]:
    state: SandboxState = sandbox_app.extensions["sandbox"]
    telegram = state.telegram
    telegram.create_bot(TOKEN, username="loyalink_bot")
    telegram.create_channel(CHANNEL, "Loyalink news", discussion_id=DISCUSSION, admins=[TOKEN])
    yield telegram
    telegram.clear()


@pytest.fixture
def client(sandbox_app: Flask, tg: TelegramBotState) -> Iterator[FlaskClient]:
    with sandbox_app.test_client() as test_client:
        yield test_client


def call(client: FlaskClient, method: str, token: str = TOKEN, **params: Any) -> Any:
    answer = client.post(f"/telegram-bot-api/bot{token}/{method}", json=params)
    return answer.status_code, answer.get_json(silent=True)


def updates(client: FlaskClient, **params: Any) -> list[dict[str, Any]]:
    status, body = call(client, "getUpdates", **params)
    assert status == 200 and body["ok"], body
    return body["result"]


def payload(update: dict[str, Any]) -> dict[str, Any]:
    return next(value for key, value in update.items() if key != "update_id")


def kinds(found: list[dict[str, Any]]) -> list[str]:
    return [next(key for key in update if key != "update_id") for update in found]


def test_get_me_and_get_chat_speak_the_bot_api(client: FlaskClient) -> None:
    status, me = call(client, "getMe")
    assert status == 200 and me["ok"]
    assert me["result"]["id"] == 7100123 and me["result"]["is_bot"] is True
    assert me["result"]["username"] == "loyalink_bot"
    status, chat = call(client, "getChat", chat_id=CHANNEL)
    assert chat["result"]["type"] == "channel" and chat["result"]["linked_chat_id"] == DISCUSSION
    _, group = call(client, "getChat", chat_id=str(DISCUSSION))
    assert group["result"]["type"] == "supergroup"
    assert group["result"]["linked_chat_id"] == CHANNEL
    status, missing = call(client, "getChat", chat_id=-1009)
    assert status == 400
    assert missing == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: chat not found",
    }


def test_bad_tokens_and_unknown_methods(client: FlaskClient) -> None:
    assert call(client, "getMe", token="7100123:wrong")[0] == 401
    assert call(client, "getMe", token="7100123:wrong")[1]["description"] == "Unauthorized"
    assert call(client, "getMe", token="not-a-token")[0] == 404
    assert call(client, "sendTelepathy")[0] == 404
    # Method names are case-insensitive, as on Telegram.
    assert client.get(f"/telegram-bot-api/bot{TOKEN}/getme").status_code == 200


def test_chat_member_and_reactions_come_only_when_named(client, tg) -> None:
    tg.join(CHANNEL, ANNA)
    assert updates(client) == [], "chat_member is left out by default, and not created"
    updates(client, allowed_updates=ALL)
    tg.join(CHANNEL, BORIS)
    post = tg.publish(CHANNEL, "Hello")
    tg.react(CHANNEL, post, BORIS, "🔥")
    found = updates(client)  # allowed_updates remembered from the last call
    assert kinds(found) == ["chat_member", "channel_post", "message", "message_reaction"]
    member = found[0]["chat_member"]
    assert member["chat"]["id"] == CHANNEL
    assert member["old_chat_member"]["status"] == "left"
    assert member["new_chat_member"] == {
        "user": {
            "id": BORIS,
            "is_bot": False,
            "first_name": "Boris",
            "last_name": "Petrov",
            "username": "boris_petrov",
        },
        "status": "member",
    }
    ids = [update["update_id"] for update in found]
    assert ids == list(range(ids[0], ids[0] + 4)) and ids[0] > 1
    # An empty list is the default again: reactions stop being created.
    updates(client, offset=ids[-1] + 1, allowed_updates=[])
    tg.react(CHANNEL, post, ANNA, "👍")
    assert updates(client) == []


def test_a_post_and_its_automatic_forward(client, tg) -> None:
    updates(client, allowed_updates=ALL)
    post = tg.publish(CHANNEL, "News")
    channel_post, forward = [payload(u) for u in updates(client)]
    assert channel_post["chat"]["id"] == CHANNEL and channel_post["message_id"] == post
    assert channel_post["sender_chat"]["id"] == CHANNEL
    assert forward["chat"]["id"] == DISCUSSION and forward["is_automatic_forward"] is True
    assert forward["forward_origin"]["type"] == "channel"
    assert forward["forward_origin"]["chat"]["id"] == CHANNEL
    assert forward["forward_origin"]["message_id"] == post
    assert forward["from"]["id"] == 777000 and forward["sender_chat"]["id"] == CHANNEL


def test_reactions_name_the_user_in_the_discussion_only(client, tg) -> None:
    updates(client, allowed_updates=[*ALL, "message_reaction_count"])
    post = tg.publish(CHANNEL, "News")
    copy = updates(client)[-1]["message"]["message_id"]
    offset = updates(client)[-1]["update_id"] + 1
    assert tg.react(CHANNEL, post, ANNA, "👍")
    assert not tg.react(CHANNEL, post, ANNA, "👍"), "the same reaction again changes nothing"
    assert tg.react(CHANNEL, post, ANNA, "❤")
    assert tg.react(CHANNEL, post, ANNA, None)
    assert tg.react(CHANNEL, post, BORIS, "🔥", where="channel")
    found = updates(client, offset=offset)
    assert kinds(found) == ["message_reaction"] * 3 + ["message_reaction_count"]
    first, change, removal, anonymous = (payload(u) for u in found)
    assert first["chat"]["id"] == DISCUSSION and first["message_id"] == copy
    assert first["user"]["id"] == ANNA
    assert (first["old_reaction"], first["new_reaction"]) == (
        [],
        [{"type": "emoji", "emoji": "👍"}],
    )
    assert change["old_reaction"] == [{"type": "emoji", "emoji": "👍"}]
    assert change["new_reaction"] == [{"type": "emoji", "emoji": "❤"}]
    assert removal["new_reaction"] == []
    assert anonymous["chat"]["id"] == CHANNEL and "user" not in anonymous
    assert anonymous["reactions"] == [{"type": {"type": "emoji", "emoji": "🔥"}, "total_count": 1}]


def test_comments_reply_in_the_thread_and_deletions_send_nothing(client, tg) -> None:
    updates(client, allowed_updates=ALL)
    post = tg.publish(CHANNEL, "News")
    offset = updates(client)[-1]["update_id"] + 1
    copy = tg.chats[CHANNEL].messages[post].copy_id
    first = tg.comment(CHANNEL, post, ANNA, "Great")
    reply = tg.comment(CHANNEL, post, BORIS, "Agreed", reply_to=first)
    assert tg.delete_comment(CHANNEL, first)
    found = updates(client, offset=offset)
    assert kinds(found) == ["message", "message"], "a deletion makes no update"
    comment, answer = found[0]["message"], found[1]["message"]
    assert comment["from"]["id"] == ANNA and comment["chat"]["id"] == DISCUSSION
    assert comment["message_thread_id"] == copy
    assert comment["reply_to_message"]["message_id"] == copy
    assert comment["reply_to_message"]["is_automatic_forward"] is True
    assert answer["message_id"] == reply and answer["message_thread_id"] == copy
    assert answer["reply_to_message"]["message_id"] == first
    assert "reply_to_message" not in answer["reply_to_message"], "Telegram does not nest"


def test_offset_confirms_and_limit_pages(client, tg) -> None:
    updates(client, allowed_updates=ALL)
    for user in range(7200001, 7200006):
        tg.join(CHANNEL, user)
    everything = updates(client)
    assert len(everything) == 5
    assert updates(client) == everything, "nothing is confirmed without an offset"
    first_two = updates(client, limit=2)
    assert first_two == everything[:2]
    rest = updates(client, offset=everything[2]["update_id"], limit=500)
    assert rest == everything[2:]
    assert updates(client) == everything[2:], "updates before the offset are forgotten"
    assert updates(client, offset=-1) == everything[-1:]
    assert updates(client) == everything[-1:]


def test_long_polling_waits_and_wakes_up_at_once(client, tg) -> None:
    updates(client, allowed_updates=ALL)
    started = time.monotonic()
    assert updates(client, timeout=0.3) == []
    assert 0.25 <= time.monotonic() - started < 2
    threading.Timer(0.2, tg.join, args=(CHANNEL, ANNA)).start()
    started = time.monotonic()
    found = updates(client, timeout=5)
    assert kinds(found) == ["chat_member"]
    assert time.monotonic() - started < 2, "an update ends the wait"


def test_a_newer_get_updates_ends_a_waiting_one_with_409(sandbox_app, tg) -> None:
    results: list[Any] = []

    def waiting() -> None:
        with sandbox_app.test_client() as own:
            results.append(call(own, "getUpdates", timeout=5))

    thread = threading.Thread(target=waiting)
    thread.start()
    time.sleep(0.2)
    with sandbox_app.test_client() as other:
        assert call(other, "getUpdates")[0] == 200
    thread.join(5)
    status, body = results[0]
    assert status == 409 and "terminated by other getUpdates request" in body["description"]


class Receiver:
    """A live endpoint the sandbox delivers webhook updates to."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[str | None, dict[str, Any]]] = []
        app = Flask("receiver")

        @app.post("/hook")
        def hook():
            self.received.append(
                (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), request.get_json())
            )
            status = self.statuses.pop(0) if self.statuses else 200
            return {"ok": status == 200}, status

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_webhook_gets_every_update_in_order_until_it_answers_2xx(client, tg) -> None:
    receiver = Receiver([500, 403])
    try:
        status, body = call(
            client, "setWebhook", url=receiver.url, secret_token="s3cr3t_-", allowed_updates=ALL
        )
        assert status == 200 and body == {
            "ok": True,
            "result": True,
            "description": "Webhook was set",
        }
        status, conflict = call(client, "getUpdates")
        assert status == 409 and "webhook is active" in conflict["description"]
        tg.join(CHANNEL, ANNA)
        tg.leave(CHANNEL, ANNA)
        wait_for(lambda: len(receiver.received) >= 4)
        wait_for(lambda: call(client, "getWebhookInfo")[1]["result"]["pending_update_count"] == 0)
        secrets = {secret for secret, _ in receiver.received}
        assert secrets == {"s3cr3t_-"}
        ids = [update["update_id"] for _, update in receiver.received]
        assert ids[0] == ids[1] == ids[2] and ids[3] == ids[0] + 1, "retried in order"
        info = call(client, "getWebhookInfo")[1]["result"]
        assert info["url"] == receiver.url
        assert info["last_error_message"] == "Wrong response from the webhook: 403 Forbidden"
        assert call(client, "deleteWebhook")[1]["description"] == "Webhook was deleted"
        assert call(client, "getWebhookInfo")[1]["result"]["url"] == ""
        tg.join(CHANNEL, BORIS)
        assert kinds(updates(client)) == ["chat_member"], "polling works again"
    finally:
        receiver.stop()


def test_lost_answers_make_telegram_send_an_update_again(client, tg) -> None:
    receiver = Receiver([])
    try:
        call(client, "setWebhook", url=receiver.url, allowed_updates=ALL)
        tg.inject_lost_answers(1)
        tg.join(CHANNEL, ANNA)
        wait_for(lambda: len(receiver.received) == 2)
        assert receiver.received[0] == receiver.received[1]
        assert receiver.received[0][0] is None, "no secret token was set"
    finally:
        receiver.stop()


def test_drop_pending_updates(client, tg) -> None:
    updates(client, allowed_updates=ALL)
    tg.join(CHANNEL, ANNA)
    call(client, "deleteWebhook", drop_pending_updates=True)
    assert updates(client) == []
    status, body = call(client, "setWebhook", url="ftp://example.invalid/hook")
    assert status == 400 and "HTTPS URL" in body["description"]
    status, body = call(client, "setWebhook", url="http://127.0.0.1:9/x", secret_token="no spaces")
    assert status == 400


def test_parameters_from_the_query_and_a_form(client, tg) -> None:
    url = f"/telegram-bot-api/bot{TOKEN}/getUpdates"
    answer = client.get(url, query_string={"allowed_updates": json.dumps(["chat_member"])})
    assert answer.status_code == 200
    tg.join(CHANNEL, ANNA)
    answer = client.post(url, data={"limit": "1", "timeout": "0"})
    assert kinds(answer.get_json()["result"]) == ["chat_member"]
    assert client.post(url, data={"offset": "x"}).status_code == 400
    assert client.get(url, query_string={"allowed_updates": "[not json"}).status_code == 400


def test_injected_errors_timeouts_and_rates(client, tg) -> None:
    tg.inject_error(429, method="getUpdates", retry_after=3)
    status, body = call(client, "getUpdates")
    assert status == 429
    assert body == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    assert call(client, "getMe")[0] == 200, "a fault for getUpdates leaves getMe alone"
    tg.inject_error(502, times=2)
    answer = client.post(f"/telegram-bot-api/bot{TOKEN}/getUpdates")
    assert answer.status_code == 502 and b"502 Bad Gateway" in answer.data
    assert answer.mimetype == "text/html"
    assert call(client, "getUpdates")[0] == 502
    assert call(client, "getUpdates")[0] == 200
    tg.inject_timeout(0.3)
    started = time.monotonic()
    assert call(client, "getMe")[0] == 200 and time.monotonic() - started >= 0.3

    def pattern() -> list[int]:
        tg.set_fault_rate(0.5, seed=7)
        return [call(client, "getMe")[0] for _ in range(20)]

    first = pattern()
    assert first == pattern(), "a seed gives the same faults"
    assert {429, 502} <= set(first) and 200 in first
    tg.clear_faults()
    assert {call(client, "getMe")[0] for _ in range(10)} == {200}
    counts = tg.request_counts
    assert counts["getMe"] >= 50 and counts["total"] == sum(
        count for name, count in counts.items() if name not in ("total", "webhook")
    )


def test_control_endpoints(client: FlaskClient, tg: TelegramBotState) -> None:
    assert client.post("/telegram-bot-api/control/bots", json={"token": OTHER}).status_code == 201
    bad = client.post("/telegram-bot-api/control/bots", json={"token": "nope"})
    assert bad.status_code == 400
    answer = client.post(
        "/telegram-bot-api/control/channels",
        json={"chat_id": -1002000000001, "title": "Second", "admins": [OTHER]},
    )
    assert answer.status_code == 201
    post = client.post(
        "/telegram-bot-api/control/posts", json={"chat_id": -1002000000001, "text": "hi"}
    ).get_json()["post_id"]
    joined = client.post(
        "/telegram-bot-api/control/act",
        json={"action": "join", "chat_id": -1002000000001, "user_id": ANNA},
    ).get_json()
    assert joined["changed"] is True and "Anna" in joined["message"]
    no_comments = client.post(
        "/telegram-bot-api/control/act",
        json={
            "action": "comment",
            "chat_id": -1002000000001,
            "user_id": ANNA,
            "post_id": post,
            "text": "hi",
        },
    )
    assert (
        no_comments.status_code == 400
        and "no discussion group" in no_comments.get_json()["error_description"]
    )
    armed = client.post("/telegram-bot-api/control/faults", json={"error_code": 502})
    assert armed.status_code == 200
    assert call(client, "getMe")[0] == 502
    client.post("/telegram-bot-api/control/faults", json={"rate": 1.0, "codes": [429]})
    assert call(client, "getMe")[0] == 429
    assert client.delete("/telegram-bot-api/control/faults").status_code == 200
    assert call(client, "getMe")[0] == 200
    assert client.get("/telegram-bot-api/control/counts").get_json()["getMe"] == 3
    client.delete("/telegram-bot-api/control/counts")
    assert client.get("/telegram-bot-api/control/counts").get_json() == {"total": 0}
    client.post("/telegram-bot-api/control/clear")
    assert call(client, "getMe")[0] == 401


def test_the_tester_page_acts_as_a_person(client: FlaskClient, tg: TelegramBotState) -> None:
    post = tg.publish(CHANNEL, "First post")
    page = client.get("/telegram-bot-api/tester", query_string={"user_id": ANNA})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Loyalink news" in html and "First post" in html and 'data-action="join"' in html
    base = {"user_id": str(ANNA), "chat_id": str(CHANNEL)}
    for form in (
        {"action": "join"},
        {"action": "react", "post_id": str(post), "where": "discussion", "emoji": "🎉"},
        {"action": "comment", "post_id": str(post), "text": "From the tester"},
    ):
        answer = client.post("/telegram-bot-api/tester/act", data={**base, **form})
        assert answer.status_code == 302 and "error" not in answer.location
    assert tg.chats[CHANNEL].status(ANNA) == "member"
    copy = tg.chats[DISCUSSION].messages[tg.chats[CHANNEL].messages[post].copy_id]
    assert copy.reactions == {ANNA: ["🎉"]}
    html = client.get("/telegram-bot-api/tester", query_string=base).get_data(as_text=True)
    assert "From the tester" in html and 'data-action="delete-comment"' in html
    assert 'data-action="leave"' in html and 'data-action="unreact"' in html
    answer = client.post("/telegram-bot-api/tester/act", data={**base, "action": "fly"})
    assert "error=" in answer.location
