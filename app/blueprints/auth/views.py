"""Signing in, registering and signing out. The provider protocol lives in app/providers."""

from __future__ import annotations

import time

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user

from app.blueprints.auth import bp
from app.blueprints.auth.flows import FlowError, Intent, begin_flow, take_flow
from app.blueprints.auth.forms import RegistrationForm
from app.extensions import limiter
from app.models import Member
from app.providers import ProviderError, enabled_providers, get_provider
from app.security import SIGNED_IN_AT, current_member, is_safe_next, session_is_fresh
from app.services.accounts import (
    AccountError,
    Consent,
    Outcome,
    end_sessions,
    pending_registration,
    register_member,
    resolve_sign_in,
)
from app.services.handoffs import consume_handoff, create_handoff, peek_handoff
from app.services.replay import accept_once

CALLBACK_TTL_SECONDS = 300
REGISTRATION_KEY = "registration"
CALLBACK_FIELDS = ("code", "state", "user", "error", "iss")


def _next_or_account(target: str | None) -> str:
    return target if is_safe_next(target) else url_for("account.overview")


def _checked_next(target: str | None) -> str | None:
    """Keep a local `next`; warn about and drop one that points at another site."""
    if target and not is_safe_next(target):
        flash(
            "The link you followed wanted to send you to another site after signing in. "
            "You will be taken to your Personal Account instead.",
            "warning",
        )
        return None
    return target


def _start_member_session(member: Member) -> None:
    """A fresh session at every sign-in: nothing from before survives (no fixation)."""
    session.clear()
    login_user(member)
    session.permanent = True
    session[SIGNED_IN_AT] = time.time()


def _sign_in_limit() -> str:
    return current_app.config["SIGN_IN_RATE_LIMIT"]


def _provider_or_404(slug: str):
    provider = get_provider(slug)
    if provider is None:
        abort(404, "This sign-in method is not available.")
    return provider


@bp.get("/login")
def login():
    next_url = _checked_next(request.args.get("next"))
    if current_member() is not None:
        return redirect(_next_or_account(next_url))
    return render_template("auth/login.html", providers=enabled_providers(), next_url=next_url)


@bp.post("/<provider>/start")
@limiter.limit(_sign_in_limit)
def start(provider: str):
    chosen = _provider_or_404(provider)
    if current_user.is_authenticated and current_user.is_staff:
        abort(403, "Sign out of the staff area before signing in as a member.")
    member = current_member()
    next_url = request.form.get("next") if is_safe_next(request.form.get("next")) else None
    intent = Intent.SIGN_IN
    if member is not None:
        intent = Intent.REAUTH if request.form.get("intent") == "reauth" else Intent.LINK
        if intent is Intent.LINK and not session_is_fresh():
            # Adding a way into the account needs a recent proof that this is its owner.
            return render_template(
                "auth/reauth.html",
                member=member,
                action=f"adding {chosen.name} as a way into your account",
                providers=enabled_providers(),
            ), 401
    redirect_uri = current_app.config["PUBLIC_URL"] + url_for("auth.callback", provider=provider)
    auth_request = begin_flow(
        session, provider, redirect_uri, next_url, member.id if member else None, intent
    )
    try:
        return redirect(chosen.authorization_url(auth_request), code=303)
    except ProviderError as exc:
        abort(502, str(exc))


@bp.route("/<provider>/callback", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit)
def callback(provider: str):
    chosen = _provider_or_404(provider)
    if request.method == "GET":
        return _finish(provider, request.args.to_dict())
    if not chosen.uses_form_post:
        abort(405)
    # The cross-site POST arrives without our SameSite=Lax session cookie, so it is parked
    # server-side and the browser comes back with a same-site GET that carries the session.
    fields = {key: request.form[key] for key in CALLBACK_FIELDS if key in request.form}
    handoff_id = create_handoff(f"callback:{provider}", fields, CALLBACK_TTL_SECONDS)
    return redirect(url_for("auth.finish", provider=provider, h=handoff_id), code=303)


@bp.get("/<provider>/finish")
@limiter.limit(_sign_in_limit)
def finish(provider: str):
    _provider_or_404(provider)
    fields = consume_handoff(request.args.get("h"), f"callback:{provider}")
    if fields is None:
        abort(
            400,
            "This sign-in answer has expired or was already used. Nothing was changed; "
            "please sign in again.",
        )
    return _finish(provider, fields)


def _finish(provider: str, fields: dict[str, str]):
    chosen = _provider_or_404(provider)
    try:
        flow = take_flow(
            session, provider, fields.get("state"), current_app.config["AUTH_FLOW_TTL_SECONDS"]
        )
    except FlowError as exc:
        abort(400, str(exc))
    member = current_member()
    if flow.member_id is not None and (member is None or member.id != flow.member_id):
        abort(400, "You were signed out while linking a profile. Sign in and try again.")
    try:
        profile = chosen.complete(fields, flow.request)
        if profile.replay_key and not accept_once(
            profile.network, profile.replay_key, profile.subject, "sign-in answer"
        ):
            raise ProviderError(
                f"This {chosen.name} answer was already used, so it was refused. "
                "Nothing was changed; please sign in again."
            )
        if flow.intent is Intent.REAUTH:
            return _confirm_identity(member, profile)
        result = resolve_sign_in(profile, member if flow.intent is Intent.LINK else None)
    except (ProviderError, AccountError) as exc:
        if flow.member_id:
            flash(str(exc), "error")
            return redirect(url_for("account.profiles"))
        abort(400, str(exc))
    if result.outcome is Outcome.SIGNED_IN:
        _start_member_session(result.member)
        flash(f"Welcome back, {result.member.display_name}.", "success")
        return redirect(_next_or_account(flow.next_url))
    if result.outcome is Outcome.REGISTRATION_NEEDED:
        session[REGISTRATION_KEY] = {"id": result.registration_id, "next": flow.next_url}
        return redirect(url_for("auth.register"))
    if result.outcome is Outcome.LINKED:
        flash(f"Your {chosen.name} profile is now linked to your account.", "success")
    else:
        flash(f"This {chosen.name} profile was already linked to your account.", "info")
    return redirect(url_for("account.profiles"))


def _confirm_identity(member: Member, profile):
    if not any(
        (p.network, p.subject) == (profile.network, profile.subject) for p in member.profiles
    ):
        raise AccountError(
            "That profile is not one of yours, so it cannot confirm who you are. "
            "Nothing was changed."
        )
    session[SIGNED_IN_AT] = time.time()
    flash("Thank you, that's you. You can link a profile now.", "success")
    return redirect(url_for("account.profiles"))


@bp.route("/register", methods=["GET", "POST"])
def register():
    pending = session.get(REGISTRATION_KEY) or {}
    profile = pending_registration(peek_handoff(pending.get("id"), "registration"))
    if profile is None:
        session.pop(REGISTRATION_KEY, None)
        flash("Your registration has expired or was already completed. Please sign in.", "info")
        return redirect(url_for("auth.login"))
    provider = get_provider(profile.network)
    form = RegistrationForm()
    if request.method == "GET":
        form.first_name.data = profile.first_name
        form.last_name.data = profile.last_name
        # A provider's address only pre-fills the form, and only when the provider verified it.
        if profile.email_verified:
            form.contact_email.data = profile.email
    if form.validate_on_submit():
        consent = Consent(
            first_name=form.first_name.data,
            last_name=form.last_name.data or "",
            contact_email=form.contact_email.data,
            accept_terms=form.accept_terms.data,
            accept_data_processing=form.accept_data_processing.data,
            marketing_opt_in=form.marketing_opt_in.data,
        )
        try:
            member = register_member(pending.get("id"), consent)
        except AccountError as exc:
            session.pop(REGISTRATION_KEY, None)
            flash(str(exc), "error")
            return redirect(url_for("auth.login"))
        _start_member_session(member)
        flash("Welcome to the programme! Your Personal Account is ready.", "success")
        return redirect(_next_or_account(pending.get("next")))
    status = 400 if request.method == "POST" else 200
    return (
        render_template(
            "auth/register.html",
            form=form,
            profile=profile,
            provider_name=provider.name if provider else profile.network,
            terms_version=current_app.config["TERMS_VERSION"],
        ),
        status,
    )


@bp.post("/logout")
def logout():
    member = current_member()
    if member is not None:
        end_sessions(member)
    logout_user()
    session.clear()
    flash("You have signed out.", "info")
    return redirect(url_for("main.index"))
