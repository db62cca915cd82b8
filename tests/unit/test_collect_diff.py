"""Change detection between the last snapshot and a new reading."""

from __future__ import annotations

from datetime import UTC, datetime

from app.collect.base import GroupReading, PostActivity
from app.collect.diff import Change, Snapshot, diff

BASELINE = datetime(2026, 12, 1, tzinfo=UTC)


def snapshot(**activity) -> Snapshot:
    return Snapshot(
        members={"1", "2"},
        posts={"10"},
        activity={("10", kind): set(items) for kind, items in activity.items()},
    )


def test_no_baseline_means_no_changes():
    reading = GroupReading(members={"1", "3"}, posts=[PostActivity("10", likes={("1", "")})])
    assert diff(snapshot(), reading, baseline_at=None) == []


def test_joins_leaves_likes_comments_and_reposts():
    before = snapshot(like={("1", "")}, comment={("2", "c1")}, repost={("2", "")})
    reading = GroupReading(
        members={"1", "3"},
        posts=[
            PostActivity(
                "10", likes={("3", "")}, comments={("2", "c1"), ("1", "c2")}, reposts=set()
            )
        ],
    )
    assert diff(before, reading, baseline_at=BASELINE) == [
        Change("joined", "3"),
        Change("left", "2"),
        Change("added", "3", "10", "like"),
        Change("removed", "1", "10", "like"),
        Change("added", "1", "10", "comment", "c2"),
        Change("removed", "2", "10", "repost"),
    ]


def test_an_unreadable_list_changes_nothing():
    before = snapshot(like={("1", "")}, comment={("2", "c1")})
    reading = GroupReading(members=None, posts=[PostActivity("10", likes=None, comments=None)])
    assert diff(before, reading, baseline_at=BASELINE) == []


def test_a_new_post_brings_its_activity_as_new():
    reading = GroupReading(
        members={"1", "2"},
        posts=[
            PostActivity("11", published_at=datetime(2026, 12, 2, tzinfo=UTC), likes={("1", "")})
        ],
    )
    assert diff(snapshot(), reading, baseline_at=BASELINE) == [Change("added", "1", "11", "like")]


def test_an_old_post_entering_the_window_is_baseline():
    reading = GroupReading(
        members={"1", "2"},
        posts=[
            PostActivity("9", published_at=datetime(2026, 11, 1, tzinfo=UTC), likes={("1", "")})
        ],
    )
    assert diff(snapshot(), reading, baseline_at=BASELINE) == [Change("baseline", "1", "9", "like")]
