"""What a network's collector must provide: the group's members and its recent posts' activity."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

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

    def by_kind(self) -> dict[str, Activity | None]:
        return {"like": self.likes, "comment": self.comments, "repost": self.reposts}


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


class CollectorError(Exception):
    """The reading could not be completed; nothing of it is applied."""


class Collector(ABC):
    network: str

    @abstractmethod
    def read(self, target: GroupTarget, progress: Progress) -> GroupReading:
        """Read the members and the recent posts' likes, comments and reposts, all pages."""
