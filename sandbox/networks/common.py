"""Flask helpers shared by the network blueprints: the consent flow, client auth, JSON errors."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from flask import Response, current_app, jsonify, redirect, render_template, request
from flask.typing import ResponseReturnValue

from sandbox.networks.persons import person_on, persons_on
from sandbox.networks.store import (
    CODE_LIFETIME,
    NetworkCode,
    NetworkStore,
    NetworkToken,
    OAuthClient,
    ProviderError,
)

NETWORK_TITLES = {
    "vkid": "VK ID",
    "ok": "Odnoklassniki",
    "mailru": "Mail.ru",
    "yandex": "Yandex ID",
    "telegram": "Telegram",
    "google": "Google",
}


def store() -> NetworkStore:
    """The networks' state of the current sandbox app."""
    return current_app.extensions["sandbox"].networks


# Authorization requests and the consent page


class Refused(Exception):
    """An authorization request refused with an error page (never a redirect)."""


@dataclass(frozen=True)
class AuthRequest:
    """A validated authorization request."""

    network: str
    client: OAuthClient
    redirect_uri: str
    state: str | None
    scope: str = ""
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    # Fields added to every redirect back (OpenID Connect's iss).
    response_extra: Mapping[str, str] = field(default_factory=dict)


ConsentHandler = Callable[[AuthRequest, dict[str, Any]], dict[str, str]]


def registered_client(
    network: str,
    params: Mapping[str, str],
    *,
    client_param: str = "client_id",
    redirect_param: str = "redirect_uri",
    ignore_query: bool = False,
) -> tuple[OAuthClient, str]:
    """The client and its exactly registered redirect URI (maybe plus a query), or Refused."""
    client_id = params.get(client_param, "")
    if not client_id:
        raise Refused(f"invalid_request: {client_param} is missing.")
    client = store().get_client(network, client_id)
    if client is None:
        raise Refused(f"invalid_client: {client_param} {client_id!r} is not registered.")
    redirect_uri = params.get(redirect_param, "")
    if not redirect_uri:
        raise Refused(f"invalid_request: {redirect_param} is missing.")
    bare_uri = urlunsplit(urlsplit(redirect_uri)._replace(query="")) if ignore_query else None
    if redirect_uri not in client.redirect_uris and bare_uri not in client.redirect_uris:
        raise Refused(
            f"invalid_request: {redirect_param} {redirect_uri!r} is not registered for this client."
        )
    return client, redirect_uri


def parse_code_request(
    network: str,
    params: Mapping[str, str],
    *,
    pkce_required: bool = False,
    pkce_methods: tuple[str, ...] = (),
    response_extra: Mapping[str, str] | None = None,
) -> AuthRequest:
    """Validate a response_type=code request; ``pkce_methods=()`` ignores PKCE parameters."""
    client, redirect_uri = registered_client(network, params)
    response_type = params.get("response_type", "")
    if response_type != "code":
        raise Refused(
            f"unsupported_response_type: response_type must be 'code', got {response_type!r}."
        )
    challenge, method = _pkce(params, required=pkce_required, methods=pkce_methods)
    return AuthRequest(
        network=network,
        client=client,
        redirect_uri=redirect_uri,
        state=params.get("state") or None,
        scope=params.get("scope", ""),
        nonce=params.get("nonce") or None,
        code_challenge=challenge,
        code_challenge_method=method,
        response_extra=dict(response_extra or {}),
    )


def _pkce(
    params: Mapping[str, str], *, required: bool, methods: tuple[str, ...]
) -> tuple[str | None, str | None]:
    if not methods:
        return None, None
    challenge = params.get("code_challenge") or None
    if challenge is None:
        if required:
            raise Refused("invalid_request: code_challenge is required.")
        return None, None
    method = params.get("code_challenge_method") or "plain"
    if method not in methods:
        raise Refused(
            f"invalid_request: code_challenge_method must be {' or '.join(methods)}, "
            f"got {method!r}."
        )
    return challenge, method


def consent_flow(
    network: str,
    parse: Callable[[Mapping[str, str]], AuthRequest],
    on_consent: ConsentHandler,
) -> ResponseReturnValue:
    """GET shows the person picker; POST redirects back with on_consent's fields or a denial."""
    params = request.args if request.method == "GET" else request.form
    try:
        req = parse(params)
    except Refused as exc:
        return error_page(network, str(exc))
    if request.method == "GET":
        return render_template(
            "sandbox/consent.html",
            network_title=NETWORK_TITLES[network],
            req=req,
            persons=persons_on(network),
            hidden={k: v for k, v in params.items() if k not in ("person", "action")},
            action=request.script_root + request.path,
        )
    if params.get("action") == "cancel":
        return redirect_back(req.redirect_uri, with_state(req, {"error": "access_denied"}))
    person = person_on(network, params.get("person", ""))
    if person is None:
        return error_page(network, "invalid_request: choose one of the sandbox persons.")
    return redirect_back(req.redirect_uri, on_consent(req, person))


def issue_code(
    req: AuthRequest,
    person: dict[str, Any],
    *,
    bindings: Mapping[str, str] | None = None,
    lifetime: int = CODE_LIFETIME,
) -> str:
    """A single-use code bound to the request and the chosen person."""
    return store().issue_code(
        req.client,
        redirect_uri=req.redirect_uri,
        person=person["sub"],
        scope=req.scope,
        nonce=req.nonce,
        code_challenge=req.code_challenge,
        code_challenge_method=req.code_challenge_method,
        bindings=bindings,
        lifetime=lifetime,
    )


def with_state(req: AuthRequest, fields: dict[str, str]) -> dict[str, str]:
    """Fields plus the request's state (when given) and the network's extra fields."""
    if req.state is not None:
        fields["state"] = req.state
    return {**fields, **req.response_extra}


def code_consent(req: AuthRequest, person: dict[str, Any]) -> dict[str, str]:
    """The usual answer to a consent: ``?code&state``."""
    return with_state(req, {"code": issue_code(req, person)})


def redirect_back(url: str, fields: Mapping[str, str]) -> Response:
    """302 to url with fields added to its query."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *fields.items()]
    return redirect(urlunsplit(parts._replace(query=urlencode(query))), code=302)


def error_page(network: str, message: str, status: int = 400) -> tuple[str, int]:
    """The network's HTML error page."""
    page = render_template(
        "sandbox/network_error.html", network_title=NETWORK_TITLES[network], message=message
    )
    return page, status


# Token endpoints


def token_endpoint(network: str, exchange: Callable[[], dict[str, Any]]) -> ResponseReturnValue:
    """Answer a token request: an injected error first, else exchange()'s body or its error."""
    injected = store().pop_token_error(network)
    if injected is not None:
        return no_store(jsonify({"error": injected})), 400
    try:
        body = exchange()
    except ProviderError as exc:
        return provider_error(exc)
    return no_store(jsonify(body))


def provider_error(exc: ProviderError) -> tuple[Response, int]:
    """``{"error", "error_description"}`` with the error's status."""
    body = {"error": exc.error}
    if exc.description:
        body["error_description"] = exc.description
    return no_store(jsonify(body)), exc.status


def no_store(response: Response) -> Response:
    """Mark a response holding tokens as not cacheable."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def require_grant_type(values: Mapping[str, str], expected: str = "authorization_code") -> None:
    """Refuse any other grant_type."""
    grant_type = values.get("grant_type", "")
    if grant_type != expected:
        raise ProviderError("unsupported_grant_type", f"grant_type {grant_type!r}")


def client_credentials(values: Mapping[str, str]) -> tuple[str, str | None]:
    """client_id and client_secret from HTTP Basic (RFC 6749 2.3.1) or the parameters."""
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        return unquote_plus(auth.username or ""), unquote_plus(auth.password or "")
    return values.get("client_id", ""), values.get("client_secret")


def authenticate(
    network: str, client_id: str, client_secret: str | None, *, check_secret: bool = True
) -> OAuthClient:
    """The registered client; its secret must match when it has one and check_secret is set."""
    client = store().get_client(network, client_id) if client_id else None
    if client is None:
        raise ProviderError("invalid_client", "unknown client_id")
    if check_secret and client.client_secret is not None:
        given = (client_secret or "").encode()
        if not hmac.compare_digest(given, client.client_secret.encode()):
            raise ProviderError("invalid_client", "wrong client_secret")
    return client


def redeem_code(
    client: OAuthClient,
    values: Mapping[str, str],
    *,
    redirect_uri_required: bool = True,
    bindings: Mapping[str, str] | None = None,
) -> tuple[NetworkCode, dict[str, Any]]:
    """Consume the request's code for this client; returns it with its person."""
    value = values.get("code", "")
    if not value:
        raise ProviderError("invalid_request", "code is missing")
    redirect_uri = values.get("redirect_uri")
    code = store().redeem_code(
        client.network,
        value,
        client_id=client.client_id,
        redirect_uri=(redirect_uri or "") if redirect_uri_required else redirect_uri,
        code_verifier=values.get("code_verifier"),
        bindings=bindings,
    )
    person = person_on(client.network, code.person)
    if person is None:
        raise ProviderError("invalid_grant", "the person is no longer in the sandbox")
    return code, person


@dataclass(frozen=True)
class Exchange:
    """A code a confidential client redeemed, with the tokens issued for it."""

    client: OAuthClient
    code: NetworkCode
    person: dict[str, Any]
    access: NetworkToken
    refresh: NetworkToken


def exchange_code(
    network: str, values: Mapping[str, str], *, lifetime: int, redirect_uri_required: bool = True
) -> Exchange:
    """The authorization_code grant as most networks run it: grant type, client credentials
    (HTTP Basic or parameters), the code, then an access and a refresh token."""
    require_grant_type(values)
    client = authenticate(network, *client_credentials(values))
    code, person = redeem_code(client, values, redirect_uri_required=redirect_uri_required)
    access, refresh = store().issue_tokens(code, lifetime=lifetime)
    return Exchange(client, code, person, access, refresh)


# Resource endpoints


def authorization_token(scheme: str) -> str | None:
    """The credential of an ``Authorization: <scheme> <token>`` header, if that is the scheme."""
    kind, _, credential = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() != scheme.lower() or not credential.strip():
        return None
    return credential.strip()


def token_person(
    network: str, token: str | None, client_id: str | None = None, *, description: str = ""
) -> tuple[NetworkToken, dict[str, Any]]:
    """(token, person) for a live access token, or ProviderError invalid_token (401)."""
    issued = store().access_token(network, token, client_id) if token else None
    person = person_on(network, issued.person) if issued is not None else None
    if issued is None or person is None:
        raise ProviderError("invalid_token", description, 401)
    return issued, person
