"""A member's social journey in Chromium: VK to join, more networks linked, one removed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from app.models import LinkedProfile, Member

pytestmark = [pytest.mark.e2e, pytest.mark.database]

ANNA = "001001.anna"


def _through(page: Page, portal_url: str, provider: str, person: str = ANNA) -> None:
    """Press a network's button on the current page and pick the person at the sandbox."""
    page.locator(f"[data-provider={provider}]").click()
    page.locator(f'[data-person="{person}"]').click()
    page.wait_for_url(re.compile("^" + re.escape(portal_url) + "/"))


def test_register_with_vk_link_more_unlink_one_and_sign_in_elsewhere(
    page: Page, live_portal, sandbox, db
) -> None:
    portal_url, _ = live_portal
    page.goto(f"{portal_url}/auth/login")
    _through(page, portal_url, "vkid")
    expect(page).to_have_url(re.compile(r"/auth/register$"))
    page.get_by_label("I accept the programme terms").check()
    page.get_by_label("I consent to the processing of my personal data").check()
    page.locator("[data-test=register]").click()
    expect(page.locator("[data-test=member-name]")).to_have_text("Anna Ivanova")

    page.goto(f"{portal_url}/account/profiles")
    expect(page.locator("[data-test=profile-vk] button")).to_be_disabled()
    expect(page.get_by_text("This is your only way to sign in")).to_be_visible()

    for provider, network in (("ok", "ok"), ("telegram", "telegram")):
        _through(page, portal_url, provider)
        expect(page).to_have_url(re.compile(r"/account/profiles$"))
        expect(page.locator(f"[data-test=profile-{network}]")).to_be_visible()

    page.locator("[data-test=unlink-vk]").click()
    expect(page.get_by_text("profile was removed")).to_be_visible()
    expect(page.locator("[data-test=profile-vk]")).to_have_count(0)

    page.locator("[data-test=sign-out]").click()
    page.goto(f"{portal_url}/auth/login")
    _through(page, portal_url, "telegram")
    expect(page).to_have_url(re.compile(r"/account/$"))
    expect(page.locator("[data-test=member-name]")).to_have_text("Anna Ivanova")
    assert db.session.scalar(select(func.count()).select_from(Member)) == 1
    networks = sorted(db.session.scalars(select(LinkedProfile.network)))
    assert networks == ["ok", "telegram"]
