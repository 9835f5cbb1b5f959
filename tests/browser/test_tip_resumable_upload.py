"""A tipster sends a large video from a phone-sized page with JavaScript: it goes in
the page's chunks with a progress bar, the connection is cut in the middle (the
browser's request intercepted and dropped), the page says it is trying again and
resumes from the offset the server has, not from the start; then the tip is sent and
its receipt lists the video, which the worker processes. Nothing is fetched from
another host. The screenshots are of the bar mid-way, of the cut, and of the receipt."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Route, expect

from portal.extensions import db
from portal.models import TipAttachment
from tests.browser.conftest import LiveServer, make_clip, pad_clip
from tests.media_pipeline.test_attachments import phone_photo

pytestmark = [pytest.mark.browser]

MIB = 1024 * 1024


def test_a_large_video_resumes_after_a_cut_connection_and_the_tip_is_sent(
    browser: Browser, live_server: LiveServer, tmp_path: Path, screenshot_dir: Path
) -> None:
    video = pad_clip(make_clip(tmp_path / "VID_20261201.mp4", seconds=2), 30 * MIB)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(r.url.split("/")[2]))

    patches: list[int] = []  # the Upload-Offset of every PATCH the page sent
    heads: list[str] = []
    cut: list[int] = []
    # The first HEAD after the cut waits until the page has been seen saying it is
    # trying again (the message stands from the cut until the page resumes, a second
    # or so: a poll of the page could miss it otherwise).
    held: list[Route] = []
    # The third chunk waits too, until the bar has been seen past the middle: the
    # last chunks go fast, and the page then says the files were sent.
    held_patch: list[Route] = []

    def intercept(route: Route) -> None:
        request = route.request
        if request.method == "HEAD":
            heads.append(request.url)
            if cut and not held:
                held.append(route)
                return
        if request.method == "PATCH":
            offset = int(request.headers["upload-offset"])
            patches.append(offset)
            if offset > 0 and not cut:
                # The second chunk's connection is lost: it never reaches the server.
                cut.append(offset)
                route.abort("connectionreset")
                return
            if cut and offset == 2 * cut[0] and not held_patch:
                held_patch.append(route)
                return
        route.continue_()

    page.route("**/tip-files/**", intercept)
    page.goto(f"{live_server.url}/agencies/springfield/tip")
    box = page.locator(".upload-progress")
    chunk = int(box.get_attribute("data-chunk-bytes") or 0)
    assert 0 < 3 * chunk < video.stat().st_size  # four chunks or more: a cut, then two more
    page.get_by_label("What do you know?").fill("The driver in this video is my neighbour.")
    page.get_by_label("Photos or videos (optional)").set_input_files(str(video))
    page.get_by_role("button", name="Send the tip").click()

    status = page.locator(".upload-status")
    # (The first chunk may take a while on a loaded machine.)
    expect(status).to_contain_text("The connection was lost. Trying again", timeout=60_000)
    page.screenshot(path=str(screenshot_dir / "tip-resumable-cut.png"), full_page=True)
    deadline = time.monotonic() + 30
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert held, "no HEAD after the cut"
    held[0].continue_()
    page.wait_for_function(
        "() => { const p = document.querySelector('.upload-progress progress');"
        " return p && p.value >= 50 && p.value < 100; }"
    )
    expect(status).to_contain_text("Sending your files:")
    page.screenshot(path=str(screenshot_dir / "tip-resumable-progress.png"), full_page=True)
    assert held_patch, "no third chunk"
    held_patch[0].continue_()

    expect(page.get_by_role("heading", name="Thank you. Your tip was received.")).to_be_visible(
        timeout=60_000
    )
    expect(page.get_by_text("Video 1")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "tip-resumable-receipt.png"), full_page=True)

    # The page asked the server where to go on, and went on from there, not from 0;
    # every chunk after it started where the one before ended.
    assert cut == [chunk]
    assert heads, "no HEAD after the cut"
    after = patches[patches.index(chunk) + 1 :]
    assert after[0] == chunk
    assert after == [chunk * n for n in range(1, len(after) + 1)]
    assert hosts == {live_server.url.split("/")[2]}
    assert not [p for p in problems if "Failed to load resource" not in p], problems

    with live_server.app.app_context():
        deadline = time.monotonic() + 90
        while True:
            row = db.session.scalar(sa.select(TipAttachment).order_by(TipAttachment.id.desc()))
            assert row is not None
            if row.status != "queued" or time.monotonic() > deadline:
                break
            db.session.remove()
            time.sleep(0.5)
        assert row.tip_id is not None
        assert row.sha256 == hashlib.sha256(video.read_bytes()).hexdigest()
        assert (row.status, row.kind) == ("ready", "video"), row.reason
        db.session.remove()
    context.close()


def test_a_refused_file_says_why_in_spanish_and_the_tip_goes_with_the_others(
    browser: Browser, live_server: LiveServer, tmp_path: Path, screenshot_dir: Path
) -> None:
    document = tmp_path / "declaracion.pdf"
    document.write_bytes(b"%PDF-1.7\n" + b"0" * 4096)
    photo = phone_photo(tmp_path / "IMG_0002.jpg")
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="es-MX")
    page = context.new_page()
    page.goto(f"{live_server.url}/agencies/springfield/tip?lang=es")
    page.get_by_label("¿Qué sabe?").fill("El hombre del vídeo vive en la calle Olmo 12.")
    page.locator("input[type=file]").set_input_files([str(document), str(photo)])
    send = page.locator("button[type=submit]")
    send.click()
    refusal = page.locator(".upload-refusals li")
    expect(refusal).to_have_count(1, timeout=60_000)
    expect(refusal).to_contain_text("declaracion.pdf no fue admitido: es un documento PDF")
    expect(page.locator(".upload-status")).to_contain_text(
        "Los demás archivos llegaron", timeout=60_000
    )
    expect(send).to_be_enabled()
    page.screenshot(path=str(screenshot_dir / "tip-resumable-refused-es.png"), full_page=True)
    send.click()
    expect(page.locator("main h1")).to_contain_text("Gracias", timeout=60_000)  # proof of work
    receipt = page.locator(".attachments-sent")
    expect(receipt).to_contain_text("no admitido: es un documento PDF")
    expect(receipt).to_contain_text("Foto 2")
    page.screenshot(
        path=str(screenshot_dir / "tip-resumable-refused-es-receipt.png"), full_page=True
    )
    context.close()
