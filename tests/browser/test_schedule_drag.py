"""Filling a slot by dragging, in a real browser: a coordinator drags an appeal from the
backlog onto an empty slot of the calendar, the slot's fill form opens with that appeal
ticked (not the suggestion), and scheduling it fills the slot. Without JavaScript, and
by keyboard, the slot's "Fill this slot" link and the same form still do it.
Screenshots for a person to look at, and axe on the calendar."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, Page, expect

from portal.extensions import db
from portal.models import User
from tests.browser.axe import blocking, describe, run_axe
from tests.browser.conftest import LiveServer
from tests.browser.pages import LoginPage
from tests.portal.conftest import listed_appeal

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_JOBS = False  # the appeals are made of rows; the portal's own channel sends no video
ACTION_TIMEOUT_MS = 15_000
OLDEST = "Who smashed the bus shelter on Oak Street?"
DRAGGED = "Who took the red bicycle from Elm Street?"
THIRD = "Who sprayed the school wall?"


@pytest.fixture(scope="module")
def appeals(live_server: LiveServer) -> dict[str, str]:
    """Three published appeals of open cases, oldest case first: public ids by title."""
    ids: dict[str, str] = {}
    with live_server.app.app_context():
        officer = db.session.scalars(
            sa.select(User).where(User.email == live_server.officer.email)
        ).one()
        supervisor = db.session.scalars(
            sa.select(User).where(User.email == live_server.supervisor.email)
        ).one()
        for number, title in (("25-0101", OLDEST), ("25-0102", DRAGGED), ("25-0103", THIRD)):
            appeal = listed_appeal(officer.agency, officer, supervisor, number=number, title=title)
            ids[title] = appeal.public_id
        db.session.remove()
    return ids


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def _signed_in(
    browser: Browser, contexts: list[BrowserContext], live: LiveServer, **options: object
) -> Page:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, **options)  # type: ignore[arg-type]
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    contexts.append(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    page.errors = errors  # type: ignore[attr-defined]
    LoginPage(page, live.url).sign_in(live.coordinator.email, live.coordinator.password)
    return page


def _no_blocking_violation(page: Page, name: str) -> None:
    serious = blocking(run_axe(page))
    assert not serious, describe(serious, f"{name} ({page.url})")


def test_coordinator_drags_an_appeal_from_the_backlog_onto_a_slot(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: LiveServer,
    appeals: dict[str, str],
    screenshot_dir: Path,
) -> None:
    page = _signed_in(browser, contexts, live_server)
    page.goto(f"{live_server.url}/staff/schedule")
    expect(page.locator("[data-drag-hint]")).to_be_visible()
    slot = page.locator("[data-drop-url]").first
    slot_at = slot.get_attribute("data-slot")
    expect(slot).to_contain_text(OLDEST)  # the suggestion, which the drag will replace
    _no_blocking_violation(page, "schedule with dragging")

    item = page.locator(f'.schedule-backlog [data-appeal="{appeals[DRAGGED]}"]')
    # Held over the slot: the slot shows it will take the drop.
    item.hover()
    page.mouse.down()
    box = slot.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=8)
    expect(slot).to_have_class(re.compile(r"\bis-drop-target\b"))
    page.screenshot(path=str(screenshot_dir / "76-schedule-dragging.png"), full_page=True)
    page.mouse.up()

    expect(page.get_by_role("heading", name="Fill a slot")).to_be_visible()
    expect(page.get_by_text("the appeal you dragged here is ticked")).to_be_visible()
    expect(page.get_by_label(f"25-0102 — {DRAGGED}")).to_be_checked()
    expect(page.get_by_label(f"25-0101 — {OLDEST}")).not_to_be_checked()
    expect(page.get_by_label("Slot")).to_have_value(slot_at or "")
    page.screenshot(path=str(screenshot_dir / "76-fill-after-drop.png"), full_page=True)
    page.get_by_role("button", name="Schedule for the slot").click()
    expect(page.get_by_role("heading", name="Post for")).to_contain_text("scheduled")
    expect(page.locator('[data-network="portal"] [data-caption]')).to_contain_text(DRAGGED)

    page.goto(f"{live_server.url}/staff/schedule")
    filled = page.locator(f'[data-slot="{slot_at}"]')
    expect(filled).to_contain_text(DRAGGED)
    expect(filled).to_contain_text("planned")
    assert filled.get_attribute("data-drop-url") is None  # no longer a drop target
    page.screenshot(path=str(screenshot_dir / "76-schedule-after-drop.png"), full_page=True)
    assert not page.errors  # type: ignore[attr-defined]


def test_slot_is_filled_by_keyboard_without_javascript(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: LiveServer,
    appeals: dict[str, str],
) -> None:
    page = _signed_in(browser, contexts, live_server, java_script_enabled=False)
    page.goto(f"{live_server.url}/staff/schedule")
    expect(page.locator("[data-drag-hint]")).to_be_hidden()  # no script, no dragging
    link = page.locator("[data-drop-url]").first.get_by_role("link", name="Fill this slot")
    link.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Fill a slot")).to_be_visible()
    # The suggestion is what is left of the backlog, oldest case first.
    expect(page.get_by_label(f"25-0101 — {OLDEST}")).to_be_checked()
    page.get_by_role("button", name="Schedule for the slot").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Post for")).to_contain_text("scheduled")
    expect(page.locator('[data-network="portal"] [data-caption]')).to_contain_text(OLDEST)
