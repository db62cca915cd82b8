"""Change detection: the last snapshot against what a collector reads now. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.collect.base import GroupReading

OLD_POST_MARGIN = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # joined, left, added, removed; baseline(-member): recorded, no event
    subject: str
    post_id: str | None = None
    activity: str | None = None  # like, comment, repost
    item_id: str = ""


@dataclass
class Snapshot:
    members: set[str]
    posts: set[str]  # posts seen before
    activity: dict[tuple[str, str], set[tuple[str, str]]]  # (post, kind) -> {(subject, item)}


def diff(
    snapshot: Snapshot, reading: GroupReading, *, baseline_at: datetime | None
) -> list[Change]:
    """What changed since the snapshot.

    Without a baseline everything read is the baseline: no changes. A post first seen after the
    baseline brings all its activity as new, unless it was published before the baseline (the
    scan window grew): then its activity is baseline too. Lists the network would not give
    (None) are left as they were: no change is invented from a failed read.
    """
    if baseline_at is None:
        return []
    changes: list[Change] = []
    if reading.members is not None:
        changes += [Change("joined", s) for s in sorted(reading.members - snapshot.members)]
        changes += [Change("left", s) for s in sorted(snapshot.members - reading.members)]
    for post in reading.posts:
        # Post dates are whole seconds: a minute's margin keeps a post made just after the
        # baseline from passing for an old one.
        old_unseen = (
            post.post_id not in snapshot.posts
            and post.published_at is not None
            and post.published_at + OLD_POST_MARGIN < baseline_at
        )
        for kind, current in post.by_kind().items():
            if current is None:
                continue
            if old_unseen:
                changes += _activity_changes(post.post_id, kind, "baseline", current)
                continue
            before = snapshot.activity.get((post.post_id, kind), set())
            changes += _activity_changes(post.post_id, kind, "added", current - before)
            changes += _activity_changes(post.post_id, kind, "removed", before - current)
    return changes


def _activity_changes(post_id: str, kind: str, verb: str, items: Iterable) -> list[Change]:
    return [
        Change(verb, subject, post_id=post_id, activity=kind, item_id=item)
        for subject, item in sorted(items)
    ]


def snapshot_activity(
    rows: Iterable[tuple[str, str, str, str]],
) -> Mapping[tuple[str, str], set[tuple[str, str]]]:
    activity: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for post_id, kind, subject, item_id in rows:
        activity.setdefault((post_id, kind), set()).add((subject, item_id))
    return activity
