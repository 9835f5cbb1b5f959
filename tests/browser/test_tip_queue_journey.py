"""A supervisor works the tip queue in a real browser, on a desktop and on a phone:
tips from the public, a new one appearing without reloading, the keyboard, a bulk
change, triage on the tip's page. Tip text with markup shows as text."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from portal.extensions import db
from portal.models import Agency, Case, Tip
from portal.services.tips import TipInput, add_tipster_message, submit_tip
from tests.browser.conftest import LiveServer
from tests.browser.pages import LoginPage

RUN_JOBS = False
TIPS = [
    ("It was my neighbour's grey Honda, plate starts 7KX. He parks it on Maple.", "facebook"),
    ("I saw two teenagers with a brown box at 4pm, heading towards the park.", "qr"),
    ("<b>Not bold</b> <script>alert('tip')</script> the man had a red cap", "web"),
]


def seed(live_server: LiveServer) -> list[str]:
    with live_server.app.app_context():
        agency = db.session.scalar(sa.select(Agency))
        case = db.session.scalar(sa.select(Case).where(Case.public_id == live_server.case_id))
        assert agency is not None and case is not None
        numbers = []
        for body, via in TIPS:
            tip, _ = submit_tip(TipInput(body=body, via=via), agency=agency)
            tip.case_id = case.id
            numbers.append(tip.number)
        db.session.commit()
        first = db.session.scalar(sa.select(Tip).where(Tip.number == numbers[0]))
        assert first is not None
        add_tipster_message(first, "Also: he has a dent in the rear door.")
        db.session.commit()
        db.session.remove()
    return numbers


def add_tip(live_server: LiveServer, body: str) -> str:
    with live_server.app.app_context():
        agency = db.session.scalar(sa.select(Agency))
        assert agency is not None
        tip, _ = submit_tip(TipInput(body=body), agency=agency)
        db.session.commit()
        number = tip.number
        db.session.remove()
    return number


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_supervisor_works_the_queue(
    live_server: LiveServer, page: Page, browser: Browser, screenshot_dir: Path
) -> None:
    numbers = seed(live_server)
    LoginPage(page, live_server.url).sign_in(
        live_server.supervisor.email, live_server.supervisor.password
    )
    page.goto(f"{live_server.url}/staff/tips")
    rows = page.locator("#tip-queue tbody tr")
    expect(rows).to_have_count(3)
    expect(page.get_by_text("reply waiting")).to_be_visible()
    expect(page.locator("#tip-queue")).to_contain_text("<b>Not bold</b> <script>")
    page.screenshot(path=str(screenshot_dir / "tip-queue-desktop.png"), full_page=True)

    # A tip sent now appears at the top without reloading (the script polls; the
    # test makes it poll at once instead of waiting half a minute).
    fresh = add_tip(live_server, "Just saw the grey Honda again outside the bakery.")
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(rows.first).to_contain_text(fresh)
    expect(page.locator("#new-tips")).to_contain_text("1 new tip")

    # The keyboard: j moves down, x selects; then a bulk change of the selection.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(rows.nth(1)).to_have_class("tip-row tip-unread tip-current")
    checked = page.locator('#tip-queue input[name="tip"]:checked')
    expect(checked).to_have_count(1)
    page.select_option("#bulk-status", "reviewing")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("Changed 1 tip(s).")).to_be_visible()

    # Search, then open a tip and triage it with a shortcut key.
    page.fill("#q", "honda")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(2)
    page.get_by_role("link", name=numbers[0]).click()
    expect(page.get_by_role("heading", name=f"Tip {numbers[0]}")).to_be_visible()
    expect(page.get_by_text("Also: he has a dent in the rear door.")).to_be_visible()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("a")
    expect(page.get_by_text("Saved: status")).to_be_visible()
    expect(page.locator("h1 .badge-actionable")).to_have_text("actionable")
    expect(page.locator(".history")).to_contain_text("new → actionable")

    # On a phone: the queue and the tip fit the screen.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    mobile = phone.new_page()
    LoginPage(mobile, live_server.url).sign_in(
        live_server.supervisor.email, live_server.supervisor.password
    )
    mobile.goto(f"{live_server.url}/staff/tips")
    expect(mobile.locator("#tip-queue tbody tr")).to_have_count(4)
    assert no_horizontal_scroll(mobile)
    mobile.screenshot(path=str(screenshot_dir / "tip-queue-phone.png"), full_page=True)
    mobile.get_by_role("link", name=numbers[0]).click()
    expect(mobile.get_by_role("heading", name=f"Tip {numbers[0]}")).to_be_visible()
    assert no_horizontal_scroll(mobile)
    mobile.screenshot(path=str(screenshot_dir / "tip-detail-phone.png"), full_page=True)
    phone.close()
