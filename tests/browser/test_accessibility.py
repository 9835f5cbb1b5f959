"""Every page, public and staff, checked with axe-core (WCAG 2.1 A and AA) in a real
browser at a desktop and a phone size: no serious or critical violation.

Agencies buy software under accessibility rules (Section 508, EN 301 549), and the
public side must work for anyone who recognizes someone. Each page is checked in the
state a person meets it in, error states included (a form sent back with its errors,
a wrong receipt, the error pages), since an error nobody can perceive is the worst
kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.models import Role
from portal.services.users import create_user
from tests.browser.axe import blocking, describe, run_axe
from tests.browser.conftest import PASSWORD, LiveServer, make_clip
from tests.browser.pages import PublicSite, StaffLogin
from tests.browser.seed import (
    Footage,
    SentTip,
    approve,
    in_app,
    new_case,
    published_appeal,
    ready_footage,
    tip_with_question,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Each page is checked at both sizes: the layout (and so contrast, overlap, reflow)
#: changes with the width. One load per page, resized in between, keeps the audit quick.
VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


@dataclass(frozen=True)
class World:
    footage: Footage
    appeal_id: str
    tip: SentTip


@pytest.fixture(scope="module")
def world(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> World:
    clip = make_clip(tmp_path_factory.mktemp("a11y") / "side-door.mp4", seconds=2, size="320x240")
    case_id = new_case(live_server, "24-0301", "Break-in at the bakery")
    footage = ready_footage(live_server, case_id, clip)
    approve(live_server, footage)
    appeal_id = published_appeal(live_server, footage, "Who broke into the bakery?")
    tip = tip_with_question(live_server, appeal_id, "Which street did the bicycle go down?")
    return World(footage, appeal_id, tip)


class Audit:
    """Collects every page's violations, so one run reports all of them."""

    def __init__(self) -> None:
        self.checked: list[str] = []
        self.failures: list[str] = []

    def check(self, page: Page, name: str) -> None:
        page.wait_for_load_state("load")
        for size, viewport in VIEWPORTS.items():
            page.set_viewport_size(viewport)  # type: ignore[arg-type]
            violations = run_axe(page)
            serious = blocking(violations)
            for lesser in (v for v in violations if v not in serious):
                # Shown with -s or on a failure: worth fixing, not failing the build.
                print(f"{name} ({size}): [{lesser['impact']}] {lesser['id']}: {lesser['help']}")
            if serious:
                self.failures.append(describe(serious, f"{name} ({size}, {page.url})"))
        page.set_viewport_size(VIEWPORTS["desktop"])  # type: ignore[arg-type]
        self.checked.append(name)

    def verdict(self) -> None:
        assert not self.failures, "\n\n".join(self.failures)


@pytest.fixture
def audit_page(page: Page) -> tuple[Audit, Page]:
    # conftest's page: a script error or a CSP refusal on any page fails the test too.
    return Audit(), page


def test_public_pages_have_no_serious_accessibility_violation(
    audit_page: tuple[Audit, Page], live_server: LiveServer, world: World
) -> None:
    audit, page = audit_page
    site = PublicSite(page, live_server.url)
    site.open_index()
    audit.check(page, "public index")
    page.goto(f"{live_server.url}/?q=nothing-matches-this")
    audit.check(page, "public index, no search result")
    page.goto(f"{live_server.url}/agencies/springfield")
    audit.check(page, "agency page")
    site.open_appeal(world.appeal_id, via="facebook")
    audit.check(page, "appeal page")
    page.goto(f"{live_server.url}/agencies/springfield/tip")
    audit.check(page, "general tip form")

    site.open_tip_form(world.appeal_id)
    audit.check(page, "appeal tip form")
    site.send_tip("")  # nothing written: the form comes back with its error
    site.refusal()
    audit.check(page, "tip form with an error")
    site.send_tip("The man in the video delivers for the pizza place.")
    assert site.receipt().passphrase
    audit.check(page, "receipt")

    site.open_tip_check()
    audit.check(page, "tip check")
    site.enter_receipt(world.tip.number, "wrong words entirely here now please")
    expect(page.get_by_role("alert")).to_be_visible()
    audit.check(page, "tip check, wrong receipt")
    site.enter_receipt(world.tip.number, world.tip.passphrase)
    audit.check(page, "tip thread")

    page.goto(f"{live_server.url}/appeals/no-such-appeal")
    audit.check(page, "public 404")
    assert len(audit.checked) == 12
    audit.verdict()


def test_staff_pages_have_no_serious_accessibility_violation(
    audit_page: tuple[Audit, Page], live_server: LiveServer, world: World
) -> None:
    audit, page = audit_page
    base = live_server.url
    footage = world.footage
    page.goto(f"{base}/staff/login")
    audit.check(page, "staff sign-in")
    login = StaffLogin(page, base)
    login.try_sign_in(live_server.officer.email, "not the password")
    expect(page.get_by_role("alert")).to_be_visible()
    audit.check(page, "staff sign-in, wrong password")

    login.sign_in(live_server.officer.email, live_server.officer.password)
    for name, path in [
        ("cases", "/staff/cases"),
        ("case detail", f"/staff/cases/{footage.case_id}"),
        ("new case form", "/staff/cases/new"),
        ("case edit form", f"/staff/cases/{footage.case_id}/edit"),
        ("case status and outcome", f"/staff/cases/{footage.case_id}/status"),
        ("clip detail and studio", f"/staff/clips/{footage.clip_id}"),
        ("evidence record", f"/staff/clips/{footage.clip_id}/evidence"),
        ("account", "/staff/account"),
        ("API tokens", "/staff/account/tokens"),
        ("staff 403", "/staff/admin/users"),
        ("staff 404", "/staff/cases/no-such-case"),
    ]:
        page.goto(base + path)
        if name == "clip detail and studio":
            expect(page.locator("[data-studio-body]")).to_be_visible()
        audit.check(page, name)
    _sign_out(page, base)

    login.sign_in(live_server.supervisor.email, live_server.supervisor.password)
    for name, path in [
        ("clip detail, approved version", f"/staff/clips/{footage.clip_id}"),
        ("appeal form, published", f"/staff/cases/{footage.case_id}/appeal"),
        ("tip queue", "/staff/tips"),
        ("tip detail", f"/staff/tips/{world.tip.tip_id}"),
    ]:
        page.goto(base + path)
        audit.check(page, name)
    _sign_out(page, base)

    login.sign_in(live_server.admin.email, live_server.admin.password)
    for name, path in [("users", "/staff/admin/users"), ("audit log", "/staff/admin/audit")]:
        page.goto(base + path)
        audit.check(page, name)
    _sign_out(page, base)

    _check_mfa_pages(page, audit, live_server)
    assert len(audit.checked) == 24
    audit.verdict()


def _sign_out(page: Page, base: str) -> None:
    # From a staff page: the error pages carry no staff navigation.
    page.goto(f"{base}/staff/account")
    StaffLogin(page, base).sign_out()


def _check_mfa_pages(page: Page, audit: Audit, live_server: LiveServer) -> None:
    """Enrolment, the recovery codes, the status page and the second sign-in step,
    with an officer of their own (turning MFA on changes how they sign in)."""
    base = live_server.url
    email = "mfa@springfield-pd.example.org"
    with in_app(live_server):
        from portal.models import Agency

        agency = db.session.query(Agency).filter_by(slug="springfield").one()
        create_user(agency, email, PASSWORD, {Role.OFFICER}, display_name="Officer Mfa")
        db.session.commit()
    login = StaffLogin(page, base)
    login.sign_in(email, PASSWORD)
    page.goto(f"{base}/staff/account/mfa")
    audit.check(page, "MFA enrolment")
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    page.get_by_label("Code from the app").fill("000000")
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    audit.check(page, "MFA enrolment, wrong code")
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_role("heading", name="Two-step sign-in is on")).to_be_visible()
    audit.check(page, "MFA recovery codes")
    page.goto(f"{base}/staff/account/mfa")
    audit.check(page, "MFA status")
    _sign_out(page, base)
    login.try_sign_in(email, PASSWORD)
    expect(page.get_by_role("heading", name="Two-step sign-in")).to_be_visible()
    audit.check(page, "MFA sign-in step")


FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    return {
        tag: el.tagName.toLowerCase(),
        name: el.getAttribute("name") || el.getAttribute("aria-label") || el.textContent.trim(),
        outline: style.outlineStyle === "none" ? 0 : parseFloat(style.outlineWidth),
        shadow: style.boxShadow !== "none",
    };
}"""


def _tab_through(page: Page, limit: int = 40) -> list[dict[str, Any]]:
    """Every control the Tab key reaches, in order, with its focus indicator."""
    page.locator("body").focus()
    reached: list[dict[str, Any]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None or (reached and focused == reached[0]):
            break
        reached.append(focused)
    return reached


def test_public_pages_work_from_the_keyboard_with_visible_focus(
    page: Page, live_server: LiveServer, world: World
) -> None:
    page.set_viewport_size(VIEWPORTS["phone"])  # type: ignore[arg-type]
    site = PublicSite(page, live_server.url)
    site.open_appeal(world.appeal_id, via="facebook")
    reached = _tab_through(page)
    tags = [f["tag"] for f in reached]
    assert "video" in tags, reached  # its controls answer the keyboard (the journeys play it)
    assert any(f["name"] == "I know something — send a tip" for f in reached), reached
    site.open_tip_form(world.appeal_id)
    reached += (form_controls := _tab_through(page))
    names = [f["name"] for f in form_controls]
    for field in ("body", "seen_when", "name", "phone", "email", "notify_by_email"):
        assert field in names, names
    assert "Send the tip" in names
    # The honeypot is for bots: a keyboard never lands in it.
    assert "website" not in names
    invisible = [f for f in reached if f["outline"] < 2 and not f["shadow"]]
    assert not invisible, f"focus not visible on: {invisible}"
