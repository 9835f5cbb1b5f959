"""A tipster sends a photo with a tip from a phone-sized page with JavaScript: the
files go by XMLHttpRequest with a progress bar, the receipt replaces the form, no
script is inline and nothing is fetched from another host; the supervisor then sees
the stripped photo on the tip's page."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, expect

from portal.extensions import db
from portal.models import TipAttachment
from tests.browser.conftest import LiveServer
from tests.browser.pages import LoginPage
from tests.media_pipeline.test_attachments import phone_photo

pytestmark = [pytest.mark.browser]


def test_a_tip_with_a_photo_from_a_phone_with_javascript(
    browser: Browser, live_server: LiveServer, tmp_path: Path, screenshot_dir: Path
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
    hosts: set[str] = set()
    kinds: list[str] = []
    page.on("request", lambda r: (hosts.add(r.url.split("/")[2]), kinds.append(r.resource_type)))
    page.goto(f"{live_server.url}/agencies/springfield/tip")
    page.get_by_label("What do you know?").fill("The man in the video lives at 12 Elm Street.")
    page.get_by_label("Photos or videos (optional)").set_input_files(
        str(phone_photo(tmp_path / "IMG_0001.jpg"))
    )
    page.get_by_role("button", name="Send the tip").click()
    # The file goes first, then the form waits for its proof of work.
    expect(page.get_by_role("heading", name="Thank you. Your tip was received.")).to_be_visible(
        timeout=60_000
    )
    expect(page.get_by_text("Photo 1")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "tip-attachment-receipt.png"), full_page=True)
    assert "xhr" in kinds  # sent by the script, with its progress bar
    assert hosts == {live_server.url.split("/")[2]}
    # No CSP violation, no script error, nothing the page asked for missing (Chromium's
    # own favicon probe, which the page does not make, shows only as a console line).
    assert not missing, missing
    assert not [p for p in problems if "Failed to load resource" not in p], problems

    with live_server.app.app_context():
        deadline = time.monotonic() + 60
        while True:
            row = db.session.scalar(sa.select(TipAttachment))
            assert row is not None
            if row.status != "queued" or time.monotonic() > deadline:
                break
            db.session.remove()
            time.sleep(0.5)
        assert row.status == "ready", row.reason
        tip_id = row.tip.public_id if row.tip else ""
        db.session.remove()
    staff = browser.new_page()
    LoginPage(staff, live_server.url).sign_in(
        live_server.supervisor.email, live_server.supervisor.password, f"/staff/tips/{tip_id}"
    )
    image = staff.get_by_role("img", name="Photo 1 sent by the tipster")
    expect(image).to_be_visible()
    # Visible is not loaded: the lazy image is fetched once laid out. Wait for the fetch to end,
    # then the decoded picture must be the derivative's 32 pixels (0 when it failed to load).
    staff.wait_for_function("img => img.complete", arg=image.element_handle())
    assert staff.evaluate("img => img.naturalWidth", image.element_handle()) == 32
    assert re.search(r"Download the original", staff.content())
    staff.screenshot(path=str(screenshot_dir / "tip-attachment-staff.png"), full_page=True)
    context.close()
