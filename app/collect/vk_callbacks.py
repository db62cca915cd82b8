"""VK Callback API: community events VK pushes, counted once together with polling.

What VK needs: in the community's settings, the server URL (/hooks/vk), the confirmation
string VK shows there and a secret key, both also stored on the tracked group
(`flask groups callbacks`). VK expects "ok" within seconds and retries otherwise, so an
event may come late, twice, or after a later one; and some changes have no event at all
(a deleted repost, a deleted account). Polling therefore stays, as reconciliation.

How one change counts once. The group's snapshot is the single record of what has been
counted; a callback is applied to it under the group's lock, in one transaction with its
event_id, its event and the event's effects:
- an item the snapshot already holds (added) or lacks (removed) was counted: nothing to do;
- an item added that the group never had is counted at once, without an API call;
- anything else (a removal, or an item removed before) may be a late, stale callback: the
  item is read from VK now, and the snapshot follows what VK says.
Each applied change leaves a mark; a polling cycle that began reading before the mark
leaves that item alone (its reading is older). Callbacks count from the first complete
polling cycle (the baseline): before it there is nothing to compare with.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from flask import current_app
from sqlalchemy import delete, select

from app.collect.base import GroupTarget
from app.collect.diff import Change
from app.collect.engine import (
    change_key,
    event_for,
    linked_members,
    mark_changes,
    mark_key,
    write_snapshot,
)
from app.collect.vk import VKCollector
from app.extensions import db
from app.models import (
    ActivityMark,
    ActivitySnapshot,
    MemberSnapshot,
    ProviderNotification,
    TrackedGroup,
)
from app.models.types import utcnow
from app.services.crypto import CipherError, decrypt_text
from app.services.locks import lock_group
from app.services.processing import process_events

log = logging.getLogger(__name__)

COUNTED = {
    "group_join",
    "group_leave",
    "like_add",
    "like_remove",
    "wall_reply_new",
    "wall_reply_restore",
    "wall_reply_delete",
    "wall_repost",
}


class CallbackRefused(Exception):
    """A callback that changes nothing; `status` is the HTTP answer VK gets."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CallbackResult:
    answer: str  # "ok", or the confirmation string
    outcome: str  # what happened, for the log and the tests


def handle_callback(
    payload: Any, *, tracked_group_id: int | None = None, http: requests.Session | None = None
) -> CallbackResult:
    """Verify and apply one Callback API request; commits. With `tracked_group_id` (the
    group's own URL) the event must be about that group."""
    if not isinstance(payload, Mapping):
        raise CallbackRefused(400, "Expected a JSON object from the VK Callback API.")
    kind, vk_group = payload.get("type"), payload.get("group_id")
    if not isinstance(kind, str) or not isinstance(vk_group, int) or isinstance(vk_group, bool):
        raise CallbackRefused(400, 'A callback needs "type" (a string) and "group_id" (a number).')
    group = db.session.scalar(
        select(TrackedGroup).where(
            TrackedGroup.network == "vk", TrackedGroup.group_id == str(vk_group)
        )
    )
    if group is None or not group.callback_confirmation or not group.callback_secret_encrypted:
        raise CallbackRefused(404, f"VK group {vk_group} has no callbacks configured here.")
    if tracked_group_id is not None and group.id != tracked_group_id:
        raise CallbackRefused(
            400,
            f"This URL is tracked group #{tracked_group_id}'s; the event is VK group {vk_group}'s.",
        )
    if kind == "confirmation":
        return CallbackResult(group.callback_confirmation, "confirmation")
    secret = payload.get("secret")
    try:
        expected = decrypt_text(group.callback_secret_encrypted)
    except CipherError:
        # VK retries until this is fixed, so nothing is lost meanwhile.
        log.error(
            "VK group %s: its callback secret cannot be decrypted with the keys set", vk_group
        )
        raise CallbackRefused(503, "Callbacks are misconfigured here; try again later.") from None
    if not isinstance(secret, str) or not hmac.compare_digest(secret.encode(), expected.encode()):
        log.warning("VK callback %r for group %s refused: wrong or missing secret", kind, vk_group)
        raise CallbackRefused(403, "The secret key does not match.")
    event_id = payload.get("event_id")
    if not isinstance(event_id, str) or not event_id.strip():
        raise CallbackRefused(400, 'A callback needs an "event_id".')
    change = change_from_callback(kind, payload.get("object"), group.group_id)
    try:
        outcome = _apply_once(group, kind, event_id, change, http)
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    log.info("VK callback %s %s for group %s: %s", kind, event_id, vk_group, outcome)
    return CallbackResult("ok", outcome)


def forget_old_callbacks(now: datetime) -> int:
    """Delete the event_ids of callbacks older than VK_CALLBACK_KEEP_DAYS: VK stops retrying
    long before, and one row a callback would otherwise grow without end."""
    days = current_app.config["VK_CALLBACK_KEEP_DAYS"]
    result = db.session.execute(
        delete(ProviderNotification).where(
            ProviderNotification.network == "vk",
            ProviderNotification.dedup_key.startswith("vk-callback:"),
            ProviderNotification.received_at < now - timedelta(days=days),
        )
    )
    db.session.commit()
    return result.rowcount


def change_from_callback(kind: str, event: Any, group_id: str) -> Change | None:
    """The change a callback reports, as polling would name it; None when polling would not
    see it (other objects, other walls, thread replies) or the event is not counted.

    A wall_reply_delete's subject is left empty: the comment's author comes from the snapshot
    (deleter_id or user_id may be a moderator).
    """
    if kind not in COUNTED or not isinstance(event, Mapping):
        return None
    owner = -int(group_id)
    if kind in ("group_join", "group_leave"):
        user = _int(event.get("user_id"))
        if user is None:
            return None
        return Change("joined" if kind == "group_join" else "left", str(user))
    if kind in ("like_add", "like_remove"):
        liker, post = _int(event.get("liker_id")), _int(event.get("object_id"))
        if (
            event.get("object_type") != "post"
            or _int(event.get("object_owner_id")) != owner
            or liker is None
            or post is None
        ):
            return None
        verb = "added" if kind == "like_add" else "removed"
        return Change(verb, str(liker), post_id=str(post), activity="like")
    if kind == "wall_repost":
        history = event.get("copy_history")
        original = history[0] if isinstance(history, list) and history else None
        if not isinstance(original, Mapping) or _int(original.get("owner_id")) != owner:
            return None
        who, post = _int(event.get("owner_id") or event.get("from_id")), _int(original.get("id"))
        if who is None or post is None:
            return None
        return Change("added", str(who), post_id=str(post), activity="repost")
    comment, post = _int(event.get("id")), _int(event.get("post_id"))
    wall = _int(event.get("post_owner_id") or event.get("owner_id"))
    if comment is None or post is None or wall != owner:
        return None
    if kind == "wall_reply_delete":
        return Change("removed", "", post_id=str(post), activity="comment", item_id=str(comment))
    author = _int(event.get("from_id"))
    # Polling reads top-level comments only; a thread reply it never sees would later look
    # removed to it.
    if author is None or event.get("parents_stack") or event.get("reply_to_comment"):
        return None
    return Change("added", str(author), post_id=str(post), activity="comment", item_id=str(comment))


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _apply_once(
    group: TrackedGroup,
    kind: str,
    event_id: str,
    change: Change | None,
    http: requests.Session | None,
) -> str:
    key = f"vk-callback:{group.group_id}:{event_id}"[:255]
    if _seen(key):
        return "duplicate"
    if change is None:
        outcome = "not counted"
    elif group.baseline_at is None:
        outcome = "before the baseline"
    elif _outside_scan(group, change):
        outcome = "not counted: older than the posts polling reads"
    else:
        return _settle(group, kind, key, change, http)
    return _settled_without_change(group, key, kind, change, outcome)


def _settled_without_change(
    group: TrackedGroup, key: str, kind: str, change: Change | None, outcome: str
) -> str:
    """Record the event_id, under the lock, for a callback that changes nothing."""
    lock_group(group.id)
    if _seen(key):
        return "duplicate"
    _remember(key, kind, change, outcome)
    return outcome


def _settle(
    group: TrackedGroup, kind: str, key: str, change: Change, http: requests.Session | None
) -> str:
    """Decide without holding the group's lock (a check asks VK, which may be slow), then
    take the lock and apply the decision only if the item is still as it was when decided;
    if it changed meanwhile, decide once more, else leave it to polling."""
    for _ in range(2):
        before = _item_state(group.id, change)
        actual: bool | None = None
        if _needs_check(change, before):
            db.session.rollback()  # no transaction stays open while VK is asked
            actual = _check(group, before.change, http)
        seq = lock_group(group.id)
        if _seen(key):
            return "duplicate"
        if _item_state(group.id, change) == before:
            outcome = _conclude(group, before, actual, key, seq)
            _remember(key, kind, before.change, outcome)
            return outcome
        db.session.rollback()
    outcome = "left to polling: the item kept changing while it was checked"
    return _settled_without_change(group, key, kind, change, outcome)


@dataclass(frozen=True)
class ItemState:
    change: Change  # with the comment's author filled in for a deletion
    known: bool  # the author of a deleted comment was found
    present: bool
    mark_seq: int | None  # None: the item has no history


def _item_state(group_id: int, change: Change) -> ItemState:
    if change.activity == "comment" and change.kind == "removed":
        author = _comment_author(group_id, change)
        if author is None:
            return ItemState(change, False, False, None)
        change = Change("removed", author, change.post_id, change.activity, change.item_id)
    return ItemState(change, True, _in_snapshot(group_id, change), _mark_seq(group_id, change))


def _needs_check(change: Change, state: ItemState) -> bool:
    adds = change.kind in ("joined", "added")
    if not state.known or state.present == adds:
        return False
    return not (adds and state.mark_seq is None)


def _conclude(
    group: TrackedGroup, state: ItemState, actual: bool | None, key: str, seq: int
) -> str:
    change = state.change
    adds = change.kind in ("joined", "added")
    if not state.known or state.present == adds:
        return "already counted"
    if actual is None and adds and state.mark_seq is None:
        _record(group, change, key, seq)
        return "counted"
    if actual is None:
        return "left to polling: VK could not confirm it"
    if actual == state.present:
        return "stale: VK shows no change"
    _record(group, change if actual == adds else _opposite(change), key, seq)
    return "counted after checking VK"


def _opposite(change: Change) -> Change:
    verb = {"joined": "left", "left": "joined", "added": "removed", "removed": "added"}
    return Change(
        verb[change.kind], change.subject, change.post_id, change.activity, change.item_id
    )


def _record(group: TrackedGroup, change: Change, key: str, seq: int) -> None:
    now = utcnow()
    write_snapshot(group.id, [change])
    mark_changes(group.id, [change], now, seq, by_callback=True)
    member_id = linked_members(group.network, {change.subject}).get(change.subject)
    if member_id is not None:
        event_id = key.split(":", 2)[2]  # vk-callback:<group>:<event_id>
        event_key = change_key(group, change, f"cb{event_id}")
        process_events([event_for(group, change, member_id, now, event_key)])


def _seen(key: str) -> bool:
    return (
        db.session.scalar(
            select(ProviderNotification.id).where(
                ProviderNotification.network == "vk", ProviderNotification.dedup_key == key
            )
        )
        is not None
    )


def _remember(key: str, kind: str, change: Change | None, outcome: str) -> None:
    db.session.add(
        ProviderNotification(
            network="vk",
            dedup_key=key,
            event_type=kind[:64],
            subject=(change.subject if change else "")[:255],
            outcome=outcome[:255],
        )
    )


def _outside_scan(group: TrackedGroup, change: Change) -> bool:
    """An older post than any the last cycle read, and not one of them: polling would never
    reconcile what a callback counted there."""
    if change.post_id is None or not group.scanned_posts:
        return False
    scanned = {int(post) for post in group.scanned_posts if str(post).isdigit()}
    post = int(change.post_id)
    return bool(scanned) and post not in scanned and post < max(scanned)


def _in_snapshot(group_id: int, change: Change) -> bool:
    if change.post_id is None:
        query = select(MemberSnapshot.subject).where(
            MemberSnapshot.tracked_group_id == group_id, MemberSnapshot.subject == change.subject
        )
    else:
        query = select(ActivitySnapshot.subject).where(
            ActivitySnapshot.tracked_group_id == group_id,
            ActivitySnapshot.post_id == change.post_id,
            ActivitySnapshot.kind == change.activity,
            ActivitySnapshot.subject == change.subject,
            ActivitySnapshot.item_id == change.item_id,
        )
    return db.session.scalar(query) is not None


def _comment_author(group_id: int, change: Change) -> str | None:
    return db.session.scalar(
        select(ActivitySnapshot.subject).where(
            ActivitySnapshot.tracked_group_id == group_id,
            ActivitySnapshot.post_id == change.post_id,
            ActivitySnapshot.kind == "comment",
            ActivitySnapshot.item_id == change.item_id,
        )
    )


def _mark_seq(group_id: int, change: Change) -> int | None:
    """The seq of the item's last change, or None when it has no history."""
    post_id, kind, subject, item_id = mark_key(change)
    return db.session.scalar(
        select(ActivityMark.seq).where(
            ActivityMark.tracked_group_id == group_id,
            ActivityMark.post_id == post_id,
            ActivityMark.kind == kind,
            ActivityMark.subject == subject,
            ActivityMark.item_id == item_id,
        )
    )


def _check(group: TrackedGroup, change: Change, http: requests.Session | None) -> bool | None:
    """Whether the item exists on VK now; None when VK would not say."""
    config = current_app.config
    collector = VKCollector.from_config(config, http or requests.Session())
    # VK waits only seconds for "ok": a short timeout and one retry, then polling settles it.
    collector.pacer.max_retries = min(
        collector.pacer.max_retries, config["VK_CALLBACK_CHECK_RETRIES"]
    )
    collector.timeout = min(collector.timeout, config["VK_CALLBACK_CHECK_TIMEOUT_SECONDS"])
    target = GroupTarget(
        group_id=group.group_id,
        token=decrypt_text(group.token_encrypted),
        posts_to_scan=group.posts_to_scan,
    )
    if change.post_id is None:
        return collector.is_member(target, change.subject)
    items = collector.read_list(target, change.post_id, change.activity or "")
    if items is None:
        return None
    return (change.subject, change.item_id) in items
