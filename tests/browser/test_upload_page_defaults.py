"""A clip as large as a real DVR export, uploaded through the case page exactly as an
officer does it: the page's own chunk size, nothing set for the test."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, make_clip, pad_clip
from tests.browser.pages import CasePage, LoginPage

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLIP_BYTES = 300_000_000
# What case_detail.html gives the widget (data-chunk-size): 50 MiB a PATCH.
PAGE_CHUNK = 50 * 1024 * 1024


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def test_upload_page_defaults_take_a_clip_of_several_chunks_to_ready(
    page: Page, live_server: LiveServer, tmp_path: Path, screenshot_dir: Path
) -> None:
    clip = pad_clip(make_clip(tmp_path / "dvr-export-ch4.mp4", seconds=4), CLIP_BYTES)
    assert clip.stat().st_size == CLIP_BYTES
    case_path = f"/staff/cases/{live_server.case_id}"
    LoginPage(page, live_server.url).sign_in(
        live_server.officer.email, live_server.officer.password, case_path
    )
    case = CasePage(page, live_server.url).open(live_server.case_id)
    patches: list[int] = []
    page.on(
        "request",
        lambda r: patches.append(int(r.headers["upload-offset"])) if r.method == "PATCH" else None,
    )

    case.upload(clip)
    case.wait_upload_done(clip.name, timeout_ms=90_000)
    # Six PATCH requests of at most 50 MiB, one after the other, none repeated.
    assert patches == [n * PAGE_CHUNK for n in range(math.ceil(CLIP_BYTES / PAGE_CHUNK))]
    card = case.clip_card(clip.name)
    expect(card).to_have_attribute("data-clip-status", "ready", timeout=60_000)
    case.screenshot(screenshot_dir, "13-large-clip-ready")

    clip_page = case.open_clip(clip.name)
    # Ingested, its first version rendered and playable: the padding changed nothing
    # but the size.
    clip_page.wait_until_ready()
    expect(page.locator("[data-original-sha256]")).to_have_text(_sha256(clip))
