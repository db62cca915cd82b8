"""In-memory, thread-safe data of the sandbox Odnoklassniki API: groups, topics, activity,
tokens, per-method daily quotas and faults.

Its Python interface is VkApiState's (create_group, add_post, join, like, comment, faults...)
so one test script can drive either network; OK has no list of who reshared a topic, so
there is no repost here. Members are kept sorted by id, likers in the order they liked,
comments by id: every page is a bisect and a slice.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox.faults import FaultInjection, RequestCounts, TokenAccess
from sandbox.faults import positive as _positive
from sandbox.group_actions import start_group_act

TOKEN_KINDS = frozenset({"user", "group"})
DEACTIVATED_VALUES = frozenset({"deleted", "banned"})
TESTER_ACTIONS = ("join", "leave", "like", "unlike", "comment", "delete-comment")
TESTER_GENERATED_USERS = 20
# OK's ids are long numbers; the sandbox's start high enough to look like them.
FIRST_TOPIC_ID = 155_000_000_000_000
FIRST_COMMENT_ID = 9_100_000_000_000_000

# error_msg is "NAME : description", as OK writes it.
ERROR_MESSAGES = {
    1: "UNKNOWN : Unknown error",
    2: "SERVICE : Service temporary unavailable",
    3: "METHOD : Method is unknown",
    4: "REQUEST : Failed to process request due to invalid request",
    8: "FLOOD_BLOCKED : The execution of method is blocked due to flood",
    9: "IP_BLOCKED : The execution of method is blocked by IP address",
    10: "PERMISSION_DENIED : Permission denied",
    11: "LIMIT_REACHED : Method invocation limit reached",
    100: "PARAM : Missing or invalid parameter",
    101: "PARAM_API_KEY : Application not exist",
    102: "PARAM_SESSION_EXPIRED : Session expired",
    103: "PARAM_SESSION_KEY : Invalid session key",
    104: "PARAM_SIGNATURE : Invalid signature",
    300: "NOT_FOUND : Requested object not found",
    9999: "SYSTEM : Critical system error",
}

# Which errors a collector retries (a busy or flooded API) and which leave one list unread
# (no permission, the method's daily quota spent, the topic gone), and which method reads each
# list: a test script arms faults by these names.
ACCURACY_PROFILE: dict[str, Any] = {
    "retryable": (1, 2, 8, 9999),
    "skippable": (10, 11, 300),
    "methods": {
        "members": "group.getMembers",
        "likes": "discussions.getDiscussionLikes",
        "comments": "discussions.getComments",
        "wall": "mediatopic.getTopics",
    },
}
DEFAULT_FAULT_CODES: tuple[int, ...] = ACCURACY_PROFILE["retryable"]

_FIRST = ("Olga", "Irina", "Nikolai", "Tatiana", "Viktor", "Galina", "Yuri", "Svetlana")
_LAST = ("Orlov", "Zaitsev", "Belov", "Komarov", "Gusev", "Titov", "Kiselev", "Makarov")


def error_message(code: int) -> str:
    """OK's error_msg for a code (a generic one for codes the sandbox does not know)."""
    return ERROR_MESSAGES.get(code, f"UNKNOWN : Sandbox error {code}")


def generated_name(user_id: int) -> tuple[str, str]:
    """A stable first and last name for a user who is not a sandbox person."""
    mixed = (user_id * 2654435761) & 0xFFFFFFFF
    return _FIRST[mixed % len(_FIRST)], _LAST[(mixed >> 8) % len(_LAST)]


@dataclass(slots=True, eq=False)
class Comment:
    """A comment on a group topic; a deleted one stays (includeRemoved shows it)."""

    id: int
    author: int
    date: int
    text: str
    deleted: bool = False


@dataclass(slots=True, eq=False)
class Topic:
    """A group mediatopic: its likers (by user: the order they liked in) and comments by id."""

    id: int
    group_id: int
    date: int
    text: str
    likers: dict[int, int] = field(default_factory=dict)  # user -> like sequence number
    like_order: list[tuple[int, int]] = field(default_factory=list)  # (sequence, user)
    like_sequence: int = 0
    # Bumped by every like and unlike: an anchor of an older version marks its next page
    # "inconsistent", since a re-like moves the user in front of pages already read.
    likes_version: int = 0
    comments: list[Comment] = field(default_factory=list)
    comment_index: dict[int, int] = field(default_factory=dict)
    live_comments: int = 0


@dataclass(slots=True, eq=False)
class Group:
    """A group: members sorted by id, topics by id (newest last)."""

    id: int
    name: str
    members: list[int] = field(default_factory=list)
    member_set: set[int] = field(default_factory=set)
    topics: dict[int, Topic] = field(default_factory=dict)
    topic_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class UserFlags:
    """Privacy and deactivation of one user (only users with a flag set are stored)."""

    private: bool = False
    deactivated: str | None = None


@dataclass(frozen=True, slots=True)
class UserView:
    """A user as the tester shows them."""

    id: int
    first_name: str
    last_name: str
    private: bool
    deactivated: str | None


class OkApiState(RequestCounts, TokenAccess, FaultInjection):
    """Everything the sandbox OK API remembers; every public method takes the lock.

    ``persons`` returns the sandbox persons; their OK ids come from
    ``person["networks"]["ok"]["uid"]``. Any other positive id is a user with a generated name.
    Privacy and deactivation are remembered and shown, but, as on OK, a group's lists still
    name such users (a group's admin sees its members whatever their profile settings).
    """

    TOKEN_KINDS = TOKEN_KINDS
    DEFAULT_ACCESS_KIND = "group"
    DEFAULT_FAULT_CODES = DEFAULT_FAULT_CODES

    def __init__(self, persons: Callable[[], Iterable[dict[str, Any]]] | None = None) -> None:
        self.lock = threading.RLock()
        self._persons = persons or (lambda: ())
        self.rate_limit_per_second: float | None = None
        self.tokens: dict[str, str] = {}
        self._reset_data()

    def _reset_data(self) -> None:
        self.groups: dict[int, Group] = {}
        self.topic_groups: dict[int, int] = {}
        self.flags: dict[int, UserFlags] = {}
        self.quotas: dict[str, int] = {}
        self._next_topic = FIRST_TOPIC_ID
        self._next_comment = FIRST_COMMENT_ID
        self._reset_controls()

    def clear(self) -> None:
        """Forget groups, flags, quotas, faults and counts; keep tokens and the rate limit."""
        with self.lock:
            self._reset_data()

    # Users

    def person_names(self) -> dict[int, tuple[str, str]]:
        """OK id -> (first, last) of the sandbox persons that have an OK profile."""
        names: dict[int, tuple[str, str]] = {}
        for person in self._persons():
            profile = person.get("networks", {}).get("ok") or {}
            uid = str(profile.get("uid", ""))
            if uid.isdigit():
                first = profile.get("first_name", person["first_name"])
                names[int(uid)] = (first, profile.get("last_name", person["last_name"]))
        return names

    def users(self, user_ids: Iterable[int]) -> list[UserView]:
        """These users as the tester shows them."""
        persons = self.person_names()
        views = []
        with self.lock:
            for user_id in user_ids:
                first, last = persons.get(user_id) or generated_name(user_id)
                flags = self.flags.get(user_id) or UserFlags()
                views.append(UserView(user_id, first, last, flags.private, flags.deactivated))
        return views

    def user(self, user_id: int) -> UserView:
        return self.users([_user_id(user_id)])[0]

    def set_private(self, user_id: int, private: bool) -> None:
        """Close or open the user's profile."""
        with self.lock:
            self.flags.setdefault(_user_id(user_id), UserFlags()).private = bool(private)

    def set_deactivated(self, user_id: int, value: str | None) -> None:
        """Mark the user "deleted" or "banned", or (None) active again."""
        if value is not None and value not in DEACTIVATED_VALUES:
            raise ValueError(f"deactivated must be one of {sorted(DEACTIVATED_VALUES)} or None")
        with self.lock:
            self.flags.setdefault(_user_id(user_id), UserFlags()).deactivated = value

    def tester_users(self) -> list[UserView]:
        """The persons, then the first other members of the groups."""
        ids = list(self.person_names())
        with self.lock:
            for group in self.groups.values():
                for member in group.members:
                    if len(ids) >= len(self.person_names()) + TESTER_GENERATED_USERS:
                        break
                    if member not in ids:
                        ids.append(member)
        return self.users(ids)

    # Groups and topics

    def create_group(self, group_id: int, name: str) -> None:
        """Create a group (or rename an existing one, keeping its content)."""
        group_id = _positive(group_id, "group_id")
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        with self.lock:
            group = self.groups.get(group_id)
            if group is None:
                self.groups[group_id] = Group(group_id, name)
            else:
                group.name = name

    def group(self, group_id: int) -> Group:
        """The group, or ValueError (callers hold the lock while they read it)."""
        group = self.groups.get(group_id)
        if group is None:
            raise ValueError(f"no group {group_id}")
        return group

    def topic(self, group_id: int, topic_id: int) -> Topic:
        """The group's topic, or ValueError."""
        topic = self.group(group_id).topics.get(topic_id)
        if topic is None:
            raise ValueError(f"no topic {topic_id} in group {group_id}")
        return topic

    def find_topic(self, topic_id: int) -> Topic | None:
        """Any group's topic with this id."""
        group_id = self.topic_groups.get(topic_id)
        return None if group_id is None else self.groups[group_id].topics.get(topic_id)

    def add_post(self, group_id: int, text: str = "", *, date: int | None = None) -> int:
        """Publish a topic in the group's feed; returns its id."""
        with self.lock:
            group = self.group(group_id)
            topic = Topic(self._next_topic, group.id, _now(date), text)
            self._next_topic += 1
            group.topics[topic.id] = topic
            group.topic_ids.append(topic.id)
            self.topic_groups[topic.id] = group.id
            return topic.id

    # Activity

    def join(self, group_id: int, user_id: int) -> bool:
        """Make the user a member; False if they already were."""
        user_id = _user_id(user_id)
        with self.lock:
            group = self.group(group_id)
            if user_id in group.member_set:
                return False
            group.member_set.add(user_id)
            bisect.insort(group.members, user_id)
            return True

    def leave(self, group_id: int, user_id: int) -> bool:
        """Remove the user from the members (their activity stays); False if not a member."""
        user_id = _user_id(user_id)
        with self.lock:
            group = self.group(group_id)
            if user_id not in group.member_set:
                return False
            group.member_set.discard(user_id)
            del group.members[bisect.bisect_left(group.members, user_id)]
            return True

    def like(self, group_id: int, post_id: int, user_id: int) -> bool:
        """Give the topic a "Klass"; False if the user already had."""
        user_id = _user_id(user_id)
        with self.lock:
            topic = self.topic(group_id, post_id)
            if user_id in topic.likers:
                return False
            topic.like_sequence += 1
            topic.likers[user_id] = topic.like_sequence
            topic.like_order.append((topic.like_sequence, user_id))
            topic.likes_version += 1
            return True

    def unlike(self, group_id: int, post_id: int, user_id: int) -> bool:
        """Take the "Klass" back; False if there was none."""
        user_id = _user_id(user_id)
        with self.lock:
            topic = self.topic(group_id, post_id)
            sequence = topic.likers.pop(user_id, None)
            if sequence is None:
                return False
            del topic.like_order[bisect.bisect_left(topic.like_order, (sequence, user_id))]
            topic.likes_version += 1
            return True

    def comment(
        self, group_id: int, post_id: int, user_id: int, text: str, *, date: int | None = None
    ) -> str:
        """Comment on the topic; returns the comment id (OK's ids are strings)."""
        user_id = _user_id(user_id)
        if not isinstance(text, str) or not text.strip():
            raise ValueError("a comment needs some text")
        with self.lock:
            topic = self.topic(group_id, post_id)
            comment = Comment(self._next_comment, user_id, _now(date), text)
            self._next_comment += 1
            topic.comment_index[comment.id] = len(topic.comments)
            topic.comments.append(comment)
            topic.live_comments += 1
            return str(comment.id)

    def find_comment(self, group_id: int, post_id: int, comment_id: str | int) -> Comment:
        """The comment (deleted or not), or ValueError."""
        with self.lock:
            topic = self.topic(group_id, post_id)
            index = topic.comment_index.get(_comment_id(comment_id))
            if index is None:
                raise ValueError(f"no comment {comment_id} on topic {post_id}")
            return topic.comments[index]

    def delete_comment(self, group_id: int, post_id: int, comment_id: str | int) -> bool:
        """Delete the comment (it stays in place as removed); False if it already was."""
        with self.lock:
            comment = self.find_comment(group_id, post_id, comment_id)
            if comment.deleted:
                return False
            comment.deleted = True
            self.topic(group_id, post_id).live_comments -= 1
            return True

    def act(
        self,
        action: str,
        *,
        group_id: int,
        user_id: int,
        post_id: int | None = None,
        text: str = "",
        comment_id: str | None = None,
    ) -> dict[str, Any]:
        """Do one tester action as a user; ``{"changed", "message"}`` plus a new comment id."""
        name, done = start_group_act(
            self,
            action,
            TESTER_ACTIONS,
            group_id=group_id,
            user_id=user_id,
            post_id=post_id,
            text=text,
            post_noun="topic",
        )
        if done is not None:
            return done
        if action == "delete-comment":
            if not comment_id:
                raise ValueError("delete-comment needs a comment_id")
            if self.find_comment(group_id, post_id, comment_id).author != user_id:
                raise ValueError(f"comment {comment_id} is not {name}'s")
            changed = self.delete_comment(group_id, post_id, comment_id)
            return {"changed": changed, "message": f"{name} deleted comment {comment_id}."}
        changed = (self.like if action == "like" else self.unlike)(group_id, post_id, user_id)
        past = "gave a Klass to" if action == "like" else "took the Klass back from"
        return {"changed": changed, "message": f"{name} {past} topic {post_id}."}

    # Quotas and faults (counts, tokens and the rate limit come from sandbox.faults)

    def set_quota(self, method: str, calls: int | None) -> None:
        """Allow ``calls`` more calls of ``method`` today (None: no quota, the default)."""
        if not isinstance(method, str) or not method:
            raise ValueError("method must be a method name")
        with self.lock:
            if calls is None:
                self.quotas.pop(method, None)
            elif isinstance(calls, bool) or not isinstance(calls, int) or calls < 0:
                raise ValueError("calls must be a non-negative integer or None")
            else:
                self.quotas[method] = calls

    def calls_left(self, method: str) -> int | None:
        """Calls of ``method`` left today; None when it has no quota."""
        with self.lock:
            return self.quotas.get(method)

    def take_call(self, method: str) -> bool:
        """Spend one call of the method's quota; False when none is left."""
        with self.lock:
            left = self.quotas.get(method)
            if left is None:
                return True
            if left <= 0:
                return False
            self.quotas[method] = left - 1
            return True

    def take_fault(self, method: str) -> int | None:
        """The code of the armed error for this call (consumed), or of a random fault."""
        with self.lock:
            fault = self._take_armed(method)
            return self.random_fault() if fault is None else fault.code


def _user_id(value: Any) -> int:
    return _positive(value, "user_id")


def _comment_id(value: Any) -> int:
    text = str(value)
    if not text.isdigit():
        raise ValueError(f"no comment {value}")
    return int(text)


def _now(date: int | None) -> int:
    return int(time.time()) if date is None else int(date)
