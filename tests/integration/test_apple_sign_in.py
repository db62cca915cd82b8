"""Sign in with Apple through the portal's real HTTP client against the sandbox on loopback."""

from __future__ import annotations

import json

import jwt
import pytest
import requests
from sqlalchemy import func, select

from app.models import LinkedProfile, Member
from app.services.crypto import decrypt_text
from tests.helpers import (
    apple_sign_in,
    consent_at_sandbox,
    csrf_token,
    local_path,
    post_callback,
    register,
    sign_up,
    start_apple,
)

pytestmark = pytest.mark.database

ANNA = "001001.anna"
BORIS = "001002.boris"


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_authorize_request_is_form_post_with_state_and_nonce(client, sandbox):
    url = start_apple(client)
    assert url.startswith(sandbox.apple_url + "/auth/authorize?")
    query = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))
    assert query["response_mode"] == "form_post"
    assert query["response_type"] == "code"
    assert query["scope"] == "name+email"
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
    assert query["redirect_uri"] == "http%3A%2F%2Flocalhost%2Fauth%2Fapple%2Fcallback"


def test_newcomer_registers_after_consent_and_lands_in_account(client, db, sandbox):
    response = apple_sign_in(client, ANNA)
    assert response.headers["Location"].endswith("/auth/register")
    assert count(db, Member) == 0, "nobody is registered before consenting"

    form = client.get("/auth/register").get_data(as_text=True)
    assert 'value="Anna"' in form and 'value="Ivanova"' in form
    assert 'value="anna.ivanova@example.com"' in form  # Apple verified it, so it pre-fills

    response = register(
        client, first_name="Anna", contact_email="anna.ivanova@example.com", marketing_opt_in="y"
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/account/")

    member = db.session.scalar(select(Member))
    assert member.first_name == "Anna" and member.last_name == "Ivanova"
    assert member.terms_version == "2026-12"
    assert member.terms_accepted_at is not None and member.data_processing_accepted_at is not None
    assert member.marketing_opt_in is True
    assert member.contact_email == "anna.ivanova@example.com"
    (profile,) = member.profiles
    assert (profile.network, profile.subject) == ("apple", ANNA)
    assert profile.email == "anna.ivanova@example.com" and profile.email_verified
    assert profile.is_private_email is False

    page = client.get("/account/profiles").get_data(as_text=True)
    assert "anna.ivanova@example.com" in page


def test_refresh_token_is_stored_encrypted(client, db, sandbox, app):
    sign_up(client, ANNA)
    profile = db.session.scalar(select(LinkedProfile))
    with app.app_context():
        token = decrypt_text(profile.token_encrypted)
    assert token and token.encode() not in profile.token_encrypted
    assert token in sandbox.state.tokens or any(
        token in str(value) for value in sandbox.state.tokens.values()
    )


def test_second_sign_in_signs_in_and_keeps_the_first_name(client, db, sandbox):
    sign_up(client, ANNA)
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/account/")})

    fields = consent_at_sandbox(start_apple(client), ANNA)
    assert "user" not in fields, "Apple sends the name only on the first authorization"
    response = post_callback(client, fields)
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/")
    assert count(db, Member) == 1
    profile = db.session.scalar(select(LinkedProfile))
    assert profile.display_name == "Anna Ivanova"
    assert profile.last_sign_in_at is not None


def test_private_relay_email_is_stored_and_flagged(client, db, sandbox):
    sign_up(client, BORIS)
    profile = db.session.scalar(select(LinkedProfile))
    assert profile.email.endswith("@privaterelay.appleid.com")
    assert profile.is_private_email is True
    page = client.get("/account/profiles").get_data(as_text=True)
    assert "private relay" in page


def test_same_email_on_another_apple_id_is_never_matched(client, db, sandbox, app):
    """A second Apple ID with the first one's email gets its own registration."""
    sign_up(client, ANNA)
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/account/")})
    sandbox.state.add_person(
        {
            "sub": "001009.impostor",
            "first_name": "Eve",
            "last_name": "Ivanova",
            "email": "anna.ivanova@example.com",
            "is_private_email": False,
        }
    )
    try:
        response = apple_sign_in(client, "001009.impostor")
    finally:
        sandbox.state.remove_person("001009.impostor")
    assert response.headers["Location"].endswith("/auth/register")
    assert count(db, LinkedProfile) == 1


def test_session_is_renewed_at_sign_in(client, sandbox):
    with client.session_transaction() as session:
        session["planted_by_attacker"] = "x"
    sign_up(client, ANNA)
    with client.session_transaction() as session:
        assert "planted_by_attacker" not in session
        assert session["_user_id"].startswith("member:")


def test_next_keeps_local_paths(client, sandbox):
    url = start_apple(client, next_url="/account/history")
    response = post_callback(client, consent_at_sandbox(url, ANNA))
    assert response.headers["Location"].endswith("/auth/register")
    response = register(client)
    assert response.headers["Location"].endswith("/account/history")


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/steal", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"],
)
def test_next_to_another_host_is_refused_with_a_message(client, target):
    page = client.get("/auth/login", query_string={"next": target}).get_data(as_text=True)
    assert "another site" in page
    assert "evil.example" not in page and "javascript:" not in page


# Bad input: each answered with a clear error and no change to the data.


def test_state_missing(client, db, sandbox):
    fields = consent_at_sandbox(start_apple(client), ANNA)
    del fields["state"]
    response = post_callback(client, fields)
    assert response.status_code == 400
    assert "carried no state" in response.get_data(as_text=True)
    assert count(db, Member) == 0


def test_state_wrong(client, db, sandbox):
    fields = consent_at_sandbox(start_apple(client), ANNA)
    fields["state"] = "forged-" + fields["state"][7:]
    response = post_callback(client, fields)
    assert response.status_code == 400
    assert "not started in this browser" in response.get_data(as_text=True)


def test_state_from_another_browser(client, app, sandbox):
    fields = consent_at_sandbox(start_apple(client), ANNA)
    other_browser = app.test_client()
    response = post_callback(other_browser, fields)
    assert response.status_code == 400
    assert "not started in this browser" in response.get_data(as_text=True)


def test_state_replayed(client, db, sandbox):
    fields = consent_at_sandbox(start_apple(client), ANNA)
    assert post_callback(client, fields).status_code == 302
    response = post_callback(client, fields)
    assert response.status_code == 400
    assert "already completed" in response.get_data(as_text=True)


def test_finish_handoff_replayed(client, sandbox):
    fields = consent_at_sandbox(start_apple(client), ANNA)
    parked = client.post("/auth/apple/callback", data=fields)
    finish_url = local_path(parked.headers["Location"])
    assert client.get(finish_url).status_code == 302
    again = client.get(finish_url)
    assert again.status_code == 400
    assert "already used" in again.get_data(as_text=True)


def test_authorization_code_replayed(client, db, sandbox):
    fields = consent_at_sandbox(start_apple(client), ANNA)
    assert post_callback(client, fields).status_code == 302
    # A second flow in the same browser, but carrying the first flow's code.
    second = consent_at_sandbox(start_apple(client), ANNA)
    second["code"] = fields["code"]
    response = post_callback(client, second)
    assert response.status_code == 400
    assert "already been used or has expired" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("bad_signature", "signature is invalid"),
        ("wrong_aud", "issued for another application"),
        ("wrong_nonce", "nonce mismatch"),
        ("expired", "has expired"),
        ("wrong_iss", "not issued by the provider"),
    ],
)
def test_bad_id_token_is_refused(client, db, sandbox, fault, message):
    url = start_apple(client)
    fields = consent_at_sandbox(url, ANNA)
    sandbox.state.inject_fault(fault)
    response = post_callback(client, fields)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert count(db, Member) == 0
    with client.session_transaction() as session:
        assert "registration" not in session


def test_rotated_apple_key_is_fetched_once_and_accepted(client, app, sandbox):
    sign_up(client, ANNA)
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/account/")})
    provider = app.extensions["loyalink.providers"]["apple"]
    fetches = provider.jwks.fetch_count
    fields = consent_at_sandbox(start_apple(client), ANNA)
    sandbox.state.inject_fault("unknown_kid")
    response = post_callback(client, fields)
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/")
    assert provider.jwks.fetch_count == fetches + 1


def test_jwks_is_cached_between_sign_ins(client, app, sandbox):
    sign_up(client, ANNA)
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/account/")})
    apple_sign_in(client, ANNA)
    assert app.extensions["loyalink.providers"]["apple"].jwks.fetch_count == 1


def test_cancel_at_apple_changes_nothing(client, db, sandbox):
    url = start_apple(client)
    state = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))["state"]
    response = post_callback(client, {"error": "user_cancelled_authorize", "state": state})
    assert response.status_code == 400
    assert "cancelled" in response.get_data(as_text=True)
    assert count(db, Member) == 0


def test_registration_requires_both_consents(client, db, sandbox):
    apple_sign_in(client, ANNA)
    response = register(client, accept_terms=None, accept_data_processing=None)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "must accept the programme terms" in page
    assert "personal-data processing" in page
    assert count(db, Member) == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("first_name", "", "Tell us your first name."),
        ("contact_email", "anna@", "Enter a valid email address."),
        ("last_name", "x" * 101, "Field cannot be longer than 100 characters."),
    ],
)
def test_registration_bad_input(client, db, sandbox, field, value, message):
    apple_sign_in(client, ANNA)
    response = register(client, **{field: value})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert count(db, Member) == 0


def test_double_submitted_registration_makes_one_member(client, db, sandbox):
    apple_sign_in(client, ANNA)
    token = csrf_token(client, "/auth/register")
    data = {
        "csrf_token": token,
        "first_name": "Anna",
        "accept_terms": "y",
        "accept_data_processing": "y",
    }
    with client.session_transaction() as session:
        saved = dict(session)
    first = client.post("/auth/register", data=data)
    with client.session_transaction() as session:
        session.clear()
        session.update(saved)
    second = client.post("/auth/register", data=data)
    assert first.status_code == 302
    assert second.status_code == 302 and second.headers["Location"].endswith("/auth/login")
    assert count(db, Member) == 1


def test_post_without_csrf_token_is_refused(client, db, sandbox):
    response = client.post("/auth/apple/start", data={})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    sign_up(client, ANNA)
    response = client.post("/account/delete", data={"confirm": "y"})
    assert response.status_code == 400
    assert db.session.scalar(select(Member)).deleted_at is None


def test_client_secret_is_an_es256_jwt_renewed_before_expiry(app, apple_key_pem):
    provider = app.extensions["loyalink.providers"]["apple"]
    now = [1_800_000_000.0]
    provider.clock = lambda: now[0]
    secret = provider.client_secret()
    header = jwt.get_unverified_header(secret)
    claims = jwt.decode(secret, options={"verify_signature": False})
    assert header == {"alg": "ES256", "kid": "TESTKEY001", "typ": "JWT"}
    assert claims["iss"] == "TESTTEAM01" and claims["sub"] == "test.loyalink.portal"
    assert claims["aud"] == app.config["APPLE_ISSUER"]
    assert claims["exp"] - claims["iat"] == app.config["APPLE_CLIENT_SECRET_TTL_SECONDS"]
    assert claims["exp"] - claims["iat"] <= 15_777_000
    now[0] += 3600
    assert provider.client_secret() == secret, "reused while young"
    now[0] += app.config["APPLE_CLIENT_SECRET_TTL_SECONDS"] / 2
    renewed = provider.client_secret()
    assert renewed != secret
    assert jwt.decode(renewed, options={"verify_signature": False})["exp"] > claims["exp"]


def test_token_endpoint_refuses_a_secret_signed_with_another_key(app, sandbox):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    provider = app.extensions["loyalink.providers"]["apple"]
    provider.private_key_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    provider._secret = None
    answer = requests.post(
        f"{sandbox.apple_url}/auth/token",
        data={
            "client_id": provider.client_id,
            "client_secret": provider.client_secret(),
            "grant_type": "authorization_code",
            "code": "x",
            "redirect_uri": "http://localhost/auth/apple/callback",
        },
        timeout=5,
    )
    assert answer.status_code == 400 and answer.json() == {"error": "invalid_client"}


def test_user_field_garbage_does_not_break_sign_in(client, db, sandbox):
    fields = consent_at_sandbox(start_apple(client), ANNA)
    fields["user"] = "{not json"
    response = post_callback(client, fields)
    assert response.headers["Location"].endswith("/auth/register")
    assert json.dumps(fields)  # the stash took the raw field without failing
