"""The staff area: a separate sign-in, the programme at a glance, members and adjustments."""

from __future__ import annotations

import secrets

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from app.blueprints.staff import bp
from app.blueprints.staff.forms import AdjustmentForm, SimulationForm, StaffLoginForm
from app.extensions import db
from app.models import Member
from app.models.types import utcnow
from app.rules import ActivityKind, Event, EventKind
from app.security import is_safe_next, staff_required
from app.services import ledger
from app.services.accounts import end_sessions
from app.services.processing import current_offers, dry_run, policy
from app.services.staff import authenticate, list_members, programme_summary


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated and current_user.is_staff:
        return redirect(url_for("staff.dashboard"))
    form = StaffLoginForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is None:
            flash("That email and password do not match a staff account.", "error")
            return render_template("staff/login.html", form=form), 401
        session.clear()
        login_user(user)
        target = request.args.get("next")
        return redirect(target if is_safe_next(target) else url_for("staff.dashboard"))
    status = 400 if request.method == "POST" else 200
    return render_template("staff/login.html", form=form), status


@bp.post("/logout")
def logout():
    if current_user.is_authenticated and current_user.is_staff:
        end_sessions(current_user._get_current_object())
    logout_user()
    session.clear()
    flash("You have signed out of the staff area.", "info")
    return redirect(url_for("staff.login"))


@bp.get("/")
@staff_required
def dashboard():
    return render_template("staff/dashboard.html", summary=programme_summary())


@bp.get("/members")
@staff_required
def members():
    query = request.args.get("q", "")[:100]
    return render_template("staff/members.html", members=list_members(query), query=query)


@bp.route("/members/<int:member_id>", methods=["GET", "POST"])
@staff_required
def member(member_id: int):
    subject = db.session.get(Member, member_id)
    if subject is None or not subject.is_active:
        abort(404, "No active member has this number.")
    form = AdjustmentForm()
    if form.validate_on_submit():
        try:
            _, created = ledger.adjust(
                subject,
                form.amount.data,
                form.reason.data,
                current_user._get_current_object(),
                form.request_key.data,
            )
        except ledger.LedgerError as exc:
            flash(str(exc), "error")
        else:
            flash(
                "The adjustment was recorded." if created else "That adjustment was already made.",
                "success" if created else "info",
            )
            return redirect(url_for("staff.member", member_id=member_id))
    if request.method == "GET":
        form.request_key.data = secrets.token_urlsafe(24)
    entries, _ = ledger.history(subject.id, limit=20)
    status = 400 if request.method == "POST" else 200
    return (
        render_template(
            "staff/member.html",
            subject=subject,
            form=form,
            entries=entries,
            balance=ledger.balance(subject.id),
        ),
        status,
    )


@bp.get("/offers")
@staff_required
def offers():
    listed = sorted(current_offers(), key=lambda offer: (offer.state != "active", offer.id))
    return render_template("staff/offers.html", offers=listed, form=SimulationForm())


@bp.post("/offers/simulate")
@staff_required
def simulate():
    """Which offers would fire for this event, and why not: a dry run on the member's state."""
    form = SimulationForm()
    evaluation = None
    if form.validate_on_submit():
        if db.session.get(Member, form.member_id.data) is None:
            form.member_id.errors.append("No member has this number.")
        elif EventKind(form.kind.data) in (EventKind.ACTIVITY, EventKind.ACTIVITY_DELETED) and (
            not form.activity.data or not form.object_id.data
        ):
            form.activity.errors.append("An activity event needs an activity and a post.")
        else:
            when = form.occurred_at.data
            occurred = when.replace(tzinfo=policy().timezone) if when is not None else utcnow()
            event = Event(
                key="simulation",
                kind=EventKind(form.kind.data),
                member_id=form.member_id.data,
                network=form.network.data.strip(),
                occurred_at=occurred,
                subject="simulation",
                group_id=form.group_id.data or None,
                object_id=form.object_id.data or None,
                activity=ActivityKind(form.activity.data) if form.activity.data else None,
                activity_id=form.activity_id.data or None,
            )
            evaluation = dry_run(event)
    status = 200 if evaluation is not None else 400
    template = (
        "_partials/simulation.html" if request.headers.get("HX-Request") else ("staff/offers.html")
    )
    context = {"form": form, "evaluation": evaluation}
    if template == "staff/offers.html":
        context["offers"] = current_offers()
    return render_template(template, **context), status
