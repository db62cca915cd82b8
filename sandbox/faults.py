"""What the states of the sandbox data APIs (VK, OK, Telegram Bot API) share: request counts,
access tokens with a per-token rate limit, and injected faults (armed errors, timeouts and a
seeded random fault rate).

A state mixes in what it needs, holds ``self.lock`` (an RLock), calls ``_reset_controls()``
whenever it forgets its data, and sets ``DEFAULT_FAULT_CODES`` (and, with tokens,
``TOKEN_KINDS``, ``DEFAULT_ACCESS_KIND``, ``self.tokens`` and ``self.rate_limit_per_second``);
each network's own error codes and semantics stay in its model and dispatch.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def positive(value: Any, name: str) -> int:
    """``value`` if it is a positive integer (not a bool); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer")
    return value


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


@dataclass(slots=True)
class Fault:
    """An armed error: the next ``remaining`` calls of ``method`` (or any) fail with ``code``
    (VK may give its own ``message``; Telegram's 429 carries ``retry_after``)."""

    code: int
    method: str | None
    remaining: int
    message: str | None = None
    retry_after: int | None = None


class RequestCounts:
    """Requests per method name and "total"."""

    lock: threading.RLock
    _counts: Counter[str]

    @property
    def request_counts(self) -> dict[str, int]:
        """Calls per method name and "total" (HTTP requests)."""
        with self.lock:
            counts = dict(self._counts)
        counts.setdefault("total", 0)
        return counts

    def reset_counts(self) -> None:
        """Start counting from zero."""
        with self.lock:
            self._counts.clear()

    def record(self, method: str, *, request: bool = True) -> None:
        """Count a call of ``method``; ``request=False`` for a call inside another request."""
        with self.lock:
            self._counts[method] += 1
            if request:
                self._counts["total"] += 1


class TokenAccess:
    """Registered access tokens and a per-token, per-second rate limit."""

    TOKEN_KINDS: frozenset[str] = frozenset()
    DEFAULT_ACCESS_KIND = ""
    lock: threading.RLock
    tokens: dict[str, str]
    rate_limit_per_second: float | None
    _windows: dict[str, deque[float]]

    def register_token(self, token: str, *, kind: str | None = None) -> None:
        """Accept this access token as one of ``TOKEN_KINDS`` (None: the network's default,
        "user" on VK, "group" on OK)."""
        kind = self.DEFAULT_ACCESS_KIND if kind is None else kind
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        if kind not in self.TOKEN_KINDS:
            raise ValueError(f"kind must be one of {sorted(self.TOKEN_KINDS)}")
        with self.lock:
            self.tokens[token] = kind

    def token_kind(self, token: str) -> str | None:
        """The kind of a registered token; None otherwise."""
        with self.lock:
            return self.tokens.get(token)

    def allow_request(self, token: str) -> bool:
        """Take a slot of the token's per-second rate limit; False when it is exhausted."""
        with self.lock:
            limit = self.rate_limit_per_second
            if limit is None:
                return True
            if limit <= 0:
                return False
            span, capacity = (1.0, int(limit)) if limit >= 1 else (1.0 / limit, 1)
            now = time.monotonic()
            window = self._windows.setdefault(token, deque())
            while window and window[0] <= now - span:
                window.popleft()
            if len(window) >= capacity:
                return False
            window.append(now)
            return True


class FaultInjection:
    """Armed errors, armed timeouts and a seeded random fault rate."""

    DEFAULT_FAULT_CODES: tuple[int, ...] = ()
    lock: threading.RLock

    def _reset_controls(self) -> None:
        """Forget counts, rate windows and faults (callers hold the lock or own the state)."""
        self._counts: Counter[str] = Counter()
        self._windows: dict[str, deque[float]] = {}
        self._faults: list[Fault] = []
        self._timeouts: list[list[float]] = []
        self._fault_rate = 0.0
        self._fault_rng = random.Random(0)
        self._fault_codes: tuple[int, ...] = self.DEFAULT_FAULT_CODES
        self._fault_timeout: float | None = None

    def inject_error(self, code: int, *, method: str | None = None, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` (None: of any data method) fail."""
        self._arm_error(positive(code, "code"), method, times)

    def _arm_error(
        self,
        code: int,
        method: str | None,
        times: int,
        *,
        check_method: bool = True,
        message: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        times = positive(times, "times")
        if check_method and method is not None and (not isinstance(method, str) or not method):
            raise ValueError("method must be a method name or None")
        with self.lock:
            self._faults.append(Fault(code, method, times, message, retry_after))

    def inject_timeout(self, seconds: float, times: int = 1) -> None:
        """Make the next ``times`` requests sleep ``seconds`` before answering."""
        if not _number(seconds) or seconds < 0:
            raise ValueError("seconds must be a non-negative number")
        times = positive(times, "times")
        with self.lock:
            self._timeouts.append([float(seconds), float(times)])

    def set_fault_rate(
        self, rate: float, *, seed: int = 0, codes: Sequence[int] | None = None
    ) -> None:
        """Fail about ``rate`` of the requests with a random one of ``codes`` (default: the
        network's ``DEFAULT_FAULT_CODES``); 0 stops."""
        self._arm_fault_rate(rate, seed, self.DEFAULT_FAULT_CODES if codes is None else codes)

    def _arm_fault_rate(
        self,
        rate: float,
        seed: int,
        codes: Sequence[int],
        *,
        timeout: float | None = None,
        empty: str = "codes must not be empty",
    ) -> None:
        if not _number(rate) or not 0 <= rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        codes = tuple(positive(code, "codes") for code in codes)
        if not codes and timeout is None:
            raise ValueError(empty)
        if timeout is not None and (not isinstance(timeout, int | float) or timeout < 0):
            raise ValueError("timeout must be a non-negative number")
        with self.lock:
            self._fault_rate = float(rate)
            self._fault_rng = random.Random(seed)
            self._fault_codes = codes
            self._fault_timeout = None if timeout is None else float(timeout)

    def clear_faults(self) -> None:
        """Drop armed errors, timeouts and the random fault rate."""
        with self.lock:
            self._faults.clear()
            self._timeouts.clear()
            self._fault_rate = 0.0

    def take_timeout(self) -> float:
        """Seconds the current request must sleep (consumes one armed timeout)."""
        with self.lock:
            if not self._timeouts:
                return 0.0
            armed = self._timeouts[0]
            armed[1] -= 1
            if armed[1] <= 0:
                self._timeouts.pop(0)
            return armed[0]

    def _take_armed(self, method: str, *, wildcard: bool = True) -> Fault | None:
        """The armed error for this call, consumed; ``wildcard`` lets method=None ones match."""
        with self.lock:
            for fault in self._faults:
                if fault.method == method or (wildcard and fault.method is None):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
            return None

    def _fault_drawn(self) -> bool:
        """Whether the random fault rate hits this request (callers hold the lock)."""
        return self._fault_rate > 0 and self._fault_rng.random() < self._fault_rate

    def random_fault(self) -> int | None:
        """An error code for this request if the random fault rate picks it."""
        with self.lock:
            return self._fault_rng.choice(self._fault_codes) if self._fault_drawn() else None
