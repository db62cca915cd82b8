"""How Flask-Login finds the signed-in user: a member or a staff account, never confused."""

from __future__ import annotations

from flask import redirect, request, url_for
from flask_login import LoginManager

from app.extensions import db
from app.models import Member, StaffUser


def load_user(user_id: str) -> Member | StaffUser | None:
    kind, _, raw_id = user_id.partition(":")
    if not raw_id.isdigit():
        return None
    if kind == "member":
        member = db.session.get(Member, int(raw_id))
        return member if member is not None and member.is_active else None
    if kind == "staff":
        return db.session.get(StaffUser, int(raw_id))
    return None


def unauthorized():
    if request.blueprint in ("staff", "ops"):
        return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def configure_login(manager: LoginManager) -> None:
    manager.user_loader(load_user)
    manager.unauthorized_handler(unauthorized)
    manager.session_protection = "strong"
