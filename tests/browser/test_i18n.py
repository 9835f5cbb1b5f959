"""The public site in Spanish in a real browser on a phone: an appeal opened from a
``?lang=es`` link reads in Spanish (axe-core finds nothing serious), its language
switch works from the keyboard, and the tip goes through the Spanish form (with the
proof-of-work script) to a Spanish receipt, with no cookie set by the language
choice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, expect

from portal.extensions import db
from portal.models import Tip, User
from tests.browser.axe import assert_accessible
from tests.browser.conftest import PHONE, LiveServer, keep_to_site
from tests.portal.conftest import listed_appeal

pytestmark = [pytest.mark.browser]

RUN_JOBS = False  # the appeal is made of rows: nothing to render


@pytest.fixture(scope="module")
def appeal_id(live_server: LiveServer) -> str:
    with live_server.app.app_context():
        officer = db.session.scalars(
            sa.select(User).where(User.email == live_server.officer.email)
        ).one()
        supervisor = db.session.scalars(
            sa.select(User).where(User.email == live_server.supervisor.email)
        ).one()
        appeal = listed_appeal(
            officer.agency,
            officer,
            supervisor,
            number="24-0900",
            title="Robo de bicicletas en la calle Olmo",
            offense="Robo",
            place="Calle Olmo 12",
        )
        public_id = appeal.public_id
        db.session.remove()
    return public_id


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    # The browser says English: the link's ?lang=es is what must win.
    context = browser.new_context(**PHONE, locale="en-US")  # type: ignore[arg-type]
    context.set_default_timeout(30_000)
    yield context
    context.close()


def test_appeal_from_a_spanish_link_on_a_phone(
    phone: BrowserContext, live_server: LiveServer, appeal_id: str, screenshot_dir: Path
) -> None:
    base = live_server.url
    outside = keep_to_site(phone, base)
    page = phone.new_page()
    page.goto(f"{base}/appeals/{appeal_id}?via=facebook&lang=es")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_text("¿Reconoce a esta persona?")).to_be_visible()
    expect(page.get_by_role("link", name="Sé algo: enviar un aviso")).to_be_visible()
    # The Spanish texts are longer: still nothing wider than the phone.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(screenshot_dir / "60-appeal-spanish-phone.png"), full_page=True)
    assert_accessible(page, "the Spanish appeal page")  # lang attributes, the switch

    # The switch, from the keyboard: focus the English link and press Enter.
    english = page.get_by_role("link", name="English")
    expect(english).to_have_attribute("hreflang", "en")
    english.focus()
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_text("Do you recognize this person?")).to_be_visible()
    page.get_by_role("link", name="Español").focus()
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    assert phone.cookies() == []  # the choice lives in the URL, not in a cookie

    # On to the tip form: the choice travels with the link, and so does the channel.
    page.get_by_role("link", name="Sé algo: enviar un aviso").click()
    assert "lang=es" in page.url and "via=facebook" in page.url
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Enviar un aviso sobre «Robo de bicicletas en la calle Olmo»"
    )
    page.get_by_label("¿Qué sabe?").fill("Las bicicletas están en el garaje del número 14.")
    page.screenshot(path=str(screenshot_dir / "61-tip-form-spanish-phone.png"), full_page=True)
    assert_accessible(page, "the Spanish tip form")
    page.get_by_role("button", name="Enviar el aviso").click()
    expect(page.get_by_role("heading", name="Gracias. Hemos recibido su aviso.")).to_be_visible(
        timeout=60_000
    )
    expect(page.get_by_role("heading", name="Su comprobante: anótelo ahora")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "62-receipt-spanish-phone.png"), full_page=True)

    # No cookie came from choosing the language: the only one is the tip form's
    # session (its CSRF token).
    names = {cookie["name"] for cookie in phone.cookies()}
    assert names <= {"session", "__Host-session"}, names
    assert outside == []
    with live_server.app.app_context():
        tip = db.session.scalars(sa.select(Tip).order_by(Tip.id.desc())).first()
        assert tip is not None and tip.language == "es" and tip.channel == "facebook"
        db.session.remove()
