"""The journeys of the public site and the staff who answer it, in a real browser
against the real app and ffmpeg.

A citizen on a phone opens an appeal from a Facebook link, watches, sends a tip,
keeps the receipt and later answers a detective's question, with JavaScript and
without; the detective finds the tip in the queue and asks. A coordinator publishes
an appeal and takes it down; a supervisor approves a version and revokes the approval;
an officer retries a render whose worker died. The upload and edit journey is
test_footage_journey.py's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.browser.conftest import PHONE, LiveServer, keep_to_site, make_clip
from tests.browser.pages import AppealForm, ClipPage, LoginPage, PublicSite, TipQueue
from tests.browser.seed import (
    Footage,
    appeal_status,
    approve,
    new_case,
    published_appeal,
    ready_footage,
    version_lost_with_its_worker,
)
from tests.media_pipeline.test_attachments import phone_photo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

APPEAL_TITLE = "Who took the parcels on Maple Avenue?"


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        tmp_path_factory.mktemp("journeys") / "maple-porch.mp4", seconds=2, size="320x240"
    )


@pytest.fixture(scope="module")
def appeal(live_server: LiveServer, short_clip: Path) -> tuple[Footage, str]:
    """A published appeal showing an approved version of an officer's footage."""
    case_id = new_case(live_server, "24-0410", "Parcels taken from porches")
    footage = ready_footage(live_server, case_id, short_clip)
    approve(live_server, footage)
    return footage, published_appeal(live_server, footage, APPEAL_TITLE)


#: Generous: CI shares its two cores with the job runner's ffmpeg. A wait, not a
#: timing assertion.
ACTION_TIMEOUT_MS = 45_000


def _context(browser: Browser, **options: object) -> BrowserContext:
    context = browser.new_context(**options)  # type: ignore[arg-type]
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(ACTION_TIMEOUT_MS)
    return context


def _staff_page(browser: Browser) -> Page:
    return _context(browser, viewport={"width": 1366, "height": 900}).new_page()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Contexts a test opens, closed after it whatever happens."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "without-js"])
def test_citizen_on_a_phone_tips_and_answers_the_detective(
    javascript: bool,
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: LiveServer,
    appeal: tuple[Footage, str],
    screenshot_dir: Path,
    tmp_path: Path,
) -> None:
    base = live_server.url
    _, appeal_id = appeal
    mode = "js" if javascript else "nojs"
    shot = f"2{int(not javascript)}-citizen-{mode}"

    # -- the citizen, from the link in a Facebook post ------------------------------
    phone = _context(browser, **PHONE, java_script_enabled=javascript)
    contexts.append(phone)
    outside = keep_to_site(phone, base)
    page = phone.new_page()
    site = PublicSite(page, base)
    site.open_appeal(appeal_id, via="facebook")
    expect(page.get_by_role("heading", level=1)).to_have_text(APPEAL_TITLE)
    expect(page.get_by_text("Do you recognize this person?")).to_be_visible()
    # The page fits the phone: nothing wider than the screen to scroll sideways to.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    expect(site.video).to_be_visible()
    if javascript:
        site.play()  # from the keyboard: focus, space
    source = site.video.locator("source").first.get_attribute("src")
    assert source and source.startswith("/media/")
    # Whatever the browser does with it, the video itself is served from the site,
    # in pieces (Range), as a phone's player asks for it.
    media = page.request.get(base + source, headers={"Range": "bytes=0-1023"})
    assert media.status == 206 and media.headers["content-type"] == "video/mp4"
    site.screenshot(screenshot_dir, f"{shot}-1-appeal")

    site.start_tip()
    assert "via=facebook" in page.url
    site.screenshot(screenshot_dir, f"{shot}-2-tip-form")
    site.send_tip(
        f"The man in the video is my neighbour's lodger ({mode}).", seen_when="Yesterday 7 pm"
    )
    receipt = site.receipt()
    assert re.fullmatch(r"[A-Z0-9-]{6,16}", receipt.number), receipt.number
    assert len(receipt.passphrase.split()) >= 7
    site.screenshot(screenshot_dir, f"{shot}-3-receipt")
    assert outside == [], f"requests left the site: {outside}"

    # -- the detective: the queue, the tip, a question ------------------------------
    staff = _staff_page(browser)
    contexts.append(staff.context)
    LoginPage(staff, base).sign_in(live_server.detective.email, live_server.detective.password)
    queue = TipQueue(staff, base).open()
    row = queue.row(receipt.number)
    expect(row).to_contain_text("24-0410")
    expect(row).to_contain_text("Facebook")
    expect(row).to_contain_text(f"({mode})")
    queue.screenshot(screenshot_dir, f"{shot}-4-detective-queue")
    tip = queue.open_tip(receipt.number)
    question = "Thank you. Which house does he live in, and does he ride a bicycle?"
    tip.ask(question)
    expect(tip.messages()).to_have_count(1)
    expect(tip.messages().first).to_contain_text(question)

    # -- the citizen, later, on a fresh visit with the receipt ----------------------
    later = _context(browser, **PHONE, java_script_enabled=javascript)
    contexts.append(later)
    outside_later = keep_to_site(later, base)
    page = later.new_page()
    site = PublicSite(page, base)
    site.open_tip_check()
    site.enter_receipt(receipt.number, receipt.passphrase)
    messages = site.thread()
    expect(messages).to_have_count(2)
    expect(messages.nth(1)).to_contain_text("A detective wrote")
    expect(messages.nth(1)).to_contain_text(question)
    site.screenshot(screenshot_dir, f"{shot}-5-thread-question")
    # The answer comes with a photo of the bicycle: with JavaScript through the
    # page's resumable uploader (tus, the tip's receipt session with every request),
    # without it in the form's one request.
    sent_files: list[tuple[str, str, bool]] = []
    page.on(
        "request",
        lambda r: (
            sent_files.append((r.method, r.url, "tip-thread" in r.headers))
            if "/tips/reply/files" in r.url or "/tip-files/" in r.url
            else None
        ),
    )
    answer = "The blue house at 1214, he rides a red bicycle."
    site.answer(answer, files=[phone_photo(tmp_path / "IMG_2041.jpg")])
    messages = site.thread()
    expect(messages).to_have_count(3)
    expect(messages.nth(2)).to_contain_text("You wrote")
    expect(messages.nth(2)).to_contain_text(answer)
    expect(messages.nth(2)).to_contain_text("Photo 1")
    site.screenshot(screenshot_dir, f"{shot}-6-thread-answered")
    assert outside_later == [], f"requests left the site: {outside_later}"
    if javascript:
        methods = [method for method, _, _ in sent_files]
        assert methods[0] == "POST" and "PATCH" in methods, sent_files
        assert all(with_session for _, _, with_session in sent_files), sent_files
    else:
        assert sent_files == []

    # -- the detective sees the answer ----------------------------------------------
    queue.open()
    expect(queue.row(receipt.number).get_by_text("reply waiting", exact=True)).to_be_visible()
    tip = queue.open_tip(receipt.number)
    expect(tip.messages()).to_have_count(2)
    expect(tip.messages().nth(1)).to_contain_text("Tipster")
    expect(tip.messages().nth(1)).to_contain_text(answer)
    tip.screenshot(screenshot_dir, f"{shot}-7-detective-sees-answer")


def test_release_supervisor_approves_coordinator_publishes_and_withdraws_supervisor_revokes(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: LiveServer,
    short_clip: Path,
    screenshot_dir: Path,
) -> None:
    base = live_server.url
    case_id = new_case(live_server, "24-0422", "Car break-ins on Oak Street")
    footage = ready_footage(live_server, case_id, short_clip)

    # -- the supervisor releases the officer's version -------------------------------
    staff = _staff_page(browser)
    contexts.append(staff.context)
    LoginPage(staff, base).sign_in(
        live_server.supervisor.email,
        live_server.supervisor.password,
        f"/staff/clips/{footage.clip_id}",
    )
    clip = ClipPage(staff, base)
    expect(clip.version(1)).to_have_attribute("data-version-status", "ready")
    clip.approve(1)
    expect(clip.flash()).to_have_text("Version 1 is approved for release.")
    clip.screenshot(screenshot_dir, "30-supervisor-approved")
    clip.sign_out()

    # -- the coordinator writes the appeal, publishes it, shares it -----------------
    LoginPage(staff, base).sign_in(
        live_server.coordinator.email,
        live_server.coordinator.password,
        f"/staff/cases/{case_id}",
    )
    staff.get_by_role("link", name="Write the appeal").click()
    form = AppealForm(staff, base)
    expect(staff.get_by_role("heading", name=re.compile("^Appeal for 24-0422"))).to_be_visible()
    title = "Do you know who broke into cars on Oak Street?"
    form.write(
        title=title,
        question="Do you recognize this man?",
        summary="Three cars were broken into on the night of March 3.",
    )
    form.show_version("maple-porch.mp4 — version 1")
    form.save()
    expect(
        staff.get_by_text("Not published. Nothing of it can be seen from outside.")
    ).to_be_visible()
    form.publish()
    public_url = staff.get_by_role("link", name="Open the public page").get_attribute("href")
    assert public_url is not None
    page_url = base + public_url
    links = form.share_links()
    # One link per channel, each counting its own tips.
    assert links.get("Facebook") == f"{page_url}?via=facebook", links
    assert links.get("QR code (posters, flyers)") == f"{page_url}?via=qr", links
    assert links.get("Nextdoor") == f"{page_url}?via=nextdoor", links
    expect(staff.locator(".qr svg")).to_be_visible()
    form.screenshot(screenshot_dir, "31-coordinator-published")

    # Anyone can open it from the shared link now.
    public = _context(browser, **PHONE)
    contexts.append(public)
    outside = keep_to_site(public, base)
    citizen = public.new_page()
    citizen.goto(links["Facebook"])
    expect(citizen.get_by_role("heading", level=1)).to_have_text(title)
    expect(citizen.get_by_text("Do you recognize this man?")).to_be_visible()

    form.withdraw("Posted by mistake before the victim agreed.")
    expect(staff.get_by_text(re.compile("^Taken down .*: Posted by mistake"))).to_be_visible()
    form.screenshot(screenshot_dir, "32-coordinator-withdrawn")
    response = citizen.goto(links["Facebook"])
    assert response is not None and response.status == 404
    expect(citizen.get_by_role("heading", level=1)).not_to_have_text(title)

    form.publish()
    response = citizen.goto(page_url)
    assert response is not None and response.status == 200
    form.sign_out()

    # -- the supervisor finds a bystander's face and revokes the approval -----------
    LoginPage(staff, base).sign_in(
        live_server.supervisor.email,
        live_server.supervisor.password,
        f"/staff/clips/{footage.clip_id}",
    )
    clip.revoke(1, "A bystander's face is visible at 0:01.")
    expect(clip.version(1).locator(".badge-approved")).to_have_count(0)
    expect(clip.version(1).locator("form.approve-form")).to_be_visible()
    clip.screenshot(screenshot_dir, "33-supervisor-revoked")
    # Revoking takes the appeal down in the same step.
    assert appeal_status(live_server, case_id) == "withdrawn"
    response = citizen.goto(page_url)
    assert response is not None and response.status == 404
    assert outside == [], f"requests left the site: {outside}"


def test_officer_retries_a_render_whose_worker_died(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: LiveServer,
    appeal: tuple[Footage, str],
    screenshot_dir: Path,
) -> None:
    base = live_server.url
    footage, _ = appeal
    number = version_lost_with_its_worker(live_server, footage)

    staff = _staff_page(browser)
    contexts.append(staff.context)
    LoginPage(staff, base).sign_in(
        live_server.officer.email, live_server.officer.password, f"/staff/clips/{footage.clip_id}"
    )
    clip = ClipPage(staff, base)
    expect(clip.version(number)).to_have_attribute("data-version-status", "failed")
    failed = clip.failed_job(f"Rendering version {number}")
    expect(failed).to_contain_text("the worker running this job stopped, and no attempts are left")
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()
    clip.screenshot(screenshot_dir, "50-render-failed")
    clip.retry(f"Rendering version {number}")
    clip.wait_version_ready(number)
    expect(clip.version(number).locator("video.player")).to_be_visible()
    expect(clip.version(number).locator(".plan-summary")).to_contain_text("0:00.00 – 0:01.50")
    clip.screenshot(screenshot_dir, "51-render-retried")


def test_a_touched_approval_checklist_is_not_lost_to_a_status_reload(
    browser: Browser, contexts: list[BrowserContext], live_server: LiveServer, short_clip: Path
) -> None:
    """The clip page reloads itself when its status says something it does not show
    (a version finished): never once a person has started filling one of its forms."""
    case_id = new_case(live_server, "24-0423", "Bike stolen at the station")
    footage = ready_footage(live_server, case_id, short_clip)
    staff = _staff_page(browser)
    contexts.append(staff.context)
    LoginPage(staff, live_server.url).sign_in(
        live_server.supervisor.email,
        live_server.supervisor.password,
        f"/staff/clips/{footage.clip_id}",
    )
    clip = ClipPage(staff, live_server.url)
    expect(clip.version(1)).to_have_attribute("data-version-status", "ready")
    # How many more status answers say what the page does not show. One, first: the
    # reloaded page's own first poll could otherwise be answered before the test turns
    # the news off, and reload it once more after the box below is checked.
    lies = {"left": 1}

    def news(route: Route) -> None:
        # The status as if the clip had changed meanwhile (while lies are left).
        response = route.fetch()
        data = response.json()
        if lies["left"] > 0:
            lies["left"] -= 1
            data["clip"]["status"] = "rejected"
        route.fulfill(response=response, json=data)

    # Untouched, the page reloads to show the news (the mechanism the test relies on).
    with staff.expect_event("load", timeout=20_000):
        staff.route("**/status.json", news)
    version = clip.version(1)
    if version.get_attribute("open") is None:
        version.locator("summary").click()
    box = version.locator("form.approve-form input[type=checkbox]").first
    box.check()
    loads: list[str] = []
    staff.on("load", lambda _: loads.append(staff.url))
    lies["left"] = 1_000_000  # from now on every answer has news
    expect(staff.locator("[data-reload-banner]")).to_be_visible(timeout=20_000)
    assert loads == [] and box.is_checked()
