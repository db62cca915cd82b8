"""A cache of a provider's JSON Web Key Set, refetched on expiry or on an unknown key id."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import jwt
import requests

log = logging.getLogger(__name__)


class JWKSError(Exception):
    pass


class JWKSCache:
    def __init__(
        self,
        url: str,
        http: requests.Session,
        *,
        timeout: float,
        ttl_seconds: float,
        min_refetch_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.http = http
        self.timeout = timeout
        self.ttl_seconds = ttl_seconds
        self.min_refetch_seconds = min_refetch_seconds
        self.clock = clock
        self.fetch_count = 0
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK:
        """The key with this id; an unknown id triggers one refetch (keys rotate), rate-limited."""
        with self._lock:
            now = self.clock()
            stale = self._fetched_at is None or now - self._fetched_at > self.ttl_seconds
            may_refetch = (
                self._fetched_at is None or now - self._fetched_at >= self.min_refetch_seconds
            )
            if stale or (kid not in self._keys and may_refetch):
                self._fetch(now)
            try:
                return self._keys[kid]
            except KeyError:
                raise JWKSError(f"no published key has the id {kid!r}") from None

    def _fetch(self, now: float) -> None:
        try:
            response = self.http.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            key_set = jwt.PyJWKSet.from_dict(response.json())
        except (requests.RequestException, ValueError, jwt.PyJWKSetError) as exc:
            if self._keys:
                log.warning("JWKS refetch from %s failed, keeping cached keys: %s", self.url, exc)
                return
            raise JWKSError(f"the key set at {self.url} could not be read") from exc
        self.fetch_count += 1
        self._keys = {key.key_id: key for key in key_set.keys if key.key_id}
        self._fetched_at = now
