"""Telegram (Bot API): a channel's joins and leaves, reactions and comments, from a bot's updates.

What Telegram needs: a bot (the tracked group's token is the bot token) that is an
administrator of the channel and of the channel's discussion group, and getUpdates or
setWebhook calls whose allowed_updates name chat_member and message_reaction: Telegram leaves
both out by default and never creates an update of a type the bot did not ask for, so what
happened before the first call is not delivered. One bot per tracked channel: getUpdates'
offset confirms all of a bot's updates at once, whatever chat they are about.

What the updates give: chat_member transitions of the channel (joined, left); message in the
discussion group, which are comments when they reply in the thread of a post's automatic
forward (the forward itself, `is_automatic_forward` with `forward_origin`, ties the thread to
the channel post); message_reaction in the discussion group, on the automatic forward.

What Telegram cannot tell: reposts and forwards by users; deleted messages (no update at all,
so a deleted comment keeps its points); members who joined before tracking began (a bot cannot
list members, only transitions are seen); who reacted in the channel itself (a channel's
reactions are anonymous counts, so a "like" here is a reaction on the post's copy in the
discussion group, which names the user; a channel without a discussion group gives joins and
leaves only). Reactions and replies-to-comments on a post whose automatic forward came before
tracking began cannot be tied to the post (a direct comment can: it carries the forward).

Exactly once: a change's key is its update_id ("u<id>", with an index when one update makes
several changes) and the engine records it as the event key; fetch returns the cursor after
the last update it read, stored with the events in one transaction. A batch read but not
applied is read again (Telegram forgets an update only once getUpdates is called with a
higher offset), and an update read or pushed twice is still one event. Not handled: Telegram
may number updates at random again after a week without any; a stored cursor above the new
numbers would skip them (delete the group's cursor after such a pause).

Retried: 429 (waiting its retry_after), 5xx and timeouts, with backoff. A bad token (401,
404), a webhook set for the bot (409) or a chat the bot cannot see (400) stop the run with a
message saying what to fix.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
from flask import current_app
from sqlalchemy import select

from app.collect.base import (
    CollectorError,
    GroupTarget,
    Pacer,
    Progress,
    StreamBatch,
    StreamChange,
    StreamCollector,
)
from app.extensions import db
from app.models import DiscussionThread, TrackedGroup
from app.services.crypto import decrypt_text, encrypt_text
from app.services.processing import dialect_insert

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ("chat_member", "message_reaction", "message", "channel_post")
PAGE = 100
MEMBER_STATUSES = frozenset({"creator", "administrator", "member"})
# Longer waits than this fail the run instead: the next scheduled cycle comes sooner.
MAX_RETRY_AFTER = 60

ThreadKey = tuple[int, int]  # (discussion chat id, message id of the automatic forward)


@dataclass
class UpdateChanges:
    """What one update means: its changes, and threads it revealed (automatic forwards)."""

    changes: list[StreamChange] = field(default_factory=list)
    threads: dict[ThreadKey, str] = field(default_factory=dict)


def changes_from_update(
    update: Mapping[str, Any],
    channel_id: int,
    discussion_id: int | None,
    threads: Mapping[ThreadKey, str],
) -> UpdateChanges:
    """The changes one update makes in the channel, and the threads it reveals.

    ``threads`` maps (discussion chat, automatic forward's message id) to the channel post id;
    ``discussion_id`` None accepts the chat where the channel's automatic forwards arrive.
    Updates about other chats, bots, and chats speaking for themselves make no change.
    """
    update_id = update.get("update_id")
    if not isinstance(update_id, int):
        return UpdateChanges()
    found = UpdateChanges()
    if isinstance(update.get("chat_member"), dict):
        found.changes = _membership(update["chat_member"], channel_id)
    elif isinstance(update.get("message_reaction"), dict):
        found.changes = _reaction(update["message_reaction"], discussion_id, threads)
    elif isinstance(update.get("message"), dict):
        found = _message(update["message"], channel_id, discussion_id, threads)
    if len(found.changes) == 1:
        found.changes = [_keyed(found.changes[0], f"u{update_id}")]
    else:
        found.changes = [
            _keyed(change, f"u{update_id}.{index}") for index, change in enumerate(found.changes)
        ]
    return found


def thread_keys(update: Mapping[str, Any]) -> set[ThreadKey]:
    """The threads an update may need to be understood (to look them up beforehand)."""
    reaction = update.get("message_reaction")
    if isinstance(reaction, dict):
        return {(_chat_id(reaction), _int(reaction.get("message_id")))}
    message = update.get("message")
    if not isinstance(message, dict):
        return set()
    chat = _chat_id(message)
    keys = {(chat, _int(message.get("message_thread_id")))}
    replied = message.get("reply_to_message")
    if isinstance(replied, dict):
        keys.add((chat, _int(replied.get("message_id"))))
    return {key for key in keys if key[1]}


def _keyed(change: StreamChange, key: str) -> StreamChange:
    return StreamChange(
        key=key,
        kind=change.kind,
        subject=change.subject,
        post_id=change.post_id,
        activity=change.activity,
        item_id=change.item_id,
    )


def _is_member(member: Any) -> bool:
    if not isinstance(member, dict):
        return False
    status = member.get("status")
    return status in MEMBER_STATUSES or (status == "restricted" and bool(member.get("is_member")))


def _person(user: Any) -> str | None:
    """A person's id as a Telegram sign-in stores it; None for bots and missing users."""
    if not isinstance(user, dict) or user.get("is_bot") or not isinstance(user.get("id"), int):
        return None
    return str(user["id"])


def _membership(update: dict[str, Any], channel_id: int) -> list[StreamChange]:
    if _chat_id(update) != channel_id:
        return []
    new = update.get("new_chat_member")
    subject = _person(new.get("user") if isinstance(new, dict) else None)
    if subject is None:
        return []
    was, now = _is_member(update.get("old_chat_member")), _is_member(new)
    if was == now:  # a promotion, a restriction, a ban of a non-member: no transition
        return []
    return [StreamChange(key="", kind="joined" if now else "left", subject=subject)]


def _reaction(
    update: dict[str, Any], discussion_id: int | None, threads: Mapping[ThreadKey, str]
) -> list[StreamChange]:
    chat = _chat_id(update)
    subject = _person(update.get("user"))  # absent for reactions on behalf of a chat
    if subject is None or (discussion_id is not None and chat != discussion_id):
        return []
    post_id = threads.get((chat, _int(update.get("message_id"))))
    if post_id is None:  # a reaction on a comment, or on a post from before tracking
        return []
    before, after = bool(update.get("old_reaction")), bool(update.get("new_reaction"))
    if before == after:  # a changed emoji is still the same "like"
        return []
    kind = "added" if after else "removed"
    return [StreamChange(key="", kind=kind, subject=subject, post_id=post_id, activity="like")]


def _message(
    message: dict[str, Any],
    channel_id: int,
    discussion_id: int | None,
    threads: Mapping[ThreadKey, str],
) -> UpdateChanges:
    chat = _chat_id(message)
    if discussion_id is not None and chat != discussion_id:
        return UpdateChanges()
    post_id = _forwarded_post(message, channel_id)
    if post_id is not None:
        return UpdateChanges(threads={(chat, _int(message.get("message_id"))): post_id})
    subject = _person(message.get("from"))
    if subject is None or "sender_chat" in message:  # sent on behalf of a chat
        return UpdateChanges()
    learnt: dict[ThreadKey, str] = {}
    post_id = threads.get((chat, _int(message.get("message_thread_id"))))
    replied = message.get("reply_to_message")
    if post_id is None and isinstance(replied, dict):
        post_id = _forwarded_post(replied, channel_id)
        if post_id is not None:
            learnt[(chat, _int(replied.get("message_id")))] = post_id
        else:
            post_id = threads.get((chat, _int(replied.get("message_id"))))
    if post_id is None:  # ordinary talk in the group, not a comment on a channel post
        return UpdateChanges(threads=learnt)
    comment = StreamChange(
        key="",
        kind="added",
        subject=subject,
        post_id=post_id,
        activity="comment",
        item_id=str(_int(message.get("message_id"))),
    )
    return UpdateChanges(changes=[comment], threads=learnt)


def _forwarded_post(message: Mapping[str, Any], channel_id: int) -> str | None:
    """The channel post an automatic forward copies; None for any other message."""
    if not message.get("is_automatic_forward"):
        return None
    origin = message.get("forward_origin")
    if not isinstance(origin, dict) or origin.get("type") != "channel":
        return None
    if _chat_id(origin) != channel_id or not _int(origin.get("message_id")):
        return None
    return str(origin["message_id"])


def _chat_id(holder: Mapping[str, Any]) -> int:
    chat = holder.get("chat")
    return _int(chat.get("id")) if isinstance(chat, dict) else 0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class ThreadStore(Protocol):
    """Where the collector remembers which discussion message is which post's thread."""

    def lookup(self, target: GroupTarget, keys: Iterable[ThreadKey]) -> dict[ThreadKey, str]: ...

    def remember(self, target: GroupTarget, threads: Mapping[ThreadKey, str]) -> None: ...


class DatabaseThreads:
    """Threads kept in discussion_threads; a row is written before the batch that revealed it
    is applied, and writing it again changes nothing."""

    def lookup(self, target: GroupTarget, keys: Iterable[ThreadKey]) -> dict[ThreadKey, str]:
        wanted = set(keys)
        group_id = _tracked_group_id(target)
        if not wanted or group_id is None:
            return {}
        rows = db.session.execute(
            select(
                DiscussionThread.chat_id, DiscussionThread.message_id, DiscussionThread.post_id
            ).where(
                DiscussionThread.tracked_group_id == group_id,
                DiscussionThread.message_id.in_(sorted({str(message) for _, message in wanted})),
            )
        )
        found = {(int(chat), int(message)): post for chat, message, post in rows}
        return {key: post for key, post in found.items() if key in wanted}

    def remember(self, target: GroupTarget, threads: Mapping[ThreadKey, str]) -> None:
        group_id = _tracked_group_id(target)
        if not threads or group_id is None:
            return
        rows = [
            {
                "tracked_group_id": group_id,
                "chat_id": str(chat),
                "message_id": str(message),
                "post_id": post,
            }
            for (chat, message), post in sorted(threads.items())
        ]
        db.session.execute(dialect_insert(DiscussionThread).on_conflict_do_nothing(), rows)
        db.session.commit()


def _tracked_group_id(target: GroupTarget) -> int | None:
    return db.session.scalar(
        select(TrackedGroup.id).where(
            TrackedGroup.network == "telegram", TrackedGroup.group_id == target.group_id
        )
    )


class TelegramCollector(StreamCollector):
    network = "telegram"

    def __init__(
        self,
        http: requests.Session,
        *,
        api_url: str,
        timeout: float,
        pacer: Pacer,
        poll_timeout: int = 1,
        threads: ThreadStore | None = None,
    ) -> None:
        self.http = http
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        # Telegram sets no fixed rate for getUpdates: requests are not paced, only retried.
        self.pacer = pacer
        self.poll_timeout = max(0, int(poll_timeout))
        self.threads: ThreadStore = threads if threads is not None else DatabaseThreads()
        self._discussion: dict[str, int | None] = {}
        self._known: dict[ThreadKey, str] = {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], http: requests.Session) -> TelegramCollector:
        return cls(
            http,
            api_url=config["TELEGRAM_BOT_API_URL"],
            timeout=config["HTTP_TIMEOUT_SECONDS"],
            pacer=Pacer.from_config(config, "TELEGRAM"),
            poll_timeout=config.get("TELEGRAM_POLL_TIMEOUT_SECONDS", 1),
        )

    def fetch(self, target: GroupTarget, cursor: str | None, progress: Progress) -> StreamBatch:
        batch = StreamBatch(changes=[], cursor=cursor)
        channel_id = _channel_id(target)
        discussion_id = self._discussion_of(target, channel_id, batch)
        params: dict[str, Any] = {
            "limit": PAGE,
            "timeout": self.poll_timeout,
            "allowed_updates": list(ALLOWED_UPDATES),
        }
        if cursor:
            params["offset"] = int(cursor)
        updates = self.call(target.token, "getUpdates", params, batch)
        if not isinstance(updates, list):
            raise CollectorError("Telegram's getUpdates answer is not a list of updates")
        updates = [
            u for u in updates if isinstance(u, dict) and isinstance(u.get("update_id"), int)
        ]
        batch.items_read = len(updates)
        if not updates:
            return batch
        wanted = set().union(*(thread_keys(update) for update in updates)) - set(self._known)
        self._known.update(self.threads.lookup(target, wanted))
        learnt: dict[ThreadKey, str] = {}
        for update in updates:
            found = changes_from_update(update, channel_id, discussion_id, self._known)
            batch.changes += found.changes
            learnt.update(found.threads)
            self._known.update(found.threads)
        self.threads.remember(target, learnt)
        # Every update read is confirmed by the next cursor, other chats' included.
        batch.cursor = str(max(update["update_id"] for update in updates) + 1)
        progress("reading updates", 50)
        return batch

    def _discussion_of(
        self, target: GroupTarget, channel_id: int, batch: StreamBatch
    ) -> int | None:
        """The channel's discussion group (asked once per cycle; getChat also checks that
        the token works and the bot sees the channel)."""
        if target.group_id not in self._discussion:
            chat = self.call(target.token, "getChat", {"chat_id": channel_id}, batch)
            if not isinstance(chat, dict) or chat.get("type") != "channel":
                kind = chat.get("type") if isinstance(chat, dict) else "unknown"
                raise CollectorError(
                    f"Telegram chat {channel_id} is a {kind}, not a channel: track a channel"
                )
            linked = chat.get("linked_chat_id")
            if not isinstance(linked, int):
                log.warning(
                    "Telegram channel %s has no discussion group: only joins and leaves are "
                    "seen (no comments, and its reactions are anonymous)",
                    channel_id,
                )
            self._discussion[target.group_id] = linked if isinstance(linked, int) else None
        return self._discussion[target.group_id]

    def call(
        self, token: str, method: str, params: Mapping[str, Any], batch: StreamBatch | None = None
    ) -> Any:
        """One Bot API method, retried on 429, 5xx and timeouts; its `result`."""
        batch = batch if batch is not None else StreamBatch(changes=[], cursor=None)
        url = f"{self.api_url}/bot{token}/{method}"
        # A long poll legitimately takes its timeout before answering.
        timeout = self.timeout + float(params.get("timeout", 0) or 0)
        last = ""
        for attempt in range(self.pacer.max_retries + 1):
            if attempt:
                batch.retries += 1
            batch.requests += 1
            try:
                response = self.http.post(url, json=dict(params), timeout=timeout)
            except (requests.Timeout, requests.ConnectionError) as exc:
                last = f"{type(exc).__name__}"
                self._wait(attempt, None, method, last)
                continue
            body = _json(response)
            if response.status_code == 200 and body.get("ok") is True:
                return body.get("result")
            status = response.status_code
            description = str(body.get("description") or response.reason or "")
            last = f"{status} {description}".strip()
            if status == 429 or status >= 500:
                retry_after = (body.get("parameters") or {}).get("retry_after")
                self._wait(
                    attempt, retry_after if isinstance(retry_after, int) else None, method, last
                )
                continue
            raise CollectorError(_refusal(method, status, description))
        raise CollectorError(
            f"Telegram {method} failed {self.pacer.max_retries + 1} times (last: {last}); "
            "the next cycle tries again from the same place"
        )

    def _wait(self, attempt: int, retry_after: int | None, method: str, error: str) -> None:
        if attempt >= self.pacer.max_retries:
            return
        if retry_after is not None and retry_after > MAX_RETRY_AFTER:
            raise CollectorError(
                f"Telegram asks to wait {retry_after} s before {method}; the next cycle tries again"
            )
        log.warning("Telegram %s: %s; retrying", method, error)
        self.pacer.back_off(attempt, at_least=float(retry_after or 0))


def _channel_id(target: GroupTarget) -> int:
    try:
        return int(target.group_id)
    except ValueError:
        raise CollectorError(
            f"the Telegram group id must be a chat id like -1001234567890, got {target.group_id!r}"
        ) from None


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:  # Telegram's front servers answer 502 with an HTML page
        return {}
    return body if isinstance(body, dict) else {}


def _refusal(method: str, status: int, description: str) -> str:
    if status == 401:
        return (
            f"Telegram refused the bot token (401 {description}): check the tracked group's "
            "token (from @BotFather)"
        )
    if status == 404:
        return (
            f"Telegram answered 404 {description} to {method}: the bot token is malformed "
            "(it looks like <bot id>:<secret>)"
        )
    if status == 409:
        return (
            f"Telegram refused {method} (409 {description}): a webhook is set for this bot, "
            "so its updates go there; delete the webhook to collect by polling"
        )
    if status == 400 and "chat not found" in description:
        return (
            f"Telegram does not show the chat to this bot (400 {description}): make the bot an "
            "administrator of the channel and of its discussion group"
        )
    return f"Telegram refused {method}: {status} {description}"


# Webhooks (services the portal's staff pages and the hook use)


def set_webhook(group: Any, url: str, *, http: requests.Session | None = None) -> str:
    """Point the group's bot at ``url`` with a new secret token, kept encrypted on the group
    (the hook compares it); returns Telegram's description. One connection at a time keeps
    the updates in order, so a post's automatic forward comes before its comments."""
    secret = secrets.token_urlsafe(32)
    previous = group.callback_secret_encrypted
    # Stored before Telegram is told: a delivery using the new secret is never refused.
    group.callback_secret_encrypted = encrypt_text(secret)
    db.session.commit()
    collector = TelegramCollector.from_config(current_app.config, http or requests.Session())
    params = {
        "url": url,
        "secret_token": secret,
        "allowed_updates": list(ALLOWED_UPDATES),
        "max_connections": 1,
    }
    try:
        collector.call(decrypt_text(group.token_encrypted), "setWebhook", params)
    except CollectorError:
        # Telegram kept the old webhook and its secret: so must we, or every delivery is
        # refused until someone notices.
        group.callback_secret_encrypted = previous
        db.session.commit()
        raise
    return "Webhook was set"


def delete_webhook(
    group: Any, *, drop_pending_updates: bool = False, http: requests.Session | None = None
) -> None:
    """Stop the webhook (polling works again) and forget its secret: the hook refuses all."""
    collector = TelegramCollector.from_config(current_app.config, http or requests.Session())
    collector.call(
        decrypt_text(group.token_encrypted),
        "deleteWebhook",
        {"drop_pending_updates": drop_pending_updates},
    )
    group.callback_secret_encrypted = None
    db.session.commit()


def apply_webhook_update(group: Any, update: Mapping[str, Any]) -> int:
    """Record what one pushed update means (no cursor: the webhook has none); the new events.

    The update's key makes a redelivered update (Telegram retries until it gets a 2xx) one
    event."""
    from app.collect.engine import apply_stream_changes  # the engine imports this module

    target = GroupTarget(group_id=group.group_id, token="", posts_to_scan=0)
    store = DatabaseThreads()
    threads = store.lookup(target, thread_keys(update))
    found = changes_from_update(update, _channel_id(target), None, threads)
    store.remember(target, found.threads)
    return apply_stream_changes(group, found.changes)


def json_update(raw: bytes) -> dict[str, Any] | None:
    """A pushed body as an Update object, or None when it is not one."""
    try:
        update = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        return None
    return update
