"""The member's Personal Account: profile, points, history, linked profiles, deletion."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import logout_user

from app.blueprints.account import bp
from app.blueprints.account.forms import DeleteAccountForm, ProfileForm
from app.extensions import db, limiter
from app.models.types import utcnow
from app.providers import enabled_providers, provider_for_network
from app.security import current_member, member_required, session_is_fresh
from app.services import ledger
from app.services.accounts import AccountError, delete_member, unlink_profile


@bp.get("/")
@member_required
def overview():
    member = current_member()
    entries, _ = ledger.history(member.id, limit=5)
    summary = ledger.points_summary(member.id, utcnow(), current_app.config["EXPIRY_WARNING_DAYS"])
    return render_template("account/overview.html", member=member, summary=summary, entries=entries)


@bp.route("/profile", methods=["GET", "POST"])
@member_required
def profile():
    member = current_member()
    form = ProfileForm(obj=member)
    if form.validate_on_submit():
        member.first_name = form.first_name.data.strip()
        member.last_name = (form.last_name.data or "").strip()
        member.contact_email = (form.contact_email.data or "").strip() or None
        member.marketing_opt_in = form.marketing_opt_in.data
        db.session.commit()
        flash("Your profile has been saved.", "success")
        return redirect(url_for("account.profile"))
    status = 400 if request.method == "POST" else 200
    return render_template("account/profile.html", form=form, member=member), status


@bp.get("/history")
@member_required
def history():
    member = current_member()
    before = request.args.get("before", type=int)
    entries, next_before = ledger.history(member.id, before_id=before)
    context = {"entries": entries, "next_before": next_before}
    if request.headers.get("HX-Request") == "true":
        return render_template("_partials/ledger_page.html", **context)
    return render_template(
        "account/history.html", member=member, balance=ledger.balance(member.id), **context
    )


@bp.get("/profiles")
@member_required
def profiles():
    member = current_member()
    return render_template("account/profiles.html", member=member, linkable=enabled_providers())


@bp.post("/profiles/<int:profile_id>/unlink")
@limiter.limit(lambda: current_app.config["LINK_RATE_LIMIT"])
@member_required
def unlink(profile_id: int):
    member = current_member()
    if not session_is_fresh():
        return _confirm_first(member, "removing a way into your account")
    try:
        removed = unlink_profile(member, profile_id)
    except AccountError as exc:
        flash(str(exc), "error")
    else:
        provider = provider_for_network(removed.network)
        flash(f"Your {provider.name if provider else removed.network} profile was removed.", "info")
    return redirect(url_for("account.profiles"))


@bp.route("/delete", methods=["GET", "POST"])
@member_required
def delete():
    member = current_member()
    form = DeleteAccountForm()
    if request.method == "POST" and not session_is_fresh():
        return _confirm_first(member, "deleting your account")
    if form.validate_on_submit():
        delete_member(member)
        logout_user()
        session.clear()
        flash("Your account has been deleted and your sign-in tokens revoked.", "info")
        return redirect(url_for("main.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("account/delete.html", form=form, member=member), status


def _confirm_first(member, action: str):
    return (
        render_template(
            "auth/reauth.html", member=member, action=action, providers=enabled_providers()
        ),
        401,
    )
