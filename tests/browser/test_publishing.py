"""The weekly slot in a real browser: a coordinator on a desktop and on a phone opens
the schedule, fills the next slot with a published appeal, and reads the post page
(the caption exactly as it goes, each delivery's state, and the decisions on one
that stopped for a person); an admin opens the channels page. Screenshots of each
for a person to look at, and axe on the schedule and the post pages.

The webhook channel is not connected here: the live server runs in this process,
but a webhook may not reach loopback, and lifting that for a whole module's server
would test a portal that production never runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from portal.extensions import db
from portal.publishing.models import Delivery, DeliveryStatus
from tests.browser.axe import blocking, describe, run_axe
from tests.browser.conftest import PHONE, LiveServer, make_clip
from tests.browser.pages import LoginPage
from tests.browser.seed import approve, in_app, new_case, published_appeal, ready_footage

pytestmark = [pytest.mark.browser, pytest.mark.slow]

APPEAL_TITLE = "Who broke the bus shelter on Oak Street?"
#: Generous: the job runner's ffmpeg shares the machine. A wait, not a timing assertion.
ACTION_TIMEOUT_MS = 45_000


@pytest.fixture(scope="module")
def appeal(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    clip = make_clip(
        tmp_path_factory.mktemp("publishing") / "shelter.mp4", seconds=2, size="320x240"
    )
    case_id = new_case(live_server, "24-0520", "Bus shelter smashed")
    footage = ready_footage(live_server, case_id, clip)
    approve(live_server, footage)
    return published_appeal(live_server, footage, APPEAL_TITLE)


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def _open(browser: Browser, contexts: list[BrowserContext], **options: object) -> Page:
    context = browser.new_context(**options)  # type: ignore[arg-type]
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
    return page


def _no_blocking_violation(page: Page, name: str) -> None:
    violations = run_axe(page)
    serious = blocking(violations)
    for lesser in (v for v in violations if v not in serious):
        # Shown with -s or on a failure: worth fixing, not failing the build.
        print(f"{name}: [{lesser['impact']}] {lesser['id']}: {lesser['help']}")
    assert not serious, describe(serious, f"{name} ({page.url})")


def _no_sideways_scroll(page: Page) -> None:
    """On a phone nothing is wider than the screen (the page never scrolls sideways)."""
    # Measured once the page has loaded: after a form's answer the DOM (and so the
    # alert a test waits for) can be there before the stylesheet, and the unstyled
    # page is wider (916 px on a 390 px screen, on a busy CI machine).
    page.wait_for_load_state("load")
    # Not window.innerWidth: a mobile browser zooms out to fit a page that is too wide.
    screen = (page.viewport_size or {"width": 0})["width"]
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= screen, f"page is {wide}px wide on a {screen}px screen"


def _shot(page: Page, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


def test_coordinator_fills_the_next_slot_and_reads_the_post(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: LiveServer,
    appeal: str,
    screenshot_dir: Path,
) -> None:
    base = live_server.url
    coordinator = live_server.coordinator

    phone = _open(browser, contexts, **PHONE)
    LoginPage(phone, base).sign_in(coordinator.email, coordinator.password)
    phone.goto(f"{base}/staff/schedule")
    expect(phone.get_by_role("heading", name="#TattletaleTuesday schedule")).to_be_visible()
    # The published appeal waits in the backlog and is the next slot's suggestion.
    expect(phone.locator(".schedule-backlog")).to_contain_text(APPEAL_TITLE)
    _no_sideways_scroll(phone)
    _shot(phone, screenshot_dir, "71-schedule-phone")
    _no_blocking_violation(phone, "schedule (phone)")

    desk = _open(browser, contexts, viewport={"width": 1366, "height": 900})
    LoginPage(desk, base).sign_in(coordinator.email, coordinator.password)
    desk.goto(f"{base}/staff/schedule")
    first_slot = desk.locator("[data-slot]").first
    expect(first_slot).to_contain_text(APPEAL_TITLE)  # suggested
    _shot(desk, screenshot_dir, "70-schedule-desktop")
    _no_blocking_violation(desk, "schedule (desktop)")

    first_slot.get_by_role("link", name="Fill this slot").click()
    expect(desk.get_by_role("heading", name="Fill a slot")).to_be_visible()
    expect(desk.get_by_label(f"24-0520 — {APPEAL_TITLE}")).to_be_checked()
    desk.get_by_role("button", name="Schedule for the slot").click()

    expect(desk.get_by_role("heading", name="Post for")).to_contain_text("scheduled")
    portal = desk.locator('[data-network="portal"]')
    expect(portal.locator("[data-state]")).to_have_text(
        re.compile(r"Queued for \d{4}-\d\d-\d\d \d\d:\d\d UTC\.")
    )
    # The caption the portal's page and feed carry: the appeal's title and its case.
    expect(portal.locator("[data-caption]")).to_contain_text(APPEAL_TITLE)
    _shot(desk, screenshot_dir, "72-post-page")
    _no_blocking_violation(desk, "post page (desktop)")

    post_url = desk.url
    phone.goto(post_url)
    expect(phone.locator('[data-network="portal"] [data-caption]')).to_contain_text(APPEAL_TITLE)
    _no_sideways_scroll(phone)
    _shot(phone, screenshot_dir, "72-post-page-phone")
    _no_blocking_violation(phone, "post page (phone)")

    # The delivery's outcome became unknown: the person decides, on the phone.
    with in_app(live_server):
        delivery = db.session.scalars(db.select(Delivery)).one()
        delivery.status = DeliveryStatus.NEEDS_ATTENTION.value
        delivery.reason = "The worker stopped while sending; it may or may not have gone out."
        db.session.commit()
    phone.goto(post_url)
    decide = phone.locator('[data-network="portal"] [data-decide]')
    expect(decide.get_by_role("button", name="Try again")).to_be_visible()
    decide.get_by_label("The post's address on").fill("http://example.org/not-https")
    decide.get_by_role("button", name="It is on the network").click()
    expect(phone.get_by_role("alert").filter(has_text="https://")).to_be_visible()
    _no_sideways_scroll(phone)
    _shot(phone, screenshot_dir, "74-post-needs-attention-phone")
    _no_blocking_violation(phone, "post page, refused address (phone)")
    decide = phone.locator('[data-network="portal"] [data-decide]')
    decide.get_by_label("The post's address on").fill(
        f"{base.replace('http', 'https')}/appeals/{appeal}"
    )
    decide.get_by_role("button", name="It is on the network").click()
    expect(phone.locator('[data-network="portal"] [data-status]')).to_have_text("sent")
    assert not phone.errors and not desk.errors  # type: ignore[attr-defined]


def test_admin_opens_the_channels_page(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer, screenshot_dir: Path
) -> None:
    base = live_server.url
    for name, options in (
        ("73-channels", {"viewport": {"width": 1366, "height": 900}}),
        ("73-channels-phone", PHONE),
    ):
        page = _open(browser, contexts, **options)
        LoginPage(page, base).sign_in(live_server.admin.email, live_server.admin.password)
        page.goto(f"{base}/staff/admin/channels")
        expect(page.get_by_role("heading", name="Channels", exact=True)).to_be_visible()
        if options is PHONE:
            _no_sideways_scroll(page)
        _shot(page, screenshot_dir, name)
        _no_blocking_violation(page, name)
        assert not page.errors  # type: ignore[attr-defined]
