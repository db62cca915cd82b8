"""Staff accounts: created from the command line, a separate area members never reach."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.models import LedgerEntry, Member, StaffUser
from tests.helpers import csrf_token, sign_up

pytestmark = pytest.mark.database

PASSWORD = "correct horse battery"


@pytest.fixture
def marketer(app):
    result = app.test_cli_runner().invoke(
        args=[
            "staff",
            "create",
            "--email",
            "Mia@Example.com",
            "--role",
            "marketer",
            "--password",
            PASSWORD,
        ]
    )
    assert result.exit_code == 0, result.output
    assert "Created marketer mia@example.com" in result.output
    return "mia@example.com"


def staff_sign_in(client, email: str, password: str = PASSWORD):
    token = csrf_token(client, "/staff/login")
    return client.post(
        "/staff/login", data={"csrf_token": token, "email": email, "password": password}
    )


def test_staff_password_is_hashed(marketer, db):
    user = db.session.scalar(select(StaffUser))
    assert user.password_hash != PASSWORD and user.password_hash.startswith(("scrypt:", "pbkdf2:"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "not-an-email", "--password", PASSWORD], "is not an email address"),
        (["--email", "a@b.c", "--password", "short"], "at least 12 characters"),
        (["--email", "ops@portal.test", "--password", PASSWORD], "cannot be used"),
        (["--email", "a@b.c", "--role", "owner", "--password", PASSWORD], "Invalid value"),
    ],
)
def test_staff_create_bad_input(app, db, args, message):
    result = app.test_cli_runner().invoke(args=["staff", "create", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert db.session.scalar(select(func.count()).select_from(StaffUser)) == 0


def test_staff_create_twice_is_refused(app, marketer):
    result = app.test_cli_runner().invoke(
        args=["staff", "create", "--email", marketer, "--password", PASSWORD]
    )
    assert result.exit_code != 0 and "already exists" in result.output


def test_staff_sign_in_and_dashboard(client, marketer):
    response = staff_sign_in(client, marketer)
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/")
    page = client.get("/staff/").get_data(as_text=True)
    assert "Programme at a glance" in page


@pytest.mark.parametrize(
    ("email", "password"),
    [("mia@example.com", "wrong password!!"), ("nobody@example.com", PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
def test_staff_sign_in_refused_without_saying_which_part_is_wrong(
    client, marketer, email, password
):
    response = staff_sign_in(client, email, password)
    assert response.status_code == 401
    assert "do not match a staff account" in response.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_member_never_reaches_the_staff_area(client, sandbox):
    sign_up(client, "001001.anna")
    for path in ("/staff/", "/staff/members", "/staff/members/1"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "for programme staff only" in response.get_data(as_text=True)


def test_staff_cannot_use_the_member_pages(client, marketer, sandbox):
    staff_sign_in(client, marketer)
    for path in ("/account/", "/account/history", "/account/profiles", "/account/delete"):
        assert client.get(path).status_code == 403, path
    response = client.post("/auth/apple/start", data={"csrf_token": csrf_token(client, "/staff/")})
    assert response.status_code == 403


def test_anonymous_staff_page_sends_to_staff_sign_in(client):
    response = client.get("/staff/members")
    assert response.status_code == 302
    assert "/staff/login?next=/staff/members" in response.headers["Location"]


def test_adjustment_is_recorded_once_even_when_submitted_twice(client, marketer, sandbox, app, db):
    member_browser = app.test_client()
    sign_up(member_browser, "001001.anna")
    member = db.session.scalar(select(Member))
    staff_sign_in(client, marketer)
    page = client.get(f"/staff/members/{member.id}").get_data(as_text=True)
    key = re.search(r'name="request_key"[^>]*value="([^"]+)"', page).group(1)
    token = csrf_token(client, "/staff/")
    data = {"csrf_token": token, "amount": "40", "reason": "Welcome gift", "request_key": key}
    first = client.post(f"/staff/members/{member.id}", data=data)
    second = client.post(f"/staff/members/{member.id}", data=data, follow_redirects=True)
    assert first.status_code == 302
    assert "already made" in second.get_data(as_text=True)
    entries = db.session.scalars(select(LedgerEntry)).all()
    assert [(e.amount, e.description, e.kind.value) for e in entries] == [
        (40, "Welcome gift", "adjustment")
    ]
    assert entries[0].created_by_staff_id is not None
    account = member_browser.get("/account/").get_data(as_text=True)
    assert 'data-test="balance">40<' in account and "Welcome gift" in account


@pytest.mark.parametrize(
    ("amount", "reason", "message"),
    [
        ("0", "Gift", "Enter a non-zero whole number of points."),
        ("abc", "Gift", "Enter a non-zero whole number of points."),
        ("2000000", "Gift", "At most 1,000,000 points."),
        ("10", "", "Give a reason."),
    ],
)
def test_adjustment_bad_input(client, marketer, sandbox, app, db, amount, reason, message):
    sign_up(app.test_client(), "001001.anna")
    member = db.session.scalar(select(Member))
    staff_sign_in(client, marketer)
    token = csrf_token(client, "/staff/")
    response = client.post(
        f"/staff/members/{member.id}",
        data={"csrf_token": token, "amount": amount, "reason": reason, "request_key": "k" * 20},
    )
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == 0


def test_offers_page_lists_the_seed_offers_and_simulates_without_writing(
    client, marketer, sandbox, app, db
):
    from app.models import Event as EventRow
    from app.services.offers import install_seed_offers

    with app.app_context():
        install_seed_offers()
    sign_up(app.test_client(), "001001.anna")
    member = db.session.scalar(select(Member))
    entries_before = db.session.scalar(select(func.count()).select_from(LedgerEntry))
    staff_sign_in(client, marketer)
    page = client.get("/staff/offers").get_data(as_text=True)
    for offer_id in (
        "link-bonus",
        "join-group",
        "reposts-comments",
        "likes-monthly",
        "leave-group",
        "repost-deleted",
    ):
        assert f'data-test="offer-{offer_id}"' in page
    token = csrf_token(client, "/staff/offers")
    answer = client.post(
        "/staff/offers/simulate",
        data={
            "csrf_token": token,
            "member_id": member.id,
            "kind": "activity",
            "network": "vk",
            "group_id": "club",
            "object_id": "p1",
            "activity": "like",
        },
        headers={"HX-Request": "true"},
    )
    partial = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "<html" not in partial
    assert "First like this month" in partial and "+5" in partial
    assert "likes-monthly chain 0: matched" in partial
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == entries_before
    assert db.session.scalar(select(func.count()).select_from(EventRow)) == 1  # the link only


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"member_id": "999", "kind": "joined_group"}, "No member has this number."),
        ({"member_id": "", "kind": "joined_group"}, "Give a member number."),
        ({"member_id": "1", "kind": "activity"}, "needs an activity and a post"),
        ({"member_id": "1", "kind": "exploded"}, "Not a valid choice"),
    ],
)
def test_simulation_bad_input(client, marketer, sandbox, app, data, message):
    sign_up(app.test_client(), "001001.anna")
    staff_sign_in(client, marketer)
    token = csrf_token(client, "/staff/offers")
    answer = client.post(
        "/staff/offers/simulate",
        data={"csrf_token": token, "network": "vk", **data},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 400
    assert message in answer.get_data(as_text=True)
