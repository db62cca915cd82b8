"""Apple's server-to-server notifications: what each event changes, applied exactly once."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import ProviderNotification
from app.models.types import utcnow
from app.services.accounts import (
    erase_personal_data,
    find_profile,
    profile_count,
    remove_profile,
)
from app.services.locks import lock_member

log = logging.getLogger(__name__)

ACCOUNT_DELETED = {"account-delete", "account-deleted"}


def dedup_key(events: dict[str, Any], payload: str) -> str:
    """Apple's jti when present, else the JWS itself: a resent notification is the same JWS."""
    jti = events.get("_jti")
    return f"jti:{jti}" if jti else "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def apply_notification(events: dict[str, Any], key: str) -> str:
    """Apply a verified notification; returns what happened (for the log and the record)."""
    event_type = str(events["type"])
    subject = str(events["sub"])
    record = ProviderNotification(
        network="apple", dedup_key=key, event_type=event_type, subject=subject
    )
    db.session.add(record)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return "duplicate"
    record.outcome = _apply(event_type, subject, events)
    db.session.commit()
    log.info("Apple notification %s: %s", event_type, record.outcome)
    return record.outcome


def _apply(event_type: str, subject: str, events: dict[str, Any]) -> str:
    profile = find_profile("apple", subject)
    if profile is None:
        return "no member has this Apple ID"
    if event_type == "email-disabled":
        profile.email_forwarding_enabled = False
        return "email forwarding disabled"
    if event_type == "email-enabled":
        profile.email_forwarding_enabled = True
        if events.get("email"):
            profile.email = str(events["email"])
            profile.is_private_email = str(events.get("is_private_email", "")).lower() == "true"
        return "email forwarding enabled"
    if event_type == "consent-revoked":
        # Apple has already invalidated the tokens; the link stays so a new sign-in finds it.
        profile.token_encrypted = None
        profile.consent_revoked_at = utcnow()
        return "consent revoked, tokens dropped"
    if event_type in ACCOUNT_DELETED:
        member = profile.member
        lock_member(member.id)
        profile.token_encrypted = None  # Apple has already invalidated it
        remove_profile(profile)
        db.session.flush()
        if profile_count(member.id) == 0:
            erase_personal_data(member)
            return "Apple account deleted; the member had no other sign-in and was erased"
        return "Apple account deleted; the profile was unlinked"
    return f"ignored unknown event type {event_type!r}"
