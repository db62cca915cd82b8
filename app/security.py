"""Who may see what: members and staff live in separate areas of the portal."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import TypeVar
from urllib.parse import urlsplit

from flask import abort, current_app, session
from flask_login import current_user

from app.extensions import login_manager
from app.models import Member, StaffUser

F = TypeVar("F", bound=Callable)


def member_required(view: F) -> F:
    """Members only: anonymous visitors are sent to sign in, staff get 403."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not isinstance(current_user._get_current_object(), Member):
            abort(403, "Staff accounts cannot use the members' Personal Account.")
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def staff_required(view: F) -> F:
    """Staff only: anonymous visitors are sent to the staff sign-in, members get 403."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not isinstance(current_user._get_current_object(), StaffUser):
            abort(403, "This area is for programme staff only.")
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


SIGNED_IN_AT = "signed_in_at"


def session_is_fresh() -> bool:
    """Whether the member signed in recently enough to change how they sign in."""
    age = time.time() - session.get(SIGNED_IN_AT, 0)
    return age <= current_app.config["REAUTH_MAX_AGE_SECONDS"]


def current_member() -> Member | None:
    user = current_user._get_current_object() if current_user else None
    return user if isinstance(user, Member) else None


def is_safe_next(target: str | None) -> bool:
    """Only local paths: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return False
    if any(ch in target for ch in "\\\r\n\t"):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc
