"""Sign in with Google's code path against an OpenID provider we did not write.

The peer is the npm package oidc-provider (a certified OpenID Provider implementation) on
loopback, configured as the portal's Google: GOOGLE_ISSUER names it, and everything else
(endpoints, keys, RFC 9207 `iss`) comes from its discovery document. The member's browser is a
`requests.Session` at the peer (it keeps the peer's cookies) and the portal's test client at
the portal; the peer's own login and consent pages are filled in as a person would.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from app.models import LinkedProfile, Member
from tests.helpers import csrf_token, first_form, local_path, register
from tests.interop.conftest import OIDCPeer

MAX_HOPS = 12
ABORT_LINK = re.compile(r'<a href="([^"]+)">\[ Cancel \]</a>')


@pytest.fixture
def settings(settings: dict[str, Any], oidc_peer: OIDCPeer) -> dict[str, Any]:
    """The portal's Google is the peer: only the three settings an operator would set."""
    settings["GOOGLE_CLIENT_ID"] = oidc_peer.client_id
    settings["GOOGLE_CLIENT_SECRET"] = oidc_peer.client_secret
    settings["GOOGLE_ISSUER"] = oidc_peer.issuer
    return settings


class _Forms(HTMLParser):
    """Every form on a page: its action and its named inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append((attributes.get("action") or "", {}))
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1][1][attributes["name"]] = attributes.get("value") or ""


def press_continue_with_google(client) -> str:
    """The "Continue with Google" button on the login page; returns where the portal sent us."""
    page = client.get("/auth/login").get_data(as_text=True)
    assert "Continue with" in page and "Google" in page
    parser = _Forms()
    parser.feed(page)
    (fields,) = [fields for action, fields in parser.forms if action == "/auth/google/start"]
    response = client.post("/auth/google/start", data=fields)
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"]


def browse_peer(
    browser: requests.Session, url: str, peer: OIDCPeer, login: str | None
) -> tuple[str, list[str]]:
    """Follow the peer's redirects and fill in its pages until it sends the browser back to
    the portal's callback; returns that URL and the prompts (login, consent) answered.

    With `login=None` the member presses the peer's "Cancel" link at its first page instead.
    """
    method, data, prompts = "GET", None, []
    for _ in range(MAX_HOPS):
        if url.startswith(peer.redirect_uri + "?"):
            return url, prompts
        assert url.startswith(peer.issuer + "/"), f"the peer sent the browser to {url}"
        response = browser.request(method, url, data=data, allow_redirects=False, timeout=10)
        if response.is_redirect:
            url, method, data = urljoin(url, response.headers["Location"]), "GET", None
            continue
        assert response.status_code == 200, f"{response.status_code} at {url}: {response.text}"
        if login is None:
            link = ABORT_LINK.search(response.text)
            assert link, f"no Cancel link on the peer's page at {url}"
            url, method, data = urljoin(url, html.unescape(link.group(1))), "GET", None
            continue
        action, fields = first_form(response.text)
        prompts.append(fields.get("prompt", "?"))
        if fields.get("prompt") == "login":
            fields.update(login=login, password="any password")
        url, method, data = urljoin(url, action), "POST", fields
    pytest.fail(f"the peer did not send the browser back within {MAX_HOPS} steps")


def sign_in(client, peer: OIDCPeer, login: str | None) -> tuple[str, list[str]]:
    """Continue with Google, then sign in at the peer in a new browser (no cookies there yet);
    returns the peer's callback URL and the prompts answered."""
    return browse_peer(requests.Session(), press_continue_with_google(client), peer, login)


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def message(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_authorize_request_speaks_oidc_with_pkce(client, oidc_peer):
    url = press_continue_with_google(client)
    assert url.startswith(f"{oidc_peer.issuer}/auth?"), "the endpoint came from discovery"
    query = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    assert query["client_id"] == oidc_peer.client_id
    assert query["redirect_uri"] == oidc_peer.redirect_uri
    assert query["response_type"] == "code"
    assert set(query["scope"].split()) == {"openid", "profile", "email"}
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32


def test_newcomer_signs_up_then_signs_in_again(client, db, oidc_peer):
    callback, prompts = sign_in(client, oidc_peer, "anna.peer")
    assert prompts == ["login", "consent"], "the peer's own pages were answered"
    answer = parse_qs(urlsplit(callback).query)
    assert answer["iss"] == [oidc_peer.issuer], "RFC 9207: the peer names itself"
    assert answer["code"] and answer["state"]

    response = client.get(local_path(callback))
    assert response.status_code == 302, message(response)
    assert response.headers["Location"].endswith("/auth/register")
    assert count(db, Member) == 0, "nobody is registered before consenting"

    form = client.get("/auth/register").get_data(as_text=True)
    # The claims came in the id_token, verified with the peer's published key.
    assert 'value="Peer"' in form and 'value="anna.peer"' in form
    assert 'value="anna.peer@peer.example"' in form, "a verified address pre-fills"
    response = register(client, first_name="Anna", contact_email="anna.peer@peer.example")
    assert response.status_code == 302, message(response)
    assert response.headers["Location"].endswith("/account/")

    member = db.session.scalar(select(Member))
    (profile,) = member.profiles
    assert (profile.network, profile.subject) == ("google", "anna.peer")
    assert profile.email == "anna.peer@peer.example" and profile.email_verified
    assert profile.token_encrypted, "the peer's access token is kept (encrypted) to revoke"

    response = client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/account/")})
    assert response.status_code == 302
    assert client.get("/account/").status_code in (302, 401)

    # The same way again, in a new browser at the peer: its login and consent pages anew.
    callback, prompts = sign_in(client, oidc_peer, "anna.peer")
    assert prompts == ["login", "consent"]
    response = client.get(local_path(callback))
    assert response.status_code == 302, message(response)
    assert response.headers["Location"].endswith("/account/")
    assert "Welcome back" in client.get("/account/").get_data(as_text=True)
    assert count(db, Member) == 1 and count(db, LinkedProfile) == 1


def test_answer_naming_another_issuer_is_refused(client, db, oidc_peer):
    callback, _ = sign_in(client, oidc_peer, "boris.peer")
    query = {key: values[0] for key, values in parse_qs(urlsplit(callback).query).items()}
    query["iss"] = "https://accounts.google.com"  # a mix-up: another provider's answer
    response = client.get(f"/auth/google/callback?{urlencode(query)}")
    assert response.status_code == 400
    assert "mix-up between providers" in message(response)
    assert "Nothing was changed" in message(response)
    assert count(db, Member) == 0 and count(db, LinkedProfile) == 0
    with client.session_transaction() as session:
        assert "registration" not in session, "no registration was started"


def test_replayed_code_is_refused_by_the_peer(client, db, oidc_peer):
    """A code the peer already redeemed, presented for a new sign-in of this browser: the
    portal's state check passes, so it is the peer's token endpoint that refuses it."""
    first, _ = sign_in(client, oidc_peer, "carol.peer")
    response = client.get(local_path(first))
    assert response.headers["Location"].endswith("/auth/register")

    authorize_url = press_continue_with_google(client)
    fresh_state = parse_qs(urlsplit(authorize_url).query)["state"][0]
    query = {key: values[0] for key, values in parse_qs(urlsplit(first).query).items()}
    query["state"] = fresh_state
    response = client.get(f"/auth/google/callback?{urlencode(query)}")
    assert response.status_code == 400
    assert "has already been used, has expired or could not be verified" in message(response)
    assert count(db, Member) == 0

    # And the whole first answer, replayed as it came: its state is spent at the portal.
    response = client.get(local_path(first))
    assert response.status_code == 400
    assert "already completed" in message(response)
    assert count(db, Member) == 0


def test_cancelling_at_the_peer_changes_nothing(client, db, oidc_peer):
    callback, prompts = sign_in(client, oidc_peer, None)
    assert prompts == []
    answer = parse_qs(urlsplit(callback).query)
    assert answer["error"] == ["access_denied"] and answer["iss"] == [oidc_peer.issuer]
    response = client.get(local_path(callback))
    assert response.status_code == 400
    assert "You cancelled signing in with Google" in message(response)
    assert count(db, Member) == 0
