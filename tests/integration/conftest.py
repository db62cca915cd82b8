"""Fixtures of the VK collection tests (polling and callbacks): the sandbox VK API with a
community, and the portal pointed at it."""

from __future__ import annotations

import pytest

from app.extensions import db as app_db
from app.services.offers import install_seed_offers

GROUP = 4242
TOKEN = "vk-service-token-test"
ANNA, BORIS, CHEN = 1001001, 1001002, 1001003


@pytest.fixture
def vk(sandbox):
    state = sandbox.state.vk
    state.clear()
    state.rate_limit_per_second = None
    state.register_token(TOKEN, kind="service")
    state.create_group(GROUP, "Loyalink Club")
    for user in (ANNA, BORIS, CHEN):
        state.join(GROUP, user)
    yield state
    state.clear()


@pytest.fixture
def collecting(settings, sandbox, vk):
    settings.update(
        VK_API_URL=f"{sandbox.url}/vk-api",
        VK_REQUESTS_PER_SECOND=1000,
        HTTP_TIMEOUT_SECONDS=2,
        VK_BACKOFF_SECONDS=0.01,
    )
    return settings


@pytest.fixture
def ctx(collecting, app):
    with app.app_context():
        install_seed_offers()
        yield app
        app_db.session.remove()
