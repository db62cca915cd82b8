"""Tests of the sandbox VK Callback API: a real loopback server receives what the hub POSTs."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from sandbox import create_sandbox_app
from sandbox.vkapi.callbacks import MAX_ATTEMPTS, CallbackHub
from sandbox.vkapi.model import VkApiState

V = "5.199"
TOKEN = "vk1.a.user-token"
GROUP, OTHER = 77, 88
ANNA, BORIS = 1001001, 1001002
SECRET = "s3cr3t"
CONFIRMATION = "a1b2c3d4"
EVENT_KEYS = {"type", "object", "group_id", "event_id", "v", "secret"}


@dataclass
class Receiver:
    """A callback server: records every JSON body; ``answer`` decides each event's reply."""

    url: str = ""
    confirmation: str = CONFIRMATION
    answer: Callable[[dict[str, Any]], tuple[int, str]] = lambda _event: (200, "ok")
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        body = json.loads(Request(environ).get_data())
        with self.lock:
            self.bodies.append(body)
        if body["type"] == "confirmation":
            status, text = 200, self.confirmation
        else:
            status, text = self.answer(body)
        return Response(text, status=status, mimetype="text/plain")(environ, start_response)

    @property
    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for body in self.bodies if body["type"] != "confirmation"]

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]


def serve(receiver: Receiver) -> Iterator[Receiver]:
    server: BaseWSGIServer = make_server("127.0.0.1", 0, receiver, threaded=True)
    # A short poll interval keeps shutdown() (and so each test's teardown) fast.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.port}/vk/callback"
    try:
        yield receiver
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve(Receiver())


@pytest.fixture
def vk() -> VkApiState:
    vk = VkApiState()
    vk.callbacks.timeout = 2.0
    vk.callbacks.retry_delay = 0.01
    vk.create_group(GROUP, "Coffee Lovers", screen_name="coffee")
    vk.create_group(OTHER, "Tea Lovers", screen_name="tea")
    return vk


@pytest.fixture
def hub(vk: VkApiState, receiver: Receiver) -> Iterator[CallbackHub]:
    vk.callbacks.set_server(GROUP, receiver.url, secret=SECRET, confirmation=CONFIRMATION)
    yield vk.callbacks
    vk.callbacks.reset()


@pytest.fixture
def manual(hub: CallbackHub) -> CallbackHub:
    hub.set_mode("manual")
    return hub


def settle(hub: CallbackHub) -> None:
    assert hub.wait_idle(10)


# Confirmation


def test_set_server_confirms_first(vk: VkApiState, receiver: Receiver) -> None:
    vk.callbacks.set_server(GROUP, receiver.url, secret=SECRET, confirmation=CONFIRMATION)
    assert receiver.bodies == [{"type": "confirmation", "group_id": GROUP}]
    server = vk.callbacks.server(GROUP)
    assert server is not None and server.url == receiver.url
    assert vk.callbacks.server(OTHER) is None
    assert vk.callbacks.log(GROUP)[0]["type"] == "confirmation"


def test_wrong_confirmation_is_refused(vk: VkApiState, receiver: Receiver) -> None:
    receiver.confirmation = "something else"
    with pytest.raises(ValueError, match="something else"):
        vk.callbacks.set_server(GROUP, receiver.url, secret=SECRET, confirmation=CONFIRMATION)
    assert vk.callbacks.server(GROUP) is None
    vk.join(GROUP, ANNA)
    settle(vk.callbacks)
    assert receiver.events == []


def test_unreachable_server_and_bad_urls_are_refused(vk: VkApiState, receiver: Receiver) -> None:
    port = int(receiver.url.split(":")[2].split("/")[0])
    closed = f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}/"
    with pytest.raises(ValueError, match="confirmation failed"):
        vk.callbacks.set_server(GROUP, closed, secret="", confirmation=CONFIRMATION)
    for url in ("ftp://127.0.0.1/", "/relative", ""):
        with pytest.raises(ValueError, match="url"):
            vk.callbacks.set_server(GROUP, url, secret="", confirmation=CONFIRMATION)
    with pytest.raises(ValueError, match="confirmation"):
        vk.callbacks.set_server(GROUP, receiver.url, secret="", confirmation="")


def test_remove_server_stops_events(hub: CallbackHub, vk: VkApiState, receiver: Receiver) -> None:
    assert hub.remove_server(GROUP) is True
    assert hub.remove_server(GROUP) is False
    vk.join(GROUP, ANNA)
    settle(hub)
    assert receiver.events == []


def test_each_group_has_its_own_server(hub: CallbackHub, vk: VkApiState) -> None:
    gen = serve(Receiver(confirmation="tea-ok"))
    other = next(gen)
    try:
        hub.set_server(OTHER, other.url, secret="", confirmation="tea-ok")
        vk.join(OTHER, BORIS)
        vk.join(GROUP, ANNA)
        settle(hub)
        assert [(e["group_id"], e["object"]["user_id"]) for e in other.events] == [(OTHER, BORIS)]
        # Without a secret key VK sends none.
        assert "secret" not in other.events[0]
    finally:
        gen.close()


# Payload shapes


def test_join_and_leave(hub: CallbackHub, vk: VkApiState, receiver: Receiver) -> None:
    vk.join(GROUP, ANNA)
    vk.join(GROUP, ANNA)
    vk.leave(GROUP, ANNA)
    vk.leave(GROUP, ANNA)
    settle(hub)
    assert [(e["type"], e["object"]) for e in receiver.events] == [
        ("group_join", {"user_id": ANNA, "join_type": "join"}),
        ("group_leave", {"user_id": ANNA, "self": 1}),
    ]


def test_like_and_unlike_without_noop_events(
    hub: CallbackHub, vk: VkApiState, receiver: Receiver
) -> None:
    post_id = vk.add_post(GROUP, "Hello")
    assert vk.like(GROUP, post_id, ANNA)
    assert not vk.like(GROUP, post_id, ANNA)
    assert vk.unlike(GROUP, post_id, ANNA)
    assert not vk.unlike(GROUP, post_id, ANNA)
    settle(hub)
    like = {
        "liker_id": ANNA,
        "object_type": "post",
        "object_owner_id": -GROUP,
        "object_id": post_id,
        "post_id": 0,
        "thread_reply_id": 0,
    }
    assert [(e["type"], e["object"]) for e in receiver.events] == [
        ("like_add", like),
        ("like_remove", like),
    ]


def test_comment_and_delete_comment(hub: CallbackHub, vk: VkApiState, receiver: Receiver) -> None:
    post_id = vk.add_post(GROUP, "Hello")
    comment_id = vk.comment(GROUP, post_id, ANNA, "Nice!", date=1_700_000_000)
    vk.act("delete-comment", group_id=GROUP, user_id=ANNA, post_id=post_id, comment_id=comment_id)
    assert not vk.delete_comment(GROUP, post_id, comment_id)
    settle(hub)
    new, deleted = receiver.events
    assert new["type"] == "wall_reply_new"
    assert {
        key: new["object"][key]
        for key in ("id", "from_id", "date", "text", "post_id", "post_owner_id", "owner_id")
    } == {
        "id": comment_id,
        "from_id": ANNA,
        "date": 1_700_000_000,
        "text": "Nice!",
        "post_id": post_id,
        "post_owner_id": -GROUP,
        "owner_id": -GROUP,
    }
    assert deleted["type"] == "wall_reply_delete"
    assert deleted["object"] == {
        "owner_id": -GROUP,
        "id": comment_id,
        "deleter_id": ANNA,
        "user_id": ANNA,
        "post_id": post_id,
    }


def test_delete_comment_names_the_deleter(
    hub: CallbackHub, vk: VkApiState, receiver: Receiver
) -> None:
    post_id = vk.add_post(GROUP, "Hello")
    comment_id = vk.comment(GROUP, post_id, ANNA, "Spam")
    vk.delete_comment(GROUP, post_id, comment_id, deleter_id=BORIS)
    settle(hub)
    assert receiver.events[-1]["object"]["deleter_id"] == BORIS


def test_repost_and_no_event_for_deleted_repost_or_profiles(
    hub: CallbackHub, vk: VkApiState, receiver: Receiver
) -> None:
    post_id = vk.add_post(GROUP, "Share me", date=1_700_000_000)
    repost_id = vk.repost(GROUP, post_id, ANNA, date=1_700_000_500)
    assert vk.repost(GROUP, post_id, ANNA) == repost_id
    vk.delete_repost(GROUP, post_id, ANNA)
    vk.set_private(ANNA, True)
    vk.set_deactivated(BORIS, "deleted")
    settle(hub)
    (event,) = receiver.events
    assert event["type"] == "wall_repost"
    repost = event["object"]
    assert (repost["id"], repost["owner_id"], repost["from_id"]) == (repost_id, ANNA, ANNA)
    assert repost["date"] == 1_700_000_500
    original = repost["copy_history"][0]
    assert (original["id"], original["owner_id"], original["text"]) == (
        post_id,
        -GROUP,
        "Share me",
    )


def test_event_envelope_secret_and_unique_ids(
    hub: CallbackHub, vk: VkApiState, receiver: Receiver
) -> None:
    post_id = vk.add_post(GROUP, "Hello")
    for user_id in range(1, 21):
        vk.like(GROUP, post_id, user_id)
    settle(hub)
    events = receiver.events
    assert len(events) == 20
    for event in events:
        assert set(event) == EVENT_KEYS
        assert (event["group_id"], event["v"], event["secret"]) == (GROUP, V, SECRET)
        assert re.fullmatch(r"[0-9a-f]{40}", event["event_id"])
    assert len({event["event_id"] for event in events}) == 20
    assert [event["object"]["liker_id"] for event in events] == list(range(1, 21))
    stats = hub.stats()
    assert (stats["queued"], stats["delivered"], stats["pending"]) == (20, 20, 0)


def test_tester_actions_send_events(hub: CallbackHub, vk: VkApiState, receiver: Receiver) -> None:
    post_id = vk.add_post(GROUP, "Hello")
    for action in ("join", "like", "comment", "repost", "delete-repost", "unlike", "leave"):
        vk.act(action, group_id=GROUP, user_id=ANNA, post_id=post_id, text="Hi")
    settle(hub)
    assert receiver.types() == [
        "group_join",
        "like_add",
        "wall_reply_new",
        "wall_repost",
        "like_remove",
        "group_leave",
    ]


# Delivery


def test_retries_until_ok(hub: CallbackHub, vk: VkApiState, receiver: Receiver) -> None:
    answers = iter([(500, "oops"), (200, "not ok"), (200, "ok")])
    receiver.answer = lambda _event: next(answers)
    vk.join(GROUP, ANNA)
    settle(hub)
    events = receiver.events
    assert len(events) == 3
    assert len({event["event_id"] for event in events}) == 1
    stats = hub.stats()
    assert (stats["delivered"], stats["failed"], stats["given_up"]) == (1, 2, 0)
    log = hub.log(GROUP, limit=3)
    assert [(row["status"], row["answer"], row["ok"]) for row in log] == [
        (200, "ok", True),
        (200, "not ok", False),
        (500, "oops", False),
    ]


def test_gives_up_after_five_attempts(
    manual: CallbackHub, vk: VkApiState, receiver: Receiver
) -> None:
    receiver.answer = lambda _event: (503, "busy")
    vk.join(GROUP, ANNA)
    for _ in range(MAX_ATTEMPTS + 2):
        manual.deliver()
    assert len(receiver.events) == MAX_ATTEMPTS
    stats = manual.stats()
    assert (stats["failed"], stats["given_up"], stats["pending"]) == (MAX_ATTEMPTS, 1, 0)


def test_manual_mode_waits_for_deliver_and_keeps_order(
    manual: CallbackHub, vk: VkApiState, receiver: Receiver
) -> None:
    post_id = vk.add_post(GROUP, "Hello")
    vk.join(GROUP, ANNA)
    vk.like(GROUP, post_id, ANNA)
    vk.comment(GROUP, post_id, ANNA, "Hi")
    vk.unlike(GROUP, post_id, ANNA)
    assert receiver.events == []
    assert manual.pending() == 4
    assert manual.deliver(limit=2) == 2
    assert receiver.types() == ["group_join", "like_add"]
    assert manual.deliver() == 2
    assert receiver.types() == ["group_join", "like_add", "wall_reply_new", "like_remove"]
    assert manual.deliver() == 0


def test_manual_retry_keeps_its_place(
    manual: CallbackHub, vk: VkApiState, receiver: Receiver
) -> None:
    failed = []

    def answer(event: dict[str, Any]) -> tuple[int, str]:
        if event["type"] == "group_join" and not failed:
            failed.append(event)
            return 500, "down"
        return 200, "ok"

    receiver.answer = answer
    vk.join(GROUP, ANNA)
    vk.join(GROUP, BORIS)
    assert manual.deliver() == 1
    vk.leave(GROUP, BORIS)
    assert manual.deliver() == 2
    users = [(e["type"], e["object"]["user_id"]) for e in receiver.events]
    assert users == [
        ("group_join", ANNA),
        ("group_join", BORIS),
        ("group_join", ANNA),
        ("group_leave", BORIS),
    ]


def test_deliver_is_for_manual_mode(hub: CallbackHub) -> None:
    with pytest.raises(RuntimeError):
        hub.deliver()
    with pytest.raises(ValueError):
        hub.set_mode("sometimes")


def test_switching_back_to_auto_delivers_queue(
    manual: CallbackHub, vk: VkApiState, receiver: Receiver
) -> None:
    vk.join(GROUP, ANNA)
    manual.set_mode("auto")
    settle(manual)
    assert receiver.types() == ["group_join"]


# Faults


def run_faulted(
    vk: VkApiState, hub: CallbackHub, receiver: Receiver, seed: int, **faults: float
) -> tuple[list[int], dict[str, int]]:
    """Like 30 posts with faults in manual mode; the liked posts in order of arrival."""
    receiver.bodies.clear()
    hub.reset()
    hub.set_server(GROUP, receiver.url, secret=SECRET, confirmation=CONFIRMATION)
    hub.set_faults(seed=seed, **faults)
    posts = [vk.add_post(GROUP, f"post {n}") for n in range(30)]
    for post_id in posts:
        vk.like(GROUP, post_id, ANNA)
        hub.deliver()
    for _ in range(6):
        hub.deliver()
    arrived = [event["object"]["object_id"] - posts[0] for event in receiver.events]
    return arrived, hub.stats()


def test_drop_is_reproducible(manual: CallbackHub, vk: VkApiState, receiver: Receiver) -> None:
    first, stats = run_faulted(vk, manual, receiver, seed=3, drop=0.3)
    again, _ = run_faulted(vk, manual, receiver, seed=3, drop=0.3)
    other, _ = run_faulted(vk, manual, receiver, seed=4, drop=0.3)
    assert first == again != other
    assert 0 < stats["dropped"] < 30
    assert len(first) == 30 - stats["dropped"] == stats["delivered"]
    assert first == sorted(first)


def test_duplicate_repeats_the_event_id(
    manual: CallbackHub, vk: VkApiState, receiver: Receiver
) -> None:
    first, stats = run_faulted(vk, manual, receiver, seed=5, duplicate=0.3)
    again, _ = run_faulted(vk, manual, receiver, seed=5, duplicate=0.3)
    assert first == again
    assert 0 < stats["duplicated"] < 30
    assert len(first) == 30 + stats["duplicated"]
    ids = [event["event_id"] for event in receiver.events]
    assert len(set(ids)) == 30
    assert sorted(set(first)) == list(range(30))


def test_delay_reorders_reproducibly(
    manual: CallbackHub, vk: VkApiState, receiver: Receiver
) -> None:
    first, stats = run_faulted(vk, manual, receiver, seed=7, delay=0.3)
    again, _ = run_faulted(vk, manual, receiver, seed=7, delay=0.3)
    assert first == again
    assert 0 < stats["delayed"] < 30
    assert sorted(first) == list(range(30))
    assert first != sorted(first)


def test_delay_holds_for_one_to_five_calls(
    manual: CallbackHub, vk: VkApiState, receiver: Receiver
) -> None:
    manual.set_faults(delay=1.0, seed=1)
    vk.join(GROUP, ANNA)
    calls = 1
    while manual.deliver() == 0:
        calls += 1
        assert calls <= 6
    assert 2 <= calls <= 6


def test_delay_in_auto_mode(hub: CallbackHub, vk: VkApiState, receiver: Receiver) -> None:
    hub.set_faults(delay=1.0, seed=2)
    vk.join(GROUP, ANNA)
    hub.clear_faults()
    vk.join(GROUP, BORIS)
    settle(hub)
    assert [event["object"]["user_id"] for event in receiver.events] == [BORIS, ANNA]


def test_fault_shares_are_checked(hub: CallbackHub) -> None:
    with pytest.raises(ValueError, match="drop"):
        hub.set_faults(drop=1.5)
    with pytest.raises(ValueError, match="seed"):
        hub.set_faults(delay=0.5, seed="x")  # type: ignore[arg-type]


def test_clear_forgets_servers(hub: CallbackHub, vk: VkApiState) -> None:
    vk.clear()
    assert hub.server(GROUP) is None
    assert hub.stats()["queued"] == 0


# wall.getComment


@pytest.fixture
def sandbox_app() -> Flask:
    return create_sandbox_app()


@pytest.fixture
def client(sandbox_app: Flask) -> Iterator[FlaskClient]:
    vk: VkApiState = sandbox_app.extensions["sandbox"].vk
    vk.rate_limit_per_second = None
    vk.register_token(TOKEN)
    vk.register_token("group-token", kind="group")
    vk.create_group(GROUP, "Coffee Lovers")
    with sandbox_app.test_client() as test_client:
        yield test_client
    vk.callbacks.reset()


def api(client: FlaskClient, method: str, token: str = TOKEN, **params: Any) -> Any:
    query = {"v": V, "access_token": token, **{k: str(v) for k, v in params.items()}}
    return client.get(f"/vk-api/method/{method}", query_string=query).get_json()


def test_wall_get_comment(client: FlaskClient, sandbox_app: Flask) -> None:
    vk: VkApiState = sandbox_app.extensions["sandbox"].vk
    first = vk.add_post(GROUP, "First")
    second = vk.add_post(GROUP, "Second")
    old = vk.comment(GROUP, first, ANNA, "Old one", date=1_700_000_000)
    new = vk.comment(GROUP, second, BORIS, "New one", date=1_700_000_100)
    late = vk.comment(GROUP, first, BORIS, "Late", date=1_700_000_200)

    answer = api(client, "wall.getComment", owner_id=-GROUP, comment_id=old)["response"]
    (item,) = answer["items"]
    assert item["id"] == old and item["post_id"] == first and item["owner_id"] == -GROUP
    assert (item["from_id"], item["text"], item["date"]) == (ANNA, "Old one", 1_700_000_000)
    assert "deleted" not in item
    assert (
        api(client, "wall.getComment", owner_id=-GROUP, comment_id=new)["response"]["items"][0][
            "post_id"
        ]
        == second
    )
    assert (
        api(client, "wall.getComment", owner_id=-GROUP, comment_id=late)["response"]["items"][0][
            "post_id"
        ]
        == first
    )

    extended = api(client, "wall.getComment", owner_id=-GROUP, comment_id=old, extended=1)
    assert [p["id"] for p in extended["response"]["profiles"]] == [ANNA]
    assert extended["response"]["groups"][0]["id"] == GROUP

    vk.delete_comment(GROUP, first, old)
    (gone,) = api(client, "wall.getComment", owner_id=-GROUP, comment_id=old)["response"]["items"]
    assert gone["deleted"] is True and "text" not in gone and gone["id"] == old


def test_wall_get_comment_errors(client: FlaskClient, sandbox_app: Flask) -> None:
    vk: VkApiState = sandbox_app.extensions["sandbox"].vk
    post_id = vk.add_post(GROUP, "First")
    comment_id = vk.comment(GROUP, post_id, ANNA, "Hi")
    for params in (
        {"owner_id": -GROUP, "comment_id": post_id},
        {"owner_id": -GROUP, "comment_id": 999},
        {"owner_id": -999, "comment_id": comment_id},
        {"owner_id": ANNA, "comment_id": comment_id},
        {"owner_id": -GROUP},
    ):
        assert api(client, "wall.getComment", **params)["error"]["error_code"] == 100, params
    group_token = api(
        client, "wall.getComment", token="group-token", owner_id=-GROUP, comment_id=comment_id
    )
    assert group_token["error"]["error_code"] == 15
    vk.set_comments_closed(GROUP, post_id, True)
    closed = api(client, "wall.getComment", owner_id=-GROUP, comment_id=comment_id)
    assert closed["error"]["error_code"] == 212


# Control endpoints and tester page


def test_control_callback_server(
    client: FlaskClient, sandbox_app: Flask, receiver: Receiver
) -> None:
    vk: VkApiState = sandbox_app.extensions["sandbox"].vk
    body = {"group_id": GROUP, "url": receiver.url, "secret": SECRET, "confirmation": "nope"}
    refused = client.post("/vk-api/control/callback-server", json=body)
    assert refused.status_code == 400
    assert CONFIRMATION in refused.get_json()["error_description"]

    body["confirmation"] = CONFIRMATION
    accepted = client.post("/vk-api/control/callback-server", json=body)
    assert accepted.status_code == 200
    assert accepted.get_json() == {"group_id": GROUP, "url": receiver.url, "confirmed": True}

    faults = {"drop": 0.0, "duplicate": 1.0, "delay": 0.0, "seed": 1}
    assert client.post("/vk-api/control/callback-faults", json=faults).status_code == 200
    vk.join(GROUP, ANNA)
    assert vk.callbacks.wait_idle(10)
    assert receiver.types() == ["group_join", "group_join"]
    assert client.delete("/vk-api/control/callback-faults").get_json() == {"cleared": True}
    bad = client.post("/vk-api/control/callback-faults", json={"drop": 2})
    assert bad.status_code == 400

    status = client.get("/vk-api/control/callbacks").get_json()
    assert status["servers"] == [{"group_id": GROUP, "url": receiver.url}]
    assert status["stats"]["delivered"] == 2

    page = client.get(f"/vk-api/tester?group_id={GROUP}").get_data(as_text=True)
    assert receiver.url in page
    assert 'data-event="group_join"' in page and 'data-event="confirmation"' in page

    removed = client.delete("/vk-api/control/callback-server", json={"group_id": GROUP})
    assert removed.get_json() == {"group_id": GROUP, "removed": True}
    page = client.get(f"/vk-api/tester?group_id={GROUP}").get_data(as_text=True)
    assert "No Callback API server for this group" in page
