"""Tokens are encrypted at rest, survive key rotation, and are never logged or rendered."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from app import create_app
from app.models import LinkedProfile
from app.services.crypto import CipherError, decrypt_text
from tests.helpers import network_sign_in, register

pytestmark = pytest.mark.database


def test_rotation_re_encrypts_with_the_new_key(client, settings, db, sandbox):
    network_sign_in(client, "yandex", "001001.anna")
    register(client)
    old_key = settings["TOKEN_ENCRYPTION_KEYS"]
    stored = db.session.scalar(select(LinkedProfile)).token_encrypted
    new_key = Fernet.generate_key().decode()

    both = create_app("testing", **{**settings, "TOKEN_ENCRYPTION_KEYS": f"{new_key},{old_key}"})
    with both.app_context():
        token = decrypt_text(stored)  # the old key still reads it
    result = both.test_cli_runner().invoke(args=["tokens", "rotate"])
    assert result.exit_code == 0 and "Re-encrypted 1 values" in result.output

    only_new = create_app("testing", **{**settings, "TOKEN_ENCRYPTION_KEYS": new_key})
    rotated = db.session.scalar(select(LinkedProfile)).token_encrypted
    assert rotated != stored
    with only_new.app_context():
        assert decrypt_text(rotated) == token
        with pytest.raises(CipherError, match="not configured"):
            decrypt_text(stored)


def test_tokens_are_never_rendered_or_logged(client, app, db, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    network_sign_in(client, "vkid", "001001.anna")
    register(client)
    with app.app_context():
        token = decrypt_text(db.session.scalar(select(LinkedProfile)).token_encrypted)
    pages = "".join(
        client.get(path).get_data(as_text=True)
        for path in ("/account/", "/account/profiles", "/account/profile", "/account/history")
    )
    assert token not in pages
    assert token not in caplog.text


@pytest.mark.parametrize("keys", ["not-a-key", "", " , "])
def test_bad_encryption_keys_stop_the_start(settings, keys):
    with pytest.raises(ValueError, match="TOKEN_ENCRYPTION_KEYS"):
        create_app("testing", **{**settings, "TOKEN_ENCRYPTION_KEYS": keys})
