"""Every network registers, signs in, links and unlinks against the sandbox over real HTTP."""

from __future__ import annotations

import re
import time

import pytest
import requests
from sqlalchemy import func, select

from app.models import Event as EventRow
from app.models import LinkedProfile, Member
from app.providers.base import AuthorizationRequest, ProviderError
from app.services.crypto import decrypt_text
from tests.helpers import (
    choose_person,
    csrf_token,
    local_path,
    network_sign_in,
    register,
    start_sign_in,
)

pytestmark = pytest.mark.database

ANNA, BORIS = "001001.anna", "001002.boris"

# slug, network, Anna's subject there, the email pre-filled for Anna (None: not verified)
NETWORKS = [
    ("vkid", "vk", "1001001", None),
    ("ok", "ok", "570001001", None),
    ("mailru", "mailru", None, "anna@mail.ru"),
    ("yandex", "yandex", None, "anna.ivanova@yandex.ru"),
    ("telegram", "telegram", "7001001", None),
    ("telegram-widget", "telegram", "7001001", None),
    ("google", "google", "100000000000000001001", "anna.ivanova@gmail.com"),
]


def contact_email_value(form: str) -> str:
    tag = re.search(r'<input[^>]*name="contact_email"[^>]*>', form).group(0)
    return re.search(r'value="([^"]*)"', tag).group(1)


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def sign_out(client) -> None:
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/account/")})


@pytest.mark.parametrize(("slug", "network", "subject", "prefill"), NETWORKS)
def test_register_then_sign_in_again(client, db, sandbox, slug, network, subject, prefill):
    answer = network_sign_in(client, slug, ANNA)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/auth/register")
    form = client.get("/auth/register").get_data(as_text=True)
    assert 'value="Anna"' in form
    assert contact_email_value(form) == (prefill or "")
    assert register(client).status_code == 302
    profile = db.session.scalar(select(LinkedProfile))
    assert profile.network == network
    if subject:
        assert profile.subject == subject
    sign_out(client)
    if slug == "telegram-widget":
        # A widget answer is signed over its auth_date (whole seconds) and accepted once.
        time.sleep(1.1)
    again = network_sign_in(client, slug, ANNA)
    assert again.headers["Location"].endswith("/account/")
    assert count(db, Member) == 1


def test_email_is_never_prefilled_when_the_provider_did_not_verify_it(client, sandbox):
    network_sign_in(client, "google", BORIS)  # Boris's Google address is unverified
    form = client.get("/auth/register").get_data(as_text=True)
    assert contact_email_value(form) == ""


def test_telegram_oidc_and_widget_find_the_same_person(client, db, sandbox):
    network_sign_in(client, "telegram", ANNA)
    register(client)
    sign_out(client)
    answer = network_sign_in(client, "telegram-widget", ANNA)
    assert answer.headers["Location"].endswith("/account/")
    assert count(db, Member) == 1 and count(db, LinkedProfile) == 1


def test_link_several_networks_and_sign_in_through_any(client, db, sandbox):
    network_sign_in(client, "vkid", ANNA)
    register(client)
    for slug in ("ok", "telegram", "yandex"):
        answer = network_sign_in(client, slug, ANNA)
        assert answer.headers["Location"].endswith("/account/profiles"), slug
    assert sorted(db.session.scalars(select(LinkedProfile.network))) == [
        "ok",
        "telegram",
        "vk",
        "yandex",
    ]
    kinds = db.session.scalars(select(EventRow.kind)).all()
    assert kinds == ["profile_linked"] * 4
    sign_out(client)
    assert network_sign_in(client, "ok", ANNA).headers["Location"].endswith("/account/")
    assert count(db, Member) == 1


def test_unlinking_revokes_the_token_where_the_network_allows(client, db, app, sandbox):
    network_sign_in(client, "yandex", ANNA)
    register(client)
    network_sign_in(client, "vkid", ANNA)
    vk = db.session.scalar(select(LinkedProfile).where(LinkedProfile.network == "vk"))
    with app.app_context():
        token = decrypt_text(vk.token_encrypted)
    assert sandbox.state.networks.tokens[token].revoked is False
    client.post(
        f"/account/profiles/{vk.id}/unlink",
        data={"csrf_token": csrf_token(client, "/account/profiles")},
    )
    assert sandbox.state.networks.tokens[token].revoked is True
    assert db.session.get(LinkedProfile, vk.id) is None


def test_linking_a_profile_that_belongs_to_another_member_changes_nothing(client, app, db, sandbox):
    network_sign_in(client, "vkid", ANNA)
    register(client)
    other = app.test_client()
    network_sign_in(other, "yandex", BORIS)
    register(other)
    answer = network_sign_in(other, "vkid", ANNA)
    assert answer.headers["Location"].endswith("/account/profiles")
    page = other.get("/account/profiles").get_data(as_text=True)
    assert "already linked to another member account" in page
    assert count(db, LinkedProfile) == 2 and count(db, EventRow) == 2


def test_mix_up_a_callback_for_one_provider_with_anothers_state(client, db, sandbox):
    callback = choose_person(start_sign_in(client, "vkid"), ANNA)
    path = local_path(callback).replace("/auth/vkid/", "/auth/yandex/")
    answer = client.get(path)
    assert answer.status_code == 400
    assert "different provider" in answer.get_data(as_text=True)
    assert count(db, Member) == 0


def test_an_issuer_mismatch_is_refused(client, db, sandbox):
    callback = choose_person(start_sign_in(client, "google"), ANNA)
    answer = client.get(local_path(callback).replace("iss=", "iss=https%3A%2F%2Fevil.example"))
    assert answer.status_code == 400
    assert "mix-up between providers" in answer.get_data(as_text=True)


@pytest.mark.parametrize("slug", ["vkid", "yandex", "google", "telegram"])
def test_a_wrong_pkce_verifier_is_refused(client, db, sandbox, slug):
    callback = choose_person(start_sign_in(client, slug), ANNA)
    with client.session_transaction() as session:
        flows = session["auth_flows"]
        for flow in flows.values():
            flow["v"] = "x" * 64
        session["auth_flows"] = flows
    answer = client.get(local_path(callback))
    assert answer.status_code == 400
    assert "could not be verified" in answer.get_data(as_text=True)
    assert count(db, Member) == 0


def test_a_forged_telegram_hash_is_refused(client, db, sandbox):
    callback = choose_person(start_sign_in(client, "telegram-widget"), ANNA)
    answer = client.get(local_path(callback).replace("first_name=Anna", "first_name=Mallory"))
    assert answer.status_code == 400
    assert "signature check" in answer.get_data(as_text=True)
    assert count(db, Member) == 0


def test_a_stale_telegram_auth_date_is_refused(client, db, sandbox):
    start = start_sign_in(client, "telegram-widget")
    state = start.split("state%3D")[1].split("&")[0]
    stale = requests.get(
        f"{sandbox.url}/telegram-widget/control/signed",
        params={"bot_id": "7000001", "person": ANNA, "auth_date": 1_000_000_000},
        timeout=5,
    ).json()
    answer = client.get("/auth/telegram-widget/callback", query_string={**stale, "state": state})
    assert answer.status_code == 400
    assert "too old" in answer.get_data(as_text=True)


def test_a_wrong_odnoklassniki_signature_is_refused(app, sandbox):
    """The API call is signed with the secret key: sign with a wrong one and OK says no."""
    with app.app_context():
        provider = app.extensions["loyalink.providers"]["ok"]
        flow = AuthorizationRequest(
            state="s1", nonce="n", redirect_uri="http://localhost/auth/ok/callback"
        )
        authorize = provider.authorization_url(flow)
        callback = dict(
            part.split("=", 1) for part in choose_person(authorize, ANNA).split("?")[1].split("&")
        )
        token = provider.fetch_token(callback, flow)
        provider.client_secret = "not-the-secret"
        with pytest.raises(ProviderError, match="PARAM_SIGNATURE"):
            provider.profile(token, flow)


def test_the_same_callback_twice_makes_one_link_and_one_event(client, db, sandbox):
    network_sign_in(client, "vkid", ANNA)
    register(client)
    callback = local_path(choose_person(start_sign_in(client, "ok"), ANNA))
    first, second = client.get(callback), client.get(callback)
    assert first.headers["Location"].endswith("/account/profiles")
    assert second.status_code == 400
    assert count(db, LinkedProfile) == 2 and count(db, EventRow) == 2


def test_two_tabs_signing_in_at_once(client, db, sandbox):
    network_sign_in(client, "vkid", ANNA)
    register(client)
    tab_one = choose_person(start_sign_in(client, "ok"), ANNA)
    tab_two = choose_person(start_sign_in(client, "telegram"), ANNA)
    assert client.get(local_path(tab_two)).headers["Location"].endswith("/account/profiles")
    assert client.get(local_path(tab_one)).headers["Location"].endswith("/account/profiles")
    assert count(db, LinkedProfile) == 3


def test_a_network_refusing_the_code_is_a_clear_error(client, db, sandbox):
    callback = choose_person(start_sign_in(client, "mailru"), ANNA)
    sandbox.state.inject_token_error("mailru", "invalid_grant")
    answer = client.get(local_path(callback))
    assert answer.status_code == 400
    assert "Mail.ru sign-in has already been used" in answer.get_data(as_text=True)


@pytest.mark.parametrize("fault", ["bad_signature", "wrong_aud", "wrong_nonce", "expired"])
def test_a_bad_google_id_token_is_refused(client, db, sandbox, fault):
    callback = choose_person(start_sign_in(client, "google"), ANNA)
    sandbox.state.inject_oidc_fault("google", fault)
    answer = client.get(local_path(callback))
    assert answer.status_code == 400
    assert count(db, Member) == 0


def test_a_network_without_credentials_is_hidden(settings, sandbox):
    from app import create_app

    settings.update(MAILRU_CLIENT_ID=None, MAILRU_CLIENT_SECRET=None)
    app = create_app("testing", **settings)
    page = app.test_client().get("/auth/login").get_data(as_text=True)
    assert 'data-provider="mailru"' not in page and 'data-provider="vkid"' in page
    assert app.test_client().post("/auth/mailru/start").status_code in (400, 404)


def test_a_telegram_widget_answer_is_accepted_once(client, app, db, sandbox):
    """Someone who gets hold of a widget answer cannot sign in with it in their own browser."""
    callback = choose_person(start_sign_in(client, "telegram-widget"), ANNA)
    assert client.get(local_path(callback)).headers["Location"].endswith("/auth/register")
    attacker = app.test_client()
    own_state = start_sign_in(attacker, "telegram-widget").split("state%3D")[1].split("&")[0]
    stolen = local_path(callback)
    forged = re.sub(r"state=[^&]+", f"state={own_state}", stolen)
    answer = attacker.get(forged)
    assert answer.status_code == 400
    assert "already used" in answer.get_data(as_text=True)


def test_a_non_hex_telegram_hash_is_a_clear_error(client, sandbox):
    state = start_sign_in(client, "telegram-widget").split("state%3D")[1].split("&")[0]
    answer = client.get(
        "/auth/telegram-widget/callback",
        query_string={"state": state, "id": "1", "auth_date": "1", "hash": "é"},
    )
    assert answer.status_code == 400
    assert "signature check" in answer.get_data(as_text=True)
