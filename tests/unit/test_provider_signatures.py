"""Signatures the networks define: Odnoklassniki's API sig, Telegram's widget hash."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import requests

from app.providers.base import AuthorizationRequest, ProviderError
from app.providers.ok import ok_signature
from app.providers.telegram import TelegramWidgetProvider, widget_hash

BOT_TOKEN = "123456:TEST-bot-token"
NOW = 1_800_000_000


def test_ok_signature_follows_the_documented_formula():
    params = {"application_key": "CBAFAKE", "format": "json", "method": "users.getCurrentUser"}
    secret = hashlib.md5(b"tok" + b"sekret").hexdigest()  # noqa: S324
    expected = hashlib.md5(  # noqa: S324
        ("application_key=CBAFAKEformat=jsonmethod=users.getCurrentUser" + secret).encode()
    ).hexdigest()
    assert ok_signature(params, "tok", "sekret") == expected


def signed(**fields) -> dict[str, str]:
    fields = {"id": "7001001", "first_name": "Anna", "auth_date": str(NOW), **fields}
    check = "\n".join(f"{k}={fields[k]}" for k in sorted(fields))
    key = hashlib.sha256(BOT_TOKEN.encode()).digest()
    return {**fields, "hash": hmac.new(key, check.encode(), hashlib.sha256).hexdigest()}


@pytest.fixture
def widget():
    return TelegramWidgetProvider(
        requests.Session(),
        5,
        bot_token=BOT_TOKEN,
        widget_url="https://oauth.telegram.org",
        origin="https://portal.example",
        max_age_seconds=600,
        clock=lambda: NOW + 30,
    )


REQUEST = AuthorizationRequest(state="s", nonce="n", redirect_uri="https://portal.example/cb")


def test_widget_hash_matches_telegrams_formula():
    fields = signed()
    assert (
        widget_hash({k: v for k, v in fields.items() if k != "hash"}, BOT_TOKEN) == fields["hash"]
    )


def test_valid_widget_answer_gives_the_telegram_person(widget):
    profile = widget.complete({**signed(username="anna"), "state": "s"}, REQUEST)
    assert (profile.network, profile.subject, profile.first_name) == ("telegram", "7001001", "Anna")


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda f: {**f, "hash": "0" * 64}, "signature check"),
        (lambda f: {**f, "first_name": "Mallory"}, "signature check"),
        (lambda f: {**f, "id": "1"}, "signature check"),
        (lambda f: {k: v for k, v in f.items() if k != "hash"}, "incomplete"),
        (lambda f: signed(auth_date=str(NOW - 3600)), "too old"),
        (lambda f: signed(auth_date=str(NOW + 3600)), "too old"),
        (lambda f: signed(auth_date="yesterday"), "invalid date"),
    ],
    ids=["forged-hash", "changed-name", "changed-id", "no-hash", "stale", "future", "bad-date"],
)
def test_bad_widget_answers_are_refused(widget, tamper, message):
    with pytest.raises(ProviderError, match=message):
        widget.complete(tamper(signed()), REQUEST)


def test_widget_sends_our_state_through_the_return_address(widget):
    url = widget.authorization_url(REQUEST)
    assert url.startswith("https://oauth.telegram.org/auth?bot_id=123456&")
    assert "return_to=https%3A%2F%2Fportal.example%2Fcb%3Fstate%3Ds" in url
