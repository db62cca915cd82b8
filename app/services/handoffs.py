"""Single-use, expiring, encrypted records carrying a sign-in between requests."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select

from app.extensions import db
from app.models import Handoff
from app.models.types import utcnow
from app.services.crypto import decrypt_json, encrypt_json


def create_handoff(purpose: str, payload: dict[str, Any], ttl_seconds: int) -> str:
    """Store the payload and commit; the returned id is the only way to reach it."""
    now = utcnow()
    handoff = Handoff(
        id=secrets.token_urlsafe(32),
        purpose=purpose,
        payload_encrypted=encrypt_json(payload),
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    db.session.add(handoff)
    # Expired records are purged as new ones are made, so the table stays small unattended.
    db.session.execute(delete(Handoff).where(Handoff.expires_at < now))
    db.session.commit()
    return handoff.id


def peek_handoff(handoff_id: str | None, purpose: str) -> dict[str, Any] | None:
    """The payload if the record exists, has this purpose and has not expired."""
    if not handoff_id:
        return None
    handoff = db.session.scalar(
        select(Handoff).where(Handoff.id == handoff_id, Handoff.purpose == purpose)
    )
    if handoff is None or handoff.expires_at < utcnow():
        return None
    return decrypt_json(handoff.payload_encrypted)


def claim_handoff(handoff_id: str | None, purpose: str) -> dict[str, Any] | None:
    """Read and delete in the caller's transaction; of two concurrent claims only one wins."""
    payload = peek_handoff(handoff_id, purpose)
    if payload is None:
        return None
    result = db.session.execute(
        delete(Handoff).where(Handoff.id == handoff_id, Handoff.purpose == purpose)
    )
    return payload if result.rowcount == 1 else None


def consume_handoff(handoff_id: str | None, purpose: str) -> dict[str, Any] | None:
    """Claim and commit at once: the record can be used a single time."""
    payload = claim_handoff(handoff_id, purpose)
    db.session.commit()
    return payload
