"""Encryption of tokens and secrets at rest, with key rotation (MultiFernet).

TOKEN_ENCRYPTION_KEYS is a comma-separated list of Fernet keys: the first encrypts, every one
decrypts, so a new key is put first and old ones stay until `flask tokens rotate` has run.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app

EXTENSION_KEY = "loyalink.cipher"


class CipherError(Exception):
    pass


def build_cipher(keys: str) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.strip()) for key in keys.split(",") if key.strip()])
    except (ValueError, TypeError) as exc:
        raise ValueError(
            "TOKEN_ENCRYPTION_KEYS must be comma-separated Fernet keys "
            "(make one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from exc


def init_cipher(app: Flask) -> None:
    keys = app.config.get("TOKEN_ENCRYPTION_KEYS")
    if not keys:
        raise ValueError("TOKEN_ENCRYPTION_KEYS is not set")
    app.extensions[EXTENSION_KEY] = build_cipher(keys)


def _cipher() -> MultiFernet:
    return current_app.extensions[EXTENSION_KEY]


def encrypt_text(value: str) -> bytes:
    return _cipher().encrypt(value.encode())


def decrypt_text(token: bytes) -> str:
    try:
        return _cipher().decrypt(token).decode()
    except InvalidToken as exc:
        raise CipherError("cannot decrypt: the key that encrypted this is not configured") from exc


def encrypt_json(value: Any) -> bytes:
    return encrypt_text(json.dumps(value, separators=(",", ":")))


def decrypt_json(token: bytes) -> Any:
    return json.loads(decrypt_text(token))


def rotate(token: bytes) -> bytes:
    """Re-encrypt with the first (newest) key."""
    return _cipher().rotate(token)
