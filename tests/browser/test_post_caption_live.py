"""A scheduled post's caption rewritten on the post page in a real browser: as the
coordinator types, the count beside it is the server's, as Mastodon counts (a link is
23 however long), the page says by how much it is too long, and saving keeps what was
typed. Screenshots for a person to look at, and axe on the page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, expect

from portal.extensions import db
from portal.models import User
from portal.models.base import utcnow
from portal.publishing.models import Channel, Delivery
from portal.publishing.services.posts import create_post, schedule_post
from tests.browser.axe import blocking, describe, run_axe
from tests.browser.conftest import PHONE, LiveServer
from tests.browser.pages import LoginPage
from tests.browser.seed import in_app
from tests.portal.conftest import listed_appeal

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_JOBS = False  # the post is only scheduled: nothing is sent
ACTION_TIMEOUT_MS = 15_000
LONG_LINK = "https://tips.springfield.example/appeals/" + "k" * 120


def _user(live: LiveServer, email: str) -> User:
    return db.session.scalars(sa.select(User).where(User.email == email)).one()


@pytest.fixture(scope="module")
def post_id(live_server: LiveServer) -> str:
    """A post scheduled for tomorrow on the agency's Mastodon account."""
    with in_app(live_server):
        officer = _user(live_server, live_server.officer.email)
        supervisor = _user(live_server, live_server.supervisor.email)
        coordinator = _user(live_server, live_server.coordinator.email)
        appeal = listed_appeal(
            officer.agency, officer, supervisor, number="25-0201", title="Who took the red bike?"
        )
        channel = Channel(
            agency_id=officer.agency_id,
            network="mastodon",
            name="Springfield PD on Mastodon",
            credentials=json.dumps({}),
        )
        db.session.add(channel)
        db.session.commit()
        post = create_post(
            officer.agency,
            coordinator,
            [appeal.public_id],
            utcnow() + timedelta(days=1),
            [channel.public_id],
        )
        schedule_post(post, coordinator)
        db.session.commit()
        return post.public_id


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_coordinator_rewrites_a_caption_and_sees_it_counted_as_mastodon_does(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: LiveServer,
    post_id: str,
    screenshot_dir: Path,
    device: str,
) -> None:
    options: dict[str, object] = (
        dict(PHONE) if device == "phone" else {"viewport": {"width": 1366, "height": 900}}
    )
    context = browser.new_context(**options)  # type: ignore[arg-type]
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    contexts.append(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    coordinator = live_server.coordinator
    LoginPage(page, live_server.url).sign_in(coordinator.email, coordinator.password)
    page.goto(f"{live_server.url}/staff/posts/{post_id}")
    card = page.locator('[data-network="mastodon"]')
    count, caption = card.locator("[data-count]"), card.locator("[data-caption]")
    warning = card.locator("[data-warning]")
    box = card.get_by_label("Rewrite the caption for Springfield PD on Mastodon")

    box.fill("x" * 490 + " " + LONG_LINK)  # 490 + 1 + 23 = 514
    expect(count).to_have_text("514 / 500")
    expect(warning).to_have_text(
        "The caption is 514 long as Mastodon counts it, over its 500: shorten it by 14."
    )
    if device == "desktop":
        page.screenshot(path=str(screenshot_dir / "77-post-caption-too-long.png"), full_page=True)

    text = f"Seen this red bike? Tell us: {LONG_LINK} #Springfield"
    box.fill(text)
    expect(count).to_have_text(f"{len('Seen this red bike? Tell us: ') + 23 + 13} / 500")
    expect(warning).to_be_hidden()
    expect(caption).to_have_text(text)
    page.screenshot(path=str(screenshot_dir / f"77-post-caption-live-{device}.png"), full_page=True)
    serious = blocking(run_axe(page))
    assert not serious, describe(serious, f"post page, caption being rewritten ({device})")
    if device == "phone":
        screen = (page.viewport_size or {"width": 0})["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= screen

    card.get_by_role("button", name="Save caption").click()
    expect(page.get_by_text("The caption for Springfield PD on Mastodon is saved.")).to_be_visible()
    expect(page.locator('[data-network="mastodon"] [data-caption]')).to_have_text(text)
    with in_app(live_server):
        delivery = db.session.scalars(
            sa.select(Delivery).join(Channel).where(Channel.network == "mastodon")
        ).one()
        assert delivery.text == text
    assert not errors
