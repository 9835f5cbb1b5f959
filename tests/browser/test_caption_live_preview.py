"""The caption editor's live preview in a real browser: as an admin types a network's
caption template, the preview shows the caption as that network will cut and count it
(the server counts; the page's script only places its answer), says by how much it is
too long and which fields are wrong, and saves nothing. Screenshots of the editor on a
desktop and on a phone for a person to look at, and axe on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from portal.extensions import db
from portal.publishing.caption_models import CaptionTemplate
from tests.browser.axe import blocking, describe, run_axe
from tests.browser.conftest import PHONE, LiveServer
from tests.browser.pages import LoginPage
from tests.browser.seed import in_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_JOBS = False  # captions from sample values: nothing to render
#: A wait, not a timing assertion: the preview answers after a pause in typing.
ACTION_TIMEOUT_MS = 15_000


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def _editor(
    browser: Browser, contexts: list[BrowserContext], live: LiveServer, **options: object
) -> Page:
    context = browser.new_context(**options)  # type: ignore[arg-type]
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    contexts.append(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: (
            # A script refused by the CSP, or a preview request that failed (not the
            # browser's own favicon.ico look-up, which the portal does not serve).
            errors.append(f"{msg.text} {msg.location.get('url', '')}")
            if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    page.errors = errors  # type: ignore[attr-defined]
    LoginPage(page, live.url).sign_in(live.admin.email, live.admin.password)
    page.goto(f"{live.url}/staff/schedule/captions/mastodon")
    expect(page.get_by_role("heading", name="Caption for Mastodon")).to_be_visible()
    return page


def _no_blocking_violation(page: Page, name: str) -> None:
    serious = blocking(run_axe(page))
    assert not serious, describe(serious, f"{name} ({page.url})")


def test_admin_sees_the_caption_cut_and_counted_as_they_type(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer, screenshot_dir: Path
) -> None:
    page = _editor(browser, contexts, live_server, viewport={"width": 1366, "height": 900})
    panel = page.locator("[data-preview-panel]")
    count, caption = panel.locator("[data-count]"), panel.locator("[data-caption]")
    warning = panel.locator("[data-warning]")
    expect(panel).to_contain_text("as you type")

    page.get_by_label("For each appeal").fill("Tips: {tip_url}")
    page.get_by_label("Closing (once)").fill("{hashtags}")
    page.get_by_label("Hashtags").fill("#Springfield")
    # "Tips: " (6) + the link, 23 to Mastodon however long + "\n\n" + "#Springfield" (12).
    expect(count).to_have_text("43 / 500")
    expect(caption).to_contain_text("Tips: http")
    expect(caption).to_contain_text("#Springfield")
    expect(warning).to_be_hidden()

    page.get_by_label("For each appeal").fill("x" * 500 + " {tip_url}")
    expect(count).to_have_text("538 / 500")
    expect(warning).to_have_text(
        "Too long by 38 even with the summary and title cut: shorten the template."
    )
    page.screenshot(path=str(screenshot_dir / "75-caption-live-too-long.png"), full_page=True)

    page.get_by_label("For each appeal").fill("Case {case_number}: {colour}")
    expect(panel.locator("[data-problems]")).to_contain_text("{colour} is not a field here")
    expect(panel.locator("[data-problems]")).to_contain_text("must contain {tip_url}")

    page.get_by_label("For each appeal").fill("Case {case_number}: {title}\nTips: {tip_url}")
    expect(panel.locator("[data-problems]")).to_be_hidden()
    expect(caption).to_contain_text("Man wanted for a robbery on Main Street")
    live_count = count.inner_text()
    live_text = caption.inner_text()
    page.screenshot(path=str(screenshot_dir / "75-caption-live.png"), full_page=True)
    _no_blocking_violation(page, "caption editor (live preview)")

    # Without the script the Preview button answers the same: one count, the server's.
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("[data-count]")).to_have_text(live_count)
    assert page.locator("[data-caption]").inner_text() == live_text
    with in_app(live_server):
        assert db.session.scalars(db.select(CaptionTemplate)).all() == []
    assert not page.errors  # type: ignore[attr-defined]


def test_caption_live_preview_on_a_phone(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer, screenshot_dir: Path
) -> None:
    page = _editor(browser, contexts, live_server, **PHONE)
    page.get_by_label("Hashtags").fill("#Springfield #SpringfieldPD")
    expect(page.locator("[data-caption]")).to_contain_text("#Springfield #SpringfieldPD")
    screen = (page.viewport_size or {"width": 0})["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= screen
    page.screenshot(path=str(screenshot_dir / "75-caption-live-phone.png"), full_page=True)
    _no_blocking_violation(page, "caption editor (phone)")
    assert not page.errors  # type: ignore[attr-defined]
