"""Comments under the agency's Facebook post, in a real browser: fetched from the local
Graph fake by the real adapter, they are in the supervisor's queue marked as public
comments; one that names someone is hidden on Facebook from the tip's page, and another
gets the public "please send us a private tip" answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from portal.extensions import db
from portal.models import Agency, Appeal, Case, Tip, User
from portal.models.base import utcnow
from portal.publishing.models import Channel, Delivery, Post, PostAppeal
from portal.publishing.services.replies import fetch_replies
from tests.browser.axe import blocking, describe, run_axe
from tests.browser.conftest import LiveServer
from tests.browser.pages import LoginPage
from tests.portal.publishing.fakes.graph_fake import GraphFake, Video, running_fake

NAMING = "That's Mike Doyle from 12 Birch Lane, everyone knows it's him"
USEFUL = "I saw the van again this morning outside the laundromat on 5th"


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphFake]:
    yield from running_fake()


def assert_no_serious_violations(page: Page, where: str) -> None:
    serious = blocking(run_axe(page))
    assert not serious, describe(serious, where)


def reload_until(page: Page, url: str, text: str) -> None:
    """Open ``url`` again until it shows ``text`` (the job that records an action
    commits just after the network answered), for at most 15 s."""
    for _ in range(30):
        page.goto(url)
        if page.get_by_text(text).count():
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"{url} never showed {text!r}")


def sent_post_with_comments(live: LiveServer, graph: GraphFake) -> dict[str, str]:
    """A sent post of the case's appeal on a Facebook Page channel (rows, as the engine
    leaves them), two comments under its video on the fake, and one fetch."""
    video = Video(graph.new_id(), "video", "Who took the package?", 10, 10, published=True)
    graph.videos[video.id] = video
    for text in (NAMING, USEFUL):
        graph.comment(video.id, text)
    with live.app.app_context():
        agency = db.session.scalar(sa.select(Agency))
        case = db.session.scalar(sa.select(Case).where(Case.public_id == live.case_id))
        coordinator = db.session.scalar(sa.select(User).where(User.email == live.coordinator.email))
        assert agency is not None and case is not None and coordinator is not None
        appeal = Appeal(
            agency_id=agency.id, case=case, created_by=coordinator, title="Who took the package?"
        )
        channel = Channel(
            agency_id=agency.id,
            network="facebook",
            name="Springfield PD",
            settings=graph.settings(timeout_s=10),  # the fake shares the loaded machine
            credentials=json.dumps(
                {"page_access_token": graph.page_token, "user_access_token": graph.user_token}
            ),
        )
        post = Post(agency_id=agency.id, slot_at=utcnow(), created_by_id=coordinator.id)
        post.status = "sent"
        post.appeals = [PostAppeal(appeal=appeal, position=0)]
        delivery = Delivery(
            post=post,
            channel=channel,
            status="sent",
            remote_id=video.id,
            remote_url=f"https://www.facebook.com/{graph.page_id}/videos/{video.id}",
            sent_at=utcnow(),
        )
        db.session.add_all([appeal, channel, post, delivery])
        db.session.commit()
        assert fetch_replies(delivery.id) == 2
        numbers = {
            tip.body: tip.number
            for tip in db.session.scalars(sa.select(Tip).where(Tip.origin == "comment"))
        }
        db.session.remove()
    return numbers


def test_supervisor_hides_a_comment_that_names_someone_and_answers_another(
    live_server: LiveServer, page: Page, browser: Browser, screenshot_dir: Path, graph: GraphFake
) -> None:
    numbers = sent_post_with_comments(live_server, graph)
    LoginPage(page, live_server.url).sign_in(
        live_server.supervisor.email, live_server.supervisor.password
    )
    page.goto(f"{live_server.url}/staff/tips")
    rows = page.locator("#tip-queue tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#tip-queue .badge-comment")).to_have_count(2)
    expect(rows.first).to_contain_text("Facebook public comment")
    assert_no_serious_violations(page, "queue with comments")
    page.screenshot(path=str(screenshot_dir / "96-comment-queue.png"), full_page=True)

    page.get_by_role("link", name=numbers[NAMING]).click()
    panel = page.locator("section[aria-labelledby=comment-heading]")
    expect(panel.get_by_role("heading")).to_contain_text("Public comment on Facebook")
    expect(panel.get_by_role("link", name="open it on Facebook")).to_be_visible()
    # A comment has no conversation with a tipster: there is nobody to write back to.
    expect(page.locator("#thread-heading")).to_have_count(0)
    assert_no_serious_violations(page, "comment tip")
    page.screenshot(path=str(screenshot_dir / "97-comment-tip.png"), full_page=True)

    panel.get_by_role("button", name="Hide it on the network").click()
    hidden = next(c for c in graph.comments if c.text == NAMING)
    # The job runs in the live server; the page says so, and Facebook has it hidden.
    for _ in range(240):  # up to a minute
        if hidden.hidden:
            break
        page.wait_for_timeout(250)
    assert hidden.hidden
    reload_until(page, page.url, "Hidden on the network")
    expect(panel.get_by_role("heading")).to_contain_text("hidden")
    page.screenshot(path=str(screenshot_dir / "98-comment-hidden.png"), full_page=True)

    # The other comment gets the public answer, on a phone.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    mobile = phone.new_page()
    LoginPage(mobile, live_server.url).sign_in(
        live_server.supervisor.email, live_server.supervisor.password
    )
    mobile.goto(f"{live_server.url}/staff/tips")
    mobile.get_by_role("link", name=numbers[USEFUL]).click()
    tip_page = mobile.url
    mobile.get_by_role("button", name="Reply publicly").click()
    mobile.wait_for_load_state()
    useful = next(c for c in graph.comments if c.text == USEFUL)
    for _ in range(240):  # up to a minute
        if any(c.parent == useful.id for c in graph.comments):
            break
        mobile.wait_for_timeout(250)
    (answer,) = [c for c in graph.comments if c.parent == useful.id]
    assert "Please don't name anyone in public" in answer.text
    assert "/appeals/" in answer.text and "?via=facebook" in answer.text
    reload_until(mobile, tip_page, "Answered publicly")
    expect(mobile.get_by_role("link", name="see the answer")).to_be_visible()
    assert bool(mobile.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))
    mobile.screenshot(path=str(screenshot_dir / "99-comment-answered-phone.png"), full_page=True)
    phone.close()
