"""Page objects: what a person does on each staff page, in the page's own words.

Tests say ``case.upload(path)`` rather than which input to fill, so a change of
markup changes one method here, not every test.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Locator, Page, expect

PROCESSING_TIMEOUT_MS = 90_000


class BasePage:
    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def screenshot(self, directory: Path, name: str) -> Path:
        path = directory / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="Sign out").click()
        expect(self.page.get_by_role("heading", name="Staff sign-in")).to_be_visible()


class LoginPage(BasePage):
    def sign_in(self, email: str, password: str, next_path: str = "") -> None:
        query = f"?next={quote(next_path)}" if next_path else ""
        self.page.goto(f"{self.base_url}/staff/login{query}")
        self.page.get_by_label("E-mail").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()


class CasePage(BasePage):
    def open(self, case_id: str) -> CasePage:
        self.page.goto(f"{self.base_url}/staff/cases/{case_id}")
        expect(self.page.get_by_role("heading", name="Footage", exact=True)).to_be_visible()
        return self

    @property
    def file_input(self) -> Locator:
        return self.page.locator("[data-upload-widget] input[type=file]")

    def upload(self, *paths: Path) -> None:
        self.file_input.set_input_files([str(p) for p in paths])

    def upload_item(self, filename: str) -> Locator:
        return self.page.locator(".upload-item").filter(
            has=self.page.locator(".upload-name", has_text=filename)
        )

    def wait_upload_done(self, filename: str, timeout_ms: int = 60_000) -> Locator:
        item = self.upload_item(filename)
        # A failed upload stops waiting at once, with the page's own message.
        expect(item).to_have_attribute(
            "data-state", re.compile(r"^(done|failed)$"), timeout=timeout_ms
        )
        state = item.get_attribute("data-state")
        assert state == "done", f"upload {state}: {item.locator('.upload-message').inner_text()}"
        expect(item.locator(".upload-percent")).to_have_text("100 %")
        return item

    def clip_card(self, filename: str) -> Locator:
        return self.page.locator(".clip-card").filter(has_text=filename)

    def open_clip(self, filename: str) -> ClipPage:
        self.clip_card(filename).first.click()
        clip = ClipPage(self.page, self.base_url)
        expect(self.page.locator("h1 .clip-title")).to_have_text(filename)
        return clip


class ClipPage(BasePage):
    def version(self, number: int) -> Locator:
        return self.page.locator(f'details.version[data-version-number="{number}"]')

    def wait_version_ready(self, number: int, timeout_ms: int = PROCESSING_TIMEOUT_MS) -> Locator:
        # The status JSON reloads the page once the version is rendered; the server
        # then renders it as ready with its player.
        version = self.version(number)
        expect(version).to_have_attribute("data-version-status", "ready", timeout=timeout_ms)
        return version

    def wait_until_ready(self, timeout_ms: int = PROCESSING_TIMEOUT_MS) -> None:
        """The clip is ingested, its first version rendered and the studio open."""
        self.wait_version_ready(1, timeout_ms)
        expect(self.page.locator("[data-studio-body]")).to_be_visible(timeout=timeout_ms)
        # A function, not an expression: the CSP forbids the eval() Playwright would
        # use to poll an expression.
        self.page.wait_for_function(
            "() => document.querySelector('[data-video]').readyState >= 2", timeout=timeout_ms
        )

    @property
    def overlay(self) -> Locator:
        return self.page.locator("[data-overlay]")

    def draw_blur(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """Drag a rectangle on the picture; corners as fractions of the picture."""
        box = self.overlay.bounding_box()
        assert box is not None, "the studio overlay is not laid out"
        mouse = self.page.mouse
        mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
        mouse.down()
        mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=8)
        mouse.up()

    def seek(self, seconds: float) -> None:
        self.page.locator("[data-video]").evaluate(
            "(v, t) => new Promise(done => { v.addEventListener('seeked', done, {once: true}); "
            "v.currentTime = t; })",
            seconds,
        )

    def set_out(self, seconds: float) -> None:
        field = self.page.get_by_label("Out", exact=True)
        field.fill(f"{seconds:.2f}")
        field.press("Enter")
        field.blur()

    def use_current_frame_as_poster(self) -> None:
        self.page.get_by_role("button", name="Use current frame as poster").click()

    def burn_in_caption(self) -> None:
        self.page.get_by_label("Burn in appeal caption").check()

    def regions(self) -> Locator:
        return self.page.locator("[data-region-list] .region-item")

    def save_version(self) -> int:
        self.page.get_by_role("button", name="Save as new version").click()
        message = self.page.locator("[data-save-message]")
        expect(message).to_have_text(re.compile(r"Version \d+ saved"))
        match = re.search(r"Version (\d+)", message.inner_text())
        assert match is not None
        return int(match.group(1))

    def approve(self, number: int) -> None:
        version = self.version(number)
        if version.get_attribute("open") is None:
            version.locator("summary").click()
        form = version.locator("form.approve-form")
        for box in form.locator("input[type=checkbox]").all():
            box.check()
        form.get_by_role("button", name="Approve for release").click()
        expect(self.version(number).locator(".approval-ok")).to_contain_text("Approved")
