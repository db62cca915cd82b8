"""How Flask-Login finds the signed-in user: a member or a staff account, never confused."""

from __future__ import annotations

from flask import redirect, request, url_for
from flask_login import LoginManager

from app.extensions import db
from app.models import Member, StaffUser


def load_user(user_id: str) -> Member | StaffUser | None:
    """The user a session names, if that session has not been ended by a sign-out since."""
    kind, raw_id, version = [*user_id.split(":"), "", ""][:3]
    if not raw_id.isdigit() or not version.isdigit():
        return None
    model = {"member": Member, "staff": StaffUser}.get(kind)
    user = db.session.get(model, int(raw_id)) if model else None
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


def unauthorized():
    if request.blueprint in ("staff", "ops"):
        return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def configure_login(manager: LoginManager) -> None:
    manager.user_loader(load_user)
    manager.unauthorized_handler(unauthorized)
    manager.session_protection = "strong"
