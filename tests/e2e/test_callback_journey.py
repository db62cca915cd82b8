"""A like on VK becomes points in the Personal Account through the Callback API, in Chromium:
no collection cycle runs between the like and the points."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from app.collect.engine import collect_group
from app.extensions import db as app_db
from app.models import CollectionRun, Member
from app.services.groups import add_group, set_callbacks
from app.services.ledger import balance
from app.services.offers import install_seed_offers

pytestmark = [pytest.mark.e2e, pytest.mark.database]

GROUP = 5151
TOKEN = "vk-service-token-e2e"
SECRET = "journeyCallbackSecret"
CONFIRMATION = "j0urn3y1"
ANNA_VK = 1001001


@pytest.fixture
def vk_group(settings, sandbox):
    """A sandbox VK community with one post; the portal's VK API pointed at the sandbox."""
    vk = sandbox.state.vk
    vk.clear()
    vk.rate_limit_per_second = None
    vk.register_token(TOKEN, kind="service")
    vk.create_group(GROUP, "Loyalink Club")
    post = vk.add_post(GROUP, "Like this post for points")
    settings.update(VK_API_URL=f"{sandbox.url}/vk-api", VK_REQUESTS_PER_SECOND=1000)
    yield post
    vk.clear()


def test_a_like_on_the_tester_page_shows_as_points_without_a_cycle(
    vk_group, page: Page, live_portal, sandbox
) -> None:
    portal_url, app = live_portal
    page.goto(f"{portal_url}/auth/login")
    page.locator("[data-provider=vkid]").click()
    page.locator('[data-person="001001.anna"]').click()
    page.get_by_label("I accept the programme terms").check()
    page.get_by_label("I consent to the processing of my personal data").check()
    page.locator("[data-test=register]").click()
    expect(page.locator("[data-test=member-name]")).to_have_text("Anna Ivanova")

    with app.app_context():
        install_seed_offers()
        group = add_group("vk", str(GROUP), "Loyalink Club", TOKEN)
        set_callbacks(group.id, secret=SECRET, confirmation=CONFIRMATION)
        assert collect_group(group.id).status == "succeeded"  # the baseline
        member_id = app_db.session.scalar(select(Member.id))
        before = balance(member_id)
        app_db.session.remove()
    sandbox.state.vk.callbacks.set_server(
        GROUP, f"{portal_url}/hooks/vk", secret=SECRET, confirmation=CONFIRMATION
    )

    page.goto(f"{sandbox.url}/vk-api/tester?user_id={ANNA_VK}&group_id={GROUP}")
    page.locator(f'[data-action=like][data-post="{vk_group}"]').click()
    expect(page.locator(f'[data-action=unlike][data-post="{vk_group}"]')).to_be_visible()
    assert sandbox.state.vk.callbacks.wait_idle(timeout=5)
    page.reload()  # the tester page lists what VK sent and what the portal answered
    expect(page.locator("#callback tr[data-event=like_add]")).to_contain_text("ok")

    page.goto(f"{portal_url}/account/")
    expect(page).to_have_url(re.compile(r"/account/$"))
    expect(page.locator("[data-test=balance]")).to_have_text(str(before + 5))
    with app.app_context():
        runs = app_db.session.scalar(select(func.count(CollectionRun.id)))
        app_db.session.remove()
    assert runs == 1, "only the baseline ran: the points came by callback"
