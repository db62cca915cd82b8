"""Public pages and friendly error pages."""

from __future__ import annotations

import pytest

from app.models.types import UTCDateTime


def test_start_page_invites_to_join(client):
    page = client.get("/").get_data(as_text=True)
    assert "Join or sign in" in page
    assert "/static/vendor/htmx-2.0.11.min.js" in page


def test_login_page_lists_apple(client):
    page = client.get("/auth/login").get_data(as_text=True)
    assert 'data-provider="apple"' in page and "Continue with Apple" in page


def test_htmx_is_served_from_our_own_static_files(client):
    response = client.get("/static/vendor/htmx-2.0.11.min.js")
    assert response.status_code == 200 and b"htmx" in response.data[:200]


@pytest.mark.parametrize(
    ("method", "path", "status", "text"),
    [
        ("get", "/no-such-page", 404, "Page not found"),
        ("get", "/auth/logout", 405, "not allowed"),
        ("post", "/auth/vkid/start", 400, "security token"),
        ("get", "/auth/facebook/finish", 404, "not available"),
        ("get", "/auth/apple/finish", 400, "expired or was already used"),
    ],
)
def test_friendly_error_pages(client, method, path, status, text):
    response = getattr(client, method)(path)
    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert text in page and "<html" in page and "Traceback" not in page


def test_unexpected_error_is_a_friendly_500(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Something went wrong on our side" in page and "secret internals" not in page


def test_naive_datetimes_are_refused():
    from datetime import datetime

    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), None)
