"""Account changes under pressure: races, stale sessions, providers that are down."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from app.models import Event as EventRow
from app.models import LinkedProfile
from tests.helpers import csrf_token, network_sign_in, register

pytestmark = pytest.mark.database

ANNA = "001001.anna"


@pytest.fixture
def two_profiles(client, sandbox):
    network_sign_in(client, "yandex", ANNA)
    register(client)
    network_sign_in(client, "vkid", ANNA)
    return client


def profile_ids(db) -> list[int]:
    return list(db.session.scalars(select(LinkedProfile.id).order_by(LinkedProfile.id)))


def test_two_unlinks_at_once_never_remove_the_last_way_in(two_profiles, app, db):
    cookie = two_profiles.get_cookie("session").value
    token = csrf_token(two_profiles, "/account/profiles")
    barrier, statuses = threading.Barrier(2), []

    def unlink(profile_id: int) -> None:
        browser = app.test_client()
        browser.set_cookie("session", cookie)
        barrier.wait()
        answer = browser.post(f"/account/profiles/{profile_id}/unlink", data={"csrf_token": token})
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=unlink, args=(pid,)) for pid in profile_ids(db)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [302, 302]
    assert len(profile_ids(db)) == 1


def test_unlinking_with_an_old_session_asks_to_confirm_first(two_profiles, db):
    with two_profiles.session_transaction() as session:
        session["signed_in_at"] -= 3600
    token = csrf_token(two_profiles, "/account/profiles")
    answer = two_profiles.post(
        f"/account/profiles/{profile_ids(db)[0]}/unlink", data={"csrf_token": token}
    )
    assert answer.status_code == 401 and "Confirm it" in answer.get_data(as_text=True)
    assert len(profile_ids(db)) == 2


def test_a_provider_that_is_down_does_not_block_unlinking(two_profiles, app, db):
    network_sign_in(two_profiles, "google", ANNA)
    google = app.extensions["loyalink.providers"]["google"]
    google._metadata = None  # forget the discovery document, and let the issuer be down
    google.issuer = "http://127.0.0.1:9"
    linked = db.session.scalar(select(LinkedProfile.id).where(LinkedProfile.network == "google"))
    token = csrf_token(two_profiles, "/account/profiles")
    answer = two_profiles.post(f"/account/profiles/{linked}/unlink", data={"csrf_token": token})
    assert answer.status_code == 302
    assert "profile was removed" in two_profiles.get("/account/profiles").get_data(as_text=True)
    assert len(profile_ids(db)) == 2


def test_linking_the_same_profile_again_records_a_new_link_event(two_profiles, db):
    vk = db.session.scalar(select(LinkedProfile.id).where(LinkedProfile.network == "vk"))
    token = csrf_token(two_profiles, "/account/profiles")
    two_profiles.post(f"/account/profiles/{vk}/unlink", data={"csrf_token": token})
    network_sign_in(two_profiles, "vkid", ANNA)
    kinds = db.session.scalars(select(EventRow.kind).order_by(EventRow.id)).all()
    assert kinds == ["profile_linked", "profile_linked", "profile_unlinked", "profile_linked"]
    assert db.session.scalar(select(func.count()).select_from(LinkedProfile)) == 2


def test_rate_limits_count_visitors_behind_a_trusted_proxy(settings, sandbox):
    from app import create_app
    from app.extensions import limiter

    settings.update(RATELIMIT_ENABLED=True, SIGN_IN_RATE_LIMIT="2 per minute", TRUSTED_PROXIES=1)
    app = create_app("testing", **settings)
    limiter.reset()
    try:
        first = app.test_client()
        statuses = [
            first.get(
                "/auth/apple/finish?h=x", headers={"X-Forwarded-For": "203.0.113.1"}
            ).status_code
            for _ in range(3)
        ]
        other = app.test_client().get(
            "/auth/apple/finish?h=x", headers={"X-Forwarded-For": "203.0.113.2"}
        )
        assert statuses == [400, 400, 429] and other.status_code == 400
    finally:
        limiter.reset()


def test_a_copied_session_cookie_stops_working_after_sign_out(client, app, sandbox):
    network_sign_in(client, "yandex", ANNA)
    register(client)
    copied = client.get_cookie("session").value
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/account/")})
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/account/").status_code == 302
