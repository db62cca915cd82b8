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
from typing import Any

import requests
from flask import current_app
from sqlalchemy import select

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
from app.services.crypto import decrypt_text
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


def handle_callback(payload: Any, *, http: requests.Session | None = None) -> CallbackResult:
    """Verify and apply one Callback API request; commits."""
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
    if kind == "confirmation":
        return CallbackResult(group.callback_confirmation, "confirmation")
    secret = payload.get("secret")
    expected = decrypt_text(group.callback_secret_encrypted)
    if not isinstance(secret, str) or not hmac.compare_digest(secret, expected):
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
        original = (event.get("copy_history") or [None])[0]
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
    lock_group(group.id)  # callbacks and polling cycles of this group, one at a time
    key = f"vk-callback:{group.group_id}:{event_id}"
    seen = db.session.scalar(
        select(ProviderNotification.id).where(
            ProviderNotification.network == "vk", ProviderNotification.dedup_key == key[:255]
        )
    )
    if seen is not None:
        return "duplicate"
    if change is None:
        outcome = "not counted"
    elif group.baseline_at is None:
        outcome = "before the baseline"
    else:
        outcome = _settle(group, change, event_id, http)
    db.session.add(
        ProviderNotification(
            network="vk",
            dedup_key=key[:255],
            event_type=kind[:64],
            subject=(change.subject if change else "")[:255],
            outcome=outcome[:255],
        )
    )
    return outcome


def _settle(
    group: TrackedGroup, change: Change, event_id: str, http: requests.Session | None
) -> str:
    if change.activity == "comment" and change.kind == "removed":
        author = _comment_author(group.id, change)
        if author is None:
            return "already counted"
        change = Change("removed", author, change.post_id, change.activity, change.item_id)
    present = _in_snapshot(group.id, change)
    adds = change.kind in ("joined", "added")
    if present == adds:
        return "already counted"
    if adds and not _ever_removed(group.id, change):
        _record(group, change, event_id)
        return "counted"
    actual = _check(group, change, http)
    if actual is None:
        return "left to polling: VK could not confirm it"
    if actual == present:
        return "stale: VK shows no change"
    if actual != adds:
        change = _opposite(change)
    _record(group, change, event_id)
    return "counted after checking VK"


def _opposite(change: Change) -> Change:
    verb = {"joined": "left", "left": "joined", "added": "removed", "removed": "added"}
    return Change(
        verb[change.kind], change.subject, change.post_id, change.activity, change.item_id
    )


def _record(group: TrackedGroup, change: Change, event_id: str) -> None:
    now = utcnow()
    write_snapshot(group.id, [change])
    mark_changes(group.id, [change], now, by_callback=True)
    member_id = linked_members(group.network, {change.subject}).get(change.subject)
    if member_id is not None:
        key = change_key(group, change, f"cb{event_id}")
        process_events([event_for(group, change, member_id, now, key)])


def _in_snapshot(group_id: int, change: Change) -> bool:
    if change.post_id is None:
        found = db.session.get(MemberSnapshot, (group_id, change.subject))
    else:
        found = db.session.get(
            ActivitySnapshot,
            (group_id, change.post_id, change.activity, change.subject, change.item_id),
        )
    return found is not None


def _comment_author(group_id: int, change: Change) -> str | None:
    return db.session.scalar(
        select(ActivitySnapshot.subject).where(
            ActivitySnapshot.tracked_group_id == group_id,
            ActivitySnapshot.post_id == change.post_id,
            ActivitySnapshot.kind == "comment",
            ActivitySnapshot.item_id == change.item_id,
        )
    )


def _ever_removed(group_id: int, change: Change) -> bool:
    """Whether the item has a history: removed once, or changed by a callback before."""
    return db.session.get(ActivityMark, (group_id, *mark_key(change))) is not None


def _check(group: TrackedGroup, change: Change, http: requests.Session | None) -> bool | None:
    """Whether the item exists on VK now; None when VK would not say."""
    config = current_app.config
    collector = VKCollector.from_config(config, http or requests.Session())
    # VK waits only seconds for "ok": one retry at most, then polling settles it.
    collector.pacer.max_retries = min(
        collector.pacer.max_retries, config["VK_CALLBACK_CHECK_RETRIES"]
    )
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
