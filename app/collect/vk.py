"""VK (API 5.199): members, recent posts, likes, reposts and comments of a community.

What VK needs: a user or service access token (wall.get, likes.getList and wall.getComments
refuse community tokens), about 3 requests a second. Calls are batched through `execute`, up
to 25 API calls in one request; pages are planned from the counts wall.get and the first pages
give, so a cycle makes close to the fewest requests the page limits allow. Errors 6, 9, 10 and
29 and timeouts are retried with backoff; 15, 18, 30 and 212 leave that one list unread (its
snapshot is kept, nothing is invented) and the run goes on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from app.collect.base import (
    Collector,
    CollectorError,
    GroupReading,
    GroupTarget,
    Pacer,
    PostActivity,
    Progress,
)

log = logging.getLogger(__name__)

EXECUTE_LIMIT = 25
PAGE = {"groups.getMembers": 1000, "likes.getList": 1000, "wall.getComments": 100, "wall.get": 100}
RETRYABLE = {6, 9, 10, 29}
SKIPPABLE = {15, 18, 30, 212}


@dataclass
class _Call:
    """One API call inside an execute, and the list it fills."""

    method: str
    params: dict[str, Any]
    resource: tuple[str, str]  # ("members", "") or (post id, like|repost|comment)
    result: Any = None
    error: int | None = None


@dataclass
class _Resource:
    items: set[tuple[str, str]] = field(default_factory=set)
    count: int = 0
    pages: int = 0
    failed: str | None = None


class VKCollector(Collector):
    network = "vk"

    def __init__(
        self,
        http: requests.Session,
        *,
        api_url: str,
        version: str,
        timeout: float,
        pacer: Pacer,
    ) -> None:
        self.http = http
        self.api_url = api_url.rstrip("/")
        self.version = version
        self.timeout = timeout
        self.pacer = pacer
        self._token = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any], http: requests.Session) -> VKCollector:
        return cls(
            http,
            api_url=config["VK_API_URL"],
            version=config["VK_API_VERSION"],
            timeout=config["HTTP_TIMEOUT_SECONDS"],
            pacer=Pacer.from_config(config, "VK"),
        )

    def read(self, target: GroupTarget, progress: Progress) -> GroupReading:
        reading = GroupReading(members=None, posts=[])
        self._token = target.token
        try:
            return self._read(target, progress, reading)
        except CollectorError as exc:
            exc.reading = reading  # the run still records the requests it made
            raise

    def _read(self, target: GroupTarget, progress: Progress, reading: GroupReading) -> GroupReading:
        owner = f"-{target.group_id}"
        scan = max(1, min(target.posts_to_scan, PAGE["wall.get"]))
        resources: dict[tuple[str, str], _Resource] = {("members", ""): _Resource()}
        members_params = {"group_id": target.group_id, "sort": "id_asc"}
        first = [
            _Call("wall.get", {"owner_id": owner, "count": scan, "filter": "owner"}, ("wall", "")),
            self._page_call("groups.getMembers", members_params, ("members", ""), 0),
        ]
        self._run(first, reading)
        wall = first[0]
        if wall.error is not None or not isinstance(wall.result, dict):
            raise CollectorError(f"wall.get failed with VK error {wall.error}")
        posts = wall.result.get("items", [])[:scan]
        self._absorb(first[1], resources, reading)
        # Every page is planned from the counts already known (members from the first page,
        # activity from wall.get), so the second round is as full as execute allows.
        calls = self._pages(
            "groups.getMembers",
            members_params,
            ("members", ""),
            PAGE["groups.getMembers"],
            resources[("members", "")].count,
        )
        for post in posts:
            post_id = str(post["id"])
            for kind, counted in (
                ("like", "likes"),
                ("repost", "reposts"),
                ("comment", "comments"),
            ):
                resources[(post_id, kind)] = _Resource()
                count = int((post.get(counted) or {}).get("count", 0))
                method, params, key = self._list_call(owner, post_id, kind)
                calls += self._pages(method, params, key, 0, count)
        planned = len(calls) + len(first)
        done = len(first)

        def on_round(count: int, more: int) -> None:
            nonlocal planned, done
            done += count
            planned += more
            progress("reading", int(55 * done / max(planned, done + 1)))

        self._drain(calls, resources, reading, on_round)
        members = resources[("members", "")]
        reading.members = None if members.failed else {s for s, _ in members.items}
        for post in posts:
            post_id = str(post["id"])
            date = post.get("date")
            activity = PostActivity(
                post_id=post_id,
                published_at=datetime.fromtimestamp(int(date), UTC) if date else None,
            )
            for kind, attribute in (
                ("like", "likes"),
                ("repost", "reposts"),
                ("comment", "comments"),
            ):
                resource = resources[(post_id, kind)]
                setattr(activity, attribute, None if resource.failed else resource.items)
            reading.posts.append(activity)
        return reading

    def _drain(
        self,
        calls: list[_Call],
        resources: dict[tuple[str, str], _Resource],
        reading: GroupReading,
        on_round: Callable[[int, int], None] = lambda done, more: None,
    ) -> None:
        """Run planned page calls, then the pages lists turned out to have beyond their
        announced count, until every list is read or has failed."""
        while calls:
            self._run(calls, reading)
            covered: dict[tuple[str, str], _Call] = {}
            for call in calls:
                self._absorb(call, resources, reading)
                last = covered.get(call.resource)
                if last is None or call.params["offset"] > last.params["offset"]:
                    covered[call.resource] = call
            # A list longer than its announced count (deleted comments keep their place in
            # VK's pages) gets its remaining pages in one more round.
            follow_up: list[_Call] = []
            for key, last in covered.items():
                resource = resources[key]
                end = last.params["offset"] + last.params["count"]
                if resource.failed is None and resource.count > end:
                    params = {k: v for k, v in last.params.items() if k not in ("offset", "count")}
                    follow_up += self._pages(last.method, params, key, end, resource.count)
            on_round(len(calls), len(follow_up))
            calls = follow_up

    def read_list(self, target: GroupTarget, post_id: str, kind: str) -> set | None:
        """One post's likes, reposts or comments as they are now, all pages; None when VK
        would not say (a callback is then left for the next polling cycle to settle)."""
        self._token = target.token
        reading = GroupReading(members=None, posts=[])
        method, params, key = self._list_call(f"-{target.group_id}", post_id, kind)
        resources: dict[tuple[str, str], _Resource] = {key: _Resource()}
        try:
            self._drain([self._page_call(method, params, key, 0)], resources, reading)
        except CollectorError as exc:
            log.warning("VK check of the %s list of post %s failed: %s", kind, post_id, exc)
            return None
        resource = resources[key]
        return None if resource.failed else resource.items

    def is_member(self, target: GroupTarget, subject: str) -> bool | None:
        """Whether the user is in the group now; None when VK would not say."""
        self._token = target.token
        reading = GroupReading(members=None, posts=[])
        try:
            body = self._request(
                "groups.isMember", {"group_id": target.group_id, "user_id": subject}, reading
            )
        except CollectorError as exc:
            log.warning("VK membership check of %s failed: %s", subject, exc)
            return None
        answer = body.get("response")
        return bool(answer) if isinstance(answer, int) else None

    @staticmethod
    def _list_call(owner: str, post_id: str, kind: str) -> tuple[str, dict, tuple[str, str]]:
        if kind == "comment":
            return (
                "wall.getComments",
                {"owner_id": owner, "post_id": post_id, "sort": "asc"},
                (post_id, kind),
            )
        params = {
            "type": "post",
            "owner_id": owner,
            "item_id": post_id,
            "filter": "likes" if kind == "like" else "copies",
        }
        return "likes.getList", params, (post_id, kind)

    @staticmethod
    def _page_call(method: str, params: dict, resource, offset: int) -> _Call:
        return _Call(method, {**params, "offset": offset, "count": PAGE[method]}, resource)

    def _pages(self, method: str, params: dict, key, start: int, total: int) -> list[_Call]:
        """The pages covering offsets [start, total) of a list."""
        return [
            self._page_call(method, params, key, offset)
            for offset in range(start, total, PAGE[method])
        ]

    def _absorb(self, call: _Call, resources: dict, reading: GroupReading) -> None:
        resource = resources.setdefault(call.resource, _Resource())
        if call.error is not None:
            resource.failed = f"VK error {call.error}"
            reading.errors.append(
                f"{call.method} for {call.resource[0]} {call.resource[1]}: VK error {call.error}"
            )
            return
        body = call.result if isinstance(call.result, dict) else {}
        count = int(body.get("count", 0))
        if resource.pages and count != resource.count and resource.failed is None:
            # The list changed between its pages: offsets shifted, so items may be missing or
            # doubled. It counts as unread this cycle (its snapshot stays) and is read again.
            resource.failed = "changed while being read"
            reading.errors.append(
                f"{call.method} for {call.resource[0]} {call.resource[1]}: changed while being read"
            )
        resource.pages += 1
        resource.count = max(resource.count, count)
        items = body.get("items", [])
        reading.items_read += len(items)
        if call.method == "wall.getComments":
            resource.items |= {
                (str(c["from_id"]), str(c["id"]))
                for c in items
                if not c.get("deleted") and c.get("from_id") is not None
            }
        else:
            resource.items |= {(str(user), "") for user in items}

    def _run(self, calls: list[_Call], reading: GroupReading) -> None:
        for start in range(0, len(calls), EXECUTE_LIMIT):
            self._execute(calls[start : start + EXECUTE_LIMIT], reading)

    def _execute(self, batch: list[_Call], reading: GroupReading) -> None:
        code = (
            "return ["
            + ",".join(
                f"API.{call.method}({json.dumps(call.params, separators=(',', ':'))})"
                for call in batch
            )
            + "];"
        )
        body = self._request("execute", {"code": code}, reading)
        results = body.get("response") or []
        errors = list(body.get("execute_errors") or [])
        for call, result in zip(
            batch, results + [False] * (len(batch) - len(results)), strict=True
        ):
            if result is False:
                failure = errors.pop(0) if errors else {}
                call.error = int(failure.get("error_code", 0)) or 1
                if call.error not in SKIPPABLE:
                    log.warning("VK %s failed with error %s", call.method, call.error)
            else:
                call.result = result

    def _request(self, method: str, params: dict[str, Any], reading: GroupReading) -> dict:
        for attempt in range(self.pacer.max_retries + 1):
            self.pacer.pace()
            reading.requests += 1
            try:
                response = self.http.post(
                    f"{self.api_url}/method/{method}",
                    data={**params, "v": self.version, "access_token": self._token},
                    timeout=self.timeout,
                )
                body = response.json()
            except (requests.RequestException, ValueError) as exc:
                reading.retries += 1
                log.info("VK %s: %s, retrying", method, type(exc).__name__)
                self.pacer.back_off(attempt)
                continue
            error = body.get("error") if isinstance(body, dict) else None
            if not error:
                return body
            code = int(error.get("error_code", 0))
            if code in RETRYABLE:
                reading.retries += 1
                log.info("VK %s: error %s, retrying", method, code)
                self.pacer.back_off(attempt)
                continue
            raise CollectorError(f"VK refused {method}: error {code} {error.get('error_msg', '')}")
        raise CollectorError(
            f"VK {method} kept failing after {self.pacer.max_retries + 1} attempts"
        )
