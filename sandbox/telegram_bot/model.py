"""In-memory, thread-safe data of the sandbox Telegram Bot API: bots, channels with their
discussion groups, the updates each bot is owed, webhooks, faults and request counts.

What is true to Telegram and modelled so:

- An update is created when something happens, for every bot that is an administrator of the
  chat and whose allowed_updates (as last set by getUpdates or setWebhook) name its type.
  chat_member, message_reaction and message_reaction_count are left out unless named, and a
  later change of allowed_updates does not bring back updates that were never created.
- A channel's reactions are anonymous: reacting on the channel post itself changes counts and
  makes only a message_reaction_count update, with no user. The reactions that name the user
  are those on the post's automatically forwarded copy in the discussion group (a
  message_reaction update in that supergroup).
- Publishing a post makes a channel_post update and, when the channel has a discussion group,
  the automatic forward: a `message` in the group with is_automatic_forward and forward_origin.
  Comments are messages in the group replying in the thread of that forward.
- Deleting a message sends no update at all.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from sandbox.faults import FaultInjection, RequestCounts
from sandbox.faults import positive as _positive
from sandbox.vkapi.model import generated_name

UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "message_reaction",
    "message_reaction_count",
    "callback_query",
    "chat_member",
    "my_chat_member",
    "chat_join_request",
)
# What a bot receives when allowed_updates is empty or was never set.
DEFAULT_ALLOWED = frozenset(UPDATE_TYPES) - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}
MEMBER_STATUSES = frozenset({"creator", "administrator", "member"})
# The service account automatic forwards come from.
TELEGRAM_SERVICE_USER = {"id": 777000, "is_bot": False, "first_name": "Telegram"}
REACTION_EMOJI = ("👍", "❤", "🔥", "🎉", "👏", "😁", "🤔", "👎")
TESTER_ACTIONS = ("join", "leave", "react", "unreact", "comment", "delete-comment", "post")
TESTER_GENERATED_USERS = 8
FIRST_GENERATED_USER = 7_100_001
MAX_LONG_POLL = 50.0
TOKEN_FORM = re.compile(r"(\d+):[A-Za-z0-9_-]+")
SECRET_FORM = re.compile(r"[A-Za-z0-9_-]{1,256}")
WEBHOOK_TIMEOUT = 5.0
WEBHOOK_RETRY_MIN = 0.05
WEBHOOK_RETRY_MAX = 1.0


class ApiError(Exception):
    """A Bot API error: ``{"ok": false, "error_code", "description", "parameters"?}``."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass(slots=True, eq=False)
class Message:
    """A message in a channel or a supergroup."""

    id: int
    chat_id: int
    date: int
    text: str
    from_id: int | None = None
    sender_chat_id: int | None = None
    reply_to: int | None = None
    thread_id: int | None = None
    forward_of: int | None = None  # an automatic forward: the channel post it copies
    copy_id: int | None = None  # a channel post: its automatic forward in the discussion group
    deleted: bool = False
    reactions: dict[int, list[str]] = field(default_factory=dict)  # user -> emoji


@dataclass(slots=True, eq=False)
class Chat:
    """A channel or a supergroup; users absent from ``statuses`` have status "left"."""

    id: int
    type: str
    title: str
    username: str | None = None
    linked_chat_id: int | None = None
    statuses: dict[int, str] = field(default_factory=dict)
    admins: set[int] = field(default_factory=set)  # bot ids
    messages: dict[int, Message] = field(default_factory=dict)
    last_message_id: int = 0

    def next_id(self) -> int:
        self.last_message_id += 1
        return self.last_message_id

    def status(self, user_id: int) -> str:
        return self.statuses.get(user_id, "left")


@dataclass(slots=True, eq=False)
class Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    stop: threading.Event = field(default_factory=threading.Event)
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(slots=True, eq=False)
class Bot:
    id: int
    token: str
    username: str
    first_name: str
    next_update_id: int
    updates: deque[dict[str, Any]] = field(default_factory=deque)
    allowed: frozenset[str] = DEFAULT_ALLOWED
    webhook: Webhook | None = None
    poll_generation: int = 0


class TelegramBotState(RequestCounts, FaultInjection):
    """Everything the sandbox Bot API remembers; every public method takes the lock.

    ``persons`` returns the sandbox persons; their Telegram ids come from
    ``person["networks"]["telegram"]["id"]``. Any other positive id is a user with a
    generated name.
    """

    DEFAULT_FAULT_CODES = (429, 502)

    def __init__(
        self,
        persons: Callable[[], Iterable[dict[str, Any]]] | None = None,
        *,
        deliver: Callable[[Webhook, dict[str, Any]], tuple[int | None, str | None]] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._persons = persons or (lambda: ())
        self._deliver = deliver or post_update
        self.webhook_retry_min = WEBHOOK_RETRY_MIN
        self._reset_data()

    def _reset_data(self) -> None:
        self.bots: dict[str, Bot] = {}
        self.chats: dict[int, Chat] = {}
        self._reset_controls()
        self._lost_answers = 0

    def clear(self) -> None:
        """Forget bots, chats, updates, webhooks (their delivery stops), faults and counts."""
        with self.lock:
            for bot in self.bots.values():
                self._stop_webhook(bot)
            self._reset_data()
            self.changed.notify_all()

    # Users

    def person_names(self) -> dict[int, tuple[str, str, str | None]]:
        """Telegram id -> (first, last, username) of the sandbox persons on Telegram."""
        names: dict[int, tuple[str, str, str | None]] = {}
        for person in self._persons():
            profile = person.get("networks", {}).get("telegram") or {}
            user_id = profile.get("id")
            if isinstance(user_id, int):
                names[user_id] = (
                    profile.get("first_name", person["first_name"]),
                    profile.get("last_name", person["last_name"]),
                    profile.get("username"),
                )
        return names

    def user_json(self, user_id: int) -> dict[str, Any]:
        """The User object Telegram shows for this id."""
        first, last, username = self.person_names().get(user_id) or (
            *generated_name(user_id),
            None,
        )
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first}
        if last:
            user["last_name"] = last
        if username:
            user["username"] = username
        return user

    def tester_users(self) -> list[dict[str, Any]]:
        """The users the tester page offers: the persons, then a few generated users."""
        ids = list(self.person_names())
        ids += [FIRST_GENERATED_USER + n for n in range(TESTER_GENERATED_USERS)]
        return [self.user_json(user_id) for user_id in ids]

    # Bots and chats

    def create_bot(self, token: str, *, username: str | None = None, name: str = "") -> None:
        """Accept this bot token (``<bot id>:<secret>``); an existing bot keeps its updates."""
        match = TOKEN_FORM.fullmatch(token or "")
        if match is None:
            raise ValueError("token must look like <bot id>:<secret>")
        bot_id = int(match.group(1))
        with self.lock:
            if token in self.bots:
                return
            if any(bot.id == bot_id for bot in self.bots.values()):
                raise ValueError(f"bot {bot_id} already has another token")
            self.bots[token] = Bot(
                id=bot_id,
                token=token,
                username=username or f"sandbox{bot_id}_bot",
                first_name=name or f"Sandbox bot {bot_id}",
                # Telegram's update ids do not start at 1.
                next_update_id=100_000_000 + (bot_id * 7919) % 800_000_000,
            )

    def create_channel(
        self,
        chat_id: int,
        title: str,
        *,
        discussion_id: int | None = None,
        discussion_title: str = "",
        admins: Sequence[str] = (),
        username: str | None = None,
    ) -> None:
        """Create a channel (and its linked discussion supergroup), the bots admins of both."""
        if not isinstance(chat_id, int) or not str(chat_id).startswith("-100"):
            raise ValueError("a channel's chat_id must be an integer like -1001234567890")
        if discussion_id is not None and (
            not isinstance(discussion_id, int) or not str(discussion_id).startswith("-100")
        ):
            raise ValueError("discussion_id must be an integer like -1009876543210")
        if not title:
            raise ValueError("title must be a non-empty string")
        with self.lock:
            bot_ids = {self._bot(token).id for token in admins}
            if chat_id in self.chats or discussion_id in self.chats:
                raise ValueError("a chat with that id already exists")
            channel = Chat(chat_id, "channel", title, username, discussion_id, admins=bot_ids)
            self.chats[chat_id] = channel
            if discussion_id is not None:
                self.chats[discussion_id] = Chat(
                    discussion_id,
                    "supergroup",
                    discussion_title or f"{title} chat",
                    linked_chat_id=chat_id,
                    admins=set(bot_ids),
                )

    def chat(self, chat_id: int) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ValueError(f"no chat {chat_id}")
        return chat

    def channel(self, chat_id: int) -> Chat:
        chat = self.chat(chat_id)
        if chat.type != "channel":
            raise ValueError(f"chat {chat_id} is not a channel")
        return chat

    def post_message(self, channel_id: int, post_id: int) -> Message:
        message = self.channel(channel_id).messages.get(post_id)
        if message is None:
            raise ValueError(f"no post {post_id} in channel {channel_id}")
        return message

    # What people do

    def publish(self, channel_id: int, text: str = "", *, date: int | None = None) -> int:
        """Post in the channel; the discussion group gets its automatic forward."""
        with self.lock:
            channel = self.channel(channel_id)
            post = Message(
                channel.next_id(), channel.id, _now(date), text, sender_chat_id=channel.id
            )
            channel.messages[post.id] = post
            self._emit(channel, "channel_post", self.message_json(post))
            group = self.chats.get(channel.linked_chat_id or 0)
            if group is not None:
                copy = Message(
                    group.next_id(),
                    group.id,
                    post.date,
                    text,
                    from_id=TELEGRAM_SERVICE_USER["id"],
                    sender_chat_id=channel.id,
                    forward_of=post.id,
                )
                group.messages[copy.id] = copy
                post.copy_id = copy.id
                self._emit(group, "message", self.message_json(copy))
            return post.id

    def join(self, channel_id: int, user_id: int) -> bool:
        """Subscribe the user (chat_member left -> member); False if already a member."""
        return self._set_status(self.channel_id_checked(channel_id), _user(user_id), "member")

    def leave(self, channel_id: int, user_id: int) -> bool:
        """Unsubscribe the user (chat_member member -> left); False if not a member."""
        return self._set_status(self.channel_id_checked(channel_id), _user(user_id), "left")

    def ban(self, channel_id: int, user_id: int) -> bool:
        """An administrator removes the user (-> kicked); False if already kicked."""
        return self._set_status(self.channel_id_checked(channel_id), _user(user_id), "kicked")

    def channel_id_checked(self, channel_id: int) -> int:
        with self.lock:
            return self.channel(channel_id).id

    def react(
        self,
        channel_id: int,
        post_id: int,
        user_id: int,
        emoji: str | None = "👍",
        *,
        where: str = "discussion",
    ) -> bool:
        """Set the user's reaction on the post (None or "" takes it back); False if unchanged.

        where="discussion": on the post's automatic forward in the discussion group, a
        message_reaction update naming the user. where="channel": on the channel post itself,
        anonymous as in every channel, a message_reaction_count update without the user.
        """
        user_id = _user(user_id)
        if emoji and emoji not in REACTION_EMOJI:
            raise ValueError(f"emoji must be one of {' '.join(REACTION_EMOJI)}")
        if where not in ("discussion", "channel"):
            raise ValueError('where must be "discussion" or "channel"')
        with self.lock:
            post = self.post_message(channel_id, post_id)
            chat, message = self.channel(channel_id), post
            if where == "discussion":
                chat, message = self._copy_of(channel_id, post)
            old = message.reactions.get(user_id, [])
            new = [emoji] if emoji else []
            if old == new:
                return False
            if new:
                message.reactions[user_id] = new
            else:
                message.reactions.pop(user_id, None)
            if where == "channel":
                self._emit(chat, "message_reaction_count", self._reaction_counts(chat, message))
            else:
                self._emit(
                    chat,
                    "message_reaction",
                    {
                        "chat": chat_json(chat),
                        "message_id": message.id,
                        "user": self.user_json(user_id),
                        "date": _now(None),
                        "old_reaction": [_reaction(e) for e in old],
                        "new_reaction": [_reaction(e) for e in new],
                    },
                )
            return True

    def comment(
        self,
        channel_id: int,
        post_id: int,
        user_id: int,
        text: str,
        *,
        reply_to: int | None = None,
        date: int | None = None,
    ) -> int:
        """Comment on the post: a message in the discussion group in the forward's thread,
        replying to the forward or to ``reply_to`` (a comment of that thread)."""
        user_id = _user(user_id)
        if not isinstance(text, str) or not text.strip():
            raise ValueError("a comment needs some text")
        with self.lock:
            group, copy = self._copy_of(channel_id, self.post_message(channel_id, post_id))
            if reply_to is not None:
                target = group.messages.get(reply_to)
                if target is None or target.deleted or copy.id not in (target.thread_id, target.id):
                    raise ValueError(f"message {reply_to} is not in the thread of post {post_id}")
            message = Message(
                group.next_id(),
                group.id,
                _now(date),
                text,
                from_id=user_id,
                reply_to=reply_to or copy.id,
                thread_id=copy.id,
            )
            group.messages[message.id] = message
            self._emit(group, "message", self.message_json(message))
            return message.id

    def delete_comment(self, channel_id: int, message_id: int) -> bool:
        """Delete a message of the discussion group: Telegram sends no update for it."""
        with self.lock:
            group = self.chat(self.channel(channel_id).linked_chat_id or 0)
            message = group.messages.get(message_id)
            if message is None:
                raise ValueError(f"no message {message_id} in the discussion group")
            if message.deleted:
                return False
            message.deleted = True
            return True

    def comment_author(self, channel_id: int, message_id: int) -> int | None:
        with self.lock:
            group = self.chat(self.channel(channel_id).linked_chat_id or 0)
            message = group.messages.get(message_id)
            return None if message is None else message.from_id

    def act(
        self,
        action: str,
        *,
        channel_id: int,
        user_id: int,
        post_id: int | None = None,
        text: str = "",
        emoji: str = "👍",
        where: str = "discussion",
        message_id: int | None = None,
    ) -> dict[str, Any]:
        """Do one tester action; ``{"changed", "message"}`` plus new ids."""
        if action not in TESTER_ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {list(TESTER_ACTIONS)}")
        if action == "post":
            new_id = self.publish(channel_id, text)
            return {"changed": True, "post_id": new_id, "message": f"Published post {new_id}."}
        who = self.user_json(_user(user_id))
        name = " ".join(filter(None, (who["first_name"], who.get("last_name"))))
        if action in ("join", "leave"):
            changed = (self.join if action == "join" else self.leave)(channel_id, user_id)
            verb = "joined" if action == "join" else "left"
            return {"changed": changed, "message": f"{name} {verb} channel {channel_id}."}
        if action == "delete-comment":
            if message_id is None:
                raise ValueError("delete-comment needs a message_id")
            if self.comment_author(channel_id, message_id) != user_id:
                raise ValueError(f"message {message_id} is not {name}'s")
            changed = self.delete_comment(channel_id, message_id)
            return {"changed": changed, "message": f"{name} deleted comment {message_id}."}
        if post_id is None:
            raise ValueError(f"{action} needs a post_id")
        if action == "comment":
            new_id = self.comment(channel_id, post_id, user_id, text, reply_to=message_id)
            message = f"{name} commented on post {post_id} (message {new_id})."
            return {"changed": True, "message_id": new_id, "message": message}
        changed = self.react(
            channel_id, post_id, user_id, emoji if action == "react" else None, where=where
        )
        place = "in the discussion group" if where == "discussion" else "in the channel"
        verb = f"reacted {emoji} to" if action == "react" else "took back the reaction on"
        return {"changed": changed, "message": f"{name} {verb} post {post_id} {place}."}

    # Bot API methods (the blueprint calls these; errors are ApiError)

    def bot(self, token: str) -> Bot:
        with self.lock:
            return self._bot_api(token)

    def get_me(self, token: str) -> dict[str, Any]:
        with self.lock:
            bot = self._bot_api(token)
            return {
                "id": bot.id,
                "is_bot": True,
                "first_name": bot.first_name,
                "username": bot.username,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
                "can_connect_to_business": False,
                "has_main_web_app": False,
            }

    def get_chat(self, token: str, chat_ref: str) -> dict[str, Any]:
        with self.lock:
            bot = self._bot_api(token)
            chat = self._chat_for(bot, chat_ref)
            info = {**chat_json(chat), "accent_color_id": 0, "max_reaction_count": 11}
            if chat.linked_chat_id is not None:
                info["linked_chat_id"] = chat.linked_chat_id
            return info

    def get_updates(
        self,
        token: str,
        *,
        offset: int | None,
        limit: int,
        timeout: float,
        allowed: list[str] | None,
    ) -> list[dict[str, Any]]:
        """Confirm what is before ``offset``, then the next updates, waiting up to ``timeout``
        seconds for some; a newer getUpdates call ends a waiting one with 409."""
        limit = min(100, max(1, limit))
        deadline = time.monotonic() + min(MAX_LONG_POLL, max(0.0, timeout))
        with self.lock:
            bot = self._bot_api(token)
            self._refuse_while_webhook(bot)
            if allowed is not None:
                bot.allowed = _allowed(allowed)
            _confirm(bot, offset)
            bot.poll_generation += 1
            generation = bot.poll_generation
            while True:
                if bot.updates:
                    return [bot.updates[n] for n in range(min(limit, len(bot.updates)))]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self.changed.wait(remaining)
                if self.bots.get(token) is not bot:
                    return []
                if bot.poll_generation != generation:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that "
                        "only one bot instance is running",
                    )
                self._refuse_while_webhook(bot)

    def set_webhook(
        self,
        token: str,
        *,
        url: str,
        secret_token: str | None,
        allowed: list[str] | None,
        drop_pending_updates: bool,
        max_connections: int,
    ) -> str:
        with self.lock:
            bot = self._bot_api(token)
            if not url:
                return self.delete_webhook(token, drop_pending_updates=drop_pending_updates)
            # Telegram wants HTTPS on ports 443, 80, 88 or 8443; the sandbox takes any http(s)
            # URL, the loopback portal included.
            if not url.startswith(("http://", "https://")):
                raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
            if secret_token is not None and not SECRET_FORM.fullmatch(secret_token):
                raise ApiError(400, "Bad Request: secret token contains unallowed characters")
            if allowed is not None:
                bot.allowed = _allowed(allowed)
            if drop_pending_updates:
                bot.updates.clear()
            self._stop_webhook(bot)
            bot.webhook = Webhook(url, secret_token, max(1, min(100, max_connections)))
            # A waiting getUpdates learns of the webhook and ends with 409.
            self.changed.notify_all()
            thread = threading.Thread(
                target=self._deliver_loop, args=(bot, bot.webhook), daemon=True
            )
            thread.start()
            return "Webhook was set"

    def delete_webhook(self, token: str, *, drop_pending_updates: bool) -> str:
        with self.lock:
            bot = self._bot_api(token)
            if drop_pending_updates:
                bot.updates.clear()
            if bot.webhook is None:
                return "Webhook is already deleted"
            self._stop_webhook(bot)
            return "Webhook was deleted"

    def webhook_info(self, token: str) -> dict[str, Any]:
        with self.lock:
            bot = self._bot_api(token)
            hook = bot.webhook
            info: dict[str, Any] = {
                "url": hook.url if hook else "",
                "has_custom_certificate": False,
                "pending_update_count": len(bot.updates),
            }
            if hook is not None:
                info["max_connections"] = hook.max_connections
                info["ip_address"] = "127.0.0.1"
                if bot.allowed != DEFAULT_ALLOWED:
                    info["allowed_updates"] = sorted(bot.allowed)
                if hook.last_error_date is not None:
                    info["last_error_date"] = hook.last_error_date
                    info["last_error_message"] = hook.last_error_message
            return info

    # Faults (counts and the rest of the fault machinery come from sandbox.faults)

    def inject_error(
        self,
        code: int,
        *,
        method: str | None = None,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (None: any method) fail with ``code``
        (429 carries ``retry_after``, 1 second by default)."""
        code = _positive(code, "code")
        times = _positive(times, "times")
        if code == 429 and retry_after is None:
            retry_after = 1
        if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
            raise ValueError("retry_after must be a non-negative integer")
        self._arm_error(code, method, times, check_method=False, retry_after=retry_after)

    def inject_lost_answers(self, times: int = 1) -> None:
        """The next ``times`` webhook deliveries count as failed although the portal got them
        (its answer was lost): Telegram sends the same update again."""
        times = _positive(times, "times")
        with self.lock:
            self._lost_answers += times

    def set_fault_rate(
        self,
        rate: float,
        *,
        seed: int = 0,
        codes: Sequence[int] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Fail about ``rate`` of the requests with a random one of ``codes`` (default 429
        with retry_after 1, and 502) or, when ``timeout`` is given, a delay of that many
        seconds; lose about ``rate`` of the webhook answers. 0 stops."""
        codes = self.DEFAULT_FAULT_CODES if codes is None else codes
        self._arm_fault_rate(
            rate, seed, codes, timeout=timeout, empty="give some codes or a timeout"
        )

    def clear_faults(self) -> None:
        """Drop armed errors, timeouts, lost answers and the random fault rate."""
        with self.lock:
            super().clear_faults()
            self._lost_answers = 0

    def take_fault(self, method: str) -> tuple[float, ApiError | None]:
        """The delay and the error (if any) this request of ``method`` meets, consumed."""
        with self.lock:
            delay = self.take_timeout()
            fault = self._take_armed(method)
            if fault is not None:
                return delay, api_error(fault.code, fault.retry_after)
            if not self._fault_drawn():
                return delay, None
            kinds: list[int | None] = list(self._fault_codes)
            if self._fault_timeout is not None:
                kinds.append(None)
            kind = self._fault_rng.choice(kinds)
            if kind is None:
                return delay + (self._fault_timeout or 0.0), None
            return delay, api_error(kind, 1 if kind == 429 else None)

    # Internals (callers hold the lock)

    def _bot(self, token: str) -> Bot:
        bot = self.bots.get(token)
        if bot is None:
            raise ValueError(f"no bot has token {token!r}")
        return bot

    def _bot_api(self, token: str) -> Bot:
        if TOKEN_FORM.fullmatch(token or "") is None:
            raise ApiError(404, "Not Found")
        bot = self.bots.get(token)
        if bot is None:
            raise ApiError(401, "Unauthorized")
        return bot

    def _chat_for(self, bot: Bot, chat_ref: str) -> Chat:
        chat: Chat | None = None
        if chat_ref.startswith("@"):
            chat = next((c for c in self.chats.values() if c.username == chat_ref[1:]), None)
        else:
            try:
                chat = self.chats.get(int(chat_ref))
            except ValueError:
                chat = None
        if chat is None or bot.id not in chat.admins:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    @staticmethod
    def _refuse_while_webhook(bot: Bot) -> None:
        if bot.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )

    def _set_status(self, channel_id: int, user_id: int, status: str) -> bool:
        with self.lock:
            channel = self.channel(channel_id)
            old = channel.status(user_id)
            if old == "kicked" and status == "member":
                raise ValueError(f"user {user_id} is banned from channel {channel_id}")
            if old == status or (status == "left" and old not in MEMBER_STATUSES):
                return False
            if status == "left":
                channel.statuses.pop(user_id, None)
            else:
                channel.statuses[user_id] = status
            user = self.user_json(user_id)
            self._emit(
                channel,
                "chat_member",
                {
                    "chat": chat_json(channel),
                    "from": user,
                    "date": _now(None),
                    "old_chat_member": _chat_member(user, old),
                    "new_chat_member": _chat_member(user, status),
                },
            )
            return True

    def _copy_of(self, channel_id: int, post: Message) -> tuple[Chat, Message]:
        group = self.chats.get(self.channel(channel_id).linked_chat_id or 0)
        if group is None or post.copy_id is None:
            raise ValueError(f"channel {channel_id} has no discussion group: no comments")
        return group, group.messages[post.copy_id]

    def _reaction_counts(self, chat: Chat, message: Message) -> dict[str, Any]:
        totals = Counter(e for emoji in message.reactions.values() for e in emoji)
        return {
            "chat": chat_json(chat),
            "message_id": message.id,
            "date": _now(None),
            "reactions": [
                {"type": _reaction(emoji), "total_count": count}
                for emoji, count in totals.most_common()
            ],
        }

    def _emit(self, chat: Chat, kind: str, payload: dict[str, Any]) -> None:
        """Queue an update for each bot that administers the chat and asked for the type."""
        for bot in self.bots.values():
            if bot.id in chat.admins and kind in bot.allowed:
                bot.updates.append({"update_id": bot.next_update_id, kind: payload})
                bot.next_update_id += 1
        self.changed.notify_all()

    def message_json(self, message: Message) -> dict[str, Any]:
        chat = self.chats[message.chat_id]
        body: dict[str, Any] = {"message_id": message.id}
        if message.from_id == TELEGRAM_SERVICE_USER["id"]:
            body["from"] = dict(TELEGRAM_SERVICE_USER)
        elif message.from_id is not None:
            body["from"] = self.user_json(message.from_id)
        if message.sender_chat_id is not None:
            body["sender_chat"] = chat_json(self.chats[message.sender_chat_id])
        body["chat"] = chat_json(chat)
        body["date"] = message.date
        if message.thread_id is not None:
            body["message_thread_id"] = message.thread_id
        if message.forward_of is not None:
            channel = self.chats[message.sender_chat_id or 0]
            original = channel.messages[message.forward_of]
            body["forward_origin"] = {
                "type": "channel",
                "chat": chat_json(channel),
                "message_id": original.id,
                "date": original.date,
            }
            body["is_automatic_forward"] = True
        if message.reply_to is not None:
            replied = chat.messages[message.reply_to]
            # Telegram does not nest: the replied-to message carries no reply_to_message.
            body["reply_to_message"] = {
                k: v for k, v in self.message_json(replied).items() if k != "reply_to_message"
            }
        if message.text:
            body["text"] = message.text
        return body

    def _stop_webhook(self, bot: Bot) -> None:
        if bot.webhook is not None:
            bot.webhook.stop.set()
            bot.webhook = None
            self.changed.notify_all()

    def _deliver_loop(self, bot: Bot, hook: Webhook) -> None:
        """POST the bot's updates one at a time, in order, until each gets a 2xx answer."""
        wait = self.webhook_retry_min
        while not hook.stop.is_set():
            with self.lock:
                while not bot.updates and not hook.stop.is_set():
                    self.changed.wait(0.5)
                if hook.stop.is_set() or bot.webhook is not hook:
                    return
                update = bot.updates[0]
                lost = self._lost_answers > 0 or self._fault_drawn()
                self._lost_answers = max(0, self._lost_answers - 1)
                self._counts["webhook"] += 1
            status, error = self._deliver(hook, update)
            with self.lock:
                if status is not None and 200 <= status < 300 and not lost:
                    if bot.updates and bot.updates[0] is update:
                        bot.updates.popleft()
                    wait = self.webhook_retry_min
                    continue
                hook.last_error_date = _now(None)
                hook.last_error_message = _delivery_error(status, error, lost)
            hook.stop.wait(wait)
            wait = min(WEBHOOK_RETRY_MAX, wait * 2)


def post_update(hook: Webhook, update: dict[str, Any]) -> tuple[int | None, str | None]:
    """POST one update as Telegram does; (HTTP status, None) or (None, the error)."""
    import requests

    headers = {"Content-Type": "application/json"}
    if hook.secret_token:
        headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
    try:
        response = requests.post(hook.url, json=update, headers=headers, timeout=WEBHOOK_TIMEOUT)
    except requests.Timeout:
        return None, "timeout"
    except requests.ConnectionError:
        return None, "Connection refused"
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return response.status_code, None


def chat_json(chat: Chat) -> dict[str, Any]:
    body: dict[str, Any] = {"id": chat.id, "title": chat.title, "type": chat.type}
    if chat.username:
        body["username"] = chat.username
    return body


def api_error(code: int, retry_after: int | None = None) -> ApiError:
    descriptions = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden: bot was kicked from the channel chat",
        404: "Not Found",
        409: "Conflict",
        429: f"Too Many Requests: retry after {retry_after}",
        500: "Internal Server Error",
        502: "Bad Gateway",
    }
    return ApiError(code, descriptions.get(code, f"Error {code}"), retry_after)


def _delivery_error(status: int | None, error: str | None, lost: bool) -> str:
    """What getWebhookInfo's last_error_message says, in Telegram's words."""
    if lost or error == "timeout":
        return "Read timeout expired"
    if status is None:
        return error or "Connection refused"
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    return f"Wrong response from the webhook: {status} {reason}".strip()


def _chat_member(user: dict[str, Any], status: str) -> dict[str, Any]:
    member: dict[str, Any] = {"user": user, "status": status}
    if status == "kicked":
        member["until_date"] = 0
    return member


def _reaction(emoji: str) -> dict[str, str]:
    return {"type": "emoji", "emoji": emoji}


def _allowed(names: list[str]) -> frozenset[str]:
    """An empty list means the default set; unknown names are ignored, as Telegram does."""
    chosen = frozenset(name for name in names if name in UPDATE_TYPES)
    return chosen or DEFAULT_ALLOWED


def _confirm(bot: Bot, offset: int | None) -> None:
    """A positive offset forgets updates before it; a negative one keeps the last -offset."""
    if not offset:
        return
    if offset > 0:
        while bot.updates and bot.updates[0]["update_id"] < offset:
            bot.updates.popleft()
        return
    while len(bot.updates) > -offset:
        bot.updates.popleft()


def _user(value: Any) -> int:
    return _positive(value, "user_id")


def _now(date: int | None) -> int:
    return int(time.time()) if date is None else int(date)
