"""Tests of the sandbox OK API over real HTTP: signatures, shapes, anchors, quotas, faults."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.okapi import ACCURACY_PROFILE, OkApiState
from sandbox.portal import CLIENTS

APP_KEY = CLIENTS["ok"][2]["application_key"]
SECRET = CLIENTS["ok"][1]
TOKEN = "ok-group-token-unit"
GROUP = 53038939046008
ANNA, BORIS = 570001001, 570001002


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def sign(params: dict[str, str], token: str, secret: str) -> str:
    """OK's documented formula, written out independently of the sandbox."""
    pairs = "".join(f"{key}={params[key]}" for key in sorted(params))
    return md5(pairs + md5(token + secret))


@pytest.fixture
def ok(sandbox) -> Iterator[OkApiState]:
    state = sandbox.state.ok
    state.clear()
    state.rate_limit_per_second = None
    state.register_token(TOKEN)
    state.create_group(GROUP, "Loyalink OK")
    yield state
    state.clear()


@pytest.fixture
def call(sandbox, ok):
    def call(method: str, *, token: str = TOKEN, sig: str | None = None, **extra: Any) -> Any:
        params = {"application_key": APP_KEY, "format": "json", "method": method}
        params.update({key: str(value) for key, value in extra.items()})
        signature = sig if sig is not None else sign(params, token, SECRET)
        response = requests.post(
            f"{sandbox.url}/ok-api/fb.do",
            data={**params, "sig": signature, "access_token": token},
            timeout=5,
        )
        assert response.status_code == 200
        return response.json()

    return call


def test_a_wrong_signature_or_token_is_refused(call, ok) -> None:
    wrong = call("group.getMembers", sig="0" * 32, uid=GROUP)
    assert wrong == {
        "error_code": 104,
        "error_msg": "PARAM_SIGNATURE : Invalid signature",
        "error_data": None,
    }
    params = {"application_key": APP_KEY, "format": "json", "method": "group.getMembers"}
    other_secret = sign({**params, "uid": str(GROUP)}, TOKEN, "not-the-secret")
    assert call("group.getMembers", sig=other_secret, uid=GROUP)["error_code"] == 104
    assert call("group.getMembers", token="unknown")["error_code"] == 102
    assert ok.request_counts["group.getMembers"] == 3


def test_an_unknown_application_key_is_refused(sandbox, ok) -> None:
    body = requests.get(
        f"{sandbox.url}/ok-api/fb.do",
        params={"application_key": "NOPE", "method": "group.getMembers"},
        timeout=5,
    ).json()
    assert body["error_code"] == 101


def test_members_page_by_anchor_and_a_leave_between_pages_shifts_nothing(call, ok) -> None:
    users = list(range(1000, 3500))
    for user in users:
        ok.join(GROUP, user)
    first = call("group.getMembers", uid=GROUP, count=1000)
    assert first["has_more"] is True and len(first["members"]) == 1000
    assert first["members"][0] == {"userId": "1000", "groupId": str(GROUP)}
    ok.leave(GROUP, 1000)  # on the page already read
    second = call("group.getMembers", uid=GROUP, count=1000, anchor=first["anchor"])
    third = call("group.getMembers", uid=GROUP, count=1000, anchor=second["anchor"])
    assert third["has_more"] is False and len(third["members"]) == 500
    read = [int(m["userId"]) for page in (first, second, third) for m in page["members"]]
    assert read == users, "nothing skipped, nothing doubled"
    assert call("group.getMembers", uid=GROUP, count=1001)["error_code"] == 100
    assert call("group.getMembers", uid=GROUP, anchor="bm9wZQ")["error_code"] == 100
    assert call("group.getMembers", uid=999)["error_code"] == 300
    counters = call("group.getCounters", group_id=GROUP, counterTypes="members")
    assert counters == {"counters": {"members": 2499}}


def test_topics_newest_first_with_summaries(call, ok) -> None:
    first = ok.add_post(GROUP, "Hello", date=1_700_000_000)
    second = ok.add_post(GROUP, "Again", date=1_700_000_100)
    ok.like(GROUP, second, ANNA)
    ok.comment(GROUP, second, BORIS, "Nice")
    removed = ok.comment(GROUP, second, ANNA, "oops")
    ok.delete_comment(GROUP, second, removed)
    page = call("mediatopic.getTopics", gid=GROUP, count=1)
    assert page["has_more"] is True
    topic = page["media_topics"][0]
    assert topic["id"] == str(second) and topic["created_ms"] == 1_700_000_100_000
    assert topic["like_summary"]["count"] == 1
    assert topic["discussion_summary"] == {"comments_count": 1}
    assert topic["media"] == [{"type": "text", "text": "Again"}]
    rest = call("mediatopic.getTopics", gid=GROUP, count=5, anchor=page["anchor"])
    assert [t["id"] for t in rest["media_topics"]] == [str(first)] and rest["has_more"] is False


def test_likers_newest_first_and_a_change_between_pages_is_inconsistent(call, ok) -> None:
    topic = ok.add_post(GROUP)
    for user in range(1, 151):
        ok.like(GROUP, topic, user)
    params = {"discussionId": topic, "discussionType": "GROUP_TOPIC", "count": 100}
    first = call("discussions.getDiscussionLikes", **params)
    assert [u["uid"] for u in first["users"][:2]] == ["150", "149"]
    assert first["inconsistent"] is False and "has_more" not in first
    second = call("discussions.getDiscussionLikes", **params, anchor=first["anchor"])
    assert len(second["users"]) == 50 and second["inconsistent"] is False
    ok.unlike(GROUP, topic, 10)
    ok.like(GROUP, topic, 10)  # moves to the front, a page already read
    again = call("discussions.getDiscussionLikes", **params, anchor=first["anchor"])
    assert again["inconsistent"] is True
    other = call("discussions.getDiscussionLikes", discussionId=topic, discussionType="USER")
    assert other["error_code"] == 100
    gone = call("discussions.getDiscussionLikes", discussionId=1, discussionType="GROUP_TOPIC")
    assert gone["error_code"] == 300


def test_comments_by_id_removed_ones_only_when_asked(call, ok) -> None:
    topic = ok.add_post(GROUP)
    ids = [ok.comment(GROUP, topic, ANNA if n % 2 else BORIS, f"c{n}") for n in range(150)]
    ok.delete_comment(GROUP, topic, ids[1])
    params = {"discussionId": topic, "discussionType": "GROUP_TOPIC", "count": 100}
    first = call("discussions.getComments", **params)
    assert first["has_more"] is True
    assert first["comments"][0]["id"] == ids[0] and first["comments"][1]["id"] == ids[2]
    assert first["comments"][0]["author_id"] == str(BORIS)
    assert first["comments"][0]["type"] == "ACTIVE_MESSAGE"
    second = call("discussions.getComments", **params, anchor=first["anchor"])
    assert second["has_more"] is False
    read = [c["id"] for page in (first, second) for c in page["comments"]]
    assert read == [i for i in ids if i != ids[1]]
    with_removed = call("discussions.getComments", **params, includeRemoved="true")
    assert with_removed["comments"][1] == {"id": ids[1], "type": "REMOVED_MESSAGE", "deleted": True}


def test_quotas_are_told_and_enforced(call, ok) -> None:
    ok.set_quota("group.getMembers", 1)
    left = call("users.getCallsLeft", methods="group.getMembers,mediatopic.getTopics")
    assert left == [
        {"name": "group.getMembers", "available": True, "callsLeft": 1},
        {"name": "mediatopic.getTopics", "available": True, "callsLeft": -1},
    ]
    assert "members" in call("group.getMembers", uid=GROUP)
    spent = call("group.getMembers", uid=GROUP)
    assert spent["error_code"] == 11 and spent["error_msg"].startswith("LIMIT_REACHED")
    after = call("users.getCallsLeft", methods="group.getMembers")
    assert after == [{"name": "group.getMembers", "available": False, "callsLeft": 0}]


def test_faults_timeouts_rate_limit_and_random_faults(call, ok) -> None:
    ok.inject_error(10, method="discussions.getComments", times=1)
    ok.inject_error(2, times=1)
    assert call("group.getMembers", uid=GROUP)["error_code"] == 2
    comments = {"discussionId": ok.add_post(GROUP), "discussionType": "GROUP_TOPIC"}
    assert call("discussions.getComments", **comments)["error_code"] == 10
    assert "comments" in call("discussions.getComments", **comments)
    ok.inject_timeout(0.3)
    started = time.monotonic()
    call("group.getMembers", uid=GROUP)
    assert time.monotonic() - started >= 0.3
    ok.rate_limit_per_second = 1
    call("group.getMembers", uid=GROUP)
    assert call("group.getMembers", uid=GROUP)["error_code"] == 8
    ok.rate_limit_per_second = None
    ok.set_fault_rate(0.5, seed=3)
    codes = [call("group.getMembers", uid=GROUP).get("error_code") for _ in range(40)]
    failed = [code for code in codes if code]
    assert 5 < len(failed) < 35 and set(failed) <= set(ACCURACY_PROFILE["retryable"])
    ok.clear_faults()
    assert all("members" in call("group.getMembers", uid=GROUP) for _ in range(5))


def test_the_sign_in_call_still_answers(call, ok) -> None:
    # users.getCurrentUser stays with the sign-in sandbox: a group token is no session there.
    assert call("users.getCurrentUser")["error_code"] == 102


def test_the_model_speaks_the_vk_tester_interface(ok) -> None:
    topic = ok.add_post(GROUP, "x")
    assert ok.join(GROUP, ANNA) and not ok.join(GROUP, ANNA)
    assert ok.like(GROUP, topic, ANNA) and not ok.like(GROUP, topic, ANNA)
    comment = ok.comment(GROUP, topic, ANNA, "hi")
    assert isinstance(comment, str)
    assert ok.delete_comment(GROUP, topic, comment) and not ok.delete_comment(GROUP, topic, comment)
    assert ok.unlike(GROUP, topic, ANNA) and ok.leave(GROUP, ANNA)
    ok.set_private(ANNA, True)
    ok.set_deactivated(ANNA, "banned")
    assert ok.user(ANNA).private and ok.user(ANNA).deactivated == "banned"
    with pytest.raises(ValueError):
        ok.set_deactivated(ANNA, "gone")
    assert not hasattr(ok, "repost") and not hasattr(ok, "delete_repost")
    assert set(ACCURACY_PROFILE["methods"]) == {"members", "likes", "comments", "wall"}


def test_control_endpoints_and_tester_page(sandbox, ok) -> None:
    base = f"{sandbox.url}/ok-api"
    assert requests.post(f"{base}/control/groups", json={"group_id": 7, "name": "G"}).ok
    post = requests.post(f"{base}/control/posts", json={"group_id": 7, "text": "T"}).json()
    joined = requests.post(
        f"{base}/control/act", json={"action": "join", "group_id": 7, "user_id": ANNA}
    ).json()
    assert joined["changed"] is True and "Anna" in joined["message"]
    commented = requests.post(
        f"{base}/control/act",
        json={
            "action": "comment",
            "group_id": 7,
            "user_id": ANNA,
            "post_id": post["post_id"],
            "text": "hi",
        },
    ).json()
    assert isinstance(commented["comment_id"], str)
    quota = requests.post(f"{base}/control/quotas", json={"method": "group.getMembers", "calls": 3})
    assert quota.json() == {"method": "group.getMembers", "calls": 3}
    armed = requests.post(f"{base}/control/faults", json={"error_code": 8, "times": 2})
    assert armed.ok and requests.delete(f"{base}/control/faults").ok
    assert requests.get(f"{base}/control/counts").json()["total"] == 0
    bad = requests.post(f"{base}/control/act", json={"action": "repost", "group_id": 7})
    assert bad.status_code == 400
    page = requests.get(f"{base}/tester", params={"user_id": ANNA, "group_id": 7})
    assert page.status_code == 200 and "Member." in page.text and "“hi”" in page.text
    acted = requests.post(
        f"{base}/tester/act",
        data={"action": "like", "user_id": ANNA, "group_id": 7, "post_id": post["post_id"]},
    )
    assert acted.status_code == 200 and "gave a Klass" in acted.text
