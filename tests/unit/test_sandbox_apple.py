"""Tests of the sandbox Apple ID on its own, through the Flask test client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient

from sandbox import SandboxState, create_sandbox_app
from sandbox.state import APPLE_ISSUER, FAULT_KINDS

CLIENT_ID = "com.example.loyalink.web"
TEAM_ID = "TEAM123456"
KEY_ID = "KEY1234567"
REDIRECT_URI = "https://rp.example.com/auth/apple/callback"
ANNA = "001001.anna"
BORIS = "001002.boris"
CHEN = "001003.chen"
NONCE = "n-0S6_WzA2Mj"
STATE = "af0ifjsldkj"


# Fixtures and helpers


@dataclass(frozen=True)
class RegisteredClient:
    """The fake product as registered at the sandbox."""

    client_id: str
    team_id: str
    key_id: str
    redirect_uri: str
    private_key: ec.EllipticCurvePrivateKey


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    """PEM of the public half of an EC key."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
def sandbox_app() -> Flask:
    return create_sandbox_app()


@pytest.fixture
def state(sandbox_app: Flask) -> SandboxState:
    return sandbox_app.extensions["sandbox"]


@pytest.fixture
def client(sandbox_app: Flask) -> Iterator[FlaskClient]:
    with sandbox_app.test_client() as test_client:
        yield test_client


@pytest.fixture
def client_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def apple_client(state: SandboxState, client_key: ec.EllipticCurvePrivateKey) -> RegisteredClient:
    state.register_apple_client(
        CLIENT_ID,
        team_id=TEAM_ID,
        key_id=KEY_ID,
        public_key_pem=public_pem(client_key),
        redirect_uris=[REDIRECT_URI],
    )
    return RegisteredClient(CLIENT_ID, TEAM_ID, KEY_ID, REDIRECT_URI, client_key)


class _FormParser(HTMLParser):
    """Collects the first form's action/method and its inputs and buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method: str | None = None
        self.fields: dict[str, str] = {}
        self.buttons: list[dict[str, str | None]] = []
        self.has_autosubmit = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attributes.get("action")
            self.method = attributes.get("method")
        elif tag == "input" and attributes.get("type") == "hidden":
            self.fields[attributes["name"] or ""] = attributes.get("value") or ""
        elif tag == "button":
            self.buttons.append(attributes)
        elif tag == "script":
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and "document.forms[0].submit()" in data:
            self.has_autosubmit = True


def parse_form(html: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(html)
    return parser


def authorize_params(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "response_mode": "form_post",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "name email",
        "state": STATE,
        "nonce": NONCE,
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def consent(client: FlaskClient, person: str = ANNA, **overrides: str | None) -> dict[str, str]:
    """Pick a person on the consent page; return the fields posted back to the client."""
    page = client.get("/apple/auth/authorize", query_string=authorize_params(**overrides))
    assert page.status_code == 200
    fields = parse_form(page.get_data(as_text=True)).fields
    response = client.post("/apple/auth/authorize", data={**fields, "person": person})
    assert response.status_code == 200
    form = parse_form(response.get_data(as_text=True))
    assert form.action == REDIRECT_URI
    return form.fields


def make_secret(
    key: ec.EllipticCurvePrivateKey,
    *,
    kid: str = KEY_ID,
    iss: str = TEAM_ID,
    sub: str = CLIENT_ID,
    aud: str | list[str] = APPLE_ISSUER,
    iat: int | None = None,
    exp: int | None = None,
) -> str:
    iat = int(time.time()) if iat is None else iat
    exp = iat + 3600 if exp is None else exp
    claims = {"iss": iss, "iat": iat, "exp": exp, "aud": aud, "sub": sub}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})


def exchange(
    client: FlaskClient, registered: RegisteredClient, code: str, /, **overrides: str
) -> Any:
    data = {
        "client_id": registered.client_id,
        "client_secret": make_secret(registered.private_key),
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": registered.redirect_uri,
        **overrides,
    }
    return client.post("/apple/auth/token", data=data)


def refresh(client: FlaskClient, registered: RegisteredClient, refresh_token: str) -> Any:
    data = {
        "client_id": registered.client_id,
        "client_secret": make_secret(registered.private_key),
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
    }
    return client.post("/apple/auth/token", data=data)


def signed_in(client: FlaskClient, registered: RegisteredClient, person: str = ANNA) -> Any:
    response = exchange(client, registered, consent(client, person)["code"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def jwks_keys(client: FlaskClient) -> dict[str, Any]:
    return {key["kid"]: key for key in client.get("/apple/auth/keys").get_json()["keys"]}


def verify(client: FlaskClient, token: str, *, audience: str = CLIENT_ID) -> dict[str, Any]:
    """Verify an RS256 JWS the way a correct relying party does."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(jwks_keys(client)[kid]).key
    return jwt.decode(
        token, key, algorithms=["RS256"], audience=audience, issuer=APPLE_ISSUER, leeway=0
    )


# Authorization


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"client_id": None}, "client_id is missing"),
        ({"client_id": "com.example.unknown"}, "invalid_client"),
        ({"redirect_uri": None}, "redirect_uri is missing"),
        ({"redirect_uri": "https://evil.example.com/cb"}, "not registered"),
        ({"redirect_uri": REDIRECT_URI + "/"}, "not registered"),
        ({"redirect_uri": REDIRECT_URI + "?x=1"}, "not registered"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "unsupported_response_type"),
        ({"response_mode": "query"}, "form_post"),
        ({"response_mode": None}, "form_post"),
        ({"response_mode": "fragment", "scope": "email"}, "form_post"),
        ({"response_mode": "web_message"}, "response_mode"),
        ({"scope": "openid name"}, "invalid_scope"),
    ],
)
def test_authorize_rejects_invalid_requests(
    client: FlaskClient, apple_client: RegisteredClient, overrides: dict, problem: str
) -> None:
    for response in (
        client.get("/apple/auth/authorize", query_string=authorize_params(**overrides)),
        client.post(
            "/apple/auth/authorize", data={**authorize_params(**overrides), "person": ANNA}
        ),
    ):
        assert response.status_code == 400
        assert response.mimetype == "text/html"
        assert "Location" not in response.headers
        body = response.get_data(as_text=True)
        assert "Sandbox Apple ID" in body
        assert problem in body
        assert parse_form(body).action is None


def test_authorize_page_lists_persons_with_hidden_parameters(
    client: FlaskClient, apple_client: RegisteredClient
) -> None:
    response = client.get("/apple/auth/authorize", query_string=authorize_params())

    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<title>Sign in · Sandbox Apple ID</title>" in body
    form = parse_form(body)
    assert form.method == "post"
    assert form.action == "/apple/auth/authorize"
    assert form.fields == authorize_params()
    assert [b.get("data-person") for b in form.buttons if b.get("data-person")] == [
        ANNA,
        BORIS,
        CHEN,
    ]
    assert any(b.get("data-action") == "cancel" for b in form.buttons)
    assert "Continue as Anna Ivanova</button>" in body


def test_consent_posts_code_state_and_user_only_the_first_time(
    client: FlaskClient, apple_client: RegisteredClient
) -> None:
    page = client.get("/apple/auth/authorize", query_string=authorize_params())
    fields = parse_form(page.get_data(as_text=True)).fields
    response = client.post("/apple/auth/authorize", data={**fields, "person": ANNA})

    form = parse_form(response.get_data(as_text=True))
    assert form.method == "post"
    assert form.action == REDIRECT_URI
    assert form.has_autosubmit
    assert any(b.get("type") == "submit" for b in form.buttons)
    assert set(form.fields) == {"code", "state", "user"}
    assert form.fields["state"] == STATE
    assert json.loads(form.fields["user"]) == {
        "name": {"firstName": "Anna", "lastName": "Ivanova"},
        "email": "anna.ivanova@example.com",
    }

    again = consent(client, ANNA)
    assert set(again) == {"code", "state"}
    assert again["code"] != form.fields["code"]

    other_person = consent(client, BORIS)
    assert json.loads(other_person["user"])["email"] == "b7x2kq9m@privaterelay.appleid.com"


@pytest.mark.parametrize("event_type", ["consent-revoked", "account-delete"])
def test_user_is_sent_again_after_consent_revoked_or_account_delete(
    client: FlaskClient, apple_client: RegisteredClient, event_type: str
) -> None:
    tokens = signed_in(client, apple_client, ANNA)
    assert "user" not in consent(client, ANNA)

    response = client.post(
        "/apple/control/notifications",
        json={"client_id": CLIENT_ID, "sub": ANNA, "type": event_type, "send": False},
    )
    assert response.status_code == 200

    assert "user" in consent(client, ANNA)
    assert refresh(client, apple_client, tokens["refresh_token"]).get_json() == {
        "error": "invalid_grant"
    }


def test_user_carries_only_the_requested_scope(
    client: FlaskClient, apple_client: RegisteredClient
) -> None:
    fields = consent(client, CHEN, scope="email")
    assert json.loads(fields["user"]) == {"email": "chen.li@example.com"}


def test_cancel_posts_error_and_state_back(
    client: FlaskClient, apple_client: RegisteredClient
) -> None:
    response = client.post("/apple/auth/authorize", data={**authorize_params(), "action": "cancel"})

    form = parse_form(response.get_data(as_text=True))
    assert response.status_code == 200
    assert form.action == REDIRECT_URI
    assert form.has_autosubmit
    assert form.fields == {"error": "user_cancelled_authorize", "state": STATE}


def test_consent_requires_a_known_person(
    client: FlaskClient, apple_client: RegisteredClient
) -> None:
    response = client.post("/apple/auth/authorize", data={**authorize_params(), "person": "x"})
    assert response.status_code == 400
    assert "persons" in response.get_data(as_text=True)


def test_query_mode_without_scope_redirects_with_code(
    client: FlaskClient, apple_client: RegisteredClient
) -> None:
    params = authorize_params(response_mode="query", scope=None)
    response = client.post("/apple/auth/authorize", data={**params, "person": BORIS})

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == [STATE]
    assert "user" not in query
    assert exchange(client, apple_client, query["code"][0]).status_code == 200


# Token endpoint


@pytest.mark.parametrize(
    ("person", "email", "is_private_email"),
    [
        (ANNA, "anna.ivanova@example.com", False),
        (BORIS, "b7x2kq9m@privaterelay.appleid.com", "true"),
        (CHEN, "chen.li@example.com", "false"),
    ],
)
def test_token_exchange_returns_tokens_and_a_verifiable_id_token(
    client: FlaskClient,
    apple_client: RegisteredClient,
    person: str,
    email: str,
    is_private_email: bool | str,
) -> None:
    before = int(time.time())
    response = exchange(client, apple_client, consent(client, person)["code"])

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "id_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert jwt.get_unverified_header(body["id_token"])["alg"] == "RS256"

    claims = verify(client, body["id_token"])
    assert claims["iss"] == APPLE_ISSUER
    assert claims["aud"] == CLIENT_ID
    assert claims["sub"] == person
    assert claims["nonce"] == NONCE
    assert claims["nonce_supported"] is True
    assert claims["email"] == email
    assert claims["email_verified"] is True
    assert claims["is_private_email"] == is_private_email
    assert type(claims["is_private_email"]) is type(is_private_email)
    assert claims["real_user_status"] == 2
    assert before <= claims["auth_time"] <= claims["iat"]
    assert claims["exp"] - claims["iat"] == 600


def test_refresh_grant_returns_access_and_id_token_without_nonce(
    client: FlaskClient, apple_client: RegisteredClient
) -> None:
    tokens = signed_in(client, apple_client, BORIS)

    response = refresh(client, apple_client, tokens["refresh_token"])

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "id_token"}
    assert body["access_token"] != tokens["access_token"]
    claims = verify(client, body["id_token"])
    assert claims["sub"] == BORIS
    assert "nonce" not in claims
    assert claims["email"] == "b7x2kq9m@privaterelay.appleid.com"


def _secret_cases(registered: RegisteredClient) -> dict[str, str]:
    key = registered.private_key
    now = int(time.time())
    other_key = ec.generate_private_key(ec.SECP256R1())
    return {
        "wrong_kid": make_secret(key, kid="OTHERKEY01"),
        "wrong_aud": make_secret(key, aud="https://appleid.apple.com/"),
        "aud_list": make_secret(key, aud=[APPLE_ISSUER, "https://other.example.com"]),
        "wrong_iss": make_secret(key, iss="OTHERTEAM1"),
        "wrong_sub": make_secret(key, sub="com.example.other"),
        "expired": make_secret(key, iat=now - 7200, exp=now - 60),
        "too_long": make_secret(key, iat=now, exp=now + 15_777_001),
        "wrong_key": make_secret(other_key),
        "not_a_jwt": "not-a-jwt",
        "hs256": jwt.encode(
            {"iss": TEAM_ID, "sub": CLIENT_ID, "aud": APPLE_ISSUER, "iat": now, "exp": now + 60},
            "a-shared-secret-that-is-long-enough-for-hs256",
            algorithm="HS256",
            headers={"kid": KEY_ID},
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "wrong_kid",
        "wrong_aud",
        "aud_list",
        "wrong_iss",
        "wrong_sub",
        "expired",
        "too_long",
        "wrong_key",
        "not_a_jwt",
        "hs256",
    ],
)
def test_bad_client_secret_is_invalid_client(
    client: FlaskClient, apple_client: RegisteredClient, case: str
) -> None:
    code = consent(client)["code"]
    secret = _secret_cases(apple_client)[case]

    response = exchange(client, apple_client, code, client_secret=secret)
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_client"}

    revoke = client.post(
        "/apple/auth/revoke",
        data={"client_id": CLIENT_ID, "client_secret": secret, "token": "x"},
    )
    assert revoke.status_code == 400
    assert revoke.get_json() == {"error": "invalid_client"}

    # A rejected client does not burn the code.
    assert exchange(client, apple_client, code).status_code == 200


def test_client_secret_with_six_month_lifetime_is_accepted(
    client: FlaskClient, apple_client: RegisteredClient
) -> None:
    now = int(time.time())
    secret = make_secret(apple_client.private_key, iat=now, exp=now + 15_777_000)
    response = exchange(client, apple_client, consent(client)["code"], client_secret=secret)
    assert response.status_code == 200


def test_unknown_client_id_is_invalid_client(
    client: FlaskClient, apple_client: RegisteredClient
) -> None:
    response = exchange(client, apple_client, consent(client)["code"], client_id="com.x.unknown")
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_client"}


def test_code_replay_is_invalid_grant_and_revokes_issued_tokens(
    client: FlaskClient, apple_client: RegisteredClient
) -> None:
    code = consent(client)["code"]
    first = exchange(client, apple_client, code).get_json()

    replay = exchange(client, apple_client, code)

    assert replay.status_code == 400
    assert replay.get_json() == {"error": "invalid_grant"}
    assert refresh(client, apple_client, first["refresh_token"]).get_json() == {
        "error": "invalid_grant"
    }


def test_redirect_uri_mismatch_is_invalid_grant(
    client: FlaskClient, state: SandboxState, apple_client: RegisteredClient
) -> None:
    other_uri = "https://rp.example.com/other/callback"
    state.register_apple_client(
        CLIENT_ID,
        team_id=TEAM_ID,
        key_id=KEY_ID,
        public_key_pem=public_pem(apple_client.private_key),
        redirect_uris=[REDIRECT_URI, other_uri],
    )
    code = consent(client)["code"]

    response = exchange(client, apple_client, code, redirect_uri=other_uri)

    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_grant"}


def test_code_of_another_client_is_invalid_grant(
    client: FlaskClient, state: SandboxState, apple_client: RegisteredClient
) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    state.register_apple_client(
        "com.example.other",
        team_id=TEAM_ID,
        key_id="OTHERKEY01",
        public_key_pem=public_pem(other_key),
        redirect_uris=[REDIRECT_URI],
    )
    code = consent(client)["code"]
    secret = make_secret(other_key, kid="OTHERKEY01", sub="com.example.other")

    response = exchange(
        client, apple_client, code, client_id="com.example.other", client_secret=secret
    )

    assert response.get_json() == {"error": "invalid_grant"}


def test_expired_or_unknown_code_is_invalid_grant(
    client: FlaskClient, state: SandboxState, apple_client: RegisteredClient
) -> None:
    code = consent(client)["code"]
    state.codes[code].expires_at = time.time() - 1

    assert exchange(client, apple_client, code).get_json() == {"error": "invalid_grant"}
    assert exchange(client, apple_client, "c-unknown").get_json() == {"error": "invalid_grant"}


@pytest.mark.parametrize(
    "missing", ["client_id", "client_secret", "grant_type", "code", "redirect_uri"]
)
def test_missing_parameter_is_invalid_request(
    client: FlaskClient, apple_client: RegisteredClient, missing: str
) -> None:
    response = exchange(client, apple_client, consent(client)["code"], **{missing: ""})
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_request"}


def test_unsupported_grant_type(client: FlaskClient, apple_client: RegisteredClient) -> None:
    response = exchange(client, apple_client, "c", grant_type="client_credentials")
    assert response.status_code == 400
    assert response.get_json() == {"error": "unsupported_grant_type"}


def test_jwks_lists_rsa_signing_keys(client: FlaskClient) -> None:
    keys = client.get("/apple/auth/keys").get_json()["keys"]
    assert len(keys) == 1
    assert set(keys[0]) == {"kty", "kid", "use", "alg", "n", "e"}
    assert keys[0]["kty"] == "RSA"
    assert keys[0]["use"] == "sig"
    assert keys[0]["alg"] == "RS256"
    assert keys[0]["e"] == "AQAB"
    assert jwt.PyJWK(keys[0]).key.key_size == 2048


def test_each_app_has_its_own_keys() -> None:
    first = create_sandbox_app().extensions["sandbox"].jwks()
    second = create_sandbox_app().extensions["sandbox"].jwks()
    assert first != second


# Revocation


def test_revoke_then_refresh_fails(client: FlaskClient, apple_client: RegisteredClient) -> None:
    tokens = signed_in(client, apple_client)

    response = client.post(
        "/apple/auth/revoke",
        data={
            "client_id": CLIENT_ID,
            "client_secret": make_secret(apple_client.private_key),
            "token": tokens["refresh_token"],
            "token_type_hint": "refresh_token",
        },
    )

    assert response.status_code == 200
    assert response.get_data() == b""
    assert client.get("/apple/control/revoked").get_json() == [tokens["refresh_token"]]
    assert refresh(client, apple_client, tokens["refresh_token"]).get_json() == {
        "error": "invalid_grant"
    }


def test_revoke_unknown_token_is_ok_and_not_recorded(
    client: FlaskClient, apple_client: RegisteredClient
) -> None:
    response = client.post(
        "/apple/auth/revoke",
        data={
            "client_id": CLIENT_ID,
            "client_secret": make_secret(apple_client.private_key),
            "token": "r-unknown",
            "token_type_hint": "access_token",
        },
    )
    assert response.status_code == 200
    assert client.get("/apple/control/revoked").get_json() == []


# Faults


def _verification_error(client: FlaskClient, token: str) -> type[Exception] | None:
    try:
        claims = verify(client, token)
    except jwt.PyJWTError as exc:
        return type(exc)
    assert claims["nonce"] == NONCE
    return None


def test_fault_bad_signature(client: FlaskClient, apple_client: RegisteredClient) -> None:
    client.post("/apple/control/faults", json={"id_token": "bad_signature"})
    id_token = signed_in(client, apple_client)["id_token"]

    assert jwt.get_unverified_header(id_token)["kid"] in jwks_keys(client)
    assert _verification_error(client, id_token) is jwt.InvalidSignatureError


def test_fault_wrong_aud(client: FlaskClient, apple_client: RegisteredClient) -> None:
    client.post("/apple/control/faults", json={"id_token": "wrong_aud"})
    id_token = signed_in(client, apple_client)["id_token"]

    assert _verification_error(client, id_token) is jwt.InvalidAudienceError


def test_fault_wrong_nonce(client: FlaskClient, apple_client: RegisteredClient) -> None:
    client.post("/apple/control/faults", json={"id_token": "wrong_nonce"})
    id_token = signed_in(client, apple_client)["id_token"]

    claims = verify(client, id_token)
    assert claims["nonce"] != NONCE
    assert claims["nonce"]


def test_fault_expired(client: FlaskClient, apple_client: RegisteredClient) -> None:
    client.post("/apple/control/faults", json={"id_token": "expired"})
    id_token = signed_in(client, apple_client)["id_token"]

    assert _verification_error(client, id_token) is jwt.ExpiredSignatureError


def test_fault_wrong_iss(client: FlaskClient, apple_client: RegisteredClient) -> None:
    client.post("/apple/control/faults", json={"id_token": "wrong_iss"})
    id_token = signed_in(client, apple_client)["id_token"]

    assert _verification_error(client, id_token) is jwt.InvalidIssuerError


def test_fault_unknown_kid_is_a_key_rotation(
    client: FlaskClient, apple_client: RegisteredClient
) -> None:
    cached = jwks_keys(client)
    client.post("/apple/control/faults", json={"id_token": "unknown_kid"})
    id_token = signed_in(client, apple_client)["id_token"]

    kid = jwt.get_unverified_header(id_token)["kid"]
    assert kid not in cached
    refetched = jwks_keys(client)
    assert kid in refetched
    assert set(cached) < set(refetched)
    assert _verification_error(client, id_token) is None
    # The rotated key stays the signing key afterwards.
    assert jwt.get_unverified_header(signed_in(client, apple_client)["id_token"])["kid"] == kid


@pytest.mark.parametrize("kind", sorted(FAULT_KINDS))
def test_fault_is_one_shot_and_survives_failed_requests(
    client: FlaskClient, apple_client: RegisteredClient, kind: str
) -> None:
    assert client.post("/apple/control/faults", json={"id_token": kind}).status_code == 200
    code = consent(client)["code"]
    assert (
        exchange(client, apple_client, code, redirect_uri="https://x.example/").status_code == 400
    )

    faulty = exchange(client, apple_client, code).get_json()["id_token"]
    healthy = signed_in(client, apple_client)["id_token"]

    if kind in ("wrong_nonce", "unknown_kid"):
        assert verify(client, faulty)
    else:
        assert _verification_error(client, faulty) is not None
    assert _verification_error(client, healthy) is None


def test_faults_can_be_cleared_and_are_validated(
    client: FlaskClient, state: SandboxState, apple_client: RegisteredClient
) -> None:
    state.inject_fault("expired")
    assert client.delete("/apple/control/faults").status_code == 200
    assert _verification_error(client, signed_in(client, apple_client)["id_token"]) is None

    response = client.post("/apple/control/faults", json={"id_token": "gremlins"})
    assert response.status_code == 400
    with pytest.raises(ValueError, match="unknown fault"):
        state.inject_fault("gremlins")


# Notifications


def test_notification_jws_verifies_and_carries_events_as_json_string(
    client: FlaskClient, state: SandboxState, apple_client: RegisteredClient
) -> None:
    before = int(time.time() * 1000)
    payload = state.sign_notification(CLIENT_ID, BORIS, "email-disabled")

    claims = verify(client, payload)
    assert claims["iss"] == APPLE_ISSUER
    assert claims["aud"] == CLIENT_ID
    assert isinstance(claims["iat"], int)
    assert claims["jti"]
    assert isinstance(claims["events"], str)
    events = json.loads(claims["events"])
    assert events["type"] == "email-disabled"
    assert events["sub"] == BORIS
    assert events["email"] == "b7x2kq9m@privaterelay.appleid.com"
    assert events["is_private_email"] == "true"
    assert before <= events["event_time"] <= int(time.time() * 1000)


def test_notification_options(
    client: FlaskClient, state: SandboxState, apple_client: RegisteredClient
) -> None:
    enabled = state.sign_notification(
        CLIENT_ID,
        ANNA,
        "email-enabled",
        email="relay@privaterelay.appleid.com",
        is_private_email=True,
        jti="fixed-jti",
    )
    claims = verify(client, enabled)
    assert claims["jti"] == "fixed-jti"
    assert json.loads(claims["events"])["email"] == "relay@privaterelay.appleid.com"
    assert json.loads(claims["events"])["is_private_email"] == "true"

    revoked = verify(client, state.sign_notification(CLIENT_ID, ANNA, "consent-revoked"))
    assert set(json.loads(revoked["events"])) == {"type", "sub", "event_time"}

    other_aud = state.sign_notification(CLIENT_ID, ANNA, "account-delete", audience="com.x")
    assert verify(client, other_aud, audience="com.x")["aud"] == "com.x"

    forged = state.sign_notification(CLIENT_ID, ANNA, "account-delete", bad_signature=True)
    assert jwt.get_unverified_header(forged)["kid"] in jwks_keys(client)
    with pytest.raises(jwt.InvalidSignatureError):
        verify(client, forged)


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    """A tiny HTTP server that records JSON bodies posted to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/apple/notifications", received
    finally:
        server.shutdown()
        server.server_close()


def test_control_notification_is_delivered_to_notification_url(
    client: FlaskClient,
    state: SandboxState,
    apple_client: RegisteredClient,
    receiver: tuple[str, list[dict]],
) -> None:
    url, received = receiver
    state.register_apple_client(
        CLIENT_ID,
        team_id=TEAM_ID,
        key_id=KEY_ID,
        public_key_pem=public_pem(apple_client.private_key),
        redirect_uris=[REDIRECT_URI],
        notification_url=url,
    )

    response = client.post(
        "/apple/control/notifications",
        json={"client_id": CLIENT_ID, "sub": CHEN, "type": "email-enabled", "send": True},
    )

    body = response.get_json()
    assert response.status_code == 200
    assert body["delivered_status"] == 200
    assert body["error"] is None
    assert received == [{"payload": body["payload"]}]
    events = json.loads(verify(client, body["payload"])["events"])
    assert events == {**events, "type": "email-enabled", "sub": CHEN, "is_private_email": "false"}


def test_control_notification_reports_delivery_errors(
    client: FlaskClient, state: SandboxState, apple_client: RegisteredClient
) -> None:
    state.register_apple_client(
        CLIENT_ID,
        team_id=TEAM_ID,
        key_id=KEY_ID,
        public_key_pem=public_pem(apple_client.private_key),
        redirect_uris=[REDIRECT_URI],
        notification_url="http://127.0.0.1:9/unreachable",
    )
    body = client.post(
        "/apple/control/notifications",
        json={"client_id": CLIENT_ID, "sub": ANNA, "type": "consent-revoked"},
    ).get_json()
    assert body["delivered_status"] is None
    assert body["error"]


def test_control_notification_without_send_and_validation(
    client: FlaskClient, apple_client: RegisteredClient
) -> None:
    response = client.post(
        "/apple/control/notifications",
        json={"client_id": CLIENT_ID, "sub": ANNA, "type": "account-deleted", "send": False},
    )
    assert set(response.get_json()) == {"payload"}

    forged = client.post(
        "/apple/control/notifications",
        json={
            "client_id": CLIENT_ID,
            "sub": ANNA,
            "type": "consent-revoked",
            "send": False,
            "bad_signature": True,
        },
    ).get_json()["payload"]
    with pytest.raises(jwt.InvalidSignatureError):
        verify(client, forged)

    unknown = client.post(
        "/apple/control/notifications",
        json={"client_id": "com.x.unknown", "sub": ANNA, "type": "consent-revoked"},
    )
    assert unknown.status_code == 404
    assert client.post("/apple/control/notifications", json={"sub": ANNA}).status_code == 400


# Control API and pages


def test_control_register_client_over_http(
    client: FlaskClient, client_key: ec.EllipticCurvePrivateKey
) -> None:
    response = client.post(
        "/apple/control/clients",
        json={
            "client_id": CLIENT_ID,
            "team_id": TEAM_ID,
            "key_id": KEY_ID,
            "public_key_pem": public_pem(client_key),
            "redirect_uris": [REDIRECT_URI],
            "notification_url": None,
        },
    )
    assert response.status_code == 201
    registered = RegisteredClient(CLIENT_ID, TEAM_ID, KEY_ID, REDIRECT_URI, client_key)
    assert signed_in(client, registered)["id_token"]

    bad = client.post(
        "/apple/control/clients",
        json={
            "client_id": CLIENT_ID,
            "team_id": TEAM_ID,
            "key_id": KEY_ID,
            "public_key_pem": "nope",
            "redirect_uris": [REDIRECT_URI],
        },
    )
    assert bad.status_code == 400
    assert bad.get_json()["error"] == "invalid_request"


def test_reset_clears_codes_tokens_and_authorizations(
    client: FlaskClient, state: SandboxState, apple_client: RegisteredClient
) -> None:
    tokens = signed_in(client, apple_client)
    pending_code = consent(client)["code"]
    state.inject_fault("expired")

    assert client.post("/apple/control/reset").status_code == 200

    assert state.pending_fault is None
    assert exchange(client, apple_client, pending_code).get_json() == {"error": "invalid_grant"}
    assert refresh(client, apple_client, tokens["refresh_token"]).status_code == 400
    assert "user" in consent(client)
    assert state.get_client(CLIENT_ID) is not None


def test_custom_persons_and_issuer(client_key: ec.EllipticCurvePrivateKey) -> None:
    issuer = "http://127.0.0.1:5001/apple"
    app = create_sandbox_app(
        issuer=issuer,
        persons=[
            {
                "sub": "009.zoe",
                "first_name": "Zoe",
                "last_name": "Q",
                "email": "zoe@example.com",
                "is_private_email": False,
            }
        ],
    )
    state: SandboxState = app.extensions["sandbox"]
    state.register_apple_client(
        CLIENT_ID,
        team_id=TEAM_ID,
        key_id=KEY_ID,
        public_key_pem=public_pem(client_key),
        redirect_uris=[REDIRECT_URI],
    )
    registered = RegisteredClient(CLIENT_ID, TEAM_ID, KEY_ID, REDIRECT_URI, client_key)
    client = app.test_client()

    # The client secret's audience must be this sandbox's issuer.
    code = consent(client, "009.zoe")["code"]
    assert exchange(client, registered, code).get_json() == {"error": "invalid_client"}
    secret = make_secret(client_key, aud=issuer)
    body = exchange(client, registered, code, client_secret=secret).get_json()
    claims = jwt.decode(
        body["id_token"],
        jwt.PyJWK(client.get("/apple/auth/keys").get_json()["keys"][0]).key,
        algorithms=["RS256"],
        audience=CLIENT_ID,
        issuer=issuer,
    )
    assert claims["sub"] == "009.zoe"
    assert claims["is_private_email"] == "false"


def test_pages_are_clearly_the_sandbox(client: FlaskClient, apple_client: RegisteredClient) -> None:
    index = client.get("/").get_data(as_text=True)
    assert "Sandbox Apple ID" in index
    assert 'href="/apple/control"' in index

    control = client.get("/apple/control")
    assert control.status_code == 200
    assert "Sandbox Apple ID" in control.get_data(as_text=True)
    assert CLIENT_ID in control.get_data(as_text=True)

    sent = client.post(
        "/apple/control/notifications/form",
        data={"client_id": CLIENT_ID, "sub": ANNA, "type": "consent-revoked"},
    )
    assert sent.status_code == 200
    assert "client has no notification_url" in sent.get_data(as_text=True)

    armed = client.post("/apple/control/faults/form", data={"id_token": "wrong_iss"})
    assert "wrong_iss" in armed.get_data(as_text=True)


def test_openid_configuration_points_at_the_sandbox(client: FlaskClient) -> None:
    config = client.get("/apple/.well-known/openid-configuration").get_json()
    assert config["issuer"] == APPLE_ISSUER
    assert config["token_endpoint"] == "http://localhost/apple/auth/token"
    assert config["jwks_uri"] == "http://localhost/apple/auth/keys"
