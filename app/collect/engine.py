"""One collection cycle of one tracked group: read, diff, commit snapshot and events in chunks.

Each chunk's snapshot changes, the events they produce and the events' effects commit in one
transaction. A crash at any point leaves the snapshot as it was for every uncommitted chunk,
so the next cycle finds exactly those changes again and produces exactly the missing events.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from flask import current_app
from sqlalchemy import delete, select

from app.collect.base import (
    CollectorError,
    GroupReading,
    GroupTarget,
    StreamChange,
    StreamCollector,
)
from app.collect.diff import Change, Snapshot, diff, snapshot_activity
from app.collect.leases import acquire, release
from app.collect.registry import collector_for
from app.extensions import db
from app.models import (
    ActivityMark,
    ActivitySnapshot,
    CollectionRun,
    LinkedProfile,
    MemberSnapshot,
    PostSnapshot,
    TrackedGroup,
)
from app.models.types import utcnow
from app.rules import ActivityKind, Event, EventKind
from app.rules.engine import bounded_key
from app.services.crypto import decrypt_text
from app.services.locks import lock_group
from app.services.processing import dialect_insert, process_events

log = logging.getLogger(__name__)

CHUNK = 1000
RUN_LEASE_SECONDS = 15 * 60
HOLDER = f"{socket.gethostname()}:{os.getpid()}"


class LeaseLost(RuntimeError):
    pass


EVENT_KINDS = {
    "joined": EventKind.JOINED_GROUP,
    "left": EventKind.LEFT_GROUP,
    "added": EventKind.ACTIVITY,
    "removed": EventKind.ACTIVITY_DELETED,
}


def collect_group(
    tracked_group_id: int, *, http: requests.Session | None = None
) -> CollectionRun | None:
    """Run one cycle; None when another process is already collecting this group."""
    lease = f"collect:{tracked_group_id}"
    if not acquire(lease, HOLDER, RUN_LEASE_SECONDS):
        log.info("group %s is being collected elsewhere; skipped", tracked_group_id)
        return None
    try:
        return _cycle(tracked_group_id, http or requests.Session(), lease)
    finally:
        db.session.rollback()
        release(lease, HOLDER)


def _cycle(tracked_group_id: int, http: requests.Session, lease: str) -> CollectionRun:
    group = db.session.get(TrackedGroup, tracked_group_id)
    if group is None:
        raise LookupError(f"no tracked group has id {tracked_group_id}")
    run = CollectionRun(tracked_group_id=group.id, phase="reading")
    db.session.add(run)
    db.session.commit()

    def progress(phase: str, percent: int) -> None:
        run.phase, run.progress = phase, min(99, max(run.progress, percent))
        db.session.commit()
        if not acquire(lease, HOLDER, RUN_LEASE_SECONDS):  # renewed while the run is alive
            raise LeaseLost(f"another process took over group {tracked_group_id}; this run stops")

    collector = collector_for(group.network, current_app.config, http)
    target = GroupTarget(
        group_id=group.group_id,
        token=decrypt_text(group.token_encrypted),
        posts_to_scan=group.posts_to_scan,
    )
    if isinstance(collector, StreamCollector):
        return _stream_cycle(run, group, collector, target, progress)
    # Taken before reading: a post published while a long first read runs is news later,
    # and a snapshot change committed after this seq may be newer than the reading.
    started = ReadingStart(utcnow(), _committed_seq(group.id))
    try:
        reading = collector.read(target, progress)
    except CollectorError as exc:
        return _finish(run, "failed", getattr(exc, "reading", None), error=str(exc))
    try:
        return _record(run, group, reading, started, progress)
    except Exception as exc:
        log.exception("collection run %s failed", run.id)
        db.session.rollback()
        return _finish(run, "failed", reading, error=f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class ReadingStart:
    at: datetime
    seq: int  # the group's change_seq committed before the reading began


def _committed_seq(group_id: int) -> int:
    db.session.commit()  # a fresh transaction: the value committed now, not a cached one
    return db.session.scalar(select(TrackedGroup.change_seq).where(TrackedGroup.id == group_id))


def _record(run, group, reading: GroupReading, started: ReadingStart, progress) -> CollectionRun:
    run.requests, run.items_read = reading.requests, reading.items_read
    run.errors = len(reading.errors)
    run.error_log = "\n".join(reading.errors)[-4000:]
    if group.baseline_at is None and reading.errors:
        # A baseline must be whole: an unread list stored as empty would later look like
        # everything in it had just appeared. Nothing is written; the next run tries again.
        return _finish(run, "partial", reading, error="baseline postponed: the reading was partial")
    progress("comparing", 60)
    changes = diff(_snapshot(group, reading), reading, baseline_at=group.baseline_at)
    if group.baseline_at is None:
        _clear_snapshot(group.id)  # what a crashed earlier baseline left is redone from scratch
        changes = _baseline_changes(reading)
    members = linked_members(group.network, {c.subject for c in changes})
    _apply(run, group, reading, changes, members, utcnow(), started)
    group.scanned_posts = [post.post_id for post in reading.posts]
    if group.baseline_at is None:
        group.baseline_at = started.at
    status = "succeeded" if not reading.errors else "partial"
    return _finish(run, status, reading)


def _stream_cycle(
    run: CollectionRun,
    group: TrackedGroup,
    collector: StreamCollector,
    target: GroupTarget,
    progress,
) -> CollectionRun:
    """Fetch what the network pushed since the stored cursor, until it has nothing more."""
    try:
        while True:
            batch = collector.fetch(target, group.cursor, progress)
            run.requests += batch.requests
            run.items_read += batch.items_read
            if batch.cursor == group.cursor and not batch.changes:
                break
            apply_stream_changes(group, batch.changes, cursor=batch.cursor, run=run)
            if not acquire(f"collect:{group.id}", HOLDER, RUN_LEASE_SECONDS):
                raise LeaseLost(f"another process took over group {group.id}; this run stops")
    except CollectorError as exc:
        db.session.rollback()
        return _finish(run, "failed", None, error=str(exc))
    if group.baseline_at is None:
        group.baseline_at = utcnow()
    return _finish(run, "succeeded", None)


def apply_stream_changes(
    group: TrackedGroup,
    changes: Sequence[StreamChange],
    *,
    cursor: str | None = None,
    run: CollectionRun | None = None,
) -> int:
    """Record the changes' events and their effects, and the new cursor (and the run's count),
    in one transaction.

    Each change's key is its event key: a change fetched or pushed again adds nothing.
    Returns how many events were new.
    """
    members = linked_members(group.network, {change.subject for change in changes})
    now = utcnow()
    events = [
        event_for(
            group,
            change,
            members[change.subject],
            now,
            bounded_key(f"{group.network}:{group.group_id}:{change.key}"),
        )
        for change in changes
        if change.kind in EVENT_KINDS and change.subject in members
    ]
    result = process_events(events)
    if cursor is not None:
        group.cursor = cursor
    if run is not None:
        run.events_found += result.recorded
    db.session.commit()
    return result.recorded


def _clear_snapshot(group_id: int) -> None:
    for model in (MemberSnapshot, PostSnapshot, ActivitySnapshot):
        db.session.execute(delete(model).where(model.tracked_group_id == group_id))


def _snapshot(group: TrackedGroup, reading: GroupReading) -> Snapshot:
    post_ids = [post.post_id for post in reading.posts]
    members = set(
        db.session.scalars(
            select(MemberSnapshot.subject).where(MemberSnapshot.tracked_group_id == group.id)
        )
    )
    posts = set(
        db.session.scalars(
            select(PostSnapshot.post_id).where(
                PostSnapshot.tracked_group_id == group.id, PostSnapshot.post_id.in_(post_ids)
            )
        )
    )
    rows = db.session.execute(
        select(
            ActivitySnapshot.post_id,
            ActivitySnapshot.kind,
            ActivitySnapshot.subject,
            ActivitySnapshot.item_id,
        ).where(
            ActivitySnapshot.tracked_group_id == group.id,
            ActivitySnapshot.post_id.in_(post_ids),
        )
    )
    return Snapshot(members=members, posts=posts, activity=dict(snapshot_activity(rows)))


def _baseline_changes(reading: GroupReading) -> list[Change]:
    """The first cycle only records what exists: these changes carry no events."""
    changes = [Change("baseline-member", s) for s in sorted(reading.members or ())]
    for post in reading.posts:
        for kind, items in post.by_kind().items():
            changes += [
                Change("baseline", subject, post_id=post.post_id, activity=kind, item_id=item)
                for subject, item in sorted(items or ())
            ]
    return changes


def linked_members(network: str, subjects: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    ordered = sorted(subjects)
    for start in range(0, len(ordered), 500):
        found.update(
            db.session.execute(
                select(LinkedProfile.subject, LinkedProfile.member_id).where(
                    LinkedProfile.network == network,
                    LinkedProfile.subject.in_(ordered[start : start + 500]),
                )
            )
            .tuples()
            .all()
        )
    return found


def _apply(
    run: CollectionRun,
    group: TrackedGroup,
    reading: GroupReading,
    changes: Sequence[Change],
    members: dict[str, int],
    now: datetime,
    started: ReadingStart,
) -> None:
    # A post counts as seen only once all its lists were read: until then an old post that
    # entered the window stays "old" and its activity stays baseline.
    new_posts = [
        {"tracked_group_id": group.id, "post_id": p.post_id, "first_seen_at": now}
        for p in reading.posts
        if all(items is not None for items in p.by_kind().values())
    ]
    known = set(
        db.session.scalars(
            select(PostSnapshot.post_id).where(
                PostSnapshot.tracked_group_id == group.id,
                PostSnapshot.post_id.in_([row["post_id"] for row in new_posts]),
            )
        )
    )
    new_posts = [row for row in new_posts if row["post_id"] not in known]
    total = max(1, len(changes))
    for start in range(0, len(changes), CHUNK):
        seq = lock_group(group.id)  # callbacks change the same snapshot
        chunk = _not_changed_since(group.id, changes[start : start + CHUNK], started.seq)
        write_snapshot(group.id, chunk)
        mark_changes(group.id, [c for c in chunk if c.kind in EVENT_KINDS], now, seq)
        events = [
            event_for(
                group, change, members[change.subject], now, change_key(group, change, f"r{run.id}")
            )
            for change in chunk
            if change.kind in EVENT_KINDS and change.subject in members
        ]
        result = process_events(events)
        run.events_found += result.recorded
        run.progress = 60 + int(39 * (start + len(chunk)) / total)
        run.phase = "recording"
        db.session.commit()
        if not acquire(f"collect:{group.id}", HOLDER, RUN_LEASE_SECONDS):
            raise LeaseLost(f"another process took over group {group.id}; this run stops")
    if new_posts:
        db.session.execute(_insert_ignoring_existing(PostSnapshot), new_posts)
    db.session.commit()


def mark_key(change: Change) -> tuple[str, str, str, str]:
    if change.post_id is None:
        return ("", "member", change.subject, "")
    return (change.post_id, change.activity or "", change.subject, change.item_id)


def mark_changes(
    group_id: int, changes: Sequence[Change], now: datetime, seq: int, *, by_callback: bool = False
) -> None:
    """Remember that these items changed at this seq (see ActivityMark)."""
    if not changes:
        return
    rows = {}
    for change in changes:
        post_id, kind, subject, item_id = mark_key(change)
        rows[(post_id, kind, subject, item_id)] = {
            "tracked_group_id": group_id,
            "post_id": post_id,
            "kind": kind,
            "subject": subject,
            "item_id": item_id,
            "changed_at": now,
            "by_callback": by_callback,
            "seq": seq,
        }
    statement = dialect_insert(ActivityMark)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=["tracked_group_id", "post_id", "kind", "subject", "item_id"],
            set_={
                "changed_at": statement.excluded.changed_at,
                "by_callback": statement.excluded.by_callback,
                "seq": statement.excluded.seq,
            },
        ),
        list(rows.values()),
    )


def _not_changed_since(group_id: int, changes: Sequence[Change], seen_seq: int) -> list[Change]:
    """The changes whose items nothing changed after this cycle began reading: for the others
    the reading is older than the snapshot, and the next cycle settles them."""
    newer = {
        tuple(row)
        for row in db.session.execute(
            select(
                ActivityMark.post_id,
                ActivityMark.kind,
                ActivityMark.subject,
                ActivityMark.item_id,
            ).where(ActivityMark.tracked_group_id == group_id, ActivityMark.seq > seen_seq)
        )
    }
    if not newer:
        return list(changes)
    kept = [c for c in changes if mark_key(c) not in newer]
    if len(kept) < len(changes):
        log.info(
            "group %s: %d changes left to the next cycle (the snapshot changed meanwhile)",
            group_id,
            len(changes) - len(kept),
        )
    return kept


def _insert_ignoring_existing(model):
    """Snapshot rows may be written again after a crash (a repeated baseline): no error."""
    return dialect_insert(model).on_conflict_do_nothing()


def write_snapshot(group_id: int, chunk: Sequence[Change]) -> None:
    joined = [c.subject for c in chunk if c.kind in ("joined", "baseline-member")]
    left = [c.subject for c in chunk if c.kind == "left"]
    added = [c for c in chunk if c.kind in ("added", "baseline")]
    removed = [c for c in chunk if c.kind == "removed"]
    if joined:
        db.session.execute(
            _insert_ignoring_existing(MemberSnapshot),
            [{"tracked_group_id": group_id, "subject": subject} for subject in joined],
        )
    if left:
        db.session.execute(
            delete(MemberSnapshot).where(
                MemberSnapshot.tracked_group_id == group_id, MemberSnapshot.subject.in_(left)
            )
        )
    if added:
        db.session.execute(
            _insert_ignoring_existing(ActivitySnapshot),
            [
                {
                    "tracked_group_id": group_id,
                    "post_id": c.post_id,
                    "kind": c.activity,
                    "subject": c.subject,
                    "item_id": c.item_id,
                }
                for c in added
            ],
        )
    by_list: dict[tuple[str, str], list[Change]] = {}
    for change in removed:
        by_list.setdefault((change.post_id, change.activity), []).append(change)
    for (post_id, kind), changes in by_list.items():
        # One statement per list: comments by their own ids, likes and reposts by person.
        matching = (
            ActivitySnapshot.item_id.in_([c.item_id for c in changes])
            if kind == "comment"
            else ActivitySnapshot.subject.in_([c.subject for c in changes])
        )
        db.session.execute(
            delete(ActivitySnapshot).where(
                ActivitySnapshot.tracked_group_id == group_id,
                ActivitySnapshot.post_id == post_id,
                ActivitySnapshot.kind == kind,
                matching,
            )
        )


def event_for(
    group: TrackedGroup, change: Change | StreamChange, member_id: int, now: datetime, key: str
) -> Event:
    """The event a change makes, whoever saw it (a polling cycle, a callback, an update)."""
    return Event(
        key=key,
        kind=EVENT_KINDS[change.kind],
        member_id=member_id,
        network=group.network,
        occurred_at=now,
        subject=change.subject,
        group_id=group.group_id,
        object_id=change.post_id,
        activity=ActivityKind(change.activity) if change.activity else None,
        activity_id=(change.item_id or None) if change.activity != "like" else None,
    )


def change_key(group: TrackedGroup, change: Change, suffix: str) -> str:
    """A unique event key: the change and who saw it (the run, the callback's event_id).

    The snapshot, committed with the event, guarantees a change is seen only once; the
    suffix tells a like removed and given again apart from the first one.
    """
    parts = [group.network, group.group_id, change.kind, change.subject]
    if change.post_id is not None:
        parts += [change.post_id, change.activity or "", change.item_id]
    return bounded_key(":".join(parts) + f":{suffix}")


def _finish(
    run: CollectionRun, status: str, reading: GroupReading | None, error: str | None = None
) -> CollectionRun:
    run.status = status
    run.finished_at = datetime.now(UTC)
    run.progress = 100
    run.phase = status
    if reading is not None:
        run.requests, run.items_read = reading.requests, reading.items_read
    if error:
        run.errors += 1
        run.error_log = (run.error_log + "\n" + error).strip()[-4000:]
    db.session.commit()
    log.info("collection run %s for group %s: %s", run.id, run.tracked_group_id, status)
    return run
