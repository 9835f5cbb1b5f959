"""Page objects: what a person does on each staff page, in the page's own words.

Tests say ``case.upload(path)`` rather than which input to fill, so a change of
markup changes one method here, not every test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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
        self.page.get_by_role("button", name="Sign out", exact=True).click()
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

    def region_box(self, index: int) -> Locator:
        return self.overlay.locator(f'[data-region="{index}"]')

    def drag_region(self, index: int, dx: float, dy: float) -> None:
        """Drag region ``index``'s box on the picture by fractions of the picture."""
        box = self.region_box(index).bounding_box()
        picture = self.overlay.bounding_box()
        assert box is not None and picture is not None, "the region's box is not laid out"
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        mouse = self.page.mouse
        mouse.move(x, y)
        mouse.down()
        mouse.move(x + dx * picture["width"], y + dy * picture["height"], steps=8)
        mouse.up()

    def keyframe_ticks(self) -> Locator:
        return self.page.locator("[data-track] .timeline-key")

    def follow_selected_box(self) -> None:
        self.page.get_by_role("button", name="Follow selected box").click()

    def find_faces(self) -> None:
        self.page.get_by_role("button", name="Find faces").click()

    @property
    def proposal_message(self) -> Locator:
        return self.page.locator("[data-proposal-message]")

    def suggestions(self) -> Locator:
        return self.page.locator("[data-suggestion-list] .suggestion-item")

    def audio_ranges(self) -> Locator:
        return self.page.locator("[data-range-list] .range-item")

    def add_audio_range(self) -> Locator:
        """A range from the playhead; returns its item in the Audio panel."""
        count = self.audio_ranges().count()
        self.page.get_by_role("button", name="Add range at playhead").click()
        expect(self.audio_ranges()).to_have_count(count + 1)
        return self.audio_ranges().nth(count)

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

    def revoke(self, number: int, reason: str) -> None:
        version = self.version(number)
        if version.get_attribute("open") is None:
            version.locator("summary").first.click()
        version.locator("details.revoke > summary").click()
        version.get_by_label("Reason for revoking").fill(reason)
        version.get_by_role("button", name="Revoke approval").click()
        expect(self.flash()).to_have_text(f"The approval of version {number} is revoked.")

    def flash(self) -> Locator:
        return self.page.locator(".flash")

    def failed_job(self, label: str) -> Locator:
        """A failed job in the processing panel, with its reason and Retry button."""
        return self.page.locator("[data-job-list] li").filter(
            has=self.page.locator(".job-label", has_text=label)
        )

    def retry(self, label: str) -> None:
        self.failed_job(label).get_by_role("button", name="Retry").click()
        expect(self.flash()).to_have_text("Processing was started again.")


def _sign_in_form(page: Page, email: str, password: str) -> None:
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


class StaffLogin(LoginPage):
    def try_sign_in(self, email: str, password: str) -> None:
        """Send the form without expecting to get in (a wrong password, a second step)."""
        self.page.goto(f"{self.base_url}/staff/login")
        _sign_in_form(self.page, email, password)


# -- the public site ---------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    number: str
    passphrase: str


class PublicSite(BasePage):
    """What a member of the public does: find an appeal, watch, tell, come back."""

    def open_index(self) -> None:
        self.page.goto(f"{self.base_url}/")
        expect(self.page.get_by_role("heading", level=1)).to_be_visible()

    def open_appeal(self, appeal_id: str, *, via: str = "") -> None:
        query = f"?via={via}" if via else ""
        self.page.goto(f"{self.base_url}/appeals/{appeal_id}{query}")
        expect(self.page.locator("article.appeal h1")).to_be_visible()

    @property
    def video(self) -> Locator:
        return self.page.locator(".player video").first

    def play(self) -> None:
        """Start the video from the keyboard, as a person without a mouse would:
        focus the player and press the space bar; then wait for it to move."""
        self.video.focus()
        self.page.keyboard.press("Space")
        self.page.wait_for_function(
            "() => { const v = document.querySelector('.player video');"
            " return v && !v.paused && v.currentTime > 0.3; }",
            timeout=20_000,
        )

    def start_tip(self) -> None:
        self.page.get_by_role("link", name="I know something — send a tip").click()
        expect(self.page.get_by_role("heading", name=re.compile("^Send a tip"))).to_be_visible()

    def open_tip_form(self, appeal_id: str) -> None:
        self.page.goto(f"{self.base_url}/appeals/{appeal_id}/tip")
        expect(self.page.get_by_role("heading", name=re.compile("^Send a tip"))).to_be_visible()

    def send_tip(self, body: str, *, seen_when: str = "") -> None:
        self.page.get_by_label("What do you know?").fill(body)
        if seen_when:
            self.page.get_by_label("When did you see them? (optional)").fill(seen_when)
        self.page.get_by_role("button", name="Send the tip").click()

    def refusal(self) -> Locator:
        """The form's error after a refused send (held back until the proof of work is solved)."""
        alert = self.page.get_by_role("alert").first
        expect(alert).to_be_visible(timeout=60_000)
        return alert

    def receipt(self) -> Receipt:
        expect(
            self.page.get_by_role("heading", name="Thank you. Your tip was received.")
        ).to_be_visible(timeout=60_000)  # with JavaScript, the proof of work is solved first
        return Receipt(
            self.page.locator(".receipt-number").inner_text().strip(),
            self.page.locator(".receipt-passphrase").inner_text().strip(),
        )

    def open_tip_check(self) -> None:
        self.page.goto(f"{self.base_url}/tips/check")
        expect(self.page.get_by_role("heading", name="Check your tip")).to_be_visible()

    def enter_receipt(self, number: str, passphrase: str) -> None:
        self.page.get_by_label("Tip number").fill(number)
        self.page.get_by_label("Passphrase (the seven words)").fill(passphrase)
        self.page.get_by_role("button", name="Open my tip").click()

    def thread(self) -> Locator:
        expect(self.page.get_by_role("heading", name=re.compile("^Your tip "))).to_be_visible()
        # The messages, not the lists of files inside them.
        return self.page.get_by_role("list", name="Conversation").locator(":scope > li")

    def answer(self, text: str, files: list[Path] | None = None) -> None:
        self.page.get_by_label("Your answer or more information").fill(text)
        if files:
            self.page.get_by_label("Photos or videos (optional)").set_input_files(
                [str(path) for path in files]
            )
        self.page.get_by_role("button", name="Send", exact=True).click()
        # Held back until the proof of work is solved, which takes longer on a busy machine.
        expect(
            self.page.get_by_role("list", name="Conversation").locator(":scope > li").last
        ).to_contain_text(text, timeout=60_000)


# -- staff: appeals and tips -------------------------------------------------------------


class AppealForm(BasePage):
    """A case's appeal page for a coordinator: write, publish, share, take down."""

    def open(self, case_id: str) -> AppealForm:
        self.page.goto(f"{self.base_url}/staff/cases/{case_id}/appeal")
        expect(self.page.get_by_role("heading", name=re.compile("^Appeal for "))).to_be_visible()
        return self

    def write(self, *, title: str, question: str, summary: str) -> None:
        self.page.get_by_label("Public title").fill(title)
        self.page.get_by_label("The question").fill(question)
        self.page.get_by_label("What happened").fill(summary)

    def show_version(self, label: str) -> None:
        self.page.get_by_label(label).check()

    def save(self) -> None:
        self.page.get_by_role("button", name="Save appeal").click()
        expect(self.page.get_by_role("status").filter(has_text="Appeal saved.")).to_be_visible()

    def publish(self) -> None:
        self.page.get_by_role("button", name="Publish on the site").click()
        expect(
            self.page.get_by_role("status").filter(has_text="The appeal is on the public site.")
        ).to_be_visible()

    def share_links(self) -> dict[str, str]:
        section = self.page.locator("section").filter(
            has=self.page.get_by_role("heading", name="Links to share")
        )
        # Text as written, not as CSS shows it (the labels are set in capitals).
        names = [name.strip() for name in section.locator("dt").all_text_contents()]
        links = [link.strip() for link in section.locator("dd").all_text_contents()]
        return dict(zip(names, links, strict=True))

    def withdraw(self, reason: str) -> None:
        self.page.get_by_label("Why is it taken down?").fill(reason)
        self.page.get_by_role("button", name="Take it down").click()
        expect(
            self.page.get_by_role("status").filter(
                has_text="The appeal is no longer on the public site."
            )
        ).to_be_visible()


class TipQueue(BasePage):
    def open(self) -> TipQueue:
        self.page.goto(f"{self.base_url}/staff/tips")
        expect(self.page.get_by_role("heading", name="Tips", exact=True)).to_be_visible()
        return self

    def row(self, number: str) -> Locator:
        return self.page.locator("tbody tr").filter(has=self.page.get_by_role("link", name=number))

    def open_tip(self, number: str) -> TipDetail:
        self.page.get_by_role("link", name=number, exact=True).click()
        expect(self.page.get_by_role("heading", name=re.compile(f"^Tip {number}"))).to_be_visible()
        return TipDetail(self.page, self.base_url)


class TipDetail(BasePage):
    def messages(self) -> Locator:
        return (
            self.page.locator("section")
            .filter(has=self.page.get_by_role("heading", name="Conversation"))
            .locator("li.message")
        )

    def ask(self, question: str) -> None:
        self.page.get_by_label("Write to the tipster").fill(question)
        self.page.get_by_role("button", name="Send to the tipster").click()
        expect(self.page.get_by_role("status").filter(has_text="Sent.")).to_be_visible()
