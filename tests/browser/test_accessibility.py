"""Every page, public and staff, checked with axe-core (WCAG 2.1 A and AA) in a real
browser at a desktop and a phone size: no serious or critical violation.

Agencies buy software under accessibility rules (Section 508, EN 301 549), and the
public side must work for anyone who recognizes someone. Each page is checked in the
state a person meets it in, error states included (a form sent back with its errors,
a wrong receipt, the error pages), since an error nobody can perceive is the worst
kind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

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

VIEWPORTS = {
    "desktop": {"viewport": {"width": 1366, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}


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

    def __init__(self, viewport: str) -> None:
        self.viewport = viewport
        self.checked: list[str] = []
        self.failures: list[str] = []

    def check(self, page: Page, name: str) -> list[dict[str, Any]]:
        page.wait_for_load_state("load")
        violations = run_axe(page)
        self.checked.append(name)
        serious = blocking(violations)
        for lesser in (v for v in violations if v not in serious):
            # Shown with -s or on a failure: worth fixing, not failing the build.
            print(
                f"{name} ({self.viewport}): [{lesser['impact']}] {lesser['id']}: {lesser['help']}"
            )
        if serious:
            self.failures.append(describe(serious, f"{name} ({self.viewport}, {page.url})"))
        return violations

    def verdict(self) -> None:
        assert not self.failures, "\n\n".join(self.failures)


@pytest.fixture(params=sorted(VIEWPORTS))
def audit_context(
    request: pytest.FixtureRequest, browser: Browser
) -> Iterator[tuple[Audit, Browser]]:
    yield Audit(request.param), browser


def _new_page(browser: Browser, viewport: str) -> Page:
    context = browser.new_context(**VIEWPORTS[viewport])
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def test_public_pages_have_no_serious_accessibility_violation(
    audit_context: tuple[Audit, Browser], live_server: LiveServer, world: World
) -> None:
    audit, browser = audit_context
    page = _new_page(browser, audit.viewport)
    site = PublicSite(page, live_server.url)
    try:
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
        expect(page.get_by_role("alert").first).to_be_visible()
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
    finally:
        page.context.close()
    assert len(audit.checked) == 12
    audit.verdict()


def test_staff_pages_have_no_serious_accessibility_violation(
    audit_context: tuple[Audit, Browser], live_server: LiveServer, world: World
) -> None:
    audit, browser = audit_context
    base = live_server.url
    footage = world.footage
    page = _new_page(browser, audit.viewport)
    try:
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
    finally:
        page.context.close()
    assert len(audit.checked) == 23
    audit.verdict()


def _sign_out(page: Page, base: str) -> None:
    # From a staff page: the error pages carry no staff navigation.
    page.goto(f"{base}/staff/account")
    StaffLogin(page, base).sign_out()


def _check_mfa_pages(page: Page, audit: Audit, live_server: LiveServer) -> None:
    """Enrolment, the recovery codes, the status page and the second sign-in step,
    with an officer of their own (turning MFA on changes how they sign in)."""
    base = live_server.url
    email = f"mfa-{audit.viewport}@springfield-pd.example.org"
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
