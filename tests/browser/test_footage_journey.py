"""The main footage journey, in a real browser against the real app and ffmpeg:
upload, processing, blur edit, new version, supervisor approval."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, make_clip
from tests.browser.pages import CasePage, ClipPage, LoginPage

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_footage_journey_upload_edit_approve(
    page: Page, live_server: LiveServer, tmp_path: Path, screenshot_dir: Path
) -> None:
    clip_file = make_clip(tmp_path / "porch-camera.mp4", seconds=4, size="640x360")
    base = live_server.url

    case_path = f"/staff/cases/{live_server.case_id}"
    LoginPage(page, base).sign_in(
        live_server.officer.email, live_server.officer.password, case_path
    )
    case = CasePage(page, base).open(live_server.case_id)
    case.screenshot(screenshot_dir, "01-case-empty")

    case.upload(clip_file)
    case.wait_upload_done("porch-camera.mp4")
    expect(case.clip_card("porch-camera.mp4")).to_be_visible()
    case.screenshot(screenshot_dir, "02-case-uploaded")

    clip = case.open_clip("porch-camera.mp4")
    clip.wait_until_ready()
    clip.screenshot(screenshot_dir, "03-clip-ready")

    clip.draw_blur(0.30, 0.25, 0.60, 0.75)
    expect(clip.regions()).to_have_count(1)
    coords_text = clip.regions().first.locator("[data-region-coords]")
    expect(coords_text).to_have_text(re.compile(r"^\d+×\d+ at \d+,\d+$"))
    coords = coords_text.inner_text()
    width, height = (int(v) for v in coords.split(" at ")[0].split("×"))
    # Drawn on the displayed picture, stored in source pixels (640x360).
    assert 170 <= width <= 215 and 160 <= height <= 200, coords
    # Keyboard: "." steps one frame (25 fps), "," steps back.
    page.locator("body").press(".")
    expect(page.locator("[data-frame]")).to_have_text("1")
    page.locator("body").press(",")
    expect(page.locator("[data-frame]")).to_have_text("0")

    clip.set_out(3.5)
    expect(page.locator("[data-length]")).to_have_text("0:03.50")
    clip.seek(1.2)
    clip.use_current_frame_as_poster()
    expect(page.locator("[data-poster-marker]")).to_be_visible()
    clip.burn_in_caption()
    expect(page.locator("[data-preview-caption]")).to_contain_text("Case 24-0117")
    clip.screenshot(screenshot_dir, "04-studio-blur-drawn")

    # A refusal names the field: the message appears at that control.
    page.route(
        "**/versions",
        lambda route: route.fulfill(
            status=422,
            content_type="application/problem+json",
            body=json.dumps(
                {"title": "goes past the right edge", "field": "regions[0].keyframes[0].w"}
            ),
        ),
    )
    page.get_by_role("button", name="Save as new version").click()
    expect(clip.regions().first.locator("[data-region-error]")).to_contain_text("right edge")
    page.unroute("**/versions")

    number = clip.save_version()
    assert number == 2
    expect(clip.version(2)).to_be_visible()
    clip.screenshot(screenshot_dir, "05-version-2-processing")
    version = clip.wait_version_ready(2)
    summary = version.locator(".plan-summary")
    expect(summary).to_contain_text("1 region")
    expect(summary).to_contain_text("0:00.00 – 0:03.50")
    expect(summary).to_contain_text("Case 24-0117")
    expect(version.locator("video.player")).to_be_visible()
    # The studio starts from the newest version's edits.
    expect(clip.regions()).to_have_count(1)
    expect(page.get_by_label("Burn in appeal caption")).to_be_checked()
    expect(page.get_by_label("Out", exact=True)).to_have_value("3.50")
    clip.screenshot(screenshot_dir, "06-version-2-ready")
    clip_url = page.url
    clip.sign_out()

    clip_path = clip_url.removeprefix(base)
    LoginPage(page, base).sign_in(
        live_server.supervisor.email, live_server.supervisor.password, clip_path
    )
    supervisor_view = ClipPage(page, base)
    supervisor_view.approve(2)
    expect(supervisor_view.version(2).locator("summary .badge-approved")).to_have_text("Approved")
    supervisor_view.screenshot(screenshot_dir, "07-version-2-approved")


def test_footage_studio_shows_a_moving_track_where_the_render_puts_it_and_keeps_it(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    """A version whose plan holds a keyframed track (as an accepted suggestion will):
    the studio lists it as moving, moves its box with the playhead, and saves it back
    unchanged with the new effect chosen."""
    clip_file = make_clip(tmp_path / "hallway.mp4", seconds=4, size="640x360")
    base = live_server.url
    case_path = f"/staff/cases/{live_server.case_id}"
    LoginPage(page, base).sign_in(
        live_server.officer.email, live_server.officer.password, case_path
    )
    case = CasePage(page, base).open(live_server.case_id)
    case.upload(clip_file)
    case.wait_upload_done("hallway.mp4")
    clip = case.open_clip("hallway.mp4")
    clip.wait_until_ready()
    track = {
        "keyframes": [
            {"t": 1.0, "x": 0, "y": 0, "w": 64, "h": 36},
            {"t": 3.0, "x": 320, "y": 180, "w": 128, "h": 72},
        ],
        "start": None,
        "end": None,
        "effect": "blur",
        "source": "suggested:centerface@1.0.1",
        "whole_frame": False,
    }
    status = page.locator("[data-studio]").evaluate(
        "(root, plan) => fetch(root.dataset.saveUrl, {method: 'POST', headers: {"
        "'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken':"
        " document.querySelector('meta[name=\"csrf-token\"]').content},"
        " body: JSON.stringify({plan: plan})}).then(r => r.status)",
        {"regions": [track]},
    )
    assert status == 201
    page.reload()
    clip.wait_version_ready(2)
    clip.wait_until_ready()
    expect(clip.regions()).to_have_count(1)
    coords = clip.regions().first.locator("[data-region-coords]")
    box = page.locator("[data-overlay] [data-region]").first
    # Halfway between the keyframes (2 s): 96x54 at 160,90, i.e. 25% of 640 x 360.
    clip.seek(2.0)
    expect(coords).to_have_text("96×54 at 160,90, moving (2 keyframes)")
    assert box.evaluate("b => b.style.left") == "25%"
    clip.seek(3.5)  # after the last keyframe the box stays there
    expect(coords).to_have_text("128×72 at 320,180, moving (2 keyframes)")
    clip.regions().first.get_by_label("Effect").select_option("pixelate")
    with page.expect_request("**/versions") as sent:
        page.get_by_role("button", name="Save as new version").click()
    body = json.loads(sent.value.post_data or "{}")
    assert body["plan"]["regions"] == [track | {"effect": "pixelate"}]
