"""Tests of the sandbox VK API (5.199 data methods, execute, faults, tester page)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sandbox import SandboxState, create_sandbox_app
from sandbox.vkapi import script
from sandbox.vkapi.model import VkApiState

V = "5.199"
USER_TOKEN = "vk1.a.user-token"
SERVICE_TOKEN = "service-token"
GROUP_TOKEN = "vk1.a.group-token"
GROUP = 77
ANNA, BORIS, CHEN = 1001001, 1001002, 1001003
INVALID = "One of the parameters specified was missing or invalid"


@pytest.fixture
def sandbox_app() -> Flask:
    return create_sandbox_app()


@pytest.fixture
def state(sandbox_app: Flask) -> SandboxState:
    return sandbox_app.extensions["sandbox"]


@pytest.fixture
def vk(state: SandboxState) -> VkApiState:
    vk = state.vk
    vk.rate_limit_per_second = None
    vk.register_token(USER_TOKEN, kind="user")
    vk.register_token(SERVICE_TOKEN, kind="service")
    vk.register_token(GROUP_TOKEN, kind="group")
    return vk


@pytest.fixture
def client(sandbox_app: Flask, vk: VkApiState) -> Iterator[FlaskClient]:
    with sandbox_app.test_client() as test_client:
        yield test_client


@pytest.fixture
def wall(vk: VkApiState) -> dict[str, int]:
    """A small group: three members, two posts (the second one has comments closed)."""
    vk.create_group(GROUP, "Coffee Lovers", screen_name="coffee")
    for user_id in (ANNA, BORIS, 5):
        vk.join(GROUP, user_id)
    first = vk.add_post(GROUP, "Hello", date=1_700_000_000)
    closed = vk.add_post(GROUP, "No comments", comments_closed=True, date=1_700_000_100)
    return {"first": first, "closed": closed}


def call(client: FlaskClient, method: str, token: str = USER_TOKEN, **params: Any) -> Any:
    """Call a method over HTTP GET like the collector; the parsed JSON body."""
    query = {"v": V, "access_token": token, **{k: str(v) for k, v in params.items()}}
    response = client.get(f"/vk-api/method/{method}", query_string=query)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def response_of(client: FlaskClient, method: str, **params: Any) -> Any:
    body = call(client, method, **params)
    assert "response" in body, body
    return body["response"]


def error_of(client: FlaskClient, method: str, token: str = USER_TOKEN, **params: Any) -> Any:
    body = call(client, method, token, **params)
    assert "error" in body and "response" not in body, body
    return body["error"]


def api(method: str, **params: Any) -> str:
    return f"API.{method}({json.dumps(params)})"


def execute(client: FlaskClient, calls: list[str], token: str = USER_TOKEN) -> Any:
    code = "return [" + ", ".join(calls) + "];"
    return execute_code(client, code, token)


def execute_code(client: FlaskClient, code: str, token: str = USER_TOKEN) -> Any:
    data = {"code": code, "v": V, "access_token": token}
    response = client.post("/vk-api/method/execute", data=data)
    assert response.status_code == 200
    return response.get_json()


# groups.getMembers and groups.isMember


def test_get_members_pages_sorted_ids(client: FlaskClient, vk: VkApiState) -> None:
    vk.generate_group(GROUP, members=2500, posts=0, likes=0, comments=0, reposts=0, seed=3)
    pages = [
        response_of(client, "groups.getMembers", group_id=GROUP, offset=offset, count=1000)
        for offset in (0, 1000, 2000)
    ]
    assert [page["count"] for page in pages] == [2500] * 3
    assert [len(page["items"]) for page in pages] == [1000, 1000, 500]
    items = [user_id for page in pages for user_id in page["items"]]
    assert items == sorted(items) and len(set(items)) == 2500
    assert response_of(client, "groups.getMembers", group_id=GROUP, offset=2500)["items"] == []
    by_name = response_of(client, "groups.getMembers", group_id=f"club{GROUP}", count=5)
    assert by_name["items"] == items[:5]
    desc = response_of(client, "groups.getMembers", group_id=GROUP, count=3, sort="id_desc")
    assert desc["items"] == items[::-1][:3]


def test_get_members_count_over_limit_is_error_100(client: FlaskClient, wall: Any) -> None:
    error = error_of(client, "groups.getMembers", group_id=GROUP, count=1001)
    assert error["error_code"] == 100
    assert error["error_msg"] == f"{INVALID}: count"
    params = {item["key"]: item["value"] for item in error["request_params"]}
    assert params["method"] == "groups.getMembers" and params["count"] == "1001"
    assert "access_token" not in params
    assert error_of(client, "groups.getMembers", group_id=GROUP, offset=-1)["error_code"] == 100
    assert error_of(client, "groups.getMembers", group_id=999)["error_code"] == 100


def test_is_member(client: FlaskClient, wall: Any) -> None:
    answer = response_of(client, "groups.isMember", group_id=GROUP, user_ids=f"{ANNA},{CHEN}")
    assert answer == [{"member": 1, "user_id": ANNA}, {"member": 0, "user_id": CHEN}]
    assert response_of(client, "groups.isMember", group_id=GROUP, user_id=BORIS) == 1
    many = ",".join(str(i) for i in range(1, 502))
    assert error_of(client, "groups.isMember", group_id=GROUP, user_ids=many)["error_code"] == 100


# wall.get, likes.getList, wall.getComments, wall.getReposts


def test_wall_get_newest_first_with_counts(
    client: FlaskClient, vk: VkApiState, wall: dict[str, int]
) -> None:
    first = wall["first"]
    vk.like(GROUP, first, ANNA)
    vk.like(GROUP, first, BORIS)
    kept = vk.comment(GROUP, first, ANNA, "Nice")
    gone = vk.comment(GROUP, first, BORIS, "Oops")
    vk.delete_comment(GROUP, first, gone)
    vk.repost(GROUP, first, ANNA)
    answer = response_of(client, "wall.get", owner_id=-GROUP, count=100, filter="owner")
    assert answer["count"] == 2
    assert [post["id"] for post in answer["items"]] == [wall["closed"], first]
    post = answer["items"][1]
    assert {k: post[k] for k in ("id", "owner_id", "from_id", "date", "text")} == {
        "id": first,
        "owner_id": -GROUP,
        "from_id": -GROUP,
        "date": 1_700_000_000,
        "text": "Hello",
    }
    assert post["likes"]["count"] == 2 and post["reposts"]["count"] == 1
    assert post["comments"]["count"] == 1  # the deleted comment does not count
    assert kept > first and gone > kept  # posts and comments share the wall's ids
    page = response_of(client, "wall.get", owner_id=-GROUP, offset=1, count=1)
    assert [p["id"] for p in page["items"]] == [first]
    assert response_of(client, "wall.get", owner_id=-GROUP, filter="others")["count"] == 0
    assert response_of(client, "wall.get", domain="coffee")["count"] == 2
    error = error_of(client, "wall.get", owner_id=-GROUP, count=101)
    assert error == {**error, "error_code": 100, "error_msg": f"{INVALID}: count"}


def test_wall_get_of_users(client: FlaskClient, vk: VkApiState, wall: dict[str, int]) -> None:
    repost_id = vk.repost(GROUP, wall["first"], BORIS)
    own_wall = response_of(client, "wall.get", owner_id=BORIS)
    assert own_wall["count"] == 1 and own_wall["items"][0]["id"] == repost_id
    vk.set_private(BORIS, True)
    assert error_of(client, "wall.get", owner_id=BORIS) == {
        **error_of(client, "wall.get", owner_id=BORIS),
        "error_code": 30,
        "error_msg": "This profile is private",
    }
    vk.set_deactivated(CHEN, "banned")
    assert error_of(client, "wall.get", owner_id=CHEN)["error_code"] == 18


def test_likes_get_list_newest_first_and_copies(
    client: FlaskClient, vk: VkApiState, wall: dict[str, int]
) -> None:
    first = wall["first"]
    for user_id in (ANNA, BORIS, CHEN, 5):
        vk.like(GROUP, first, user_id)
    vk.repost(GROUP, first, BORIS)
    vk.repost(GROUP, first, CHEN)
    base = {"type": "post", "owner_id": -GROUP, "item_id": first}
    likes = response_of(client, "likes.getList", **base, filter="likes", count=1000)
    assert likes == {"count": 4, "items": [5, CHEN, BORIS, ANNA]}
    page = response_of(client, "likes.getList", **base, offset=1, count=2)
    assert page == {"count": 4, "items": [CHEN, BORIS]}
    copies = response_of(client, "likes.getList", **base, filter="copies")
    assert copies == {"count": 2, "items": [CHEN, BORIS]}
    extended = response_of(client, "likes.getList", **base, count=1, extended=1)
    assert extended["items"][0]["id"] == 5 and extended["items"][0]["type"] == "profile"
    error = error_of(client, "likes.getList", **base, count=1001)
    assert error["error_code"] == 100 and error["error_msg"] == f"{INVALID}: count"


def test_get_comments_keeps_deleted_in_place(
    client: FlaskClient, vk: VkApiState, wall: dict[str, int]
) -> None:
    first = wall["first"]
    ids = [vk.comment(GROUP, first, user, f"c{i}") for i, user in enumerate((ANNA, BORIS, 5))]
    vk.delete_comment(GROUP, first, ids[1])
    base = {"owner_id": -GROUP, "post_id": first}
    answer = response_of(client, "wall.getComments", **base, count=100, thread_items_count=10)
    assert answer["count"] == answer["current_level_count"] == 3
    assert answer["can_post"] == 1
    items = answer["items"]
    assert [item["id"] for item in items] == ids
    assert {k: items[0][k] for k in ("id", "from_id", "post_id", "owner_id", "text")} == {
        "id": ids[0],
        "from_id": ANNA,
        "post_id": first,
        "owner_id": -GROUP,
        "text": "c0",
    }
    assert isinstance(items[0]["date"], int)
    assert items[1]["deleted"] is True and items[1]["id"] == ids[1]
    assert "from_id" not in items[1] and "text" not in items[1]
    second_page = response_of(client, "wall.getComments", **base, offset=2, count=1)
    assert [item["id"] for item in second_page["items"]] == [ids[2]]
    desc = response_of(client, "wall.getComments", **base, sort="desc", count=2)
    assert [item["id"] for item in desc["items"]] == [ids[2], ids[1]]
    posts = response_of(client, "wall.get", owner_id=-GROUP)["items"]
    assert next(p for p in posts if p["id"] == first)["comments"]["count"] == 2
    assert error_of(client, "wall.getComments", **base, count=101)["error_code"] == 100
    error = error_of(client, "wall.getComments", **base, thread_items_count=11)
    assert error["error_code"] == 100


def test_comments_closed_is_error_212(client: FlaskClient, wall: dict[str, int]) -> None:
    error = error_of(client, "wall.getComments", owner_id=-GROUP, post_id=wall["closed"])
    assert error["error_code"] == 212
    assert error["error_msg"] == "Access to post comments denied"


def test_get_reposts_shape_and_delete_repost(
    client: FlaskClient, vk: VkApiState, wall: dict[str, int]
) -> None:
    first = wall["first"]
    anna_repost = vk.repost(GROUP, first, ANNA)
    vk.repost(GROUP, first, BORIS)
    assert vk.repost(GROUP, first, ANNA) == anna_repost  # one repost per user
    base = {"owner_id": -GROUP, "post_id": first}
    answer = response_of(client, "wall.getReposts", **base, count=1000)
    assert set(answer) == {"items", "profiles", "groups"}
    assert [item["owner_id"] for item in answer["items"]] == [BORIS, ANNA]
    item = answer["items"][1]
    assert item["id"] == anna_repost and item["from_id"] == ANNA
    assert isinstance(item["date"], int)
    assert item["copy_history"][0]["id"] == first
    assert item["copy_history"][0]["owner_id"] == -GROUP
    assert error_of(client, "wall.getReposts", **base, count=1001)["error_code"] == 100
    assert vk.delete_repost(GROUP, first, ANNA) is True
    assert vk.delete_repost(GROUP, first, ANNA) is False
    after = response_of(client, "wall.getReposts", **base)
    assert [item["owner_id"] for item in after["items"]] == [BORIS]
    copies = {"type": "post", "owner_id": -GROUP, "item_id": first, "filter": "copies"}
    assert response_of(client, "likes.getList", **copies)["items"] == [BORIS]
    post = response_of(client, "wall.get", owner_id=-GROUP)["items"][1]
    assert post["reposts"]["count"] == 1


def test_unlike_and_leave_are_reflected(
    client: FlaskClient, vk: VkApiState, wall: dict[str, int]
) -> None:
    first = wall["first"]
    vk.like(GROUP, first, ANNA)
    vk.like(GROUP, first, BORIS)
    assert vk.unlike(GROUP, first, ANNA) is True
    assert vk.unlike(GROUP, first, ANNA) is False
    likes = {"type": "post", "owner_id": -GROUP, "item_id": first}
    assert response_of(client, "likes.getList", **likes) == {"count": 1, "items": [BORIS]}
    assert vk.leave(GROUP, BORIS) is True
    members = response_of(client, "groups.getMembers", group_id=GROUP)
    assert members == {"count": 2, "items": [5, ANNA]}
    assert response_of(client, "groups.isMember", group_id=GROUP, user_id=BORIS) == 0
    # Leaving keeps the user's activity, as on VK.
    assert response_of(client, "likes.getList", **likes)["items"] == [BORIS]


# users.get


def test_users_get_persons_privacy_and_deactivation(client: FlaskClient, vk: VkApiState) -> None:
    vk.set_private(BORIS, True)
    vk.set_deactivated(CHEN, "deleted")
    users = response_of(client, "users.get", user_ids=f"{ANNA},{BORIS},{CHEN},42")
    by_id = {user["id"]: user for user in users}
    assert list(by_id) == [ANNA, BORIS, CHEN, 42]
    assert (by_id[ANNA]["first_name"], by_id[ANNA]["last_name"]) == ("Anna", "Ivanova")
    assert by_id[ANNA]["is_closed"] is False and "deactivated" not in by_id[ANNA]
    assert by_id[BORIS]["is_closed"] is True and by_id[BORIS]["last_name"] == "Petrov"
    assert by_id[CHEN]["deactivated"] == "deleted"
    assert by_id[42]["first_name"] and by_id[42]["last_name"]
    error = error_of(client, "users.get", user_ids=str(CHEN))
    assert (error["error_code"], error["error_msg"]) == (18, "User was deleted or banned")
    vk.set_deactivated(CHEN, None)
    assert "deactivated" not in response_of(client, "users.get", user_ids=CHEN)[0]
    assert error_of(client, "users.get", user_ids="abc")["error_code"] == 113
    with pytest.raises(ValueError):
        vk.set_deactivated(CHEN, "frozen")


def test_private_users_still_listed_in_likes(
    client: FlaskClient, vk: VkApiState, wall: dict[str, int]
) -> None:
    vk.like(GROUP, wall["first"], BORIS)
    vk.set_private(BORIS, True)
    likes = {"type": "post", "owner_id": -GROUP, "item_id": wall["first"]}
    assert response_of(client, "likes.getList", **likes)["items"] == [BORIS]


# Requests: version, token, method


def test_version_is_required_and_must_be_5_199(client: FlaskClient, wall: Any) -> None:
    for version, message in (
        ("", "Invalid request: v is required"),
        ("4.104", "Invalid request: versions below 5.0 are deprecated"),
    ):
        body = client.get(
            "/vk-api/method/groups.getMembers",
            query_string={"group_id": GROUP, "access_token": USER_TOKEN, "v": version},
        ).get_json()
        assert body["error"]["error_code"] == 8 and body["error"]["error_msg"] == message
    body = client.get(
        "/vk-api/method/groups.getMembers",
        query_string={"group_id": GROUP, "access_token": USER_TOKEN, "v": "5.131"},
    ).get_json()
    assert body["error"]["error_code"] == 8 and "5.199" in body["error"]["error_msg"]


def test_unknown_or_missing_token_is_error_5(client: FlaskClient, wall: Any) -> None:
    error = error_of(client, "groups.getMembers", token="nope", group_id=GROUP)
    assert error["error_code"] == 5
    assert error["error_msg"].startswith("User authorization failed")
    assert error_of(client, "groups.getMembers", token="", group_id=GROUP)["error_code"] == 5


def test_unknown_method_is_error_3(client: FlaskClient) -> None:
    assert error_of(client, "wall.post", owner_id=-GROUP)["error_code"] == 3


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("wall.get", {"owner_id": -GROUP}),
        ("likes.getList", {"type": "post", "owner_id": -GROUP, "item_id": 1}),
        ("wall.getComments", {"owner_id": -GROUP, "post_id": 1}),
        ("wall.getReposts", {"owner_id": -GROUP, "post_id": 1}),
    ],
)
def test_group_token_is_refused_by_wall_methods(
    client: FlaskClient, wall: Any, method: str, params: dict[str, Any]
) -> None:
    error = error_of(client, method, GROUP_TOKEN, **params)
    assert error["error_code"] == 15
    assert error["error_msg"] == "Access denied: this method is not available with a group token"
    assert "response" in call(client, method, SERVICE_TOKEN, **params)


def test_group_token_may_read_members(client: FlaskClient, wall: Any) -> None:
    assert call(client, "groups.getMembers", GROUP_TOKEN, group_id=GROUP)["response"]["count"] == 3


def test_post_form_and_bearer_header(client: FlaskClient, wall: Any) -> None:
    form = {"group_id": str(GROUP), "v": V, "access_token": USER_TOKEN}
    body = client.post("/vk-api/method/groups.getMembers", data=form).get_json()
    assert body["response"]["count"] == 3
    body = client.get(
        "/vk-api/method/groups.getMembers",
        query_string={"group_id": GROUP, "v": V},
        headers={"Authorization": f"Bearer {USER_TOKEN}"},
    ).get_json()
    assert body["response"]["count"] == 3


# execute


def test_execute_runs_several_calls(client: FlaskClient, vk: VkApiState, wall: Any) -> None:
    vk.like(GROUP, wall["first"], ANNA)
    vk.reset_counts()
    body = execute(
        client,
        [
            api("groups.getMembers", group_id=GROUP, offset=0, count=2),
            api("groups.getMembers", group_id=GROUP, offset=2, count=2),
            api("likes.getList", type="post", owner_id=-GROUP, item_id=wall["first"]),
            api("users.get", user_ids=[ANNA, BORIS]),
        ],
    )
    assert "execute_errors" not in body
    members_1, members_2, likes, users = body["response"]
    assert members_1 == {"count": 3, "items": [5, ANNA]}
    assert members_2 == {"count": 3, "items": [BORIS]}
    assert likes == {"count": 1, "items": [ANNA]}
    assert [user["id"] for user in users] == [ANNA, BORIS]
    counts = vk.request_counts
    assert counts["execute"] == 1 and counts["total"] == 1
    assert counts["groups.getMembers"] == 2 and counts["likes.getList"] == 1
    assert counts["users.get"] == 1


def test_execute_single_call_and_whitespace(client: FlaskClient, wall: Any) -> None:
    body = execute_code(
        client, f'  return API.groups.isMember({{"group_id": {GROUP}, "user_id": {ANNA}}}) ;\n'
    )
    assert body == {"response": 1}
    assert execute_code(client, "return [];") == {"response": []}


def test_execute_faulted_inner_call_gives_false_and_execute_errors(
    client: FlaskClient, vk: VkApiState, wall: Any
) -> None:
    vk.inject_error(100, method="likes.getList")
    body = execute(
        client,
        [
            api("groups.getMembers", group_id=GROUP, count=1),
            api("likes.getList", type="post", owner_id=-GROUP, item_id=wall["first"]),
            api("likes.getList", type="post", owner_id=-GROUP, item_id=wall["first"]),
        ],
    )
    assert body["response"][0]["count"] == 3
    assert body["response"][1] is False
    assert body["response"][2] == {"count": 0, "items": []}  # only one call was faulted
    assert body["execute_errors"] == [
        {"method": "likes.getList", "error_code": 100, "error_msg": INVALID}
    ]


def test_execute_inner_errors_of_the_methods_themselves(client: FlaskClient, wall: Any) -> None:
    body = execute(
        client,
        [
            api("wall.getComments", owner_id=-GROUP, post_id=wall["closed"]),
            api("wall.get", owner_id=-GROUP, count=1),
        ],
        token=GROUP_TOKEN,
    )
    assert body["response"] == [False, False]
    assert [(e["method"], e["error_code"]) for e in body["execute_errors"]] == [
        ("wall.getComments", 15),
        ("wall.get", 15),
    ]
    body = execute(client, [api("wall.getComments", owner_id=-GROUP, post_id=wall["closed"])])
    assert body["execute_errors"][0]["error_code"] == 212


@pytest.mark.parametrize("code", [6, 9, 10, 29])
def test_execute_rate_errors_fail_the_whole_request(
    client: FlaskClient, vk: VkApiState, wall: Any, code: int
) -> None:
    vk.inject_error(code, method="wall.get")
    body = execute(
        client,
        [api("groups.getMembers", group_id=GROUP), api("wall.get", owner_id=-GROUP)],
    )
    assert "response" not in body
    assert body["error"]["error_code"] == code
    assert execute(client, [api("wall.get", owner_id=-GROUP)])["response"][0]["count"] == 2


def test_execute_allows_25_calls_not_26(client: FlaskClient, vk: VkApiState, wall: Any) -> None:
    one = api("groups.isMember", group_id=GROUP, user_id=ANNA)
    assert execute(client, [one] * 25)["response"] == [1] * 25
    vk.reset_counts()
    error = execute(client, [one] * 26)["error"]
    assert error["error_code"] == 13
    assert error["error_msg"] == (
        "Runtime error occurred during code invocation: too many API calls"
    )
    assert "groups.isMember" not in vk.request_counts  # nothing ran


@pytest.mark.parametrize(
    "code",
    [
        "API.users.get({});",
        'return API.users.get({user_ids: "1"});',
        "return [API.users.get({})",
        "return API.users.get([1]);",
        "var a = API.users.get({}); return a;",
        "return __import__('os').system('true');",
        "return API.users.get({}) + 1;",
        "return [1,];",
        "return API.users.get({}); return 1;",
        "return " + "[" * 40 + "]" * 40 + ";",
    ],
)
def test_execute_malformed_code_is_error_12(client: FlaskClient, code: str) -> None:
    error = execute_code(client, code)["error"]
    assert (error["error_code"], error["error_msg"]) == (12, "Unable to compile code")


def test_execute_unknown_inner_method(client: FlaskClient) -> None:
    body = execute(client, ["API.wall.post({})"])
    assert body["response"] == [False]
    assert body["execute_errors"][0]["error_code"] == 3


def test_script_parser_turns_json_params_into_vk_params() -> None:
    tree = script.parse('return [API.users.get({"user_ids": [1, 2], "extended": true}), 7];')
    calls = script.calls(tree)
    assert [c.method for c in calls] == ["users.get"]
    assert script.params_of(calls[0]) == {"user_ids": "1,2", "extended": "1"}


# Faults and the rate limit


def test_inject_error_on_plain_calls(client: FlaskClient, vk: VkApiState, wall: Any) -> None:
    vk.inject_error(10, method="wall.get", times=2)
    assert "response" in call(client, "groups.getMembers", group_id=GROUP)
    for _ in range(2):
        error = error_of(client, "wall.get", owner_id=-GROUP)
        assert (error["error_code"], error["error_msg"]) == (10, "Internal server error")
    assert "response" in call(client, "wall.get", owner_id=-GROUP)
    vk.inject_error(203)
    assert error_of(client, "users.get", user_ids=ANNA)["error_code"] == 203
    assert "response" in call(client, "users.get", user_ids=ANNA)


def test_inject_timeout_delays_the_next_requests(
    client: FlaskClient, vk: VkApiState, wall: Any
) -> None:
    vk.inject_timeout(0.3, times=1)
    started = time.perf_counter()
    assert "response" in call(client, "groups.getMembers", group_id=GROUP)
    assert time.perf_counter() - started >= 0.3
    started = time.perf_counter()
    call(client, "groups.getMembers", group_id=GROUP)
    assert time.perf_counter() - started < 0.3


def test_fault_rate_is_random_and_reproducible(
    client: FlaskClient, vk: VkApiState, wall: Any
) -> None:
    def run() -> list[int]:
        return [
            call(client, "groups.getMembers", group_id=GROUP).get("error", {}).get("error_code", 0)
            for _ in range(60)
        ]

    vk.set_fault_rate(0.3, seed=1)
    first = run()
    vk.set_fault_rate(0.3, seed=1)
    assert run() == first
    failed = [code for code in first if code]
    assert 5 <= len(failed) <= 35 and set(failed) <= {6, 9, 10, 29}
    vk.set_fault_rate(0.0)
    assert not any(run())


def test_rate_limit_per_token(client: FlaskClient, vk: VkApiState, wall: Any) -> None:
    vk.rate_limit_per_second = 3.0
    bodies = [call(client, "groups.getMembers", group_id=GROUP) for _ in range(4)]
    assert all("response" in body for body in bodies[:3])
    assert bodies[3]["error"]["error_code"] == 6
    assert bodies[3]["error"]["error_msg"] == "Too many requests per second"
    assert "response" in call(client, "groups.getMembers", SERVICE_TOKEN, group_id=GROUP)
    time.sleep(1.05)
    assert "response" in call(client, "groups.getMembers", group_id=GROUP)
    vk.rate_limit_per_second = None
    assert all("response" in call(client, "users.get", user_ids=ANNA) for _ in range(20))


def test_execute_counts_once_for_the_rate_limit(
    client: FlaskClient, vk: VkApiState, wall: Any
) -> None:
    vk.rate_limit_per_second = 3.0
    calls = [api("groups.isMember", group_id=GROUP, user_id=ANNA)] * 10
    assert all(execute(client, calls)["response"] == [1] * 10 for _ in range(3))
    assert execute(client, calls)["error"]["error_code"] == 6


def test_request_counts_and_reset(client: FlaskClient, vk: VkApiState, wall: Any) -> None:
    vk.reset_counts()
    call(client, "groups.getMembers", group_id=GROUP)
    call(client, "groups.getMembers", group_id=GROUP, count=5000)  # errors count too
    execute(client, [api("users.get", user_ids=ANNA)] * 2)
    assert vk.request_counts == {
        "groups.getMembers": 2,
        "execute": 1,
        "users.get": 2,
        "total": 3,
    }
    vk.reset_counts()
    assert vk.request_counts == {"total": 0}


# Generator and mutations


def _totals(vk: VkApiState, group_id: int) -> dict[str, int]:
    group = vk.groups[group_id]
    posts = group.posts.values()
    return {
        "members": len(group.members),
        "posts": len(group.posts),
        "likes": sum(len(p.likers) for p in posts),
        "comments": sum(p.live_comments for p in posts),
        "reposts": sum(len(p.reposts) for p in posts),
    }


def test_generate_group_exact_totals_and_speed(vk: VkApiState) -> None:
    sizes = {"members": 100_000, "posts": 100, "likes": 300_000}
    sizes.update(comments=20_000, reposts=5_000)
    started = time.perf_counter()
    vk.generate_group(GROUP, seed=7, **sizes)
    elapsed = time.perf_counter() - started
    assert elapsed < 15, f"generate_group took {elapsed:.1f} s"
    assert _totals(vk, GROUP) == sizes
    group = vk.groups[GROUP]
    assert group.members == sorted(group.members)
    actors = {u for p in group.posts.values() for u in p.likers}
    actors |= {c.from_id for p in group.posts.values() for c in p.comments}
    actors |= {r.user_id for p in group.posts.values() for r in p.reposts}
    assert actors <= group.member_set
    assert all(len(p.likers) == len(p.liker_set) for p in group.posts.values())


def test_generate_group_is_reproducible(vk: VkApiState) -> None:
    def snapshot() -> Any:
        group = vk.groups[GROUP]
        return (
            list(group.members),
            [
                (p.id, p.text, list(p.likers), [(c.id, c.from_id) for c in p.comments])
                for p in group.posts.values()
            ],
        )

    sizes = {"members": 300, "posts": 5, "likes": 400, "comments": 50, "reposts": 20}
    vk.generate_group(GROUP, seed=11, now=1_750_000_000, **sizes)
    first = snapshot()
    vk.generate_group(GROUP, seed=11, now=1_750_000_000, **sizes)
    assert snapshot() == first
    assert sum(len(reposts) for reposts in vk.walls.values()) == 20  # old reposts replaced
    vk.generate_group(GROUP, seed=12, now=1_750_000_000, **sizes)
    assert snapshot() != first
    assert [p.id for p in vk.groups[GROUP].posts.values()] == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError):
        vk.generate_group(GROUP, members=2, posts=1, likes=3, comments=0, reposts=0)


def test_generated_group_pages_completely(client: FlaskClient, vk: VkApiState) -> None:
    sizes = {"members": 2345, "posts": 7, "likes": 3000, "comments": 321, "reposts": 45}
    vk.generate_group(GROUP, seed=5, **sizes)
    posts = response_of(client, "wall.get", owner_id=-GROUP, count=100)["items"]
    assert sum(post["likes"]["count"] for post in posts) == 3000
    assert sum(post["comments"]["count"] for post in posts) == 321
    assert sum(post["reposts"]["count"] for post in posts) == 45
    likers: list[int] = []
    for post in posts:
        offset = 0
        while offset < post["likes"]["count"]:
            page = response_of(
                client,
                "likes.getList",
                type="post",
                owner_id=-GROUP,
                item_id=post["id"],
                offset=offset,
                count=1000,
            )
            likers += page["items"]
            offset += 1000
    assert len(likers) == 3000


def test_mutate_changes_activity_and_returns_counts(vk: VkApiState) -> None:
    sizes = {"members": 2000, "posts": 10, "likes": 4000, "comments": 600, "reposts": 200}
    vk.generate_group(GROUP, seed=1, **sizes)
    before = _totals(vk, GROUP)
    changes = vk.mutate(GROUP, 0.1, seed=2)
    assert set(changes) == {
        "likes_added",
        "likes_removed",
        "comments_added",
        "comments_deleted",
        "reposts_added",
        "reposts_deleted",
        "members_joined",
        "members_left",
    }
    assert changes["likes_removed"] == 200 and changes["members_left"] == 100
    assert 150 <= changes["likes_added"] <= 200 and changes["comments_deleted"] > 20
    after = _totals(vk, GROUP)
    assert after["likes"] == before["likes"] - changes["likes_removed"] + changes["likes_added"]
    assert after["comments"] == (
        before["comments"] - changes["comments_deleted"] + changes["comments_added"]
    )
    assert after["reposts"] == (
        before["reposts"] - changes["reposts_deleted"] + changes["reposts_added"]
    )
    assert (
        after["members"] == before["members"] - changes["members_left"] + changes["members_joined"]
    )
    group = vk.groups[GROUP]
    assert group.members == sorted(group.members)
    assert all(set(p.likers) == p.liker_set for p in group.posts.values())


def test_vk_data_survives_reset_and_clear_forgets_it(state: SandboxState, vk: VkApiState) -> None:
    vk.create_group(GROUP, "Kept")
    state.reset()
    assert GROUP in vk.groups
    vk.clear()
    assert vk.groups == {} and vk.token_kind(USER_TOKEN) == "user"


# Tester page and control endpoints


class _Forms(HTMLParser):
    """Every form: its action, its inputs and its buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.forms: list[dict[str, Any]] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self._in_title = tag == "title"
        if tag == "form":
            self.forms.append({"action": attributes.get("action"), "fields": {}, "buttons": []})
        elif tag == "input" and self.forms and attributes.get("type") == "hidden":
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value", "")
        elif tag == "button" and self.forms:
            self.forms[-1]["buttons"].append(attributes)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


def _tester(client: FlaskClient, **args: Any) -> _Forms:
    page = client.get("/vk-api/tester", query_string=args)
    assert page.status_code == 200
    parser = _Forms()
    parser.feed(page.get_data(as_text=True))
    return parser


def _press(
    client: FlaskClient, page: _Forms, action: str, post: int | None = None, **extra: str
) -> str:
    """Submit the form of the button with this data-action (and data-post); the message."""
    for form in page.forms:
        for button in form["buttons"]:
            if button.get("data-action") == action and (
                post is None or button.get("data-post") == str(post)
            ):
                data = {**form["fields"], "action": button["value"], **extra}
                response = client.post(form["action"], data=data)
                assert response.status_code == 302
                query = parse_qs(urlsplit(response.headers["Location"]).query)
                assert "error" not in query, query
                return query["message"][0]
    raise AssertionError(f"no {action} button for post {post}")


def test_tester_page_acts_as_a_person(client: FlaskClient, vk: VkApiState, wall: Any) -> None:
    vk.generate_group(GROUP + 1, members=50, posts=1, likes=0, comments=0, reposts=0)
    first = wall["first"]
    page = _tester(client, user_id=CHEN, group_id=GROUP)
    assert page.title == "Sandbox VK: act as a person"
    assert "joined" in _press(client, page, "join")
    assert CHEN in vk.groups[GROUP].member_set
    _press(client, _tester(client, user_id=CHEN, group_id=GROUP), "like", first)
    assert CHEN in vk.groups[GROUP].posts[first].liker_set
    page = _tester(client, user_id=CHEN, group_id=GROUP)
    _press(client, page, "comment", first, text="Hi from the tester")
    comment = vk.groups[GROUP].posts[first].comments[-1]
    assert (comment.from_id, comment.text) == (CHEN, "Hi from the tester")
    _press(client, _tester(client, user_id=CHEN, group_id=GROUP), "repost", first)
    assert CHEN in vk.groups[GROUP].posts[first].repost_by_user
    page = _tester(client, user_id=CHEN, group_id=GROUP)
    _press(client, page, "delete-comment", first)
    assert comment.deleted
    for action in ("unlike", "delete-repost"):
        _press(client, _tester(client, user_id=CHEN, group_id=GROUP), action, first)
    _press(client, _tester(client, user_id=CHEN, group_id=GROUP), "leave")
    post = vk.groups[GROUP].posts[first]
    assert CHEN not in post.liker_set and CHEN not in post.repost_by_user
    assert CHEN not in vk.groups[GROUP].member_set
    # The persons, then the first generated users, are offered.
    html = client.get("/vk-api/tester").get_data(as_text=True)
    assert f'value="{ANNA}"' in html
    assert f'value="{vk.generated_users[0]}"' in html and len(vk.generated_users) == 20


def test_tester_refuses_someone_elses_comment(
    client: FlaskClient, vk: VkApiState, wall: Any
) -> None:
    comment_id = vk.comment(GROUP, wall["first"], ANNA, "mine")
    form = {"action": "delete-comment", "user_id": BORIS, "group_id": GROUP}
    form.update(post_id=wall["first"], comment_id=comment_id)
    response = client.post("/vk-api/tester/act", data=form)
    assert "error" in parse_qs(urlsplit(response.headers["Location"]).query)
    assert not vk.find_comment(GROUP, wall["first"], comment_id).deleted


def test_control_endpoints(client: FlaskClient, vk: VkApiState) -> None:
    def post(path: str, body: dict[str, Any]) -> Any:
        return client.post(f"/vk-api/control/{path}", json=body)

    assert post("groups", {"group_id": 5, "name": "Remote"}).status_code == 201
    post_id = post("posts", {"group_id": 5, "text": "x"}).get_json()["post_id"]
    act = {"action": "like", "group_id": 5, "post_id": post_id, "user_id": ANNA}
    assert post("act", act).get_json()["changed"] is True
    comment = post("act", {**act, "action": "comment", "text": "hey"}).get_json()
    assert isinstance(comment["comment_id"], int)
    assert post("act", {**act, "action": "fly"}).status_code == 400
    assert post("tokens", {"token": "remote", "kind": "service"}).status_code == 201
    assert vk.token_kind("remote") == "service"
    assert post("faults", {"error_code": 9, "method": "wall.get", "times": 1}).status_code == 200
    assert error_of(client, "wall.get", owner_id=-5)["error_code"] == 9
    assert post("faults", {"timeout": 0.01, "times": 1}).status_code == 200
    assert post("faults", {"rate": 0.1, "seed": 1}).status_code == 200
    assert client.delete("/vk-api/control/faults").status_code == 200
    assert post("rate-limit", {"per_second": None}).get_json() == {"per_second": None}
    generated = post("generate", {"group_id": 6, "members": 10, "posts": 2, "likes": 5})
    assert generated.status_code == 201
    assert sum(post("mutate", {"group_id": 6, "fraction": 0.5}).get_json().values()) > 0
    assert post("users", {"user_id": BORIS, "private": True}).get_json()["private"] is True
    counts = client.get("/vk-api/control/counts").get_json()
    assert counts["wall.get"] == 1 and counts["total"] == 1
    assert client.delete("/vk-api/control/counts").get_json() == {"total": 0}
    assert post("clear", {}).get_json() == {"cleared": True}
    assert vk.groups == {}
