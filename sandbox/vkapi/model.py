"""In-memory, thread-safe data of the sandbox VK API: groups, walls, activity, users, faults.

Lists are kept in the order the API pages them (members by id, likers and reposts by time,
comments by id), so every request slices O(page) items.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox.faults import Fault, FaultInjection, RequestCounts, TokenAccess
from sandbox.faults import positive as _positive
from sandbox.group_actions import start_group_act
from sandbox.vkapi import callbacks
from sandbox.vkapi.callbacks import CallbackHub

API_VERSION = "5.199"
TOKEN_KINDS = frozenset({"user", "service", "group"})
DEACTIVATED_VALUES = frozenset({"deleted", "banned"})
# Injected errors that fail a whole execute request, like VK's rate limits.
WHOLE_REQUEST_CODES = frozenset({6, 9, 10, 29})
DEFAULT_FAULT_CODES = (6, 9, 10, 29)
DEFAULT_RATE_LIMIT = 3.0
TESTER_GENERATED_USERS = 20
TESTER_ACTIONS = (
    "join",
    "leave",
    "like",
    "unlike",
    "comment",
    "delete-comment",
    "repost",
    "delete-repost",
)

ERROR_MESSAGES = {
    1: "Unknown error occurred",
    3: "Unknown method passed",
    5: "User authorization failed",
    6: "Too many requests per second",
    7: "Permission to perform this action is denied",
    8: "Invalid request",
    9: "Flood control",
    10: "Internal server error",
    12: "Unable to compile code",
    13: "Runtime error occurred during code invocation",
    15: "Access denied",
    18: "User was deleted or banned",
    29: "Rate limit reached",
    30: "This profile is private",
    100: "One of the parameters specified was missing or invalid",
    113: "Invalid user id",
    203: "Access to group denied",
    212: "Access to post comments denied",
}

_FIRST_MALE = ("Alexey", "Dmitry", "Ivan", "Maxim", "Sergey", "Pavel", "Nikita", "Artem", "Egor")
_FIRST_FEMALE = ("Anastasia", "Maria", "Daria", "Elena", "Olga", "Polina", "Sofia", "Ksenia")
_LAST = (
    "Smirnov",
    "Kuznetsov",
    "Popov",
    "Vasiliev",
    "Sokolov",
    "Mikhailov",
    "Novikov",
    "Fedorov",
    "Morozov",
    "Volkov",
    "Lebedev",
    "Semenov",
    "Egorov",
    "Pavlov",
    "Kozlov",
    "Stepanov",
)


def error_message(code: int) -> str:
    """VK's message for an error code (a generic one for codes the sandbox does not know)."""
    return ERROR_MESSAGES.get(code, f"Sandbox error {code}")


def generated_name(user_id: int) -> tuple[str, str]:
    """A stable first and last name for a user who is not a sandbox person."""
    mixed = (user_id * 2654435761) & 0xFFFFFFFF
    last = _LAST[(mixed >> 8) % len(_LAST)]
    if mixed & 1:
        return _FIRST_FEMALE[(mixed >> 1) % len(_FIRST_FEMALE)], last + "a"
    return _FIRST_MALE[(mixed >> 1) % len(_FIRST_MALE)], last


@dataclass(slots=True, eq=False)
class Comment:
    """A comment on a group post; a deleted one keeps its place."""

    id: int
    from_id: int
    date: int
    text: str
    deleted: bool = False


@dataclass(slots=True, eq=False)
class Repost:
    """A user's repost of a group post: a post on the user's own wall."""

    id: int
    user_id: int
    date: int
    group_id: int
    post_id: int


@dataclass(slots=True, eq=False)
class Post:
    """A post on a group's wall with its likers, comments and reposts (oldest first)."""

    id: int
    date: int
    text: str
    comments_closed: bool = False
    likers: list[int] = field(default_factory=list)
    liker_set: set[int] = field(default_factory=set)
    comments: list[Comment] = field(default_factory=list)
    comment_index: dict[int, int] = field(default_factory=dict)
    live_comments: int = 0
    reposts: list[Repost] = field(default_factory=list)
    repost_by_user: dict[int, Repost] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Group:
    """A community: members sorted by id, posts by id; posts and comments share one counter."""

    id: int
    name: str
    screen_name: str
    members: list[int] = field(default_factory=list)
    member_set: set[int] = field(default_factory=set)
    posts: dict[int, Post] = field(default_factory=dict)
    post_ids: list[int] = field(default_factory=list)
    last_id: int = 0

    def next_id(self) -> int:
        """The next id on this wall (VK numbers posts and comments together)."""
        self.last_id += 1
        return self.last_id


@dataclass(slots=True)
class UserFlags:
    """Privacy and deactivation of one user (only users with a flag set are stored)."""

    is_closed: bool = False
    deactivated: str | None = None


_NO_FLAGS = UserFlags()


@dataclass(frozen=True, slots=True)
class UserView:
    """A user as the API shows them."""

    id: int
    first_name: str
    last_name: str
    is_closed: bool
    deactivated: str | None


class VkApiState(RequestCounts, TokenAccess, FaultInjection):
    """Everything the sandbox VK API remembers; every public method takes the lock.

    ``persons`` returns the sandbox persons; their VK ids come from
    ``person["networks"]["vk"]["user_id"]``. Every other positive id is a user with a
    generated name. ``callbacks`` pushes the changes made here to the groups' Callback API
    servers (the generator's bulk changes are not events).
    """

    TOKEN_KINDS = TOKEN_KINDS
    DEFAULT_ACCESS_KIND = "user"
    DEFAULT_FAULT_CODES = DEFAULT_FAULT_CODES

    def __init__(self, persons: Callable[[], Iterable[dict[str, Any]]] | None = None) -> None:
        self.lock = threading.RLock()
        self._persons = persons or (lambda: ())
        self.rate_limit_per_second: float | None = DEFAULT_RATE_LIMIT
        self.tokens: dict[str, str] = {}
        self.callbacks = CallbackHub()
        self._reset_data()

    def _reset_data(self) -> None:
        self.groups: dict[int, Group] = {}
        self.screen_names: dict[str, int] = {}
        self.flags: dict[int, UserFlags] = {}
        self.walls: dict[int, list[Repost]] = {}
        self.wall_counters: dict[int, int] = {}
        self.generated_users: list[int] = []
        self._reset_controls()

    def clear(self) -> None:
        """Forget groups, users' flags, faults, counts, rate windows and callback servers;
        keep tokens and limit."""
        with self.lock:
            self._reset_data()
            self.callbacks.reset()

    # Users

    def person_names(self) -> dict[int, tuple[str, str]]:
        """VK id -> (first, last) of the sandbox persons that have a VK profile."""
        names: dict[int, tuple[str, str]] = {}
        for person in self._persons():
            profile = person.get("networks", {}).get("vk") or {}
            user_id = profile.get("user_id")
            if isinstance(user_id, int):
                first = profile.get("first_name", person["first_name"])
                names[user_id] = (first, profile.get("last_name", person["last_name"]))
        return names

    def users(self, user_ids: Iterable[int]) -> list[UserView]:
        """These users as the API shows them (any positive id is a user)."""
        persons = self.person_names()
        views = []
        with self.lock:
            for user_id in user_ids:
                first, last = persons.get(user_id) or generated_name(user_id)
                flags = self.flags.get(user_id) or _NO_FLAGS
                views.append(UserView(user_id, first, last, flags.is_closed, flags.deactivated))
        return views

    def user(self, user_id: int) -> UserView:
        """One user as the API shows them."""
        return self.users([_user_id(user_id)])[0]

    def set_private(self, user_id: int, private: bool) -> None:
        """Close or open the user's profile."""
        with self.lock:
            self._flags(user_id).is_closed = bool(private)

    def set_deactivated(self, user_id: int, value: str | None) -> None:
        """Mark the user "deleted" or "banned", or (None) active again."""
        if value is not None and value not in DEACTIVATED_VALUES:
            raise ValueError(f"deactivated must be one of {sorted(DEACTIVATED_VALUES)} or None")
        with self.lock:
            self._flags(user_id).deactivated = value

    def _flags(self, user_id: int) -> UserFlags:
        return self.flags.setdefault(_user_id(user_id), UserFlags())

    # Groups and posts

    def create_group(self, group_id: int, name: str, *, screen_name: str | None = None) -> None:
        """Create a group (or rename an existing one, keeping its content)."""
        group_id = _positive(group_id, "group_id")
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        screen_name = screen_name or f"club{group_id}"
        with self.lock:
            owner = self.screen_names.get(screen_name)
            if owner is not None and owner != group_id:
                raise ValueError(f"screen_name {screen_name!r} belongs to group {owner}")
            group = self.groups.get(group_id)
            if group is None:
                self.groups[group_id] = Group(group_id, name, screen_name)
            else:
                self.screen_names.pop(group.screen_name, None)
                group.name, group.screen_name = name, screen_name
            self.screen_names[screen_name] = group_id

    def group(self, group_id: int) -> Group:
        """The group, or ValueError (callers hold the lock while they read it)."""
        group = self.groups.get(group_id)
        if group is None:
            raise ValueError(f"no group {group_id}")
        return group

    def group_by_name(self, screen_name: str) -> Group | None:
        """The group with this screen_name, if any."""
        with self.lock:
            group_id = self.screen_names.get(screen_name)
            return None if group_id is None else self.groups.get(group_id)

    def post(self, group_id: int, post_id: int) -> Post:
        """The group's post, or ValueError."""
        post = self.group(group_id).posts.get(post_id)
        if post is None:
            raise ValueError(f"no post {post_id} on the wall of group {group_id}")
        return post

    def add_post(
        self,
        group_id: int,
        text: str = "",
        *,
        comments_closed: bool = False,
        date: int | None = None,
    ) -> int:
        """Publish a post on the group's wall; returns its id."""
        with self.lock:
            group = self.group(group_id)
            post = Post(group.next_id(), _now(date), text, bool(comments_closed))
            group.posts[post.id] = post
            group.post_ids.append(post.id)
            return post.id

    def set_comments_closed(self, group_id: int, post_id: int, closed: bool) -> None:
        """Close or open a post's comments."""
        with self.lock:
            self.post(group_id, post_id).comments_closed = bool(closed)

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
            self.callbacks.emit(group_id, "group_join", callbacks.group_join(user_id))
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
            self.callbacks.emit(group_id, "group_leave", callbacks.group_leave(user_id))
            return True

    def like(self, group_id: int, post_id: int, user_id: int) -> bool:
        """Like the post; False if the user already did."""
        user_id = _user_id(user_id)
        with self.lock:
            post = self.post(group_id, post_id)
            if user_id in post.liker_set:
                return False
            post.liker_set.add(user_id)
            post.likers.append(user_id)
            like = callbacks.like_object(group_id, post_id, user_id)
            self.callbacks.emit(group_id, "like_add", like)
            return True

    def unlike(self, group_id: int, post_id: int, user_id: int) -> bool:
        """Take the like back; False if there was none."""
        user_id = _user_id(user_id)
        with self.lock:
            post = self.post(group_id, post_id)
            if user_id not in post.liker_set:
                return False
            post.liker_set.discard(user_id)
            post.likers.remove(user_id)
            like = callbacks.like_object(group_id, post_id, user_id)
            self.callbacks.emit(group_id, "like_remove", like)
            return True

    def comment(
        self, group_id: int, post_id: int, user_id: int, text: str, *, date: int | None = None
    ) -> int:
        """Comment on the post; returns the comment id (ValueError if comments are closed)."""
        user_id = _user_id(user_id)
        if not isinstance(text, str) or not text.strip():
            raise ValueError("a comment needs some text")
        with self.lock:
            group = self.group(group_id)
            post = self.post(group_id, post_id)
            if post.comments_closed:
                raise ValueError(f"comments on post {post_id} are closed")
            comment = Comment(group.next_id(), user_id, _now(date), text)
            post.comment_index[comment.id] = len(post.comments)
            post.comments.append(comment)
            post.live_comments += 1
            reply = callbacks.comment_object(
                group_id, post_id, comment.id, user_id, comment.date, text
            )
            self.callbacks.emit(group_id, "wall_reply_new", reply)
            return comment.id

    def find_comment(self, group_id: int, post_id: int, comment_id: int) -> Comment:
        """The comment (deleted or not), or ValueError."""
        with self.lock:
            post = self.post(group_id, post_id)
            index = post.comment_index.get(comment_id)
            if index is None:
                raise ValueError(f"no comment {comment_id} on post {post_id}")
            return post.comments[index]

    def delete_comment(
        self, group_id: int, post_id: int, comment_id: int, *, deleter_id: int | None = None
    ) -> bool:
        """Delete the comment (it stays in place as deleted); False if it already was.
        ``deleter_id`` (default: the author) is who the callback event names."""
        with self.lock:
            comment = self.find_comment(group_id, post_id, comment_id)
            if comment.deleted:
                return False
            comment.deleted = True
            self.post(group_id, post_id).live_comments -= 1
            deleter = comment.from_id if deleter_id is None else deleter_id
            gone = callbacks.reply_delete_object(group_id, post_id, comment_id, deleter)
            self.callbacks.emit(group_id, "wall_reply_delete", gone)
            return True

    def repost(self, group_id: int, post_id: int, user_id: int, *, date: int | None = None) -> int:
        """Repost to the user's wall; returns the repost's id there (the same one if repeated)."""
        user_id = _user_id(user_id)
        with self.lock:
            post = self.post(group_id, post_id)
            existing = post.repost_by_user.get(user_id)
            if existing is not None:
                return existing.id
            repost = self._add_repost(group_id, post, user_id, _now(date))
            self.callbacks.emit(group_id, "wall_repost", self._repost_object(repost))
            return repost.id

    def delete_repost(self, group_id: int, post_id: int, user_id: int) -> bool:
        """Delete the user's repost of the post; False if there was none."""
        user_id = _user_id(user_id)
        with self.lock:
            post = self.post(group_id, post_id)
            repost = post.repost_by_user.get(user_id)
            if repost is None:
                return False
            self._remove_repost(post, repost)
            return True

    def act(
        self,
        action: str,
        *,
        group_id: int,
        user_id: int,
        post_id: int | None = None,
        text: str = "",
        comment_id: int | None = None,
    ) -> dict[str, Any]:
        """Do one tester action as a user; ``{"changed", "message"}`` plus new ids."""
        name, done = start_group_act(
            self,
            action,
            TESTER_ACTIONS,
            group_id=group_id,
            user_id=user_id,
            post_id=post_id,
            text=text,
            post_noun="post",
        )
        if done is not None:
            return done
        if action == "delete-comment":
            if comment_id is None:
                raise ValueError("delete-comment needs a comment_id")
            if self.find_comment(group_id, post_id, comment_id).from_id != user_id:
                raise ValueError(f"comment {comment_id} is not {name}'s")
            changed = self.delete_comment(group_id, post_id, comment_id, deleter_id=user_id)
            return {"changed": changed, "message": f"{name} deleted comment {comment_id}."}
        if action == "repost":
            with self.lock:
                existed = user_id in self.post(group_id, post_id).repost_by_user
                repost_id = self.repost(group_id, post_id, user_id)
            message = f"{name} reposted post {post_id} (post {repost_id} on their wall)."
            return {"changed": not existed, "repost_id": repost_id, "message": message}
        handler = {"like": self.like, "unlike": self.unlike, "delete-repost": self.delete_repost}
        changed = handler[action](group_id, post_id, user_id)
        past = {"like": "liked", "unlike": "unliked", "delete-repost": "deleted the repost of"}
        return {"changed": changed, "message": f"{name} {past[action]} post {post_id}."}

    # Internals of reposts (callers hold the lock)

    def _add_repost(self, group_id: int, post: Post, user_id: int, date: int) -> Repost:
        repost_id = self.wall_counters.get(user_id, 0) + 1
        self.wall_counters[user_id] = repost_id
        repost = Repost(repost_id, user_id, date, group_id, post.id)
        post.reposts.append(repost)
        post.repost_by_user[user_id] = repost
        self.walls.setdefault(user_id, []).append(repost)
        return repost

    def _repost_object(self, repost: Repost) -> dict[str, Any]:
        # The new post as wall.get shows it; imported here as methods imports this module.
        from sandbox.vkapi.methods import repost_json

        return repost_json(self, repost)

    def _remove_repost(self, post: Post, repost: Repost) -> None:
        post.reposts.remove(repost)
        del post.repost_by_user[repost.user_id]
        self.walls[repost.user_id].remove(repost)

    # Generated data

    def generate_group(
        self,
        group_id: int,
        *,
        members: int,
        posts: int,
        likes: int,
        comments: int,
        reposts: int,
        seed: int = 0,
        name: str | None = None,
        now: int | None = None,
        private: float = 0.0,
        deactivated: float = 0.0,
    ) -> None:
        """Build (or rebuild from scratch) a group with exactly these totals; see generator."""
        from sandbox.vkapi.generator import generate_group

        generate_group(
            self,
            group_id,
            members=members,
            posts=posts,
            likes=likes,
            comments=comments,
            reposts=reposts,
            seed=seed,
            name=name,
            now=now,
            private=private,
            deactivated=deactivated,
        )

    def mutate(self, group_id: int, fraction: float, *, seed: int = 0) -> dict[str, int]:
        """Change about ``fraction`` of the group's activity; counts of what changed."""
        from sandbox.vkapi.generator import mutate

        return mutate(self, group_id, fraction, seed=seed)

    def tester_users(self) -> list[UserView]:
        """The users the tester page offers: the persons, then the first generated users."""
        ids = list(self.person_names())
        with self.lock:
            ids += [u for u in self.generated_users if u not in ids]
        return self.users(ids)

    # Faults (counts, tokens and the rate limit come from sandbox.faults)

    def inject_error(
        self,
        error_code: int,
        *,
        method: str | None = None,
        times: int = 1,
        message: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (None: of any data method) fail."""
        self._arm_error(_positive(error_code, "error_code"), method, times, message=message)

    def take_fault(self, method: str, *, wildcard: bool = True) -> Fault | None:
        """The armed error for this call, consumed; ``wildcard`` lets method=None ones match."""
        return self._take_armed(method, wildcard=wildcard)


def _user_id(value: Any) -> int:
    return _positive(value, "user_id")


def _now(date: int | None) -> int:
    return int(time.time()) if date is None else int(date)
