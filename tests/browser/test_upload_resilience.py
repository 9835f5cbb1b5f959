"""The upload widget against a flaky network: dropped requests resume by themselves,
and an upload left half-done continues from the server's offset after a reload."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, Route, expect

from tests.browser.conftest import LiveServer, make_noise_clip
from tests.browser.pages import CasePage, LoginPage

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHUNK = 4 * 1024 * 1024
RUN_JOBS = False  # only the bytes matter here: no ingest of the big files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def big_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_noise_clip(tmp_path_factory.mktemp("big") / "dvr-export.mp4", seconds=12)
    assert path.stat().st_size > 30_000_000
    return path


def _open_case(page: Page, live_server: LiveServer) -> CasePage:
    case_path = f"/staff/cases/{live_server.case_id}"
    LoginPage(page, live_server.url).sign_in(
        live_server.officer.email, live_server.officer.password, case_path
    )
    case = CasePage(page, live_server.url).open(live_server.case_id)
    # Small chunks, so the file takes several PATCH requests to drop some of.
    page.locator("[data-upload-widget]").evaluate(f"el => el.dataset.chunkSize = '{CHUNK}'")
    return case


def test_upload_widget_resumes_after_dropped_requests(
    page: Page, live_server: LiveServer, big_clip: Path, screenshot_dir: Path
) -> None:
    case = _open_case(page, live_server)
    patches = {"n": 0}
    heads: list[str] = []
    page.on("request", lambda r: heads.append(r.url) if r.method == "HEAD" else None)

    def flaky(route: Route, request: Request) -> None:
        if request.method != "PATCH":
            route.continue_()
            return
        patches["n"] += 1
        if patches["n"] in (2, 5):
            route.abort("connectionreset")  # the network drops it on the way out
        else:
            route.continue_()

    page.route("**/staff/uploads/**", flaky)
    case.upload(big_clip)
    item = case.wait_upload_done(big_clip.name, timeout_ms=90_000)
    assert patches["n"] >= 12, patches  # 11 chunks and the two repeated ones
    assert heads, "a dropped request is followed by a HEAD for the server's offset"
    case.screenshot(screenshot_dir, "10-upload-after-dropped-requests")

    item.get_by_role("link", name="Open clip").click()
    expect(page.locator("[data-original-sha256]")).to_have_text(_sha256(big_clip))


def test_upload_widget_continues_after_reload(
    page: Page, live_server: LiveServer, big_clip: Path, tmp_path: Path, screenshot_dir: Path
) -> None:
    # A different file (a copy with its own name), so the first test's upload and
    # fingerprint play no part.
    clip = tmp_path / "nvr-channel-2.mp4"
    clip.write_bytes(big_clip.read_bytes())
    case = _open_case(page, live_server)
    page.on("dialog", lambda d: d.accept())
    patches = {"n": 0}

    def cut_after_three(route: Route, request: Request) -> None:
        if request.method == "PATCH":
            patches["n"] += 1
            if patches["n"] > 3:
                route.abort("internetdisconnected")
                return
        route.continue_()

    page.route("**/staff/uploads/**", cut_after_three)
    case.upload(clip)
    item = case.upload_item(clip.name)
    expect(item).to_have_attribute("data-state", "retrying", timeout=30_000)
    item.get_by_role("button", name=f"Pause upload of {clip.name}").click()
    expect(item).to_have_attribute("data-state", "paused")
    case.screenshot(screenshot_dir, "11-upload-paused")
    page.unroute("**/staff/uploads/**")

    offsets: list[int] = []
    page.on(
        "request",
        lambda r: offsets.append(int(r.headers["upload-offset"])) if r.method == "PATCH" else None,
    )
    page.reload()
    expect(page.locator("[data-resume-list]")).to_contain_text(clip.name)
    page.locator("[data-upload-widget]").evaluate(f"el => el.dataset.chunkSize = '{CHUNK}'")
    case.screenshot(screenshot_dir, "12-unfinished-upload-offered")
    case.upload(clip)
    expect(page.locator("[data-resume-list]")).to_be_hidden()
    case.wait_upload_done(clip.name, timeout_ms=60_000)
    # It continued where the server stopped, not from the first byte.
    assert offsets and offsets[0] == 3 * CHUNK, offsets

    case.upload_item(clip.name).get_by_role("link", name="Open clip").click()
    expect(page.locator("[data-original-sha256]")).to_have_text(_sha256(clip))
