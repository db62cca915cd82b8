"""A member's journey in a real browser: the portal, the sandbox Apple ID and back.

The sandbox runs on localhost and the portal on 127.0.0.1, two different sites, so Apple's
form_post callback is truly cross-site and arrives without the portal's SameSite=Lax cookie.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from app.models import LinkedProfile, Member

pytestmark = [pytest.mark.e2e, pytest.mark.database]

ANNA = "001001.anna"
PHONE = {"width": 390, "height": 844}
MIN_TOUCH_TARGET_PX = 44


def _count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _go_to_apple(page: Page, portal_url: str, sandbox_url: str) -> None:
    """From the start page to the sandbox's authorize page."""
    page.goto(f"{portal_url}/")
    page.locator("[data-test=join]").click()
    page.wait_for_url(re.compile(re.escape(portal_url) + r"/auth/login"))
    with page.expect_navigation(url=re.compile("^" + re.escape(sandbox_url) + "/")):
        page.locator("[data-provider=apple]").click()


def _continue_as(page: Page, portal_url: str, person: str) -> None:
    """Pick a person at the sandbox; its form_post page submits itself back to the portal."""
    page.locator(f'[data-person="{person}"]').click()
    page.wait_for_url(re.compile("^" + re.escape(portal_url) + r"/(auth/register|account/)"))


def _no_horizontal_overflow(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _expect_anna_account(page: Page, portal_url: str) -> None:
    expect(page).to_have_url(re.compile(re.escape(portal_url) + r"/account/$"))
    expect(page.locator("[data-test=member-name]")).to_have_text("Anna Ivanova")


@pytest.fixture
def phone_page(browser: Any) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
    finally:
        context.close()


def test_newcomer_signs_in_with_apple_and_comes_back(page: Page, live_portal, sandbox, db) -> None:
    portal_url, _ = live_portal

    _go_to_apple(page, portal_url, sandbox.url)
    _continue_as(page, portal_url, ANNA)

    expect(page).to_have_url(re.compile(re.escape(portal_url) + r"/auth/register$"))
    expect(page.locator("input[name=first_name]")).to_have_value("Anna")
    page.get_by_label("I accept the programme terms").check()
    page.get_by_label("I consent to the processing of my personal data").check()
    page.locator("[data-test=register]").click()

    _expect_anna_account(page, portal_url)
    expect(page.locator("[data-test=balance]")).to_have_text("0")
    expect(page.locator("[data-test=linked-apple]")).to_contain_text("anna.ivanova@example.com")

    page.locator("[data-test=sign-out]").click()
    page.wait_for_url(re.compile(re.escape(portal_url) + r"/$"))
    expect(page.locator("[data-test=join]")).to_be_visible()

    _go_to_apple(page, portal_url, sandbox.url)
    _continue_as(page, portal_url, ANNA)
    _expect_anna_account(page, portal_url)

    assert _count(db, Member) == 1
    assert _count(db, LinkedProfile) == 1


def test_page_is_usable_on_a_phone(phone_page: Page, live_portal) -> None:
    portal_url, _ = live_portal

    phone_page.goto(f"{portal_url}/")
    assert _no_horizontal_overflow(phone_page), "the start page scrolls sideways on a phone"

    phone_page.locator("[data-test=join]").click()
    phone_page.wait_for_url(re.compile(re.escape(portal_url) + r"/auth/login"))
    assert _no_horizontal_overflow(phone_page), "the login page scrolls sideways on a phone"

    apple = phone_page.locator("[data-provider=apple]")
    expect(apple).to_be_visible()
    box = apple.bounding_box()
    assert box is not None
    assert box["height"] >= MIN_TOUCH_TARGET_PX, f"the Apple button is {box['height']} px tall"


def test_cancel_at_apple_shows_a_clear_message(page: Page, live_portal, sandbox, db) -> None:
    portal_url, _ = live_portal

    _go_to_apple(page, portal_url, sandbox.url)
    with page.expect_navigation(url=re.compile(re.escape(portal_url) + r"/auth/apple/finish")):
        page.locator("[data-action=cancel]").click()

    expect(page.locator("[data-test=error-message]")).to_contain_text("cancelled")
    assert _count(db, Member) == 0
    assert _count(db, LinkedProfile) == 0
