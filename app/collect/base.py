"""What a network's collector must provide: the group's members and its recent posts' activity."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# (subject, item id): a like or a repost has item id "" / the repost's own id, a comment its id.
Activity = set[tuple[str, str]]


@dataclass
class PostActivity:
    """One post's activity as read now; None where the network would not say (not an empty set:
    an unreadable list must never look like everybody removed their like)."""

    post_id: str
    published_at: datetime | None = None
    likes: Activity | None = None
    comments: Activity | None = None
    reposts: Activity | None = None
    # Kinds the network cannot list at all (Odnoklassniki does not say who reshared): left
    # out of the comparison instead of passing for unread lists.
    untracked: frozenset[str] = frozenset()

    def by_kind(self) -> dict[str, Activity | None]:
        lists = {"like": self.likes, "comment": self.comments, "repost": self.reposts}
        return {kind: items for kind, items in lists.items() if kind not in self.untracked}


@dataclass
class GroupReading:
    members: set[str] | None
    posts: list[PostActivity]
    requests: int = 0
    items_read: int = 0
    retries: int = 0
    # Lists the network would not give; their snapshot is kept as it was.
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GroupTarget:
    """What a collector needs to know about the group it reads."""

    group_id: str
    token: str
    posts_to_scan: int


Progress = Callable[[str, int], None]


class Pacer:
    """Requests to one network paced under its rate, and retried with doubling waits."""

    MAX_WAIT = 30.0

    def __init__(
        self,
        *,
        per_second: float = 0.0,
        max_retries: int,
        backoff_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A tenth of headroom: pacing exactly at the limit meets the network's own clock as a
        # rate error.
        self.interval = 1.1 / per_second if per_second > 0 else 0.0
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        self.clock = clock
        self._last_request = 0.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any], network: str) -> Pacer:
        """From the network's settings: <NETWORK>_REQUESTS_PER_SECOND (none: unpaced),
        _MAX_RETRIES and _BACKOFF_SECONDS."""
        return cls(
            per_second=config.get(f"{network}_REQUESTS_PER_SECOND", 0.0),
            max_retries=config[f"{network}_MAX_RETRIES"],
            backoff_seconds=config[f"{network}_BACKOFF_SECONDS"],
        )

    def pace(self) -> None:
        """Wait until the next request keeps to the rate."""
        wait = self._last_request + self.interval - self.clock()
        if wait > 0:
            self.sleep(wait)
        self._last_request = self.clock()

    def back_off(self, attempt: int, *, at_least: float = 0.0) -> None:
        """Wait before retry `attempt + 1`; nothing after the last attempt."""
        if attempt < self.max_retries:
            self.sleep(max(at_least, min(self.MAX_WAIT, self.backoff_seconds * 2**attempt)))


class CollectorError(Exception):
    """The reading could not be completed; nothing of it is applied."""


class Collector(ABC):
    """A network whose group state can be listed: each cycle reads it all and diffs."""

    network: str

    @abstractmethod
    def read(self, target: GroupTarget, progress: Progress) -> GroupReading:
        """Read the members and the recent posts' likes, comments and reposts, all pages."""


@dataclass(frozen=True, slots=True)
class StreamChange:
    """One change a network pushed, under a key unique to that push (Telegram's update_id):
    the same push read twice (a retried webhook, getUpdates after a crash) is one event.

    kind is joined, left, added or removed; post_id, activity (like, comment, repost) and
    item_id (a comment's id, else "") are set for activity.
    """

    key: str
    kind: str
    subject: str
    post_id: str | None = None
    activity: str | None = None
    item_id: str = ""


@dataclass
class StreamBatch:
    changes: list[StreamChange]
    # Stored with the batch's events in one transaction; the next fetch starts from it.
    cursor: str | None
    requests: int = 0
    items_read: int = 0
    retries: int = 0


class StreamCollector(ABC):
    """A network that cannot be listed but pushes changes in order (Telegram's updates)."""

    network: str

    @abstractmethod
    def fetch(self, target: GroupTarget, cursor: str | None, progress: Progress) -> StreamBatch:
        """The changes after `cursor`, and the cursor that confirms them."""
