"""Odnoklassniki: members, recent topics, their "Klass" givers and comments of a group.

What OK needs: the application's public key (OK_APPLICATION_KEY) and secret key
(OK_CLIENT_SECRET, server only), and the group's access token (the tracked group's token),
with which every call is signed: sig = md5(sorted "k=v" pairs + md5(token + secret key)).
OK counts calls per method and day: users.getCallsLeft is asked first, and a list whose
pages the quota cannot cover is not started (it stays unread, with a line saying so).

Calls: group.getCounters (how many members, to plan the pages), group.getMembers,
mediatopic.getTopics, discussions.getDiscussionLikes, discussions.getComments; lists page by
anchor. OK does not say who reshared a topic: reposts are untracked. Errors 1, 2, 8 and 9999
and timeouts are retried with backoff; 10, 11 and 300 leave that one list unread (its
snapshot is kept, nothing is invented) and the run goes on; any other error stops the run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from app.collect.base import (
    Activity,
    Collector,
    CollectorError,
    GroupReading,
    GroupTarget,
    Pacer,
    PostActivity,
    Progress,
)
from app.providers.ok import ok_signature

log = logging.getLogger(__name__)

MEMBERS = "group.getMembers"
COUNTERS = "group.getCounters"
TOPICS = "mediatopic.getTopics"
LIKES = "discussions.getDiscussionLikes"
COMMENTS = "discussions.getComments"
CALLS_LEFT = "users.getCallsLeft"
PAGE = {MEMBERS: 1000, TOPICS: 100, LIKES: 100, COMMENTS: 100}
RETRYABLE = {1, 2, 8, 9999}
SKIPPABLE = {10, 11, 300}
UNTRACKED = frozenset({"repost"})


class _Skipped(Exception):
    """An error that leaves one list unread."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class _Quota:
    """Calls left today per method (None: OK set no limit) and what this cycle has taken."""

    left: dict[str, int | None]

    def take(self, method: str, calls: int) -> bool:
        left = self.left.get(method)
        if left is None:
            return True
        if calls > left:
            return False
        self.left[method] = left - calls
        return True

    def describe(self, method: str) -> str:
        return f"{self.left.get(method)} calls left"


class OKCollector(Collector):
    network = "ok"

    def __init__(
        self,
        http: requests.Session,
        *,
        api_url: str,
        application_key: str | None,
        secret_key: str | None,
        timeout: float,
        pacer: Pacer,
    ) -> None:
        self.http = http
        self.api_url = api_url.rstrip("/")
        self.application_key = application_key or ""
        self.secret_key = secret_key or ""
        self.timeout = timeout
        self.pacer = pacer
        self._token = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any], http: requests.Session) -> OKCollector:
        return cls(
            http,
            api_url=config["OK_API_URL"],
            application_key=config.get("OK_APPLICATION_KEY"),
            secret_key=config.get("OK_CLIENT_SECRET"),
            timeout=config["HTTP_TIMEOUT_SECONDS"],
            pacer=Pacer.from_config(config, "OK"),
        )

    def read(self, target: GroupTarget, progress: Progress) -> GroupReading:
        reading = GroupReading(members=None, posts=[])
        self._token = target.token
        try:
            if not (self.application_key and self.secret_key):
                raise CollectorError(
                    "Odnoklassniki is not configured: OK_APPLICATION_KEY and "
                    "OK_CLIENT_SECRET are needed to sign calls"
                )
            return self._read(target, progress, reading)
        except CollectorError as exc:
            exc.reading = reading  # the run still records the requests it made
            raise

    def _read(self, target: GroupTarget, progress: Progress, reading: GroupReading) -> GroupReading:
        quota = _Quota(self._calls_left(reading))
        scan = max(1, min(target.posts_to_scan, PAGE[TOPICS]))
        if not quota.take(TOPICS, 1):
            raise CollectorError(f"OK quota of {TOPICS} is spent for today: nothing can be read")
        try:
            feed = self._call(TOPICS, {"gid": target.group_id, "count": scan}, reading)
        except _Skipped as exc:
            raise CollectorError(f"{TOPICS} failed with OK error {exc.code}") from None
        topics = list(feed.get("media_topics") or [])[:scan]
        progress("reading", 5)
        reading.members = self._members(target.group_id, quota, reading)
        for done, topic in enumerate(topics, start=1):
            reading.posts.append(self._topic(topic, quota, reading))
            progress("reading", 5 + int(50 * done / len(topics)))
        return reading

    def _members(self, group_id: str, quota: _Quota, reading: GroupReading) -> set[str] | None:
        # The member count plans the pages, so a quota that cannot cover them is not started.
        if not quota.take(COUNTERS, 1):
            reading.errors.append(f"{COUNTERS}: OK quota spent for today; members not read")
            return None
        try:
            body = self._call(COUNTERS, {"group_id": group_id, "counterTypes": "members"}, reading)
        except _Skipped as exc:
            reading.errors.append(f"{COUNTERS} for group {group_id}: OK error {exc.code}")
            return None
        count = int((body.get("counters") or {}).get("members", 0))
        pages = count // PAGE[MEMBERS] + 1
        if not quota.take(MEMBERS, pages):
            reading.errors.append(
                f"{MEMBERS}: OK quota has {quota.describe(MEMBERS)}, {count} members need "
                f"{pages}; members not read this cycle"
            )
            return None
        items = self._list(MEMBERS, {"uid": group_id}, f"group {group_id}", reading)
        return None if items is None else {subject for subject, _ in items}

    def _topic(self, topic: dict[str, Any], quota: _Quota, reading: GroupReading) -> PostActivity:
        topic_id = str(topic["id"])
        created = topic.get("created_ms")
        activity = PostActivity(
            post_id=topic_id,
            published_at=datetime.fromtimestamp(int(created) / 1000, UTC) if created else None,
            untracked=UNTRACKED,
        )
        params = {"discussionId": topic_id, "discussionType": "GROUP_TOPIC"}
        counts = {
            LIKES: int((topic.get("like_summary") or {}).get("count", 0)),
            COMMENTS: int((topic.get("discussion_summary") or {}).get("comments_count", 0)),
        }
        for method, attribute in ((LIKES, "likes"), (COMMENTS, "comments")):
            items: Activity | None = set()
            if counts[method]:  # the feed says the list is empty: no call needed
                # A likes list has no has_more: a short (or empty) page ends it.
                pages = counts[method] // PAGE[method] + 1
                if quota.take(method, pages):
                    items = self._list(method, params, f"topic {topic_id}", reading)
                else:
                    reading.errors.append(
                        f"{method} for topic {topic_id}: OK quota has "
                        f"{quota.describe(method)}, {pages} needed; not read this cycle"
                    )
                    items = None
            setattr(activity, attribute, items)
        return activity

    def _list(
        self, method: str, params: dict[str, str], what: str, reading: GroupReading
    ) -> Activity | None:
        """Every page of one list by anchor; None (with an error line) when it cannot be read
        whole.

        Members and comments page by an anchor naming the last id read, not an offset: a
        change between two pages cannot shift items into pages already read, so each item is
        seen as it was when its page was read and nothing is doubled or skipped; such a list
        is safe to use. Likers are ordered by when they liked: a Klass taken back and given
        again moves in front of the pages read, so a page OK marks "inconsistent" makes the
        list unread this cycle (its snapshot stays) and it is read again next time.
        """
        items: Activity = set()
        anchor = ""
        while True:
            page_params = {**params, "count": str(PAGE[method])}
            if anchor:
                page_params["anchor"] = anchor
            try:
                body = self._call(method, page_params, reading)
            except _Skipped as exc:
                reading.errors.append(f"{method} for {what}: OK error {exc.code}")
                return None
            if body.get("inconsistent"):
                reading.errors.append(f"{method} for {what}: changed while being read")
                return None
            page = self._page_items(method, body)
            reading.items_read += len(page)
            items |= page
            anchor = str(body.get("anchor") or "")
            if not anchor or not self._more(method, body):
                return items

    @staticmethod
    def _page_items(method: str, body: dict[str, Any]) -> Activity:
        if method == MEMBERS:
            return {(str(m["userId"]), "") for m in body.get("members") or []}
        if method == LIKES:
            return {(str(u["uid"]), "") for u in body.get("users") or []}
        # By the comment's own id, so a deleted comment disappears; removed ones are skipped.
        return {
            (str(c["author_id"]), str(c["id"]))
            for c in body.get("comments") or []
            if not c.get("deleted") and c.get("author_id")
        }

    @staticmethod
    def _more(method: str, body: dict[str, Any]) -> bool:
        if method == LIKES:
            return len(body.get("users") or []) >= PAGE[LIKES]
        return bool(body.get("has_more"))

    def _calls_left(self, reading: GroupReading) -> dict[str, int | None]:
        methods = [COUNTERS, MEMBERS, TOPICS, LIKES, COMMENTS]
        try:
            answer = self._call(CALLS_LEFT, {"methods": ",".join(methods)}, reading)
        except _Skipped as exc:
            raise CollectorError(f"{CALLS_LEFT} failed with OK error {exc.code}") from None
        left: dict[str, int | None] = dict.fromkeys(methods)
        for entry in answer if isinstance(answer, list) else []:
            calls = int(entry.get("callsLeft", -1))
            if not entry.get("available", True):
                calls = 0
            left[str(entry.get("name"))] = None if calls < 0 else calls
        return left

    def _call(self, method: str, params: dict[str, Any], reading: GroupReading) -> Any:
        """One signed call, retried on busy or flooded answers and network failures."""
        signed = {
            "application_key": self.application_key,
            "format": "json",
            "method": method,
            **{key: str(value) for key, value in params.items()},
        }
        signed["sig"] = ok_signature(signed, self._token, self.secret_key)
        for attempt in range(self.pacer.max_retries + 1):
            self.pacer.pace()
            reading.requests += 1
            try:
                response = self.http.post(
                    f"{self.api_url}/fb.do",
                    data={**signed, "access_token": self._token},
                    timeout=self.timeout,
                )
                body = response.json()
            except (requests.RequestException, ValueError) as exc:
                reading.retries += 1
                log.info("OK %s: %s, retrying", method, type(exc).__name__)
                self.pacer.back_off(attempt)
                continue
            if not (isinstance(body, dict) and body.get("error_code")):
                return body
            code = int(body["error_code"])
            if code in RETRYABLE:
                reading.retries += 1
                log.info("OK %s: error %s, retrying", method, code)
                self.pacer.back_off(attempt)
                continue
            if code in SKIPPABLE:
                raise _Skipped(code, str(body.get("error_msg", "")))
            raise CollectorError(f"OK refused {method}: error {code} {body.get('error_msg', '')}")
        raise CollectorError(
            f"OK {method} kept failing after {self.pacer.max_retries + 1} attempts"
        )
