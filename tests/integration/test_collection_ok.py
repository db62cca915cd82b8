"""Collection cycles of an Odnoklassniki group against the sandbox OK API over real HTTP."""

from __future__ import annotations

import pytest
import requests

from app.collect.engine import collect_group
from app.extensions import db as app_db
from app.services.groups import add_group
from app.services.ledger import balance
from app.services.offers import install_seed_offers
from sandbox.okapi import ACCURACY_PROFILE
from tests.helpers import linked_member, recorded_events

pytestmark = pytest.mark.database

GROUP = 53038939046008
TOKEN = "ok-group-token-test"
ANNA, BORIS, CHEN = 570001001, 570001002, 570001003
METHODS = ACCURACY_PROFILE["methods"]


@pytest.fixture
def ok(sandbox):
    state = sandbox.state.ok
    state.clear()
    state.rate_limit_per_second = None
    state.register_token(TOKEN)
    state.create_group(GROUP, "Loyalink OK Club")
    for user in (ANNA, BORIS, CHEN):
        state.join(GROUP, user)
    yield state
    state.clear()


@pytest.fixture
def ctx(settings, app, ok):
    settings.update(OK_REQUESTS_PER_SECOND=1000, HTTP_TIMEOUT_SECONDS=2, OK_BACKOFF_SECONDS=0.01)
    app.config.update(settings)
    with app.app_context():
        install_seed_offers()
        yield app
        app_db.session.remove()


def member_for(ok_user: int) -> int:
    return linked_member("ok", ok_user)


def tracked(**kwargs) -> int:
    return add_group("ok", str(GROUP), "OK Club", TOKEN, **kwargs).id


def events() -> list[tuple]:
    return recorded_events()


def test_baseline_then_every_change_once(ctx, ok):
    topic = ok.add_post(GROUP, "Hello")
    ok.like(GROUP, topic, ANNA)
    old = ok.comment(GROUP, topic, BORIS, "before")
    anna, boris = member_for(ANNA), member_for(BORIS)
    group_id = tracked()
    first = collect_group(group_id)
    assert first.status == "succeeded" and first.events_found == 0, first.error_log
    assert events() == []

    ok.unlike(GROUP, topic, ANNA)
    ok.comment(GROUP, topic, ANNA, "Nice")
    ok.delete_comment(GROUP, topic, old)
    ok.leave(GROUP, BORIS)
    second = collect_group(group_id)
    assert second.status == "succeeded", second.error_log
    assert sorted(events()) == sorted(
        [
            ("activity_deleted", str(ANNA), str(topic), "like"),
            ("activity", str(ANNA), str(topic), "comment"),
            ("activity_deleted", str(BORIS), str(topic), "comment"),
            ("left_group", str(BORIS), None, None),
        ]
    )
    assert balance(anna) == 3 and balance(boris) == 0
    assert collect_group(group_id).events_found == 0, "nothing changed, nothing found"

    fresh = ok.add_post(GROUP, "News")
    ok.join(GROUP, BORIS)
    ok.like(GROUP, fresh, BORIS)
    third = collect_group(group_id)
    assert third.status == "succeeded"
    assert sorted(events()[4:]) == sorted(
        [("joined_group", str(BORIS), None, None), ("activity", str(BORIS), str(fresh), "like")]
    )
    assert balance(boris) > 0


def test_a_member_with_no_linked_profile_makes_no_event(ctx, ok):
    topic = ok.add_post(GROUP)
    group_id = tracked()
    collect_group(group_id)
    ok.like(GROUP, topic, CHEN)
    ok.comment(GROUP, topic, CHEN, "hi")
    ok.join(GROUP, 999_000_111)
    run = collect_group(group_id)
    assert run.status == "succeeded" and events() == []


def test_a_skippable_error_leaves_the_list_unread_and_invents_nothing(ctx, ok):
    topic = ok.add_post(GROUP)
    ok.comment(GROUP, topic, ANNA, "first")
    member_for(ANNA)
    group_id = tracked()
    collect_group(group_id)
    ok.inject_error(10, method=METHODS["comments"], times=1)
    run = collect_group(group_id)
    assert run.status == "partial" and "discussions.getComments" in run.error_log
    assert events() == [], "an unread comment list is not everyone deleting their comment"
    ok.comment(GROUP, topic, ANNA, "second")
    collect_group(group_id)
    assert [e[0] for e in events()] == ["activity"]


@pytest.mark.parametrize("code", ACCURACY_PROFILE["retryable"])
def test_retryable_errors_are_retried(ctx, ok, code):
    topic = ok.add_post(GROUP)
    member_for(ANNA)
    group_id = tracked()
    collect_group(group_id)
    ok.like(GROUP, topic, ANNA)
    ok.inject_error(code, times=2)
    run = collect_group(group_id)
    assert run.status == "succeeded", run.error_log
    assert events() == [("activity", str(ANNA), str(topic), "like")]


def test_a_spent_quota_leaves_its_lists_unread_with_the_reason(ctx, ok):
    topic = ok.add_post(GROUP)
    member_for(ANNA)
    group_id = tracked()
    collect_group(group_id)
    ok.like(GROUP, topic, ANNA)
    ok.leave(GROUP, ANNA)
    ok.set_quota(METHODS["likes"], 0)
    run = collect_group(group_id)
    assert run.status == "partial"
    assert "discussions.getDiscussionLikes for topic" in run.error_log
    assert "quota" in run.error_log
    assert events() == [("left_group", str(ANNA), None, None)], "members were still read"
    assert ok.request_counts.get(METHODS["likes"], 0) == 0, "a list it cannot finish: not begun"
    ok.set_quota(METHODS["likes"], None)
    collect_group(group_id)
    assert events()[-1] == ("activity", str(ANNA), str(topic), "like")


def test_a_quota_too_small_for_the_member_list_does_not_start_it(ctx, ok):
    for user in range(1000, 2600):  # 1,603 members: two pages
        ok.join(GROUP, user)
    group_id = tracked()
    ok.set_quota(METHODS["members"], 1)
    run = collect_group(group_id)
    assert run.status == "partial" and "members not read" in run.error_log
    assert "baseline postponed" in run.error_log
    assert ok.request_counts.get(METHODS["members"], 0) == 0


def test_a_spent_feed_quota_fails_the_run(ctx, ok):
    group_id = tracked()
    ok.set_quota(METHODS["wall"], 0)
    run = collect_group(group_id)
    assert run.status == "failed" and "mediatopic.getTopics" in run.error_log


def test_a_like_list_that_changes_between_pages_is_read_again(ctx, ok):
    topic = ok.add_post(GROUP)
    for user in range(2000, 2150):
        ok.like(GROUP, topic, user)
    ok.like(GROUP, topic, ANNA)
    member_for(ANNA)
    group_id = tracked()
    collect_group(group_id)

    class Churning:
        """Real HTTP; after the first likes page Anna takes her Klass back and gives it again."""

        def __init__(self) -> None:
            self.session, self.likes_pages = requests.Session(), 0

        def post(self, url, data=None, **kwargs):
            response = self.session.post(url, data=data, **kwargs)
            if data and data.get("method") == METHODS["likes"]:
                self.likes_pages += 1
                if self.likes_pages == 1:
                    ok.unlike(GROUP, topic, 2100)
                    ok.like(GROUP, topic, 2100)
            return response

    run = collect_group(group_id, http=Churning())
    assert run.status == "partial" and "changed while being read" in run.error_log
    assert events() == []
    assert collect_group(group_id).status == "succeeded" and events() == []
