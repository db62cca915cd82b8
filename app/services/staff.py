"""Staff accounts: creation from the command line, password sign-in."""

from __future__ import annotations

import functools
import secrets

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models import LedgerEntry, Member, StaffRole, StaffUser
from app.models.types import utcnow

MIN_PASSWORD_LENGTH = 12


@functools.cache
def _dummy_hash() -> str:
    """Checked when the email is unknown, so both paths cost one hash (no user enumeration)."""
    return generate_password_hash(secrets.token_urlsafe(16))


class StaffError(Exception):
    pass


def create_staff(email: str, password: str, role: str) -> StaffUser:
    email = email.strip().lower()
    try:
        # The same check the sign-in form makes, so every account created can sign in.
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise StaffError(f"{email!r} is not an email address that can sign in: {exc}") from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    try:
        staff_role = StaffRole(role)
    except ValueError:
        roles = ", ".join(r.value for r in StaffRole)
        raise StaffError(f"unknown role {role!r}; choose one of {roles}") from None
    user = StaffUser(email=email, role=staff_role)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise StaffError(f"a staff account for {email} already exists") from None
    return user


def authenticate(email: str, password: str) -> StaffUser | None:
    user = db.session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not user.check_password(password):
        return None
    user.last_sign_in_at = utcnow()
    db.session.commit()
    return user


def programme_summary() -> dict[str, int]:
    return {
        "members": db.session.scalar(
            select(func.count()).select_from(Member).where(Member.deleted_at.is_(None))
        )
        or 0,
        "entries": db.session.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
        "points": db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0))) or 0,
    }


def list_members(query: str = "", limit: int = 50) -> list[Member]:
    statement = select(Member).where(Member.deleted_at.is_(None))
    if query:
        pattern = f"%{query.strip()}%"
        statement = statement.where(
            Member.first_name.ilike(pattern) | Member.last_name.ilike(pattern)
        )
    return list(db.session.scalars(statement.order_by(Member.id.desc()).limit(limit)))
