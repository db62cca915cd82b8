"""Helpers that act as the member's browser between the portal's test client and the sandbox."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import requests

CSRF_PATTERN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, path: str = "/auth/login") -> str:
    html = client.get(path, follow_redirects=True).get_data(as_text=True)
    match = CSRF_PATTERN.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attributes.get("action")
            self._in_form = True
        elif tag == "input" and self._in_form and attributes.get("name"):
            self.fields[attributes["name"]] = attributes.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False


def first_form(html: str) -> tuple[str, dict[str, str]]:
    parser = _FormParser()
    parser.feed(html)
    assert parser.action, "the page has no form"
    return parser.action, parser.fields


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def start_apple(client, next_url: str | None = None) -> str:
    """Press "Continue with Apple"; returns the sandbox authorize URL the portal sent us to."""
    data = {"csrf_token": csrf_token(client)}
    if next_url:
        data["next"] = next_url
    response = client.post("/auth/apple/start", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"]


def consent_at_sandbox(authorize_url: str, person: str) -> dict[str, str]:
    """Pick a person on the sandbox's authorize page; returns the fields it form_posts back."""
    page = requests.get(authorize_url, timeout=5)
    assert page.status_code == 200, page.text
    query = dict(part.split("=", 1) for part in urlsplit(authorize_url).query.split("&"))
    from urllib.parse import unquote_plus

    params = {key: unquote_plus(value) for key, value in query.items()}
    answer = requests.post(
        authorize_url.split("?")[0], data={**params, "person": person}, timeout=5
    )
    assert answer.status_code == 200, answer.text
    _, fields = first_form(answer.text)
    return fields


def post_callback(client, fields: dict[str, str]):
    """The browser's form_post to the portal, then the 303 to the finish step."""
    response = client.post("/auth/apple/callback", data=fields)
    assert response.status_code == 303, response.get_data(as_text=True)
    return client.get(local_path(response.headers["Location"]))


def apple_sign_in(client, person: str, next_url: str | None = None):
    """The whole round trip; returns the portal's answer to the finish step."""
    return post_callback(client, consent_at_sandbox(start_apple(client, next_url), person))


def register(client, **overrides):
    token = csrf_token(client, "/auth/register")
    data = {
        "csrf_token": token,
        "first_name": "Anna",
        "last_name": "Ivanova",
        "contact_email": "",
        "accept_terms": "y",
        "accept_data_processing": "y",
        **overrides,
    }
    return client.post("/auth/register", data={k: v for k, v in data.items() if v is not None})


def sign_up(client, person: str):
    """A newcomer signs in with Apple and registers; returns the registration answer."""
    response = apple_sign_in(client, person)
    assert response.headers["Location"].endswith("/auth/register"), response.headers
    return register(client)


def start_sign_in(client, slug: str, **form) -> str:
    """Press a network's button; returns where the portal sent the browser (the network)."""
    response = client.post(f"/auth/{slug}/start", data={"csrf_token": csrf_token(client), **form})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"]


def choose_person(authorize_url: str, person: str) -> str:
    """Pick a person on a sandbox network's consent page; returns the redirect back to us."""
    page = requests.get(authorize_url, timeout=5)
    assert page.status_code == 200, page.text
    params = dict(parse_qsl(urlsplit(authorize_url).query))
    answer = requests.post(
        authorize_url.split("?")[0],
        data={**params, "person": person},
        timeout=5,
        allow_redirects=False,
    )
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def network_sign_in(client, slug: str, person: str):
    """The whole round trip through a network; returns the portal's answer to the callback."""
    callback = choose_person(start_sign_in(client, slug), person)
    return client.get(local_path(callback))


def linked_member(network: str, subject: object) -> int:
    """A member of the programme with one linked social profile; their id. Needs an app
    context."""
    from app.extensions import db
    from app.models import LinkedProfile, Member
    from app.models.types import utcnow

    now = utcnow()
    member = Member(
        first_name=str(subject),
        terms_version="t",
        terms_accepted_at=now,
        data_processing_accepted_at=now,
    )
    db.session.add(member)
    db.session.flush()
    db.session.add(LinkedProfile(member_id=member.id, network=network, subject=str(subject)))
    db.session.commit()
    return member.id


def recorded_events(*, with_item: bool = False) -> list[tuple]:
    """The events in the database in order: (kind, subject, post, activity[, item id])."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Event

    columns = [Event.kind, Event.subject, Event.object_id, Event.activity]
    if with_item:
        columns.append(Event.activity_id)
    return [tuple(row) for row in db.session.execute(select(*columns).order_by(Event.id))]
