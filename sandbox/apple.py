"""Sign in with Apple endpoints of the sandbox, plus its control API for tests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)

from sandbox.state import FAULT_KINDS, NOTIFICATION_TYPES, OAuthError, SandboxState

bp = Blueprint("apple", __name__, url_prefix="/apple")

RESPONSE_MODES = ("query", "fragment", "form_post")
NOTIFICATION_TIMEOUT = 5


def _state() -> SandboxState:
    return current_app.extensions["sandbox"]


# Authorization


class AuthorizeError(Exception):
    """An authorization request Apple would refuse with an error page."""


@dataclass(frozen=True)
class AuthorizeRequest:
    """A validated authorization request."""

    client_id: str
    redirect_uri: str
    response_mode: str
    scope: tuple[str, ...]
    state: str | None
    nonce: str | None
    params: dict[str, str]


def _validate_authorize(params: Mapping[str, str]) -> AuthorizeRequest:
    """Validate like Apple; client and redirect_uri first so errors never redirect."""
    client_id = params.get("client_id", "")
    if not client_id:
        raise AuthorizeError("invalid_request: client_id is missing.")
    client = _state().get_client(client_id)
    if client is None:
        raise AuthorizeError(f"invalid_client: client_id {client_id!r} is not registered.")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        raise AuthorizeError("invalid_request: redirect_uri is missing.")
    if redirect_uri not in client.redirect_uris:
        raise AuthorizeError(
            f"invalid_request: redirect_uri {redirect_uri!r} is not registered for this client."
        )
    response_type = params.get("response_type", "")
    if response_type != "code":
        raise AuthorizeError(
            f"unsupported_response_type: response_type must be 'code', got {response_type!r}."
        )
    response_mode = params.get("response_mode") or "query"
    if response_mode not in RESPONSE_MODES:
        raise AuthorizeError(f"invalid_request: unknown response_mode {response_mode!r}.")
    scope = tuple(params.get("scope", "").split())
    unknown = [s for s in scope if s not in ("name", "email")]
    if unknown:
        raise AuthorizeError(f"invalid_scope: unsupported scope {' '.join(unknown)!r}.")
    if scope and response_mode != "form_post":
        raise AuthorizeError(
            "invalid_request: response_mode must be form_post when name or email scope "
            "is requested."
        )
    hidden = {k: v for k, v in params.items() if k not in ("person", "action")}
    return AuthorizeRequest(
        client_id=client_id,
        redirect_uri=redirect_uri,
        response_mode=response_mode,
        scope=scope,
        state=params.get("state"),
        nonce=params.get("nonce") or None,
        params=hidden,
    )


def _error_page(message: str, status: int = 400) -> tuple[str, int]:
    return render_template("sandbox/error.html", message=message), status


def _respond_to_client(req: AuthorizeRequest, fields: dict[str, str]) -> Response | str:
    """Send the result back to the client's redirect_uri the way response_mode says."""
    if req.state is not None:
        fields["state"] = req.state
    if req.response_mode == "form_post":
        return render_template("sandbox/form_post.html", action=req.redirect_uri, fields=fields)
    if req.response_mode == "fragment":
        return redirect(f"{req.redirect_uri}#{urlencode(fields)}", code=302)
    separator = "&" if "?" in req.redirect_uri else "?"
    return redirect(f"{req.redirect_uri}{separator}{urlencode(fields)}", code=302)


@bp.get("/auth/authorize")
def authorize() -> Any:
    """Show the person picker for a valid authorization request."""
    try:
        req = _validate_authorize(request.args)
    except AuthorizeError as exc:
        return _error_page(str(exc))
    client = _state().get_client(req.client_id)
    return render_template(
        "sandbox/authorize.html", req=req, client=client, persons=_state().persons
    )


@bp.post("/auth/authorize")
def consent() -> Any:
    """The person's choice: issue a code, or report the cancellation."""
    try:
        req = _validate_authorize(request.form)
    except AuthorizeError as exc:
        return _error_page(str(exc))
    if request.form.get("action") == "cancel":
        return _respond_to_client(req, {"error": "user_cancelled_authorize"})
    state = _state()
    person = state.person(request.form.get("person", ""))
    if person is None:
        return _error_page("invalid_request: choose one of the sandbox persons.")
    code = state.issue_code(
        client_id=req.client_id,
        redirect_uri=req.redirect_uri,
        sub=person["sub"],
        scope=req.scope,
        nonce=req.nonce,
    )
    fields = {"code": code}
    first_time = state.record_authorization(req.client_id, person["sub"])
    if first_time and req.scope:
        user: dict[str, Any] = {}
        if "name" in req.scope:
            user["name"] = {"firstName": person["first_name"], "lastName": person["last_name"]}
        if "email" in req.scope:
            user["email"] = person["email"]
        fields["user"] = json.dumps(user)
    return _respond_to_client(req, fields)


# Token, keys, revocation


def _oauth_error(exc: OAuthError) -> tuple[Response, int]:
    if exc.description:
        current_app.logger.info("sandbox apple %s: %s", exc.error, exc.description)
    return _no_store(jsonify({"error": exc.error})), 400


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise OAuthError("invalid_request", f"{name} is missing")
    return value


@bp.post("/auth/token")
def token() -> Any:
    """Exchange a code or a refresh token; client authenticated by its ES256 secret."""
    form = request.form
    state = _state()
    try:
        client_id = _required(form, "client_id")
        client_secret = _required(form, "client_secret")
        grant_type = _required(form, "grant_type")
        state.verify_client_secret(client_id, client_secret)
        if grant_type == "authorization_code":
            code = _required(form, "code")
            redirect_uri = _required(form, "redirect_uri")
            body = state.exchange_code(client_id, code, redirect_uri)
        elif grant_type == "refresh_token":
            body = state.refresh(client_id, _required(form, "refresh_token"))
        else:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r}")
    except OAuthError as exc:
        return _oauth_error(exc)
    return _no_store(jsonify(body))


@bp.get("/auth/keys")
def keys() -> Response:
    """The JWKS with every current signing key."""
    return jsonify(_state().jwks())


@bp.post("/auth/revoke")
def revoke() -> Any:
    """Revoke a token; 200 with an empty body, also for unknown tokens."""
    form = request.form
    state = _state()
    try:
        client_id = _required(form, "client_id")
        client_secret = _required(form, "client_secret")
        token_value = _required(form, "token")
        hint = form.get("token_type_hint") or None
        if hint not in (None, "refresh_token", "access_token"):
            raise OAuthError("unsupported_token_type", f"token_type_hint {hint!r}")
        state.verify_client_secret(client_id, client_secret)
    except OAuthError as exc:
        return _oauth_error(exc)
    state.revoke(client_id, token_value, hint)
    return Response(status=200)


@bp.get("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    """Discovery document like Apple's, with the sandbox's own URLs."""
    base = request.url_root.rstrip("/") + bp.url_prefix
    return jsonify(
        {
            "issuer": _state().issuer,
            "authorization_endpoint": f"{base}/auth/authorize",
            "token_endpoint": f"{base}/auth/token",
            "revocation_endpoint": f"{base}/auth/revoke",
            "jwks_uri": f"{base}/auth/keys",
            "response_types_supported": ["code"],
            "response_modes_supported": list(RESPONSE_MODES),
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "name"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "claims_supported": [
                "aud",
                "email",
                "email_verified",
                "exp",
                "iat",
                "is_private_email",
                "iss",
                "nonce",
                "nonce_supported",
                "real_user_status",
                "sub",
                "transfer_sub",
            ],
        }
    )


# Control API (tests and the demo)


def _control_error(message: str, status: int = 400) -> tuple[Response, int]:
    return jsonify({"error": "invalid_request", "error_description": message}), status


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object body")
    return body


@bp.post("/control/clients")
def control_register_client() -> Any:
    """Register (or replace) an Apple client from JSON."""
    try:
        body = _json_body()
        redirect_uris = body.get("redirect_uris")
        if not isinstance(redirect_uris, list):
            raise ValueError("redirect_uris must be a list")
        notification_url = body.get("notification_url")
        if notification_url is not None and not isinstance(notification_url, str):
            raise ValueError("notification_url must be a string")
        fields = {}
        for name in ("client_id", "team_id", "key_id", "public_key_pem"):
            if not isinstance(body.get(name), str):
                raise ValueError(f"{name} must be a string")
            fields[name] = body[name]
        _state().register_apple_client(
            fields["client_id"],
            team_id=fields["team_id"],
            key_id=fields["key_id"],
            public_key_pem=fields["public_key_pem"],
            redirect_uris=redirect_uris,
            notification_url=notification_url,
        )
    except ValueError as exc:
        return _control_error(str(exc))
    return jsonify({"client_id": fields["client_id"]}), 201


def deliver_notification(url: str, payload: str) -> tuple[int | None, str | None]:
    """POST ``{"payload": jws}`` to the client; return (HTTP status, error)."""
    try:
        response = requests.post(url, json={"payload": payload}, timeout=NOTIFICATION_TIMEOUT)
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return response.status_code, None


def _send_notification(
    *,
    client_id: str,
    sub: str,
    event_type: str,
    email: str | None = None,
    is_private_email: bool | str | None = None,
    bad_signature: bool = False,
    audience: str | None = None,
    jti: str | None = None,
    send: bool = True,
) -> dict[str, Any]:
    state = _state()
    client = state.get_client(client_id)
    if client is None:
        raise LookupError(f"client_id {client_id!r} is not registered")
    payload = state.sign_notification(
        client_id,
        sub,
        event_type,
        email=email,
        is_private_email=is_private_email,
        bad_signature=bad_signature,
        audience=audience,
        jti=jti,
    )
    if not bad_signature:
        state.apply_notification_effects(client_id, sub, event_type)
    if not send:
        return {"payload": payload}
    if client.notification_url is None:
        return {
            "payload": payload,
            "delivered_status": None,
            "error": "client has no notification_url",
        }
    status, error = deliver_notification(client.notification_url, payload)
    return {"payload": payload, "delivered_status": status, "error": error}


@bp.post("/control/notifications")
def control_notifications() -> Any:
    """Sign (and by default deliver) a server-to-server notification."""
    try:
        body = _json_body()
        for name in ("client_id", "sub", "type"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise ValueError(f"{name} must be a non-empty string")
        for name in ("email", "audience", "jti"):
            if body.get(name) is not None and not isinstance(body[name], str):
                raise ValueError(f"{name} must be a string")
        is_private_email = body.get("is_private_email")
        if is_private_email is not None and not isinstance(is_private_email, bool | str):
            raise ValueError("is_private_email must be a boolean or 'true'/'false'")
        result = _send_notification(
            client_id=body["client_id"],
            sub=body["sub"],
            event_type=body["type"],
            email=body.get("email"),
            is_private_email=is_private_email,
            bad_signature=bool(body.get("bad_signature", False)),
            audience=body.get("audience"),
            jti=body.get("jti"),
            send=bool(body.get("send", True)),
        )
    except ValueError as exc:
        return _control_error(str(exc))
    except LookupError as exc:
        return _control_error(str(exc), 404)
    return jsonify(result)


@bp.post("/control/faults")
def control_set_fault() -> Any:
    """Arm a one-shot id_token fault: ``{"id_token": kind}``."""
    try:
        kind = _json_body().get("id_token")
        if not isinstance(kind, str):
            raise ValueError(f"id_token must be one of {sorted(FAULT_KINDS)}")
        _state().inject_fault(kind)
    except ValueError as exc:
        return _control_error(str(exc))
    return jsonify({"id_token": kind})


@bp.delete("/control/faults")
def control_clear_faults() -> Any:
    """Disarm any pending fault."""
    _state().clear_faults()
    return jsonify({"id_token": None})


@bp.get("/control/revoked")
def control_revoked() -> Response:
    """Tokens revoked through /auth/revoke, oldest first."""
    return jsonify(_state().revoked_tokens())


@bp.post("/control/reset")
def control_reset() -> Any:
    """Forget codes, tokens, faults and authorizations."""
    _state().reset()
    return jsonify({"reset": True})


# Control page (HTML)


def _control_page(result: dict[str, Any] | None = None, status: int = 200) -> tuple[str, int]:
    state = _state()
    with state.lock:
        clients = sorted(state.clients.values(), key=lambda c: c.client_id)
        pending_fault = state.pending_fault
        revoked = list(state.revoked)
    return (
        render_template(
            "sandbox/control.html",
            clients=clients,
            persons=state.persons,
            notification_types=NOTIFICATION_TYPES,
            fault_kinds=sorted(FAULT_KINDS),
            pending_fault=pending_fault,
            revoked=revoked,
            oauth_clients=state.networks.clients_by_network(),
            result=result,
        ),
        status,
    )


@bp.get("/control")
def control_page() -> Any:
    """Buttons to send notifications and arm faults by hand."""
    return _control_page()


@bp.post("/control/notifications/form")
def control_notifications_form() -> Any:
    """HTML-form variant of /control/notifications."""
    form = request.form
    if not all(form.get(name) for name in ("client_id", "sub", "type")):
        return _control_page({"error": "client_id, sub and type are required."}, 400)
    try:
        result = _send_notification(
            client_id=form.get("client_id", ""),
            sub=form.get("sub", ""),
            event_type=form.get("type", ""),
            bad_signature=form.get("bad_signature") == "on",
            send=form.get("send", "on") == "on",
        )
    except LookupError as exc:
        return _control_page({"error": str(exc)}, 404)
    summary = f"{form.get('type')} for {form.get('sub')} to {form.get('client_id')}"
    return _control_page({"summary": summary, **result})


@bp.post("/control/faults/form")
def control_faults_form() -> Any:
    """HTML-form variant of /control/faults (empty kind clears)."""
    kind = request.form.get("id_token", "")
    state = _state()
    if not kind:
        state.clear_faults()
        return _control_page({"summary": "Pending fault cleared."})
    try:
        state.inject_fault(kind)
    except ValueError as exc:
        return _control_page({"error": str(exc)}, 400)
    return _control_page({"summary": f"Next token response carries fault {kind!r}."})
