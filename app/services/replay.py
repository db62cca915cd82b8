"""Answers a provider must not be able to replay: each is accepted once."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import ProviderNotification


def accept_once(network: str, key: str, subject: str, what: str) -> bool:
    """Record the key and commit; False when it was recorded before (a replay)."""
    db.session.add(
        ProviderNotification(
            network=network, dedup_key=key[:255], event_type=what, subject=subject[:255]
        )
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True
