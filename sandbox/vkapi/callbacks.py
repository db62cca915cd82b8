"""VK Callback API of the sandbox: community events POSTed to each group's configured server.

Like VK's community settings, a server is confirmed first (it must answer the confirmation
string), then every change made through ``VkApiState`` is queued as an event and POSTed as
JSON. The server must answer HTTP 200 with the body ``ok``; anything else is retried, up to
``MAX_ATTEMPTS`` attempts. Seeded faults drop, duplicate or delay events so a subscriber can be
tested against VK's at-least-once, unordered delivery.

In ``auto`` mode a daemon thread delivers as soon as events are queued; in ``manual`` mode
nothing is sent until ``deliver()`` runs, in the caller's thread. The hub only ever posts to the
URLs it is given.
"""

from __future__ import annotations

import http.client
import json
import random
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

API_VERSION = "5.199"
MAX_ATTEMPTS = 5
MODES = frozenset({"auto", "manual"})
DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRY_DELAY = 1.0
LOG_SIZE = 100
ANSWER_PREVIEW = 200
# How long a delayed event is held back: later deliver() calls (manual) or seconds (auto).
DELAY_CALLS = (1, 5)
DELAY_SECONDS = (0.2, 2.0)
STAT_NAMES = ("queued", "delivered", "dropped", "duplicated", "delayed", "failed", "given_up")


@dataclass(frozen=True, slots=True)
class Server:
    """A group's confirmed callback server."""

    group_id: int
    url: str
    secret: str
    confirmation: str


@dataclass(slots=True)
class Entry:
    """One queued POST of an event (a duplicate is a second entry with the same event)."""

    seq: int
    group_id: int
    event: dict[str, Any]
    hold_calls: int = 0
    not_before: float = 0.0
    attempts: int = 0
    copy: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """What a server answered to one POST: HTTP status (None without one) and body or error."""

    status: int | None
    text: str

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.text == "ok"


@dataclass(slots=True)
class Faults:
    """Probabilities of dropping, duplicating and delaying an event, with their random source."""

    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))


def post_json(url: str, body: dict[str, Any], timeout: float) -> Answer:
    """POST ``body`` as JSON to ``url``; never raises (a network error becomes the answer)."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    data = json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "VKCallbackAPI"}
    connection: http.client.HTTPConnection | None = None
    try:
        # http.client rather than urllib: no proxies from the environment and no redirects,
        # so nothing but the given URL is ever contacted.
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
        connection.request("POST", path, body=data, headers=headers)
        response = connection.getresponse()
        text = response.read(64 * 1024).decode("utf-8", errors="replace")
        return Answer(response.status, text)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}")
    finally:
        if connection is not None:
            connection.close()


def group_join(user_id: int) -> dict[str, Any]:
    """The object of group_join (the sandbox has no requests or invitations)."""
    return {"user_id": user_id, "join_type": "join"}


def group_leave(user_id: int) -> dict[str, Any]:
    """The object of group_leave: the user left by themselves."""
    return {"user_id": user_id, "self": 1}


def like_object(group_id: int, post_id: int, liker_id: int) -> dict[str, Any]:
    """The object of like_add and like_remove for a post on the group's wall."""
    return {
        "liker_id": liker_id,
        "object_type": "post",
        "object_owner_id": -group_id,
        "object_id": post_id,
        "post_id": 0,
        "thread_reply_id": 0,
    }


def comment_object(
    group_id: int, post_id: int, comment_id: int, from_id: int, date: int, text: str
) -> dict[str, Any]:
    """The comment of wall_reply_new (VK adds where the comment is to the comment object)."""
    return {
        "id": comment_id,
        "from_id": from_id,
        "date": date,
        "text": text,
        "post_id": post_id,
        "post_owner_id": -group_id,
        "owner_id": -group_id,
        "parents_stack": [],
        "thread": {"count": 0},
    }


def reply_delete_object(
    group_id: int, post_id: int, comment_id: int, deleter_id: int
) -> dict[str, Any]:
    """The object of wall_reply_delete; VK has sent the deleter as user_id or deleter_id."""
    return {
        "owner_id": -group_id,
        "id": comment_id,
        "deleter_id": deleter_id,
        "user_id": deleter_id,
        "post_id": post_id,
    }


def check_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL, else ValueError."""
    if not isinstance(url, str):
        raise ValueError("url must be a string")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url must be an absolute http(s) URL, got {url!r}")
    return url


class CallbackHub:
    """Callback servers of the groups, the queue of events and its delivery.

    Thread-safe. ``VkApiState`` calls ``emit`` while holding its own lock; the hub never takes
    the model's lock and never posts while holding its own, so delivery is outside both.
    """

    def __init__(
        self,
        *,
        mode: str = "auto",
        timeout: float = DEFAULT_TIMEOUT,
        retry_delay: float = DEFAULT_RETRY_DELAY,
    ) -> None:
        self._check_mode(mode)
        self.timeout = timeout
        self.retry_delay = retry_delay
        self._mode = mode
        self._cond = threading.Condition(threading.Lock())
        self._worker: threading.Thread | None = None
        self._in_flight = 0
        self._reset()

    def _reset(self) -> None:
        self._servers: dict[int, Server] = {}
        self._queue: list[Entry] = []
        self._seq = 0
        self._faults = Faults()
        self._stats: Counter[str] = Counter()
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self._acknowledged: list[dict[str, Any]] = []

    def reset(self) -> None:
        """Forget servers, queued events, faults, counters and the log (the mode stays)."""
        with self._cond:
            self._reset()
            self._cond.notify_all()

    # Servers

    def set_server(self, group_id: int, url: str, *, secret: str, confirmation: str) -> None:
        """Confirm ``url`` as the group's server, then make it active; ValueError if the
        server does not answer exactly ``confirmation`` (it stays unset then)."""
        if isinstance(group_id, bool) or not isinstance(group_id, int) or group_id <= 0:
            raise ValueError("group_id must be a positive integer")
        check_url(url)
        if not isinstance(secret, str):
            raise ValueError("secret must be a string")
        if not isinstance(confirmation, str) or not confirmation:
            raise ValueError("confirmation must be a non-empty string")
        answer = post_json(url, {"type": "confirmation", "group_id": group_id}, self.timeout)
        confirmed = answer.status == 200 and answer.text == confirmation
        with self._cond:
            self._record(group_id, "confirmation", "", 1, answer, ok=confirmed)
            if confirmed:
                self._servers[group_id] = Server(group_id, url, secret, confirmation)
        if not confirmed:
            raise ValueError(
                f"confirmation failed: expected {confirmation!r}, "
                f"got HTTP {answer.status} {_preview(answer.text)!r}"
            )

    def remove_server(self, group_id: int) -> bool:
        """Stop sending the group's events (queued ones are discarded); False if none was set."""
        with self._cond:
            removed = self._servers.pop(group_id, None) is not None
            self._queue = [entry for entry in self._queue if entry.group_id != group_id]
            self._cond.notify_all()
            return removed

    def server(self, group_id: int) -> Server | None:
        """The group's active server, if any."""
        with self._cond:
            return self._servers.get(group_id)

    def servers(self) -> list[Server]:
        """All active servers, by group id."""
        with self._cond:
            return [self._servers[group_id] for group_id in sorted(self._servers)]

    # Events

    def emit(self, group_id: int, event_type: str, obj: dict[str, Any]) -> str | None:
        """Queue an event for the group's server; its event_id, or None without a server."""
        with self._cond:
            server = self._servers.get(group_id)
            if server is None:
                return None
            event: dict[str, Any] = {
                "type": event_type,
                "object": obj,
                "group_id": group_id,
                "event_id": secrets.token_hex(20),
                "v": API_VERSION,
            }
            # VK sends the secret key only when the community has one.
            if server.secret:
                event["secret"] = server.secret
            self._stats["queued"] += 1
            self._enqueue(group_id, event)
            self._cond.notify_all()
            self._start_worker()
            return event["event_id"]

    def _enqueue(self, group_id: int, event: dict[str, Any]) -> None:
        faults = self._faults
        # A fixed number of draws per event keeps the fault pattern of a seed reproducible
        # whatever the outcomes and the mode.
        rng = faults.rng
        drop, duplicate, delay = rng.random(), rng.random(), rng.random()
        hold_calls, hold_seconds = rng.randint(*DELAY_CALLS), rng.uniform(*DELAY_SECONDS)
        if drop < faults.drop:
            self._stats["dropped"] += 1
            return
        entry = Entry(self._next_seq(), group_id, event)
        if delay < faults.delay:
            self._stats["delayed"] += 1
            entry.hold_calls = hold_calls
            entry.not_before = time.monotonic() + hold_seconds
        self._queue.append(entry)
        if duplicate < faults.duplicate:
            self._stats["duplicated"] += 1
            self._queue.append(Entry(self._next_seq(), group_id, event, copy=True))

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # Faults

    def set_faults(
        self, *, drop: float = 0.0, duplicate: float = 0.0, delay: float = 0.0, seed: int = 0
    ) -> None:
        """Drop, duplicate or delay about these shares of the events, reproducibly for ``seed``."""
        values = {"drop": drop, "duplicate": duplicate, "delay": delay}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError("seed must be an integer")
        with self._cond:
            self._faults = Faults(float(drop), float(duplicate), float(delay), random.Random(seed))

    def clear_faults(self) -> None:
        """Deliver every event once again (held-back events stay held)."""
        with self._cond:
            self._faults = Faults()

    def faults(self) -> dict[str, float]:
        """The current fault shares."""
        with self._cond:
            faults = self._faults
            return {"drop": faults.drop, "duplicate": faults.duplicate, "delay": faults.delay}

    # Delivery

    @property
    def mode(self) -> str:
        """ "auto" (a thread delivers) or "manual" (``deliver()`` does)."""
        return self._mode

    def set_mode(self, mode: str) -> None:
        """Switch between "auto" and "manual"; queued events stay queued."""
        self._check_mode(mode)
        with self._cond:
            self._mode = mode
            self._cond.notify_all()
            self._start_worker()

    def deliver(self, limit: int | None = None) -> int:
        """Manual mode: try each event due (queue order, at most ``limit``) once, in this
        thread; returns how many POSTs the server acknowledged with "ok"."""
        if self._mode != "manual":
            raise RuntimeError("deliver() is for manual mode; auto mode delivers by itself")
        with self._cond:
            due = []
            for entry in self._queue:
                if entry.hold_calls > 0:
                    entry.hold_calls -= 1
                elif limit is None or len(due) < limit:
                    due.append(entry)
            for entry in due:
                self._queue.remove(entry)
            self._in_flight += len(due)
        acknowledged = 0
        for entry in due:
            acknowledged += self._attempt(entry)
        return acknowledged

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no event is queued or being sent; False if ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def take_delivered(self) -> list[dict[str, Any]]:
        """The events the server answered "ok" to since the last call, in that order (a
        duplicate twice): what a test script compares the server's records with."""
        with self._cond:
            taken, self._acknowledged = self._acknowledged, []
            return taken

    def pending(self) -> int:
        """POSTs queued (held-back and retried ones included)."""
        with self._cond:
            return len(self._queue)

    def _attempt(self, entry: Entry) -> int:
        """POST one entry (caller holds no lock); requeue it on failure. 1 if acknowledged."""
        server = self.server(entry.group_id)
        answer = post_json(server.url, entry.event, self.timeout) if server else None
        with self._cond:
            self._in_flight -= 1
            if server is not None and answer is not None:
                self._settle(entry, answer)
            self._cond.notify_all()
        return int(answer is not None and answer.ok)

    def _settle(self, entry: Entry, answer: Answer) -> None:
        entry.attempts += 1
        event = entry.event
        self._record(entry.group_id, event["type"], event["event_id"], entry.attempts, answer)
        if answer.ok:
            self._stats["delivered"] += 1
            self._acknowledged.append(event)
            return
        self._stats["failed"] += 1
        if entry.attempts >= MAX_ATTEMPTS:
            self._stats["given_up"] += 1
            return
        # Auto mode waits longer after each failure; manual mode retries on the next call.
        entry.not_before = time.monotonic() + self.retry_delay * entry.attempts
        # Back in its place by sequence, so a retried event keeps its order among the rest.
        index = next((i for i, e in enumerate(self._queue) if e.seq > entry.seq), None)
        self._queue.insert(len(self._queue) if index is None else index, entry)

    def _start_worker(self) -> None:
        """Start the delivery thread if auto mode has work and none runs (caller holds lock)."""
        if self._mode != "auto" or not self._queue:
            return
        if self._worker is not None and self._worker.is_alive():
            return
        self._worker = threading.Thread(target=self._run, name="vk-callbacks", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                entry = self._next_due()
                if entry is None:
                    # The thread ends when there is nothing left; emit() starts a new one.
                    self._worker = None
                    return
                self._in_flight += 1
            self._attempt(entry)

    def _next_due(self) -> Entry | None:
        """Auto mode: wait for the first entry due and take it; None when the queue is empty
        or the mode changed (caller holds the lock)."""
        while self._mode == "auto" and self._queue:
            now = time.monotonic()
            for entry in self._queue:
                if entry.not_before <= now:
                    self._queue.remove(entry)
                    return entry
            self._cond.wait(min(entry.not_before for entry in self._queue) - now)
        return None

    # Counters and log

    def stats(self) -> dict[str, int]:
        """Counters: queued, delivered, dropped, duplicated, delayed, failed (attempts),
        given_up (events abandoned after MAX_ATTEMPTS), pending."""
        with self._cond:
            counts = {name: self._stats[name] for name in STAT_NAMES}
            counts["pending"] = len(self._queue)
            return counts

    def log(self, group_id: int | None = None, limit: int = 10) -> list[dict[str, Any]]:
        """The last POSTs (newest first), of one group or all: time, group_id, type,
        event_id, attempt, status, answer, ok."""
        with self._cond:
            rows = [row for row in reversed(self._log) if group_id in (None, row["group_id"])]
            return [dict(row) for row in rows[:limit]]

    def _record(
        self,
        group_id: int,
        event_type: str,
        event_id: str,
        attempt: int,
        answer: Answer,
        *,
        ok: bool | None = None,
    ) -> None:
        self._log.append(
            {
                "time": time.time(),
                "group_id": group_id,
                "type": event_type,
                "event_id": event_id,
                "attempt": attempt,
                "status": answer.status,
                "answer": _preview(answer.text),
                "ok": answer.ok if ok is None else ok,
            }
        )

    @staticmethod
    def _check_mode(mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}")


def _preview(text: str) -> str:
    return text if len(text) <= ANSWER_PREVIEW else text[:ANSWER_PREVIEW] + "…"
