"""Tracked groups, what the collector last saw in them, its runs, and the scheduler's lease."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class TrackedGroup(db.Model):
    __tablename__ = "tracked_groups"
    __table_args__ = (UniqueConstraint("network", "group_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    network: Mapped[str] = mapped_column(String(32))
    group_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    # A user or service token (VK refuses group tokens for walls and likes); encrypted.
    token_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    posts_to_scan: Mapped[int] = mapped_column(default=20)
    interval_seconds: Mapped[int] = mapped_column(default=300)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set by the first complete cycle: what existed then is the baseline, not events.
    baseline_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Where a pushed stream was confirmed up to (Telegram's next update_id), stored with the
    # events it produced.
    cursor: Mapped[str | None] = mapped_column(String(64))
    # VK Callback API: the string VK's confirmation request expects, and the secret key
    # each event carries (encrypted). Without a secret the group's callbacks are refused.
    callback_confirmation: Mapped[str | None] = mapped_column(String(64))
    callback_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Raised by every transaction that changes the snapshot (under the group's lock): a
    # database-side clock, so that no two processes' wall clocks are ever compared.
    change_seq: Mapped[int] = mapped_column(default=0, server_default="0")
    # The posts the last cycle read: a callback about an older post outside them counts
    # nothing, since no cycle would ever reconcile it.
    scanned_posts: Mapped[list[str] | None] = mapped_column(JSON)


class MemberSnapshot(db.Model):
    """A social user seen in the group's member list at the last cycle."""

    __tablename__ = "member_snapshots"

    tracked_group_id: Mapped[int] = mapped_column(
        ForeignKey("tracked_groups.id", ondelete="CASCADE"), primary_key=True
    )
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)


class PostSnapshot(db.Model):
    """A post the collector has scanned; activity on a post first seen after the baseline
    is new activity, not baseline."""

    __tablename__ = "post_snapshots"

    tracked_group_id: Mapped[int] = mapped_column(
        ForeignKey("tracked_groups.id", ondelete="CASCADE"), primary_key=True
    )
    post_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ActivitySnapshot(db.Model):
    """One like, comment or repost seen on a tracked post at the last cycle."""

    __tablename__ = "activity_snapshots"
    __table_args__ = (Index("ix_activity_snapshots_post", "tracked_group_id", "post_id"),)

    tracked_group_id: Mapped[int] = mapped_column(
        ForeignKey("tracked_groups.id", ondelete="CASCADE"), primary_key=True
    )
    post_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(64), primary_key=True, default="")


class ActivityMark(db.Model):
    """When an item of a group's lists last changed (not in a baseline), as the group's
    change_seq.

    Two uses: a polling cycle that started reading before a callback changed an item leaves
    that item alone (its reading is older), and a callback about an item that has a history
    is checked against the network before it counts (it may be late and stale). post_id is
    "" and kind "member" for membership.
    """

    __tablename__ = "activity_marks"

    tracked_group_id: Mapped[int] = mapped_column(
        ForeignKey("tracked_groups.id", ondelete="CASCADE"), primary_key=True
    )
    post_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    by_callback: Mapped[bool] = mapped_column(default=False)
    seq: Mapped[int] = mapped_column(default=0)  # the group's change_seq of the change


class DiscussionThread(db.Model):
    """Which channel post a Telegram discussion-group message (its automatic forward) stands
    for: reactions and comments name only the discussion message, and the Bot API cannot
    fetch a message, so the collector remembers the forwards it has seen."""

    __tablename__ = "discussion_threads"

    tracked_group_id: Mapped[int] = mapped_column(
        ForeignKey("tracked_groups.id", ondelete="CASCADE"), primary_key=True
    )
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    post_id: Mapped[str] = mapped_column(String(64))


class CollectionRun(db.Model):
    __tablename__ = "collection_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    tracked_group_id: Mapped[int] = mapped_column(
        ForeignKey("tracked_groups.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="running")
    phase: Mapped[str] = mapped_column(String(64), default="starting")
    progress: Mapped[int] = mapped_column(default=0)  # percent
    requests: Mapped[int] = mapped_column(default=0)
    items_read: Mapped[int] = mapped_column(default=0)
    events_found: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
    error_log: Mapped[str] = mapped_column(Text, default="")


class Lease(db.Model):
    """Who holds a named lease until when: the scheduler's leader, one run per group."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
