"""The tip form's proof of work in a real browser: the page's Web Worker solves the
server's challenge with crypto.subtle, under the site's CSP, and the tip goes
through as a proven one (the challenge is spent; the stricter limit for forms sent
without a solution is not touched)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.models import SpentChallenge, Tip, User
from tests.browser.conftest import LiveServer
from tests.portal.conftest import listed_appeal

pytestmark = [pytest.mark.browser]

RUN_JOBS = False  # the appeal is made of rows: nothing to render


@pytest.fixture(scope="module")
def appeal_id(live_server: LiveServer) -> str:
    with live_server.app.app_context():
        officer = db.session.scalars(
            sa.select(User).where(User.email == live_server.officer.email)
        ).one()
        supervisor = db.session.scalars(
            sa.select(User).where(User.email == live_server.supervisor.email)
        ).one()
        appeal = listed_appeal(
            officer.agency, officer, supervisor, number="24-0500", title="Who took the parcel?"
        )
        public_id = appeal.public_id
        db.session.remove()
    return public_id


def _counts(live_server: LiveServer) -> tuple[int, int]:
    with live_server.app.app_context():
        tips = db.session.scalar(sa.select(sa.func.count()).select_from(Tip)) or 0
        spent = db.session.scalar(sa.select(sa.func.count()).select_from(SpentChallenge)) or 0
        db.session.remove()
    return tips, spent


def test_worker_solves_the_challenge_and_the_tip_is_sent_with_its_proof(
    page: Page, live_server: LiveServer, appeal_id: str, screenshot_dir: Path
) -> None:
    before = _counts(live_server)
    page.goto(f"{live_server.url}/appeals/{appeal_id}/tip?via=qr")
    form = page.locator("form[data-pow-bits]")
    expect(form).to_have_attribute("data-pow-bits", "16")
    page.get_by_label("What do you know?").fill("The man in the video is my neighbour.")
    # Sent at once: the page waits for the worker if it has not finished yet.
    page.get_by_role("button", name="Send the tip").click()
    expect(page.get_by_role("heading", name="Thank you. Your tip was received.")).to_be_visible(
        timeout=60_000
    )
    page.screenshot(path=str(screenshot_dir / "tip-sent-with-proof-of-work.png"), full_page=True)
    tips, spent = _counts(live_server)
    assert (tips, spent) == (before[0] + 1, before[1] + 1)  # proven: its challenge spent


def test_worker_finishes_before_the_visitor_does(
    page: Page, live_server: LiveServer, appeal_id: str
) -> None:
    page.goto(f"{live_server.url}/appeals/{appeal_id}/tip")
    form = page.locator("form[data-pow-bits]")
    expect(form).to_have_attribute("data-pow-solved", "true", timeout=60_000)
    solution = page.locator("input[name=pow_solution]").input_value()
    assert solution.isdigit()
    page.get_by_label("What do you know?").fill("He drives a red Honda.")
    page.get_by_role("button", name="Send the tip").click()
    expect(page.get_by_role("heading", name="Thank you. Your tip was received.")).to_be_visible()


def test_without_javascript_the_form_still_sends_the_tip(
    live_server: LiveServer, appeal_id: str, browser
) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        before = _counts(live_server)
        page.goto(f"{live_server.url}/appeals/{appeal_id}/tip")
        page.get_by_label("What do you know?").fill("Sent from a browser without scripts.")
        page.get_by_role("button", name="Send the tip").click()
        expect(
            page.get_by_role("heading", name="Thank you. Your tip was received.")
        ).to_be_visible()
        tips, spent = _counts(live_server)
        assert (tips, spent) == (before[0] + 1, before[1])  # unproven: nothing spent
    finally:
        context.close()
