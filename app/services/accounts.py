"""Members and their linked profiles: sign-in, registration, linking, unlinking, deletion.

A person is (network, subject). Nothing here ever looks a member up by email.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

import requests
from flask import current_app
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import LinkedProfile, Member, StaffUser
from app.models.types import utcnow
from app.providers import ProviderError, ProviderProfile, provider_for_network
from app.rules import Event, EventKind
from app.services.crypto import CipherError, decrypt_text, encrypt_text
from app.services.handoffs import claim_handoff, create_handoff
from app.services.locks import lock_member
from app.services.processing import process_events

log = logging.getLogger(__name__)

REGISTRATION = "registration"
REGISTRATION_TTL_SECONDS = 30 * 60


class AccountError(Exception):
    """A refused account operation; the message is shown to the member as it is."""


class Outcome(enum.StrEnum):
    SIGNED_IN = "signed_in"
    REGISTRATION_NEEDED = "registration_needed"
    LINKED = "linked"
    ALREADY_LINKED = "already_linked"


@dataclass(frozen=True)
class SignInResult:
    outcome: Outcome
    member: Member | None = None
    registration_id: str | None = None


def find_profile(network: str, subject: str) -> LinkedProfile | None:
    return db.session.scalar(
        select(LinkedProfile).where(
            LinkedProfile.network == network, LinkedProfile.subject == subject
        )
    )


def resolve_sign_in(profile: ProviderProfile, current_member: Member | None) -> SignInResult:
    """Sign in, start a registration, or (when someone is signed in) link the profile."""
    existing = find_profile(profile.network, profile.subject)
    if current_member is not None:
        return _link(profile, current_member, existing)
    if existing is not None and existing.member.is_active:
        _refresh_profile(existing, profile)
        existing.last_sign_in_at = utcnow()
        db.session.commit()
        return SignInResult(Outcome.SIGNED_IN, member=existing.member)
    registration_id = create_handoff(REGISTRATION, profile.to_dict(), REGISTRATION_TTL_SECONDS)
    return SignInResult(Outcome.REGISTRATION_NEEDED, registration_id=registration_id)


def _link(profile: ProviderProfile, member: Member, existing: LinkedProfile | None) -> SignInResult:
    if existing is not None and existing.member_id != member.id:
        raise AccountError(
            "This profile is already linked to another member account, so it was not linked "
            "to yours. Nothing was changed."
        )
    if existing is not None:
        _refresh_profile(existing, profile)
        db.session.commit()
        return SignInResult(Outcome.ALREADY_LINKED, member=member)
    linked = _new_profile(member, profile)
    db.session.add(linked)
    try:
        db.session.flush()
        _record_profile_event(linked, EventKind.PROFILE_LINKED)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        # Someone linked the same profile a moment ago: decide again on what is stored now.
        return _link(profile, member, find_profile(profile.network, profile.subject))
    return SignInResult(Outcome.LINKED, member=member)


def pending_registration(profile_data: dict | None) -> ProviderProfile | None:
    return ProviderProfile.from_dict(profile_data) if profile_data else None


@dataclass(frozen=True)
class Consent:
    first_name: str
    last_name: str
    contact_email: str | None
    accept_terms: bool
    accept_data_processing: bool
    marketing_opt_in: bool


def register_member(registration_id: str | None, consent: Consent) -> Member:
    """Create the member and its first profile once the newcomer has consented."""
    if not (consent.accept_terms and consent.accept_data_processing):
        raise AccountError(
            "To join you must accept the programme terms and the processing of your personal data."
        )
    data = claim_handoff(registration_id, REGISTRATION)
    if data is None:
        db.session.rollback()
        raise AccountError(
            "This registration has expired or was already completed. Please sign in again."
        )
    profile = ProviderProfile.from_dict(data)
    now = utcnow()
    member = Member(
        first_name=consent.first_name.strip()[:100],
        last_name=consent.last_name.strip()[:100],
        contact_email=(consent.contact_email or "").strip() or None,
        terms_version=current_app.config["TERMS_VERSION"],
        terms_accepted_at=now,
        data_processing_accepted_at=now,
        marketing_opt_in=consent.marketing_opt_in,
    )
    linked = _new_profile(member, profile)
    linked.last_sign_in_at = now
    db.session.add_all([member, linked])
    try:
        db.session.flush()
        _record_profile_event(linked, EventKind.PROFILE_LINKED)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise AccountError(
            "This profile was registered a moment ago. Please sign in with it."
        ) from None
    return member


def profile_count(member_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(LinkedProfile).where(LinkedProfile.member_id == member_id)
    )


def unlink_profile(member: Member, profile_id: int) -> LinkedProfile:
    """Remove one linked profile, never the last way to sign in; then revoke its token."""
    db.session.rollback()
    lock_member(member.id)
    profile = db.session.get(LinkedProfile, profile_id)
    if profile is None or profile.member_id != member.id:
        db.session.rollback()
        raise AccountError("That profile is not linked to your account.")
    if profile_count(member.id) <= 1:
        db.session.rollback()
        raise AccountError(
            "This is your only way to sign in, so it cannot be removed. Link another profile first."
        )
    remove_profile(profile)
    db.session.commit()
    return profile


def remove_profile(profile: LinkedProfile) -> None:
    """Delete a profile with its "profile unlinked" event, and revoke its token once the
    transaction commits (a provider that is down never blocks or half-undoes the removal)."""
    token = _readable_token(profile)
    _record_profile_event(profile, EventKind.PROFILE_UNLINKED)
    db.session.delete(profile)
    if token is not None:
        _revoke_after_commit(profile.network, token)


def delete_member(member: Member) -> None:
    """Erase the member's personal data and profiles; the row stays for the ledger's sake."""
    db.session.rollback()
    lock_member(member.id)
    for profile in list(member.profiles):
        remove_profile(profile)
    erase_personal_data(member)
    db.session.commit()


def end_sessions(user: Member | StaffUser) -> None:
    """Sign out everywhere: every session naming the old version stops working."""
    user.session_version += 1
    db.session.commit()


def erase_personal_data(member: Member) -> None:
    member.first_name = ""
    member.last_name = ""
    member.contact_email = None
    member.marketing_opt_in = False
    member.deleted_at = utcnow()


def _record_profile_event(profile: LinkedProfile, kind: EventKind) -> None:
    """Linking and unlinking are processed at once, in the transaction that makes them."""
    verb = "linked" if kind is EventKind.PROFILE_LINKED else "unlinked"
    process_events(
        [
            Event(
                # linked_at names this link among earlier links of the same profile
                key=f"{profile.network}:{profile.subject}:{verb}:{profile.linked_at.isoformat()}",
                kind=kind,
                member_id=profile.member_id,
                network=profile.network,
                occurred_at=utcnow(),
                subject=profile.subject,
            )
        ]
    )


def _new_profile(member: Member, profile: ProviderProfile) -> LinkedProfile:
    linked = LinkedProfile(member=member, network=profile.network, subject=profile.subject)
    linked.display_name = " ".join(p for p in (profile.first_name, profile.last_name) if p)
    _refresh_profile(linked, profile)
    return linked


def _refresh_profile(linked: LinkedProfile, profile: ProviderProfile) -> None:
    """Keep what only a first authorization tells (the name); update what may change."""
    name = " ".join(p for p in (profile.first_name, profile.last_name) if p)
    if name and not linked.display_name:
        linked.display_name = name
    if profile.email:
        linked.email = profile.email
        linked.email_verified = profile.email_verified
        linked.is_private_email = profile.is_private_email
    if profile.token:
        linked.token_encrypted = encrypt_text(profile.token)
    linked.consent_revoked_at = None


def _readable_token(profile: LinkedProfile) -> str | None:
    if profile.token_encrypted is None:
        return None
    try:
        return decrypt_text(profile.token_encrypted)
    except CipherError:
        log.warning("cannot revoke a %s token: its encryption key is gone", profile.network)
        return None


def _revoke_after_commit(network: str, token: str) -> None:
    def revoke(session) -> None:
        provider = provider_for_network(network)
        if provider is None:
            log.warning("cannot revoke a %s token: the provider is not configured", network)
            return
        try:
            revoked = provider.revoke(token)
        except (ProviderError, requests.RequestException) as exc:
            log.warning("revoking a %s token failed: %s", network, type(exc).__name__)
            return
        if not revoked:
            log.warning("revoking a %s token failed; the profile is removed anyway", network)

    event.listen(db.session(), "after_commit", revoke, once=True)
