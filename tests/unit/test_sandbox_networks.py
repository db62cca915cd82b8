"""Tests of the sandbox's six social networks on their own, through the Flask test client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from sandbox import SandboxState, create_sandbox_app

ANNA = "001001.anna"
BORIS = "001002.boris"
CHEN = "001003.chen"
STATE = "st-0123456789abcdef0123456789abcdef"
NONCE = "n-0S6_WzA2Mj"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
SECRET = "client-secret-1"
OK_APP_KEY = "CBAFAKEKEY"
BOT_ID = "123456"
BOT_TOKEN = f"{BOT_ID}:AAE-sandbox-bot-token"
PORTAL = "https://portal.example"
NETWORKS = ("vkid", "ok", "mailru", "yandex", "telegram", "google")
OIDC = ("telegram", "google")
PKCE_NETWORKS = ("vkid", "yandex", "telegram", "google")
NEAR_MISS = "registered URI plus a trailing slash"
TITLES = {
    "vkid": "VK ID",
    "ok": "Odnoklassniki",
    "mailru": "Mail.ru",
    "yandex": "Yandex ID",
    "telegram": "Telegram",
    "google": "Google",
}
AUTHORIZE_PATHS = {
    "vkid": "/vkid/authorize",
    "ok": "/ok-connect/oauth/authorize",
    "mailru": "/mailru/login",
    "yandex": "/yandex-oauth/authorize",
    "telegram": "/telegram/auth",
    "google": "/google/auth",
}
CLIENT_IDS = {
    "vkid": "51234567",
    "ok": "512000000001",
    "mailru": "mailru-app-1",
    "yandex": "yandex-app-1",
    "telegram": BOT_ID,
    "google": "1234-abc.apps.googleusercontent.com",
}


def redirect_uri(network: str) -> str:
    return f"{PORTAL}/auth/{network}/callback"


# Fixtures and helpers


@pytest.fixture
def sandbox_app() -> Flask:
    return create_sandbox_app()


@pytest.fixture
def state(sandbox_app: Flask) -> SandboxState:
    registered: SandboxState = sandbox_app.extensions["sandbox"]
    for network in NETWORKS:
        extra: dict[str, Any] | None = None
        if network == "ok":
            extra = {"application_key": OK_APP_KEY, "email_permission": True}
        elif network == "telegram":
            extra = {"bot_token": BOT_TOKEN}
        registered.register_oauth_client(
            network,
            CLIENT_IDS[network],
            client_secret=None if network == "vkid" else SECRET,
            redirect_uris=[redirect_uri(network)],
            extra=extra,
        )
    return registered


@pytest.fixture
def client(sandbox_app: Flask, state: SandboxState) -> Iterator[FlaskClient]:
    with sandbox_app.test_client() as test_client:
        yield test_client


class _FormParser(HTMLParser):
    """The first form's action, its hidden inputs and its buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.buttons: list[dict[str, str | None]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attributes.get("action")
        elif tag == "input" and attributes.get("type") == "hidden":
            self.fields[attributes["name"] or ""] = attributes.get("value") or ""
        elif tag == "button":
            self.buttons.append(attributes)
        self._in_title = tag == "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


def parse_form(html: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(html)
    return parser


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def authorize_params(network: str, **overrides: str | None) -> dict[str, str]:
    """A valid authorization request of this network, as the product sends it."""
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT_IDS[network],
        "redirect_uri": redirect_uri(network),
        "state": STATE,
    }
    if network in PKCE_NETWORKS:
        params.update(code_challenge=CHALLENGE, code_challenge_method="S256")
    params["scope"] = {
        "vkid": "vkid.personal_info email",
        "ok": "VALUABLE_ACCESS;GET_EMAIL",
        "mailru": "userinfo",
        "yandex": None,
        "telegram": "openid profile",
        "google": "openid email profile",
    }[network]
    if network in OIDC:
        params["nonce"] = NONCE
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def query_of(response: TestResponse) -> dict[str, str]:
    """The query of a 302's Location, one value per name."""
    assert response.status_code == 302, response.get_data(as_text=True)
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def consent(
    client: FlaskClient, network: str, person: str = ANNA, **overrides: str | None
) -> dict[str, str]:
    """Open the network's page, pick a person; return the fields sent back to the product."""
    path = AUTHORIZE_PATHS[network]
    page = client.get(path, query_string=authorize_params(network, **overrides))
    assert page.status_code == 200, page.get_data(as_text=True)
    fields = parse_form(page.get_data(as_text=True)).fields
    return query_of(client.post(path, data={**fields, "person": person}))


def _vkid_token(client: FlaskClient, callback: dict[str, str], **form: str) -> TestResponse:
    return client.post(
        "/vkid/oauth2/auth",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "code_verifier": VERIFIER,
            "device_id": callback["device_id"],
            "redirect_uri": redirect_uri("vkid"),
            "client_id": CLIENT_IDS["vkid"],
            "state": callback["state"],
            **form,
        },
    )


def _ok_token(client: FlaskClient, callback: dict[str, str], **form: str) -> TestResponse:
    return client.post(
        "/ok-api/oauth/token.do",
        data={
            "code": callback["code"],
            "client_id": CLIENT_IDS["ok"],
            "client_secret": SECRET,
            "redirect_uri": redirect_uri("ok"),
            "grant_type": "authorization_code",
            **form,
        },
    )


def _mailru_token(
    client: FlaskClient,
    callback: dict[str, str],
    *,
    client_id: str = CLIENT_IDS["mailru"],
    client_secret: str = SECRET,
    **form: str,
) -> TestResponse:
    """Mail.ru's client authenticates with HTTP Basic here."""
    return client.post(
        "/mailru/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": redirect_uri("mailru"),
            **form,
        },
        auth=(client_id, client_secret),
    )


def _yandex_token(client: FlaskClient, callback: dict[str, str], **form: str) -> TestResponse:
    return client.post(
        "/yandex-oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "client_id": CLIENT_IDS["yandex"],
            "client_secret": SECRET,
            "code_verifier": VERIFIER,
            **form,
        },
    )


def _oidc_token(network: str) -> Callable[..., TestResponse]:
    def token(client: FlaskClient, callback: dict[str, str], **form: str) -> TestResponse:
        return client.post(
            f"/{network}/token",
            data={
                "grant_type": "authorization_code",
                "code": callback["code"],
                "redirect_uri": redirect_uri(network),
                "client_id": CLIENT_IDS[network],
                "client_secret": SECRET,
                "code_verifier": VERIFIER,
                **form,
            },
        )

    return token


TOKEN_REQUESTS: dict[str, Callable[..., TestResponse]] = {
    "vkid": _vkid_token,
    "ok": _ok_token,
    "mailru": _mailru_token,
    "yandex": _yandex_token,
    "telegram": _oidc_token("telegram"),
    "google": _oidc_token("google"),
}


def exchange(client: FlaskClient, network: str, callback: dict[str, str], **form: str) -> Any:
    response = TOKEN_REQUESTS[network](client, callback, **form)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def ok_sig(params: dict[str, str], access_token: str, secret: str) -> str:
    """Odnoklassniki's documented formula, written out independently of the sandbox."""
    secret_key = hashlib.md5((access_token + secret).encode(), usedforsecurity=False).hexdigest()
    joined = "".join(f"{k}={v}" for k, v in sorted(params.items()))
    return hashlib.md5((joined + secret_key).encode(), usedforsecurity=False).hexdigest()


def ok_call(client: FlaskClient, access_token: str, *, sig: str | None = None, **extra: str) -> Any:
    params = {
        "application_key": OK_APP_KEY,
        "method": "users.getCurrentUser",
        "format": "json",
        **extra,
    }
    signature = sig if sig is not None else ok_sig(params, access_token, SECRET)
    response = client.get(
        "/ok-api/fb.do", query_string={**params, "access_token": access_token, "sig": signature}
    )
    assert response.status_code == 200
    return response.get_json()


def widget_hash(fields: dict[str, str], bot_token: str) -> str:
    """Telegram's documented widget hash, written out independently of the sandbox."""
    check = "\n".join(sorted(f"{k}={v}" for k, v in fields.items() if k != "hash"))
    key = hashlib.sha256(bot_token.encode()).digest()
    return hmac.new(key, check.encode(), hashlib.sha256).hexdigest()


def oidc_claims(client: FlaskClient, network: str, id_token: str, **options: Any) -> Any:
    """Verify an id_token the way a relying party does: discovery, jwks, kid."""
    config = client.get(f"/{network}/.well-known/openid-configuration").get_json()
    jwks = client.get(urlsplit(config["jwks_uri"]).path).get_json()
    kid = jwt.get_unverified_header(id_token)["kid"]
    key = next(jwt.PyJWK(k).key for k in jwks["keys"] if k["kid"] == kid)
    return jwt.decode(
        id_token,
        key,
        algorithms=["RS256"],
        audience=CLIENT_IDS[network],
        issuer=config["issuer"],
        **options,
    )


# Persons


def test_persons_have_a_profile_on_every_network(state: SandboxState) -> None:
    anna, boris, chen = state.persons
    assert anna["networks"]["vk"]["user_id"] == 1001001
    assert anna["networks"]["ok"]["uid"] == "570001001"
    assert anna["networks"]["mailru"]["email"] == "anna@mail.ru"
    assert anna["networks"]["yandex"]["login"] == "anna.ivanova"
    assert anna["networks"]["telegram"]["id"] == 7001001
    assert anna["networks"]["google"]["sub"] == "100000000000000001001"
    assert [p["networks"]["google"]["email_verified"] for p in (anna, boris, chen)] == [
        True,
        False,
        True,
    ]
    assert anna["email"] == "anna.ivanova@example.com"  # Apple fields unchanged


# Behaviour the networks share


@pytest.mark.parametrize("network", NETWORKS)
def test_authorize_page_lists_persons_and_keeps_the_request(
    client: FlaskClient, network: str
) -> None:
    params = authorize_params(network)
    response = client.get(AUTHORIZE_PATHS[network], query_string=params)

    assert response.status_code == 200
    form = parse_form(response.get_data(as_text=True))
    assert form.title == f"Sandbox {TITLES[network]}"
    assert form.action == AUTHORIZE_PATHS[network]
    assert form.fields == params
    assert [b.get("data-person") for b in form.buttons if b.get("data-person")] == [
        ANNA,
        BORIS,
        CHEN,
    ]
    assert any(b.get("data-action") == "cancel" for b in form.buttons)


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"client_id": "nobody"}, "'nobody' is not registered"),
        ({"client_id": None}, "client_id is missing"),
        ({"redirect_uri": "https://evil.example/cb"}, "is not registered for this client"),
        ({"redirect_uri": f"{PORTAL}/auth/x/callback/"}, "is not registered for this client"),
        ({"response_type": "token"}, "response_type must be 'code'"),
    ],
    ids=["unknown-client", "no-client", "foreign-redirect", "near-miss-redirect", "token"],
)
def test_bad_authorization_requests_get_an_error_page_not_a_redirect(
    client: FlaskClient, network: str, overrides: dict[str, str | None], problem: str
) -> None:
    if overrides.get("redirect_uri") == NEAR_MISS:
        overrides = {"redirect_uri": redirect_uri(network) + "/"}
    params = authorize_params(network, **overrides)
    for response in (
        client.get(AUTHORIZE_PATHS[network], query_string=params),
        client.post(AUTHORIZE_PATHS[network], data={**params, "person": ANNA}),
    ):
        assert response.status_code == 400
        assert "Location" not in response.headers
        body = html.unescape(response.get_data(as_text=True))
        assert f"Sandbox {TITLES[network]}" in body
        assert problem in body


@pytest.mark.parametrize("network", NETWORKS)
def test_cancel_redirects_with_access_denied(client: FlaskClient, network: str) -> None:
    params = authorize_params(network)
    fields = query_of(client.post(AUTHORIZE_PATHS[network], data={**params, "action": "cancel"}))
    assert fields["error"] == "access_denied"
    assert fields["state"] == STATE
    assert "code" not in fields
    if network in OIDC:
        assert fields["iss"] == f"http://localhost/{network}"


@pytest.mark.parametrize("network", NETWORKS)
def test_consent_requires_a_sandbox_person(client: FlaskClient, network: str) -> None:
    params = authorize_params(network)
    response = client.post(AUTHORIZE_PATHS[network], data={**params, "person": "nobody"})
    assert response.status_code == 400
    assert "sandbox persons" in response.get_data(as_text=True)


@pytest.mark.parametrize("network", NETWORKS)
def test_code_is_single_use(client: FlaskClient, network: str) -> None:
    callback = consent(client, network)
    exchange(client, network, callback)

    replay = TOKEN_REQUESTS[network](client, callback)
    assert replay.status_code == 400
    assert replay.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("network", NETWORKS)
def test_unknown_or_expired_code_is_invalid_grant(
    client: FlaskClient, state: SandboxState, network: str
) -> None:
    callback = consent(client, network)
    forged = TOKEN_REQUESTS[network](client, {**callback, "code": "forged"})
    assert forged.get_json()["error"] == "invalid_grant"

    state.networks.codes[callback["code"]].expires_at = time.time() - 1
    expired = TOKEN_REQUESTS[network](client, callback)
    assert expired.status_code == 400
    assert expired.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("network", [n for n in NETWORKS if n != "yandex"])
def test_token_request_must_repeat_the_redirect_uri(client: FlaskClient, network: str) -> None:
    callback = consent(client, network)
    response = TOKEN_REQUESTS[network](client, callback, redirect_uri=f"{PORTAL}/elsewhere")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("network", NETWORKS)
def test_code_of_another_client_is_refused(
    client: FlaskClient, state: SandboxState, network: str
) -> None:
    extra = {"application_key": "OTHERKEY"} if network == "ok" else None
    state.register_oauth_client(
        network,
        "other-app",
        client_secret=None if network == "vkid" else SECRET,
        redirect_uris=[redirect_uri(network)],
        extra=extra,
    )
    callback = consent(client, network)
    response = TOKEN_REQUESTS[network](client, callback, client_id="other-app")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("network", NETWORKS)
def test_unknown_client_at_the_token_endpoint_is_invalid_client(
    client: FlaskClient, network: str
) -> None:
    callback = consent(client, network)
    response = TOKEN_REQUESTS[network](client, callback, client_id="nobody")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize("network", [n for n in NETWORKS if n != "vkid"])
def test_wrong_client_secret_is_invalid_client(client: FlaskClient, network: str) -> None:
    callback = consent(client, network)
    response = TOKEN_REQUESTS[network](client, callback, client_secret="wrong")
    assert response.get_json()["error"] == "invalid_client"
    # The code survives a refused client and still works for the real one.
    exchange(client, network, callback)


@pytest.mark.parametrize("network", NETWORKS)
def test_injected_token_error_refuses_once(
    client: FlaskClient, state: SandboxState, network: str
) -> None:
    callback = consent(client, network)
    state.inject_token_error(network, "temporarily_unavailable")

    refused = TOKEN_REQUESTS[network](client, callback)
    assert refused.status_code == 400
    assert refused.get_json() == {"error": "temporarily_unavailable"}
    exchange(client, network, callback)


@pytest.mark.parametrize("network", PKCE_NETWORKS)
def test_wrong_code_verifier_is_invalid_grant(client: FlaskClient, network: str) -> None:
    callback = consent(client, network)
    for verifier in ("A" * 43, ""):
        response = TOKEN_REQUESTS[network](client, callback, code_verifier=verifier)
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_grant"
    exchange(client, network, callback)


@pytest.mark.parametrize(
    ("network", "overrides", "accepted"),
    [
        ("vkid", {"code_challenge": None, "code_challenge_method": None}, False),
        ("vkid", {"code_challenge_method": "plain"}, False),
        ("vkid", {"code_challenge_method": None}, False),
        ("telegram", {"code_challenge": None, "code_challenge_method": None}, False),
        ("telegram", {"code_challenge_method": "plain"}, False),
        ("google", {"code_challenge_method": "plain"}, False),
        ("google", {"code_challenge": None, "code_challenge_method": None}, True),
        ("yandex", {"code_challenge": None, "code_challenge_method": None}, True),
        ("yandex", {"code_challenge_method": "plain"}, True),
    ],
)
def test_pkce_requirements_at_the_authorize_endpoint(
    client: FlaskClient, network: str, overrides: dict[str, str | None], accepted: bool
) -> None:
    params = authorize_params(network, **overrides)
    response = client.get(AUTHORIZE_PATHS[network], query_string=params)
    assert response.status_code == (200 if accepted else 400)
    if not accepted:
        assert "code_challenge" in response.get_data(as_text=True)


def test_yandex_plain_pkce_and_no_pkce(client: FlaskClient) -> None:
    plain = consent(client, "yandex", code_challenge=VERIFIER, code_challenge_method="plain")
    exchange(client, "yandex", plain)
    without = consent(client, "yandex", code_challenge=None, code_challenge_method=None)
    exchange(client, "yandex", without, code_verifier="")


def test_google_without_pkce(client: FlaskClient) -> None:
    callback = consent(client, "google", code_challenge=None, code_challenge_method=None)
    exchange(client, "google", callback, code_verifier="")


def test_reset_forgets_codes_tokens_and_faults_but_keeps_clients(
    client: FlaskClient, state: SandboxState
) -> None:
    pending = consent(client, "google")
    tokens = exchange(client, "google", consent(client, "google"))
    state.inject_token_error("mailru", "server_error")
    state.inject_oidc_fault("google", "wrong_aud")

    state.reset()

    assert _oidc_token("google")(client, pending).get_json()["error"] == "invalid_grant"
    userinfo = client.get(
        "/google/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 401
    assert exchange(client, "mailru", consent(client, "mailru"))["access_token"]
    claims = oidc_claims(
        client, "google", exchange(client, "google", consent(client, "google"))["id_token"]
    )
    assert claims["aud"] == CLIENT_IDS["google"]


# VK ID


def test_vkid_full_flow(client: FlaskClient) -> None:
    callback = consent(client, "vkid")
    assert set(callback) == {"code", "state", "device_id", "type", "expires_in", "ext_id"}
    assert callback["state"] == STATE
    assert callback["type"] == "code_v2"
    assert callback["expires_in"] == "600"
    assert callback["device_id"] and callback["ext_id"]

    tokens = exchange(client, "vkid", callback)
    assert set(tokens) == {
        "access_token",
        "refresh_token",
        "id_token",
        "token_type",
        "expires_in",
        "user_id",
        "state",
        "scope",
    }
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["user_id"] == 1001001
    assert tokens["state"] == STATE
    assert tokens["scope"] == "vkid.personal_info email"

    form = {"access_token": tokens["access_token"], "client_id": CLIENT_IDS["vkid"]}
    user = client.post("/vkid/oauth2/user_info", data=form).get_json()["user"]
    assert user["user_id"] == "1001001"
    assert (user["first_name"], user["last_name"]) == ("Anna", "Ivanova")
    assert user["email"] == "anna.ivanova@example.com"
    assert (user["sex"], user["verified"], user["birthday"]) == (0, False, "")
    assert user["avatar"].startswith("http://localhost/persons/")
    assert client.get(urlsplit(user["avatar"]).path).mimetype == "image/svg+xml"

    assert client.post("/vkid/oauth2/revoke", data=form).get_json() == {"response": 1}
    revoked = client.post("/vkid/oauth2/user_info", data=form)
    assert revoked.status_code == 401
    assert revoked.get_json() == {"error": "invalid_token"}


def test_vkid_token_errors(client: FlaskClient) -> None:
    callback = consent(client, "vkid")
    wrong_device = _vkid_token(client, callback, device_id="another-device")
    assert wrong_device.status_code == 400
    body = wrong_device.get_json()
    assert body["error"] == "invalid_grant"
    assert "device_id" in body["error_description"]

    assert _vkid_token(client, callback, grant_type="password").get_json()["error"] == (
        "unsupported_grant_type"
    )


def test_vkid_user_info_needs_the_tokens_client(client: FlaskClient) -> None:
    tokens = exchange(client, "vkid", consent(client, "vkid", BORIS))
    response = client.post(
        "/vkid/oauth2/user_info", data={"access_token": tokens["access_token"], "client_id": "x"}
    )
    assert response.status_code == 401


# Odnoklassniki


def test_ok_full_flow_with_a_signed_api_call(client: FlaskClient) -> None:
    callback = consent(client, "ok")
    assert set(callback) == {"code", "state"}

    tokens = exchange(client, "ok", callback)
    assert tokens["token_type"] == "session"
    assert tokens["expires_in"] == "1800"
    assert tokens["refresh_token"]

    user = ok_call(client, tokens["access_token"])
    assert user == {
        "uid": "570001001",
        "first_name": "Anna",
        "last_name": "Ivanova",
        "name": "Anna Ivanova",
        "email": "anna.ivanova@ok.ru",
        "pic_1": "http://localhost/persons/001001.anna/avatar.svg",
    }
    limited = ok_call(client, tokens["access_token"], fields="first_name,EMAIL")
    assert limited == {"uid": "570001001", "first_name": "Anna", "email": "anna.ivanova@ok.ru"}


def test_ok_token_parameters_may_come_in_the_query(client: FlaskClient) -> None:
    callback = consent(client, "ok")
    response = client.post(
        "/ok-api/oauth/token.do",
        query_string={
            "code": callback["code"],
            "client_id": CLIENT_IDS["ok"],
            "client_secret": SECRET,
            "redirect_uri": redirect_uri("ok"),
            "grant_type": "authorization_code",
        },
    )
    assert response.status_code == 200
    assert response.get_json()["token_type"] == "session"


def test_ok_api_errors(client: FlaskClient, state: SandboxState) -> None:
    token = exchange(client, "ok", consent(client, "ok"))["access_token"]

    assert ok_call(client, token, sig="0" * 32) == {
        "error_code": 104,
        "error_msg": "PARAM_SIGNATURE : Invalid signature",
        "error_data": None,
    }
    # A signature made with the wrong secret, or over other parameters, is just as wrong.
    params = {"application_key": OK_APP_KEY, "method": "users.getCurrentUser", "format": "json"}
    assert ok_call(client, token, sig=ok_sig(params, token, "wrong"))["error_code"] == 104
    assert (
        ok_call(client, token, sig=ok_sig(params, token, SECRET), fields="uid")["error_code"] == 104
    )
    assert ok_call(client, "unknown-token")["error_code"] == 102

    response = client.get(
        "/ok-api/fb.do",
        query_string={"application_key": "NOPE", "method": "users.getCurrentUser"},
    )
    assert response.status_code == 200
    assert response.get_json()["error_code"] == 101

    state.networks.revoke_token("ok", token)
    assert ok_call(client, token)["error_code"] == 102


def test_ok_api_accepts_post_and_hides_email_without_permission(
    client: FlaskClient, state: SandboxState
) -> None:
    state.register_oauth_client(
        "ok",
        CLIENT_IDS["ok"],
        client_secret=SECRET,
        redirect_uris=[redirect_uri("ok")],
        extra={"application_key": OK_APP_KEY},
    )
    token = exchange(client, "ok", consent(client, "ok", CHEN))["access_token"]
    params = {"application_key": OK_APP_KEY, "method": "users.getCurrentUser", "format": "json"}
    response = client.post(
        "/ok-api/fb.do",
        data={**params, "access_token": token, "sig": ok_sig(params, token, SECRET)},
    )
    user = response.get_json()
    assert user["uid"] == "570001003"
    assert "email" not in user


def test_ok_client_needs_an_application_key(state: SandboxState) -> None:
    with pytest.raises(ValueError, match="application_key"):
        state.register_oauth_client(
            "ok", "x", client_secret=SECRET, redirect_uris=[redirect_uri("ok")]
        )


# Mail.ru


@pytest.mark.parametrize("auth", ["basic", "form"])
def test_mailru_full_flow(client: FlaskClient, auth: str) -> None:
    callback = consent(client, "mailru", BORIS)
    assert set(callback) == {"code", "state"}
    form = {"grant_type": "authorization_code", "code": callback["code"]}
    form["redirect_uri"] = redirect_uri("mailru")
    if auth == "basic":
        response = client.post("/mailru/token", data=form, auth=(CLIENT_IDS["mailru"], SECRET))
    else:
        form.update(client_id=CLIENT_IDS["mailru"], client_secret=SECRET)
        response = client.post("/mailru/token", data=form)
    tokens = response.get_json()
    assert set(tokens) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert (tokens["expires_in"], tokens["token_type"]) == (3600, "bearer")

    user = client.get(
        "/mailru/userinfo", query_string={"access_token": tokens["access_token"]}
    ).get_json()
    assert user == {
        "id": "17238001002",
        "email": "boris@mail.ru",
        "first_name": "Boris",
        "last_name": "Petrov",
        "name": "Boris Petrov",
        "image": "http://localhost/persons/001002.boris/avatar.svg",
        "locale": "ru_RU",
    }


def test_mailru_userinfo_refuses_a_bad_token(client: FlaskClient) -> None:
    response = client.get("/mailru/userinfo", query_string={"access_token": "nope"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert response.get_json()["error_description"]


# Yandex ID


def test_yandex_full_flow(client: FlaskClient) -> None:
    callback = consent(client, "yandex", CHEN)
    assert set(callback) == {"code", "state"}
    tokens = exchange(client, "yandex", callback)
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert (tokens["token_type"], tokens["expires_in"]) == ("bearer", 31536000)

    header = {"Authorization": f"OAuth {tokens['access_token']}"}
    info = client.get("/yandex-login/info", query_string={"format": "json"}, headers=header)
    assert info.status_code == 200
    user = info.get_json()
    assert user["id"] == "1130001003"
    assert user["login"] == "chen.li"
    assert user["client_id"] == CLIENT_IDS["yandex"]
    assert (user["first_name"], user["last_name"]) == ("Chen", "Li")
    assert user["display_name"] == "chen.li"
    assert user["default_email"] == "chen.li@yandex.ru"
    assert user["emails"] == ["chen.li@yandex.ru"]
    assert user["psuid"]

    revoked = client.post(
        "/yandex-oauth/revoke_token",
        data={
            "access_token": tokens["access_token"],
            "client_id": CLIENT_IDS["yandex"],
            "client_secret": SECRET,
        },
    )
    assert revoked.get_json() == {"status": "ok"}
    after = client.get("/yandex-login/info", query_string={"format": "json"}, headers=header)
    assert after.status_code == 401


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ({"format": "json", "oauth_token": "TOKEN"}, {}),
        ({"format": "json", "oauth_token": "TOKEN"}, {"Authorization": "OAuth TOKEN"}),
        ({"format": "json"}, {"Authorization": "Bearer TOKEN"}),
        ({"format": "json"}, {}),
    ],
    ids=["query", "query-and-header", "bearer", "none"],
)
def test_yandex_info_wants_the_token_in_an_oauth_header_only(
    client: FlaskClient, query: dict[str, str], headers: dict[str, str]
) -> None:
    token = exchange(client, "yandex", consent(client, "yandex"))["access_token"]
    query = {k: v.replace("TOKEN", token) for k, v in query.items()}
    headers = {k: v.replace("TOKEN", token) for k, v in headers.items()}
    response = client.get("/yandex-login/info", query_string=query, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"


# OpenID Connect: Telegram and Google


@pytest.mark.parametrize("network", OIDC)
def test_oidc_discovery(client: FlaskClient, network: str) -> None:
    config = client.get(f"/{network}/.well-known/openid-configuration").get_json()
    issuer = f"http://localhost/{network}"
    assert config["issuer"] == issuer
    assert config["authorization_endpoint"] == f"{issuer}/auth"
    assert config["token_endpoint"] == f"{issuer}/token"
    assert config["jwks_uri"] == f"{issuer}/jwks"
    assert config["userinfo_endpoint"] == f"{issuer}/userinfo"
    assert config["revocation_endpoint"] == f"{issuer}/revoke"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["authorization_response_iss_parameter_supported"] is True
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    assert config["scopes_supported"] == ["openid", "profile", "email"]
    keys = client.get(f"/{network}/jwks").get_json()["keys"]
    assert [(k["kty"], k["alg"]) for k in keys] == [("RSA", "RS256")]


def test_oidc_networks_have_their_own_keys(client: FlaskClient) -> None:
    telegram = client.get("/telegram/jwks").get_json()["keys"][0]["kid"]
    google = client.get("/google/jwks").get_json()["keys"][0]["kid"]
    assert telegram != google


EXPECTED_CLAIMS = {
    "telegram": {
        "sub": "7001001",
        "id": 7001001,
        "name": "Anna Ivanova",
        "preferred_username": "anna_ivanova",
        "picture": "http://localhost/persons/001001.anna/avatar.svg",
    },
    "google": {
        "sub": "100000000000000001001",
        "email": "anna.ivanova@gmail.com",
        "email_verified": True,
        "name": "Anna Ivanova",
        "given_name": "Anna",
        "family_name": "Ivanova",
    },
}


@pytest.mark.parametrize("network", OIDC)
def test_oidc_full_flow(client: FlaskClient, network: str) -> None:
    callback = consent(client, network)
    assert set(callback) == {"code", "state", "iss"}
    assert callback["iss"] == f"http://localhost/{network}"

    tokens = exchange(client, network, callback)
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"] == authorize_params(network)["scope"]
    assert ("refresh_token" in tokens) is (network == "google")

    claims = oidc_claims(client, network, tokens["id_token"])
    assert claims["nonce"] == NONCE
    assert claims["exp"] > claims["iat"] >= claims["auth_time"] - 1
    assert {k: claims[k] for k in EXPECTED_CLAIMS[network]} == EXPECTED_CLAIMS[network]

    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (
        client.get(f"/{network}/userinfo", headers=bearer).get_json() == (EXPECTED_CLAIMS[network])
    )

    revoked = client.post(f"/{network}/revoke", data={"token": tokens["access_token"]})
    assert revoked.status_code == 200
    after = client.get(f"/{network}/userinfo", headers=bearer)
    assert after.status_code == 401
    assert "invalid_token" in after.headers["WWW-Authenticate"]


def test_google_email_verified_is_false_for_boris(client: FlaskClient) -> None:
    tokens = exchange(client, "google", consent(client, "google", BORIS))
    claims = oidc_claims(client, "google", tokens["id_token"])
    assert claims["email_verified"] is False


@pytest.mark.parametrize("network", OIDC)
def test_oidc_client_secret_basic(client: FlaskClient, network: str) -> None:
    callback = consent(client, network)
    response = client.post(
        f"/{network}/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": redirect_uri(network),
            "code_verifier": VERIFIER,
        },
        auth=(CLIENT_IDS[network], SECRET),
    )
    assert response.status_code == 200
    assert oidc_claims(client, network, response.get_json()["id_token"])["nonce"] == NONCE


@pytest.mark.parametrize("network", OIDC)
def test_oidc_scope_must_include_openid(client: FlaskClient, network: str) -> None:
    params = authorize_params(network, scope="profile email")
    response = client.get(AUTHORIZE_PATHS[network], query_string=params)
    assert response.status_code == 400
    assert "openid" in response.get_data(as_text=True)


@pytest.mark.parametrize("network", OIDC)
@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("bad_signature", jwt.InvalidSignatureError),
        ("wrong_aud", jwt.InvalidAudienceError),
        ("expired", jwt.ExpiredSignatureError),
        ("wrong_iss", jwt.InvalidIssuerError),
    ],
)
def test_oidc_faults_are_one_shot(
    client: FlaskClient, state: SandboxState, network: str, kind: str, error: type[Exception]
) -> None:
    state.inject_oidc_fault(network, kind)
    faulty = exchange(client, network, consent(client, network))["id_token"]
    with pytest.raises(error):
        oidc_claims(client, network, faulty)
    healthy = exchange(client, network, consent(client, network))["id_token"]
    assert oidc_claims(client, network, healthy)["nonce"] == NONCE


@pytest.mark.parametrize("network", OIDC)
def test_oidc_wrong_nonce_fault_through_the_control_api(client: FlaskClient, network: str) -> None:
    armed = client.post("/control/oidc-faults", json={"network": network, "kind": "wrong_nonce"})
    assert armed.status_code == 200
    claims = oidc_claims(
        client, network, exchange(client, network, consent(client, network))["id_token"]
    )
    assert claims["nonce"] != NONCE


def test_oidc_fault_validation(client: FlaskClient, state: SandboxState) -> None:
    with pytest.raises(ValueError, match="network"):
        state.inject_oidc_fault("vkid", "wrong_aud")
    with pytest.raises(ValueError, match="fault"):
        state.inject_oidc_fault("google", "unknown_kid")
    response = client.post("/control/oidc-faults", json={"network": "google", "kind": "gremlins"})
    assert response.status_code == 400


def test_oidc_issuer_can_be_configured() -> None:
    issuer = "http://127.0.0.1:5001/google"
    app = create_sandbox_app(oidc_issuers={"google": issuer})
    app.extensions["sandbox"].register_oauth_client(
        "google",
        CLIENT_IDS["google"],
        client_secret=SECRET,
        redirect_uris=[redirect_uri("google")],
    )
    client = app.test_client()
    config = client.get("/google/.well-known/openid-configuration").get_json()
    assert config["issuer"] == issuer
    assert config["token_endpoint"] == f"{issuer}/token"
    callback = consent(client, "google")
    assert callback["iss"] == issuer
    claims = oidc_claims(client, "google", exchange(client, "google", callback)["id_token"])
    assert claims["iss"] == issuer


def test_issuer_follows_the_mount_point_of_the_sandbox(client: FlaskClient) -> None:
    config = client.get(
        "/telegram/.well-known/openid-configuration",
        base_url="http://127.0.0.1:5000/sandbox",
    ).get_json()
    assert config["issuer"] == "http://127.0.0.1:5000/sandbox/telegram"


# Telegram Login Widget


def widget_params(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "bot_id": BOT_ID,
        "origin": PORTAL,
        "return_to": f"{redirect_uri('telegram')}?state=abc",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def test_widget_sends_signed_fields_to_return_to(client: FlaskClient) -> None:
    page = client.get("/telegram-widget/auth", query_string=widget_params())
    assert page.status_code == 200
    form = parse_form(page.get_data(as_text=True))
    assert form.title == "Sandbox Telegram"
    assert form.fields == widget_params()

    response = client.post("/telegram-widget/auth", data={**form.fields, "person": ANNA})
    assert response.headers["Location"].startswith(f"{redirect_uri('telegram')}?state=abc&")
    fields = query_of(response)
    assert fields.pop("state") == "abc"
    assert set(fields) == {
        "id",
        "first_name",
        "last_name",
        "username",
        "photo_url",
        "auth_date",
        "hash",
    }
    assert (fields["id"], fields["username"]) == ("7001001", "anna_ivanova")
    assert abs(int(fields["auth_date"]) - time.time()) < 5
    assert fields["hash"] == widget_hash(fields, BOT_TOKEN)
    assert fields["hash"] != widget_hash(fields, f"{BOT_ID}:another-token")


def test_widget_cancel(client: FlaskClient) -> None:
    response = client.post("/telegram-widget/auth", data={**widget_params(), "action": "cancel"})
    assert query_of(response) == {"state": "abc", "error": "access_denied"}


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"bot_id": "999"}, "'999' is not registered"),
        ({"return_to": "https://evil.example/cb"}, "is not registered for this client"),
        ({"origin": None}, "origin is missing"),
        ({"origin": "https://evil.example"}, "is not on origin"),
    ],
)
def test_widget_refuses_bad_requests(
    client: FlaskClient, overrides: dict[str, str | None], problem: str
) -> None:
    response = client.get("/telegram-widget/auth", query_string=widget_params(**overrides))
    assert response.status_code == 400
    assert problem in html.unescape(response.get_data(as_text=True))


def test_widget_needs_a_bot_token(client: FlaskClient, state: SandboxState) -> None:
    state.register_oauth_client(
        "telegram", BOT_ID, client_secret=SECRET, redirect_uris=[redirect_uri("telegram")]
    )
    response = client.get("/telegram-widget/auth", query_string=widget_params())
    assert response.status_code == 400
    assert "bot_token" in response.get_data(as_text=True)


def test_widget_control_signs_any_auth_date(client: FlaskClient) -> None:
    stale = int(time.time()) - 86_400
    response = client.get(
        "/telegram-widget/control/signed",
        query_string={"bot_id": BOT_ID, "person": BORIS, "auth_date": stale},
    )
    fields = response.get_json()
    assert fields["auth_date"] == str(stale)
    assert fields["id"] == "7001002"
    assert fields["hash"] == widget_hash(fields, BOT_TOKEN)

    fresh = client.get(
        "/telegram-widget/control/signed", query_string={"bot_id": BOT_ID, "person": CHEN}
    ).get_json()
    assert abs(int(fresh["auth_date"]) - time.time()) < 5
    unknown = {"bot_id": BOT_ID, "person": "nobody"}
    assert client.get("/telegram-widget/control/signed", query_string=unknown).status_code == 404


def test_widget_leaves_out_empty_fields(client: FlaskClient, state: SandboxState) -> None:
    state.add_person(
        {
            "sub": "001004.dana",
            "first_name": "Dana",
            "last_name": "X",
            "email": "dana@example.com",
            "networks": {"telegram": {"id": 7001004, "username": "", "last_name": ""}},
        }
    )
    fields = client.get(
        "/telegram-widget/control/signed", query_string={"bot_id": BOT_ID, "person": "001004.dana"}
    ).get_json()
    assert "username" not in fields
    assert "last_name" not in fields
    assert fields["hash"] == widget_hash(fields, BOT_TOKEN)


# Control API and pages


def test_control_registers_oauth_clients(client: FlaskClient, state: SandboxState) -> None:
    response = client.post(
        "/control/oauth-clients",
        json={
            "network": "ok",
            "client_id": "new-ok-app",
            "client_secret": "s",
            "redirect_uris": ["https://other.example/cb"],
            "extra": {"application_key": "NEWKEY"},
        },
    )
    assert response.status_code == 201
    assert response.get_json() == {"network": "ok", "client_id": "new-ok-app"}
    registered = state.networks.get_client("ok", "new-ok-app")
    assert registered is not None
    assert registered.extra["application_key"] == "NEWKEY"

    page = client.get(
        "/ok-connect/oauth/authorize",
        query_string={
            "client_id": "new-ok-app",
            "redirect_uri": "https://other.example/cb",
            "response_type": "code",
        },
    )
    assert page.status_code == 200


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"network": "myspace", "client_id": "a", "redirect_uris": ["x"]}, "unknown network"),
        ({"network": "google", "client_id": "", "redirect_uris": ["x"]}, "client_id"),
        ({"network": "google", "client_id": "a", "redirect_uris": "x"}, "redirect_uris"),
        ({"network": "google", "client_id": "a", "redirect_uris": []}, "redirect_uris"),
        ({"network": "ok", "client_id": "a", "redirect_uris": ["x"]}, "application_key"),
        ({"network": "google", "client_id": "a", "redirect_uris": ["x"], "extra": 1}, "extra"),
    ],
)
def test_control_refuses_bad_clients(
    client: FlaskClient, body: dict[str, Any], problem: str
) -> None:
    response = client.post("/control/oauth-clients", json=body)
    assert response.status_code == 400
    assert problem in response.get_json()["error_description"]


def test_control_token_errors_and_reset(client: FlaskClient) -> None:
    callback = consent(client, "yandex")
    armed = client.post("/control/token-errors", json={"network": "yandex", "error": "slow_down"})
    assert armed.status_code == 200
    assert _yandex_token(client, callback).get_json() == {"error": "slow_down"}

    assert client.post("/control/reset").get_json() == {"reset": True}
    assert _yandex_token(client, callback).get_json()["error"] == "invalid_grant"
    bad = client.post("/control/token-errors", json={"network": "yandex"})
    assert bad.status_code == 400


@pytest.mark.parametrize("path", ["/control", "/apple/control"])
def test_control_page_lists_oauth_clients(client: FlaskClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Social network clients" in body
    for network in NETWORKS:
        assert f'data-network="{network}"' in body
        assert CLIENT_IDS[network] in body


def test_index_lists_the_networks(client: FlaskClient) -> None:
    body = client.get("/").get_data(as_text=True)
    assert "Sandbox Apple ID" in body
    for path in ("/vkid/authorize", "/ok-connect/oauth/authorize", "/yandex-login/info"):
        assert path in body


def test_custom_persons_without_networks_are_not_offered() -> None:
    app = create_sandbox_app(
        persons=[{"sub": "009.zoe", "first_name": "Zoe", "last_name": "Q", "email": "z@e.com"}]
    )
    app.extensions["sandbox"].register_oauth_client(
        "mailru", CLIENT_IDS["mailru"], client_secret=SECRET, redirect_uris=[redirect_uri("mailru")]
    )
    page = app.test_client().get("/mailru/login", query_string=authorize_params("mailru"))
    assert page.status_code == 200
    assert not [b for b in parse_form(page.get_data(as_text=True)).buttons if b.get("data-person")]
