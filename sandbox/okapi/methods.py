"""The OK REST methods the sandbox answers for group collection, in OK's JSON shapes.

Each handler takes the state and the request's parameters (strings) and returns the JSON
body; callers hold ``ok.lock``. Ids are strings in JSON, as OK writes them. Lists page by an
opaque ``anchor`` that names a position (the last member's id, the last comment's id), not an
offset, so a member who leaves or a comment deleted between two pages shifts nothing.

Page sizes: the sandbox caps group.getMembers at 1000 and the others at 100 (the stored docs
give no maximum; published clients ask for 100 likers and comments a page).
"""

from __future__ import annotations

import base64
import bisect
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sandbox.okapi.model import Comment, Group, OkApiState, Topic, error_message

Params = Mapping[str, str]
Handler = Callable[[OkApiState, Params], Any]

MAX_COUNT = {
    "group.getMembers": 1000,
    "mediatopic.getTopics": 100,
    "discussions.getDiscussionLikes": 100,
    "discussions.getComments": 100,
}
DISCUSSION_TYPE = "GROUP_TOPIC"
# discussions.getComments gives "date" as Moscow time text.
MOSCOW = timezone(timedelta(hours=3))


class OkError(Exception):
    """An OK API error: HTTP 200 with ``{"error_code", "error_msg", "error_data"}``."""

    def __init__(self, code: int, detail: str | None = None) -> None:
        self.code = code
        self.message = error_message(code) + (f": {detail}" if detail else "")
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error_code": self.code, "error_msg": self.message, "error_data": None}


def invalid(detail: str) -> OkError:
    return OkError(100, detail)


# Parameters and anchors


def int_param(params: Params, name: str, default: int | None = None) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        if default is None:
            raise invalid(f"{name} is required")
        return default
    if not raw.isdigit():
        raise invalid(f"{name} must be a number")
    return int(raw)


def count_param(params: Params, method: str, default: int) -> int:
    count = int_param(params, "count", default)
    if not 1 <= count <= MAX_COUNT[method]:
        raise invalid(f"count must be between 1 and {MAX_COUNT[method]}")
    return count


def forward_only(params: Params) -> None:
    direction = params.get("direction", "").strip().upper() or "FORWARD"
    if direction != "FORWARD":
        raise invalid("direction: the sandbox pages FORWARD only")


def make_anchor(kind: str, position: int, version: int = 0) -> str:
    """An opaque anchor: the list, the position after which the next page starts, a version."""
    raw = f"{kind}:{position}:{version}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_anchor(params: Params, kind: str) -> tuple[int, int] | None:
    """(position, version) of the request's anchor; None for the first page."""
    raw = params.get("anchor", "").strip()
    if not raw:
        return None
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        found, position, version = decoded.split(":")
        if found != kind:
            raise ValueError(found)
        return int(position), int(version)
    except ValueError:
        raise invalid("anchor is not an anchor of this list") from None


def group_param(ok: OkApiState, params: Params, name: str) -> Group:
    group = ok.groups.get(int_param(params, name))
    if group is None:
        raise OkError(300, f"no group {params.get(name)}")
    return group


def discussion(ok: OkApiState, params: Params) -> Topic:
    """The group topic named by discussionId and discussionType=GROUP_TOPIC."""
    kind = params.get("discussionType", "").strip()
    if kind != DISCUSSION_TYPE:
        raise invalid(f"discussionType must be {DISCUSSION_TYPE} in the sandbox")
    topic = ok.find_topic(int_param(params, "discussionId"))
    if topic is None:
        raise OkError(300, f"no discussion {params.get('discussionId')}")
    return topic


# Methods


def group_get_members(ok: OkApiState, params: Params) -> dict[str, Any]:
    """group.getMembers (uid = the group): members by id, ``{"members": [{"userId"}],
    "anchor", "has_more"}``."""
    group = group_param(ok, params, "uid")
    forward_only(params)
    count = count_param(params, "group.getMembers", 1000)
    after = read_anchor(params, "m")
    start = 0 if after is None else bisect.bisect_right(group.members, after[0])
    page = group.members[start : start + count]
    answer: dict[str, Any] = {
        "members": [{"userId": str(user), "groupId": str(group.id)} for user in page],
        "has_more": start + count < len(group.members),
    }
    if page:
        answer["anchor"] = make_anchor("m", page[-1])
    return answer


def group_get_counters(ok: OkApiState, params: Params) -> dict[str, Any]:
    """group.getCounters: ``{"counters": {"members", "themes"}}`` as counterTypes asks."""
    group = group_param(ok, params, "group_id")
    wanted = {t.strip().lower() for t in params.get("counterTypes", "").split(",") if t.strip()}
    if not wanted:
        raise invalid("counterTypes is required")
    counters = {"members": len(group.members), "themes": len(group.topic_ids)}
    return {"counters": {name: value for name, value in counters.items() if name in wanted}}


def mediatopic_get_topics(ok: OkApiState, params: Params) -> dict[str, Any]:
    """mediatopic.getTopics (gid): the group's feed, newest first, with like_summary,
    discussion_summary and reshare_summary."""
    group = group_param(ok, params, "gid")
    forward_only(params)
    count = count_param(params, "mediatopic.getTopics", 20)
    before = read_anchor(params, "t")
    ids = group.topic_ids
    end = len(ids) if before is None else bisect.bisect_left(ids, before[0])
    page = list(reversed(ids[max(0, end - count) : end]))
    answer: dict[str, Any] = {
        "media_topics": [topic_json(group.topics[topic_id]) for topic_id in page],
        "has_more": end - count > 0,
    }
    if page:
        answer["anchor"] = make_anchor("t", page[-1])
    return answer


def topic_json(topic: Topic) -> dict[str, Any]:
    return {
        "id": str(topic.id),
        "created_ms": topic.date * 1000,
        "author_ref": f"group:{topic.group_id}",
        "owner_ref": f"group:{topic.group_id}",
        "media": [{"type": "text", "text": topic.text}],
        "like_summary": {
            "count": len(topic.likers),
            "self": False,
            "like_possible": True,
            "unlike_possible": False,
            "like_id": make_anchor("like", topic.id),
        },
        "discussion_summary": {"comments_count": topic.live_comments},
        "reshare_summary": {"count": 0, "self": False, "reshare_possible": True},
    }


def discussions_get_discussion_likes(ok: OkApiState, params: Params) -> dict[str, Any]:
    """discussions.getDiscussionLikes: who gave the topic a "Klass", newest first,
    ``{"users": [{"uid"}], "anchor", "inconsistent"}`` (no has_more: an empty page ends it).

    The anchor carries the likes' version: a page asked for after a like or an unlike says
    ``"inconsistent": true``, since a user who took the Klass back and gave it again moved in
    front of the pages already read."""
    topic = discussion(ok, params)
    forward_only(params)
    count = count_param(params, "discussions.getDiscussionLikes", 100)
    after = read_anchor(params, "l")
    order = topic.like_order
    end = len(order) if after is None else bisect.bisect_left(order, (after[0], 0))
    page = list(reversed(order[max(0, end - count) : end]))
    answer: dict[str, Any] = {
        "users": [{"uid": str(user)} for _, user in page],
        "inconsistent": after is not None and after[1] != topic.likes_version,
    }
    if page:
        answer["anchor"] = make_anchor("l", page[-1][0], topic.likes_version)
    return answer


def discussions_get_comments(ok: OkApiState, params: Params) -> dict[str, Any]:
    """discussions.getComments: the topic's comments oldest first, ``{"comments": [{"id",
    "author_id", "text", "date", "type"}], "anchor", "has_more"}``; removed ones only with
    includeRemoved=true."""
    topic = discussion(ok, params)
    forward_only(params)
    count = count_param(params, "discussions.getComments", 20)
    removed = params.get("includeRemoved", "").strip().lower() in ("1", "true")
    after = read_anchor(params, "c")
    comments = topic.comments
    start = 0
    if after is not None:
        anchored = topic.comment_index.get(after[0])
        if anchored is None:
            raise invalid("anchor is not an anchor of this list")
        start = anchored + 1
    page: list[Comment] = []
    index = start
    while index < len(comments) and len(page) < count:
        if removed or not comments[index].deleted:
            page.append(comments[index])
        index += 1
    more = any(removed or not c.deleted for c in comments[index:])
    answer: dict[str, Any] = {
        "comments": [_comment_json(comment) for comment in page],
        "has_more": more,
    }
    if page:
        answer["anchor"] = make_anchor("c", page[-1].id)
    return answer


def _comment_json(comment: Comment) -> dict[str, Any]:
    if comment.deleted:
        return {"id": str(comment.id), "type": "REMOVED_MESSAGE", "deleted": True}
    date = datetime.fromtimestamp(comment.date, UTC).astimezone(MOSCOW)
    return {
        "id": str(comment.id),
        "author_id": str(comment.author),
        "text": comment.text,
        "date": date.strftime("%Y-%m-%d %H:%M:%S"),
        "type": "ACTIVE_MESSAGE",
    }


def users_get_calls_left(ok: OkApiState, params: Params) -> list[dict[str, Any]]:
    """users.getCallsLeft: ``[{"name", "available", "callsLeft"}]`` for each of ``methods``;
    the sandbox answers callsLeft -1 for a method without a quota."""
    names = [m.strip() for m in params.get("methods", "").split(",") if m.strip()]
    if not names:
        raise invalid("methods is required")
    answer = []
    for name in names:
        left = ok.calls_left(name)
        calls = -1 if left is None else left
        answer.append({"name": name, "available": left is None or left > 0, "callsLeft": calls})
    return answer


METHODS: dict[str, Handler] = {
    "group.getMembers": group_get_members,
    "group.getCounters": group_get_counters,
    "mediatopic.getTopics": mediatopic_get_topics,
    "discussions.getDiscussionLikes": discussions_get_discussion_likes,
    "discussions.getComments": discussions_get_comments,
    "users.getCallsLeft": users_get_calls_left,
}
# Asking how many calls are left costs no call.
QUOTA_FREE = frozenset({"users.getCallsLeft"})
