"""Sign-in, callbacks and unlinking are rate limited per client address."""

from __future__ import annotations

import pytest

from app.extensions import limiter
from tests.helpers import csrf_token

pytestmark = pytest.mark.database


@pytest.fixture
def limited_settings(settings):
    settings.update(RATELIMIT_ENABLED=True, SIGN_IN_RATE_LIMIT="3 per minute")
    return settings


@pytest.fixture
def limited_client(limited_settings, app):
    limiter.reset()
    yield app.test_client()
    limiter.reset()


def test_too_many_sign_in_attempts_are_refused_with_a_clear_page(limited_client, sandbox):
    token = csrf_token(limited_client)
    statuses = [
        limited_client.post("/auth/apple/start", data={"csrf_token": token}).status_code
        for _ in range(4)
    ]
    assert statuses == [303, 303, 303, 429]
    page = limited_client.post("/auth/apple/start", data={"csrf_token": token})
    assert "Too many attempts" in page.get_data(as_text=True)


def test_callbacks_are_limited_too(limited_client, sandbox):
    statuses = [limited_client.get("/auth/apple/finish?h=x").status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]
