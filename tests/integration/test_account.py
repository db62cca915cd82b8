"""The Personal Account: profile, balance, history, linked profiles, deletion."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db as app_db
from app.models import EntryKind, LedgerEntry, LinkedProfile, Member
from app.services.accounts import AccountError, unlink_profile
from tests.helpers import apple_sign_in, csrf_token, sign_up

pytestmark = pytest.mark.database

ANNA = "001001.anna"


@pytest.fixture
def member_client(client, sandbox):
    sign_up(client, ANNA)
    return client


def add_entries(db, member_id: int, amounts: list[int]) -> None:
    for index, amount in enumerate(amounts):
        db.session.add(
            LedgerEntry(
                member_id=member_id,
                kind=EntryKind.ACCRUAL if amount > 0 else EntryKind.DEDUCTION,
                amount=amount,
                idempotency_key=f"test:{member_id}:{index}",
                description=f"Entry {index}",
            )
        )
    db.session.commit()


def test_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get("/account/history")
    assert response.status_code == 302
    assert "/auth/login?next=/account/history" in response.headers["Location"]


def test_balance_is_the_sum_of_the_ledger(member_client, db):
    member = db.session.scalar(select(Member))
    add_entries(db, member.id, [50, 25, -10])
    page = member_client.get("/account/").get_data(as_text=True)
    assert 'data-test="balance">65<' in page
    assert 'class="amount minus">-10<' in page and 'class="amount plus">+50<' in page


def test_history_pages_with_htmx_partials(member_client, db):
    member = db.session.scalar(select(Member))
    add_entries(db, member.id, list(range(1, 46)))
    full = member_client.get("/account/history").get_data(as_text=True)
    assert "<html" in full and full.count('data-test="ledger-entry"') == 20
    assert "Entry 44" in full and "Entry 24" not in full
    before = full.split("before=")[1].split('"')[0]
    partial = member_client.get(
        f"/account/history?before={before}", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "<html" not in partial
    assert partial.count('data-test="ledger-entry"') == 20
    assert "Entry 24" in partial and "Entry 44" not in partial
    plain = member_client.get(f"/account/history?before={before}").get_data(as_text=True)
    assert "<html" in plain, "without htmx the same link gives the whole page"


def test_profile_edit_saves_and_validates(member_client, db):
    token = csrf_token(member_client, "/account/profile")
    response = member_client.post(
        "/account/profile",
        data={
            "csrf_token": token,
            "first_name": "Anya",
            "last_name": "I.",
            "contact_email": "anya@example.com",
        },
    )
    assert response.status_code == 302
    member = db.session.scalar(select(Member))
    assert (member.first_name, member.contact_email) == ("Anya", "anya@example.com")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"first_name": ""}, "Tell us your first name."),
        ({"first_name": "A", "contact_email": "not-an-email"}, "Enter a valid email address."),
        ({"first_name": "A" * 101}, "Field cannot be longer than 100 characters."),
    ],
)
def test_profile_edit_bad_input(member_client, db, data, message):
    token = csrf_token(member_client, "/account/profile")
    response = member_client.post("/account/profile", data={"csrf_token": token, **data})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(Member)).first_name == "Anna"


def test_the_last_way_to_sign_in_cannot_be_removed(member_client, db):
    linked = db.session.scalar(select(LinkedProfile))
    token = csrf_token(member_client, "/account/profiles")
    response = member_client.post(
        f"/account/profiles/{linked.id}/unlink", data={"csrf_token": token}, follow_redirects=True
    )
    assert "only way to sign in" in response.get_data(as_text=True)
    assert db.session.scalar(select(LinkedProfile)) is not None


def test_link_a_second_apple_id_then_remove_it_revokes_its_token(member_client, db, sandbox):
    response = apple_sign_in(member_client, "001003.chen")
    assert response.headers["Location"].endswith("/account/profiles")
    chen = db.session.scalar(select(LinkedProfile).where(LinkedProfile.subject == "001003.chen"))
    member = db.session.scalar(select(Member))
    assert chen.member_id == member.id
    assert db.session.scalar(select(func.count()).select_from(Member)) == 1

    token = csrf_token(member_client, "/account/profiles")
    response = member_client.post(
        f"/account/profiles/{chen.id}/unlink", data={"csrf_token": token}, follow_redirects=True
    )
    assert "profile was removed" in response.get_data(as_text=True)
    assert len(sandbox.state.revoked_tokens()) == 1
    assert db.session.get(LinkedProfile, chen.id) is None


def test_linking_a_profile_of_another_member_is_refused(client, app, db, sandbox):
    sign_up(client, "001003.chen")
    other_browser = app.test_client()
    sign_up(other_browser, ANNA)
    response = apple_sign_in(other_browser, "001003.chen")
    assert response.headers["Location"].endswith("/account/profiles")
    page = other_browser.get("/account/profiles").get_data(as_text=True)
    assert "already linked to another member account" in page
    owners = db.session.scalars(select(LinkedProfile.member_id).order_by(LinkedProfile.id)).all()
    assert len(owners) == 2 and owners[0] != owners[1]


def test_someone_elses_profile_cannot_be_unlinked(client, db, app, sandbox):
    sign_up(client, ANNA)
    with app.app_context():
        other = Member(
            first_name="Other",
            terms_version="x",
            terms_accepted_at=_now(),
            data_processing_accepted_at=_now(),
        )
        app_db.session.add(other)
        app_db.session.flush()
        app_db.session.add(LinkedProfile(member_id=other.id, network="apple", subject="o"))
        app_db.session.commit()
        anna = app_db.session.scalar(select(Member).where(Member.first_name == "Anna"))
        victim = app_db.session.scalar(select(LinkedProfile).where(LinkedProfile.subject == "o"))
        with pytest.raises(AccountError, match="not linked to your account"):
            unlink_profile(anna, victim.id)
    assert db.session.scalar(select(LinkedProfile).where(LinkedProfile.subject == "o"))


def test_delete_account_revokes_apple_and_erases_personal_data(member_client, db, sandbox):
    linked = db.session.scalar(select(LinkedProfile))
    refresh_tokens_before = set(sandbox.state.revoked_tokens())
    token = csrf_token(member_client, "/account/delete")
    response = member_client.post("/account/delete", data={"csrf_token": token, "confirm": "y"})
    assert response.status_code == 302
    revoked = set(sandbox.state.revoked_tokens()) - refresh_tokens_before
    assert len(revoked) == 1, "Apple's refresh token is revoked at Apple"
    member = db.session.scalar(select(Member))
    assert member.deleted_at is not None and member.first_name == "" and member.last_name == ""
    assert db.session.get(LinkedProfile, linked.id) is None
    assert member_client.get("/account/").status_code == 302, "signed out"


def test_delete_account_needs_the_confirmation_box(member_client, db):
    token = csrf_token(member_client, "/account/delete")
    response = member_client.post("/account/delete", data={"csrf_token": token})
    assert response.status_code == 400
    assert "Tick the box" in response.get_data(as_text=True)
    assert db.session.scalar(select(Member)).deleted_at is None


def test_a_deleted_member_signing_in_again_starts_afresh(member_client, db, sandbox):
    token = csrf_token(member_client, "/account/delete")
    member_client.post("/account/delete", data={"csrf_token": token, "confirm": "y"})
    sign_up(member_client, ANNA)
    members = db.session.scalars(select(Member).order_by(Member.id)).all()
    assert [m.is_active for m in members] == [False, True]


def _now():
    from app.models.types import utcnow

    return utcnow()


def _age_session(client, seconds: int) -> None:
    with client.session_transaction() as session:
        session["signed_in_at"] -= seconds


def test_linking_with_an_old_session_asks_to_confirm_first(member_client, db, sandbox):
    _age_session(member_client, 3600)
    token = csrf_token(member_client, "/account/profiles")
    response = member_client.post("/auth/apple/start", data={"csrf_token": token})
    assert response.status_code == 401
    assert "Confirm it" in response.get_data(as_text=True)
    response = member_client.post(
        "/auth/apple/start", data={"csrf_token": token, "intent": "reauth"}
    )
    assert response.status_code == 303
    from tests.helpers import consent_at_sandbox, post_callback

    answer = post_callback(member_client, consent_at_sandbox(response.headers["Location"], ANNA))
    assert answer.headers["Location"].endswith("/account/profiles")
    assert "Thank you" in member_client.get("/account/profiles").get_data(as_text=True)
    assert (
        apple_sign_in(member_client, "001003.chen")
        .headers["Location"]
        .endswith("/account/profiles")
    )
    assert db.session.scalar(select(func.count()).select_from(LinkedProfile)) == 2


def test_confirming_with_someone_elses_profile_is_refused(member_client, db, sandbox):
    _age_session(member_client, 3600)
    token = csrf_token(member_client, "/account/profiles")
    response = member_client.post(
        "/auth/apple/start", data={"csrf_token": token, "intent": "reauth"}
    )
    from tests.helpers import consent_at_sandbox, post_callback

    post_callback(member_client, consent_at_sandbox(response.headers["Location"], "001003.chen"))
    page = member_client.get("/account/profiles").get_data(as_text=True)
    assert "not one of yours" in page
    assert db.session.scalar(select(func.count()).select_from(LinkedProfile)) == 1
    again = member_client.post("/auth/apple/start", data={"csrf_token": token})
    assert again.status_code == 401, "still not confirmed"
