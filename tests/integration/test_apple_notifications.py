"""Apple's server-to-server notifications: verified, applied once, answered 200."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.models import LinkedProfile, Member, ProviderNotification
from tests.helpers import sign_up

pytestmark = pytest.mark.database

ANNA = "001001.anna"
CLIENT = "test.loyalink.portal"


@pytest.fixture
def anna(client, sandbox):
    sign_up(client, ANNA)
    return client


def notify(client, sandbox, event_type: str, **kwargs):
    payload = sandbox.state.sign_notification(CLIENT, kwargs.pop("sub", ANNA), event_type, **kwargs)
    return client.post("/hooks/apple", json={"payload": payload}), payload


def profile(db) -> LinkedProfile | None:
    return db.session.scalar(select(LinkedProfile))


def test_email_disabled_then_enabled(anna, db, sandbox):
    response, _ = notify(
        anna, sandbox, "email-disabled", email="x@privaterelay.appleid.com", is_private_email=True
    )
    assert response.status_code == 200 and response.json["status"] == "ok"
    assert profile(db).email_forwarding_enabled is False
    response, _ = notify(
        anna, sandbox, "email-enabled", email="new@privaterelay.appleid.com", is_private_email=True
    )
    assert response.status_code == 200
    linked = profile(db)
    assert linked.email_forwarding_enabled is True
    assert linked.email == "new@privaterelay.appleid.com" and linked.is_private_email


def test_consent_revoked_drops_the_token_but_keeps_the_member(anna, db, sandbox):
    assert profile(db).token_encrypted is not None
    response, _ = notify(anna, sandbox, "consent-revoked")
    assert response.status_code == 200
    linked = profile(db)
    assert linked.token_encrypted is None
    assert linked.consent_revoked_at is not None
    assert db.session.scalar(select(Member)).is_active


@pytest.mark.parametrize("event_type", ["account-delete", "account-deleted"])
def test_account_deleted_erases_a_member_with_no_other_sign_in(anna, db, sandbox, event_type):
    response, _ = notify(anna, sandbox, event_type)
    assert response.status_code == 200
    assert profile(db) is None
    member = db.session.scalar(select(Member))
    assert member.deleted_at is not None
    assert member.first_name == "" and member.contact_email is None
    # The member's session no longer opens the account.
    assert anna.get("/account/").status_code == 302


def test_duplicate_notification_changes_nothing_more(anna, db, sandbox):
    payload = sandbox.state.sign_notification(CLIENT, ANNA, "email-disabled", jti="jti-1")
    first = anna.post("/hooks/apple", json={"payload": payload})
    second = anna.post("/hooks/apple", json={"payload": payload})
    assert first.status_code == second.status_code == 200
    assert second.json["outcome"] == "duplicate"
    count = db.session.scalar(select(func.count()).select_from(ProviderNotification))
    assert count == 1


def test_notification_for_an_unknown_apple_id_is_accepted_and_recorded(client, db, sandbox):
    response, _ = notify(client, sandbox, "consent-revoked", sub="001003.chen")
    assert response.status_code == 200
    assert response.json["outcome"] == "no member has this Apple ID"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bad_signature": True}, "signature is invalid"),
        ({"audience": "someone.else.app"}, "issued for another application"),
    ],
)
def test_forged_notification_is_refused_and_changes_nothing(anna, db, sandbox, kwargs, message):
    response, _ = notify(anna, sandbox, "account-delete", **kwargs)
    assert response.status_code == 400
    assert message in response.json["error"]
    assert profile(db) is not None
    assert db.session.scalar(select(func.count()).select_from(ProviderNotification)) == 0


@pytest.mark.parametrize(
    "body",
    [None, {}, {"payload": ""}, {"payload": 5}, {"payload": "not.a.jws"}],
    ids=["no-body", "empty", "blank", "number", "garbage"],
)
def test_malformed_notification_is_a_clear_400(client, db, sandbox, body):
    response = (
        client.post("/hooks/apple", json=body) if body is not None else client.post("/hooks/apple")
    )
    assert response.status_code == 400
    assert response.json["error"]


def test_notification_delivered_by_the_sandbox_over_http(live_portal, sandbox, db):
    """The sandbox's control sends the notification to the live portal, as Apple would."""
    import requests

    from tests.helpers import apple_sign_in, register

    _url, app = live_portal
    with app.test_client() as client:
        assert apple_sign_in(client, ANNA).headers["Location"].endswith("/auth/register")
        register(client)
    answer = requests.post(
        f"{sandbox.apple_url}/control/notifications",
        json={"client_id": CLIENT, "sub": ANNA, "type": "email-disabled", "send": True},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["delivered_status"] == 200
    assert profile(db).email_forwarding_enabled is False
