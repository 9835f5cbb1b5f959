"""Redaction in the studio, in a real browser against the real app, ffmpeg, tracker and
face detector: a drawn box followed and corrected, face suggestions accepted and
rejected, muted and bleeped audio ranges, the timeline of thumbnails, and the Retry
button and the revoking of an approval on the clip page.

The footage is a generated clip in which a photograph of a face moves along a known
path (the recipe of tests/media_pipeline/test_faces.py), so what the tracker and the
detector propose can be checked against where the face really is.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from portal.extensions import db
from portal.jobs.execution import LOST_WORKER_REASON, requeue_stale_jobs
from portal.models import Clip, ClipVersion, JobStatus
from portal.models.base import utcnow
from portal.services.clips import attach_upload
from tests.browser.axe import assert_accessible
from tests.browser.conftest import PHONE, LiveServer, make_clip
from tests.browser.pages import ClipPage, LoginPage
from tests.browser.seed import (
    RENDER_TIMEOUT_S,
    Footage,
    _case,
    _user,
    approve,
    in_app,
    new_case,
    ready_footage,
)
from tests.media_pipeline.test_faces import FACE_IN_PHOTO, H, W, make_face_clip, photo_at
from tests.portal.conftest import staged_upload

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The tracker and the detector share the runner's two cores with ffmpeg: a wait.
PROPOSAL_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_face_clip(tmp_path_factory.mktemp("studio") / "lobby-camera.mp4")


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Contexts a test opens, closed after it whatever happens."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def _face_box(t: float) -> tuple[int, int, int, int]:
    """Where the face is at ``t``: x, y, w, h in source pixels."""
    px, py = photo_at(t)
    x0, y0, x1, y1 = FACE_IN_PHOTO
    return round(px + x0), round(py + y0), x1 - x0, y1 - y0


def _plan(live: LiveServer, clip_id: str, number: int) -> dict[str, Any]:
    with in_app(live):
        version = db.session.scalar(
            select(ClipVersion)
            .join(Clip)
            .where(Clip.public_id == clip_id, ClipVersion.number == number)
        )
        assert version is not None, number
        return dict(version.plan)


def _officer_studio(page: Page, live: LiveServer, footage: Footage) -> ClipPage:
    LoginPage(page, live.url).sign_in(
        live.officer.email, live.officer.password, f"/staff/clips/{footage.clip_id}"
    )
    clip = ClipPage(page, live.url)
    clip.wait_until_ready()
    return clip


def _coords(text: str) -> tuple[int, int, int, int]:
    match = re.match(r"^(\d+)×(\d+) at (\d+),(\d+)", text)
    assert match is not None, text
    w, h, x, y = (int(v) for v in match.groups())
    return x, y, w, h


def test_studio_follows_a_drawn_box_and_keeps_the_correction_dragged_at_another_frame(
    page: Page, live_server: LiveServer, face_clip: Path, screenshot_dir: Path
) -> None:
    case_id = new_case(live_server, "24-0601", "Assault in the lobby")
    footage = ready_footage(live_server, case_id, face_clip)
    clip = _officer_studio(page, live_server, footage)
    follow = page.get_by_role("button", name="Follow selected box")
    expect(follow).to_be_disabled()

    # Around the face on the first frame, a little wider than it.
    x, y, w, h = _face_box(0)
    clip.draw_blur((x - 6) / W, (y - 6) / H, (x + w + 6) / W, (y + h + 6) / H)
    expect(clip.regions()).to_have_count(1)
    expect(follow).to_be_enabled()
    clip.follow_selected_box()
    expect(clip.proposal_message).to_contain_text(
        re.compile(r"Followed to the end|The tracker"), timeout=PROPOSAL_TIMEOUT_MS
    )
    coords = clip.regions().first.locator("[data-region-coords]")
    expect(coords).to_contain_text("moving")
    # The proposed track moves with the face: a second later it is where the face is.
    clip.seek(1.0)
    fx, fy, _, _ = _face_box(1.0)
    bx, by, bw, bh = _coords(coords.inner_text())
    assert abs((bx + bw / 2) - (fx + w / 2)) < 24 and abs((by + bh / 2) - (fy + h / 2)) < 24, (
        coords.inner_text(),
        (fx, fy),
    )
    ticks = clip.keyframe_ticks()
    expect(ticks.first).to_be_visible()
    before = ticks.count()
    clip.screenshot(screenshot_dir, "80-studio-box-followed")
    assert_accessible(page, "studio with a followed box")

    # The officer corrects it at 2.25 s: 10% of the picture to the right.
    clip.seek(2.25)
    bx, by, bw, bh = _coords(coords.inner_text())
    clip.drag_region(0, 0.10, 0)
    expect(coords).not_to_have_text(re.compile(rf"^{bw}×{bh} at {bx},"))
    corrected = _coords(coords.inner_text())
    assert abs(corrected[0] - (bx + W // 10)) <= 1 and corrected[1:] == (by, bw, bh), corrected
    # A keyframe at the playhead: a tick more, unless the tracker had one on that frame.
    assert ticks.count() in (before, before + 1)
    expect(page.get_by_role("button", name="Go to the keyframe at 0:02.25")).to_have_count(
        1 if ticks.count() == before + 1 else 0
    )
    clip.screenshot(screenshot_dir, "81-studio-track-corrected")

    number = clip.save_version()
    assert number == 2
    region = _plan(live_server, footage.clip_id, 2)["regions"][0]
    assert region["source"].startswith("tracked:csrt@"), region
    assert region["start"] is None and not region["whole_frame"], region
    near = [k for k in region["keyframes"] if abs(k["t"] - 2.25) <= 0.5 / 30]
    assert len(near) == 1, region["keyframes"]
    assert (near[0]["x"], near[0]["y"], near[0]["w"], near[0]["h"]) == corrected
    times = [k["t"] for k in region["keyframes"]]
    assert times == sorted(times) and len(times) >= 3 and times[0] == 0, times
    version = clip.wait_version_ready(2)
    expect(version.locator(".plan-summary")).to_contain_text("1 region (1 moving)")
    clip.screenshot(screenshot_dir, "82-version-with-track-ready")


def test_studio_suggests_the_moving_face_and_covers_it_only_once_accepted(
    page: Page, live_server: LiveServer, face_clip: Path, screenshot_dir: Path
) -> None:
    case_id = new_case(live_server, "24-0602", "Robbery at the kiosk")
    footage = ready_footage(live_server, case_id, face_clip)
    clip = _officer_studio(page, live_server, footage)

    clip.find_faces()
    expect(clip.proposal_message).to_have_text(
        "1 face found. Nothing is blurred until you accept it.", timeout=PROPOSAL_TIMEOUT_MS
    )
    expect(clip.suggestions()).to_have_count(1)
    expect(clip.suggestions().first).to_contain_text("Face 1")
    expect(clip.overlay.locator(".suggest-box")).to_have_count(1)
    expect(clip.regions()).to_have_count(0)  # nothing covered yet
    # The face clip has no sound: no audio ranges to offer.
    expect(page.get_by_role("button", name="Add range at playhead")).to_be_hidden()
    clip.seek(1.5)
    clip.screenshot(screenshot_dir, "83-studio-face-suggested")
    assert_accessible(page, "studio with a suggested face")

    # Reject all: nothing suggested, nothing covered, and the save says so.
    page.get_by_role("button", name="Reject all").click()
    expect(clip.suggestions()).to_have_count(0)
    expect(clip.overlay.locator(".suggest-box")).to_have_count(0)
    expect(page.locator("[data-suggestions]")).to_be_hidden()
    expect(clip.regions()).to_have_count(0)
    assert clip.save_version() == 2
    assert _plan(live_server, footage.clip_id, 2)["regions"] == []
    clip.wait_version_ready(2)

    # The page opened again shows the search again (a rejection is not forever).
    clip.wait_until_ready()
    expect(clip.suggestions()).to_have_count(1, timeout=20_000)
    page.get_by_role("button", name="Accept face 1").click()
    expect(clip.suggestions()).to_have_count(0)
    expect(clip.regions()).to_have_count(1)
    coords = clip.regions().first.locator("[data-region-coords]")
    expect(coords).to_contain_text("moving")
    # The accepted region covers the face where it is, frame by frame.
    for t in (0.5, 2.5):
        clip.seek(t)
        fx, fy, fw, fh = _face_box(t)
        bx, by, bw, bh = _coords(coords.inner_text())
        assert bx <= fx + 4 and by <= fy + 4, (t, coords.inner_text(), (fx, fy))
        assert bx + bw >= fx + fw - 4 and by + bh >= fy + fh - 4, (t, coords.inner_text())
    clip.screenshot(screenshot_dir, "84-studio-face-accepted")
    assert clip.save_version() == 3
    regions = _plan(live_server, footage.clip_id, 3)["regions"]
    assert len(regions) == 1, regions
    assert regions[0]["source"].startswith("suggested:centerface@"), regions[0]
    assert len(regions[0]["keyframes"]) > 1 and regions[0]["effect"] == "blur", regions[0]
    version = clip.wait_version_ready(3)
    expect(version.locator(".plan-summary")).to_contain_text("1 region (1 moving)")
    # Once accepted, the same face is not suggested again.
    expect(clip.regions()).to_have_count(1)
    expect(clip.suggestions()).to_have_count(0)
    clip.screenshot(screenshot_dir, "85-version-with-face-ready")


def test_studio_on_a_phone_shows_suggestions_and_a_moving_region(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: LiveServer,
    face_clip: Path,
    screenshot_dir: Path,
) -> None:
    case_id = new_case(live_server, "24-0603", "Scuffle at the bus stop")
    footage = ready_footage(live_server, case_id, face_clip)
    context = browser.new_context(**PHONE)
    contexts.append(context)
    page = context.new_page()
    page.set_default_timeout(20_000)
    clip = _officer_studio(page, live_server, footage)
    clip.find_faces()
    expect(clip.suggestions()).to_have_count(1, timeout=PROPOSAL_TIMEOUT_MS)
    clip.seek(1.0)
    clip.screenshot(screenshot_dir, "86-phone-face-suggested")
    page.locator("[data-studio]").screenshot(path=str(screenshot_dir / "86-phone-studio.png"))
    page.get_by_role("button", name="Accept all").click()
    expect(clip.regions()).to_have_count(1)
    clip.regions().first.get_by_role("button", name="Region 1", exact=True).click()
    expect(clip.keyframe_ticks().first).to_be_visible()
    clip.screenshot(screenshot_dir, "87-phone-face-accepted")
    page.locator("[data-studio]").screenshot(path=str(screenshot_dir / "87-phone-studio.png"))
    # Nothing of the studio is wider than the phone.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390


def test_studio_bleeps_a_range_of_the_audio_and_starts_from_it_next_time(
    page: Page, live_server: LiveServer, tmp_path: Path, screenshot_dir: Path
) -> None:
    case_id = new_case(live_server, "24-0606", "Threats at the front desk")
    source = make_clip(tmp_path / "front-desk.mp4", seconds=4, size="640x360")
    footage = ready_footage(live_server, case_id, source)
    clip = _officer_studio(page, live_server, footage)
    expect(clip.audio_ranges()).to_have_count(0)

    clip.seek(1.0)
    first = clip.add_audio_range()
    expect(first.get_by_label("Start", exact=True)).to_have_value("1.00")
    expect(first.get_by_label("End", exact=True)).to_have_value("3.00")  # two seconds by default
    clip.seek(2.5)
    first.get_by_role("button", name="Set range 1 end to now (the playhead)").click()
    expect(first.get_by_label("End", exact=True)).to_have_value("2.50")
    first.get_by_label("Effect", exact=True).select_option("bleep")
    span = page.locator("[data-track] [data-audio-span]")
    expect(span).to_have_count(1)
    expect(span).to_have_class(re.compile(r"\bis-bleep\b"))
    # 1.00 to 2.50 of a 4 s clip.
    assert span.evaluate("s => [s.style.left, s.style.width]") == ["25%", "37.5%"]
    # The preview is silent inside the range only.
    muted = page.locator("[data-video]")
    clip.seek(1.5)
    assert muted.evaluate("v => v.muted") is True
    clip.seek(3.0)
    assert muted.evaluate("v => v.muted") is False

    # A second one at the very end is clamped to the clip, then deleted.
    duration = float(page.locator("[data-studio]").get_attribute("data-duration") or 0)
    clip.seek(duration - 0.05)
    second = clip.add_audio_range()
    expect(second.get_by_label("End", exact=True)).to_have_value(f"{duration:.2f}")
    expect(span).to_have_count(2)
    second.get_by_role("button", name="Delete range 2").click()
    expect(clip.audio_ranges()).to_have_count(1)
    clip.screenshot(screenshot_dir, "92-studio-audio-range-bleeped")
    assert_accessible(page, "studio with an audio range and thumbnails")

    # A refusal that names a range's field appears at that range.
    page.route(
        "**/versions",
        lambda route: route.fulfill(
            status=422,
            content_type="application/problem+json",
            body=json.dumps(
                {"title": "is after the end of the edited clip", "field": "audio_ranges[0].start"}
            ),
        ),
    )
    page.get_by_role("button", name="Save as new version").click()
    expect(first.locator("[data-range-error]")).to_have_text(
        "start: is after the end of the edited clip"
    )
    page.unroute("**/versions")

    assert clip.save_version() == 2
    plan = _plan(live_server, footage.clip_id, 2)
    assert plan["audio"] == "keep"
    assert plan["audio_ranges"] == [{"start": 1.0, "end": 2.5, "effect": "bleep"}]
    version = clip.wait_version_ready(2)
    expect(version.locator(".plan-summary")).to_contain_text("Kept, 1 range muted or bleeped")

    # The next edit starts from it; muting the whole clip leaves the range aside.
    clip.wait_until_ready()
    expect(clip.audio_ranges()).to_have_count(1)
    loaded = clip.audio_ranges().first
    expect(loaded.get_by_label("Start", exact=True)).to_have_value("1.00")
    expect(loaded.get_by_label("End", exact=True)).to_have_value("2.50")
    expect(loaded.get_by_label("Effect", exact=True)).to_have_value("bleep")
    page.get_by_label("Mute", exact=True).check()
    expect(page.get_by_text("Ranges apply only while the audio is kept.")).to_be_visible()
    expect(page.get_by_role("button", name="Add range at playhead")).to_be_disabled()
    assert muted.evaluate("v => v.muted") is True  # the whole clip now
    with page.expect_request("**/versions") as sent:
        page.get_by_role("button", name="Save as new version").click()
    body = json.loads(sent.value.post_data or "{}")
    assert body["plan"]["audio"] == "mute" and body["plan"]["audio_ranges"] == []
    clip.screenshot(screenshot_dir, "93-studio-audio-muted-ranges-aside")


def test_studio_on_a_phone_lists_audio_ranges_and_thumbnails_within_the_screen(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: LiveServer,
    tmp_path: Path,
    screenshot_dir: Path,
) -> None:
    case_id = new_case(live_server, "24-0608", "Graffiti on the underpass")
    source = make_clip(tmp_path / "underpass.mp4", seconds=4, size="640x360")
    footage = ready_footage(live_server, case_id, source)
    context = browser.new_context(**PHONE)
    contexts.append(context)
    page = context.new_page()
    page.set_default_timeout(20_000)
    clip = _officer_studio(page, live_server, footage)
    expect(page.locator("[data-thumbs] .timeline-thumb").first).to_be_visible()
    clip.seek(0.5)
    item = clip.add_audio_range()
    item.get_by_label("Effect", exact=True).select_option("bleep")
    expect(page.locator("[data-track] [data-audio-span]")).to_have_count(1)
    page.locator("[data-studio]").screenshot(path=str(screenshot_dir / "95-phone-audio-range.png"))
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390


def test_studio_timeline_shows_thumbnails_of_the_source(
    page: Page, live_server: LiveServer, tmp_path: Path, screenshot_dir: Path
) -> None:
    """Version 1's sprite: a 4 s 640x360 clip has a thumbnail every 2 s, 160x90 each,
    side by side (0:00-0:02 at x=0, 0:02-0:04 at x=160); the timeline shows as many
    as fit its width at its height, each the frame under its middle."""
    case_id = new_case(live_server, "24-0607", "Bicycle taken from the rack")
    source = make_clip(tmp_path / "bike-rack.mp4", seconds=4, size="640x360")
    footage = ready_footage(live_server, case_id, source)
    clip = _officer_studio(page, live_server, footage)
    thumbs = page.locator("[data-thumbs] .timeline-thumb")
    expect(thumbs.first).to_be_visible()
    width, height = page.locator("[data-track]").evaluate("t => [t.clientWidth, t.clientHeight]")
    scale = height / 90
    slot = 160 * scale
    expect(thumbs).to_have_count(math.ceil(width / slot))
    sprite = f"/staff/versions/{footage.version_id}/media/sprite"
    styles = thumbs.evaluate_all(
        "ts => ts.map(t => [t.style.backgroundImage, t.style.backgroundPosition])"
    )
    for i, (image, position) in enumerate(styles):
        assert sprite in image, image
        middle = (i + 0.5) * slot / width * 4
        x = float(position.split("px")[0])
        assert abs(x - (0 if middle < 2 else -160 * scale)) < 0.5, (i, middle, position)
    # What a trim leaves out is shaded over the thumbnails: 0-1 s and 3-4 s of 4 s.
    page.get_by_label("In", exact=True).fill("1.00")
    page.get_by_label("In", exact=True).press("Enter")
    clip.set_out(3.0)
    cuts = page.locator("[data-thumbs] [data-cut]")
    assert cuts.evaluate_all("cs => cs.map(c => [c.style.width, c.style.left])") == [
        ["25%", ""],
        ["", "75%"],
    ]
    page.locator("[data-timeline]").screenshot(
        path=str(screenshot_dir / "94-timeline-thumbnails.png")
    )
    clip.screenshot(screenshot_dir, "94-studio-timeline-thumbnails")

    # A version 1 without its sprite's index (as before sprites were made): no thumbnails.
    with in_app(live_server):
        version = db.session.scalar(
            select(ClipVersion).where(ClipVersion.public_id == footage.version_id)
        )
        assert version is not None
        for rendition in [r for r in version.renditions if r.name == "sprite_index"]:
            db.session.delete(rendition)
        db.session.commit()
    page.reload()
    clip.wait_until_ready()
    expect(page.locator("[data-thumbs]")).to_be_hidden()
    expect(thumbs).to_have_count(0)
    expect(page.locator("[data-track]")).not_to_have_class(re.compile(r"\bhas-thumbs\b"))


def _clip_lost_with_its_worker(live: LiveServer, case_id: str, source: Path) -> str:
    """An upload whose storing was on its last attempt when its worker died: the reaper
    fails the clip, which then shows Processing failed and its Retry button. Made in
    one transaction, so the live runner never sees the ingest queued."""
    with in_app(live):
        officer = _user(live.officer.email)
        case = _case(case_id)
        upload = staged_upload(officer, case, source)
        clip = attach_upload(case, upload.public_id, officer)
        db.session.flush()
        job = clip.ingest_job
        assert job is not None
        long_ago = utcnow() - timedelta(hours=1)
        job.status = JobStatus.RUNNING.value
        job.attempts = job.max_attempts = 1
        job.worker = "celery:gone:1"
        job.claim_token = "e" * 32
        job.started_at = job.heartbeat_at = long_ago
        db.session.commit()
        clip_id = clip.public_id
    with in_app(live):
        requeue_stale_jobs(timedelta(minutes=1))
        clip = db.session.scalar(select(Clip).where(Clip.public_id == clip_id))
        assert clip is not None and clip.status == "failed", clip and clip.status
    return clip_id


def test_officer_retries_a_clip_whose_storing_failed(
    page: Page, live_server: LiveServer, tmp_path: Path, screenshot_dir: Path
) -> None:
    case_id = new_case(live_server, "24-0604", "Van broken into overnight")
    source = make_clip(tmp_path / "garage.mp4", seconds=2, size="320x240")
    clip_id = _clip_lost_with_its_worker(live_server, case_id, source)
    LoginPage(page, live_server.url).sign_in(
        live_server.officer.email, live_server.officer.password, f"/staff/clips/{clip_id}"
    )
    clip = ClipPage(page, live_server.url)
    alert = page.get_by_role("alert").filter(has_text="Processing failed.")
    expect(alert).to_contain_text(LOST_WORKER_REASON)
    expect(page.locator("[data-studio]")).to_have_count(0)  # nothing to edit yet
    # The failed job is listed with its reason, and the one Retry is the alert's.
    expect(page.locator("[data-job-list] li .error")).to_contain_text(LOST_WORKER_REASON)
    expect(page.get_by_role("button", name="Retry")).to_have_count(1)
    clip.screenshot(screenshot_dir, "88-clip-storing-failed")
    alert.get_by_role("button", name="Retry").click()
    expect(clip.flash()).to_have_text("Processing was started again.")
    expect(alert).to_have_count(0)
    clip.wait_until_ready(RENDER_TIMEOUT_S * 1000)
    expect(clip.version(1).locator("video.player")).to_be_visible()
    clip.screenshot(screenshot_dir, "89-clip-retried")


def test_supervisor_revokes_an_approval_on_a_phone_and_may_approve_again(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: LiveServer,
    tmp_path: Path,
    screenshot_dir: Path,
) -> None:
    case_id = new_case(live_server, "24-0605", "Shoplifting at the pharmacy")
    source = make_clip(tmp_path / "aisle.mp4", seconds=2, size="320x240")
    footage = ready_footage(live_server, case_id, source)
    approve(live_server, footage)
    context = browser.new_context(**PHONE)
    contexts.append(context)
    page = context.new_page()
    page.set_default_timeout(20_000)
    LoginPage(page, live_server.url).sign_in(
        live_server.supervisor.email,
        live_server.supervisor.password,
        f"/staff/clips/{footage.clip_id}",
    )
    clip = ClipPage(page, live_server.url)
    version = clip.version(1)
    expect(version.locator("summary .badge-approved")).to_have_text("Approved")
    version.locator("details.revoke > summary").click()
    # The reason is required: the browser keeps the form until one is written.
    version.get_by_role("button", name="Revoke approval").click()
    expect(version.locator(".approval-ok")).to_be_visible()
    clip.screenshot(screenshot_dir, "90-phone-revoke-form")
    version.get_by_label("Reason for revoking").fill("The cashier's face is visible at 0:01.")
    version.get_by_role("button", name="Revoke approval").click()
    expect(clip.flash()).to_have_text("The approval of version 1 is revoked.")
    expect(clip.version(1).locator(".badge-approved")).to_have_count(0)
    expect(clip.version(1).locator("form.approve-form")).to_be_visible()
    clip.screenshot(screenshot_dir, "91-phone-approval-revoked")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    with in_app(live_server):
        row = db.session.scalar(
            select(ClipVersion).where(ClipVersion.public_id == footage.version_id)
        )
        assert row is not None and row.active_approval is None
        reasons = [a.revoke_reason for a in row.approvals]
        assert reasons == ["The cashier's face is visible at 0:01."]
    clip.approve(1)
    expect(clip.version(1).locator("summary .badge-approved")).to_have_text("Approved")
