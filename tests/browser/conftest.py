"""A live Tattletale server and a headless Chromium for the browser tests.

The server is the real app (its own ``create_app``, its local job runner rendering
with the real ffmpeg) on a migrated SQLite copy, served by werkzeug in a thread. One
server per module: starting Chromium and the app takes longer than most tests.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from werkzeug.serving import make_server

from config import load_settings
from portal import create_app
from portal.extensions import db
from portal.models import Agency, Role
from portal.services.cases import assign_detective, create_case
from portal.services.users import create_user
from tests.conftest import logging_restored

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Route

#: In CI (.ci/run sets it) a missing browser or ffmpeg fails the browser tests
#: instead of skipping them, so a broken machine cannot pass as a green run.
REQUIRE_SERVICES = bool(os.environ.get("TATTLETALE_TEST_REQUIRE_SERVICES"))

try:
    from playwright.sync_api import expect, sync_playwright

    # A page's default timeout does not reach expect(), whose own is 5 s: on a loaded
    # machine a receipt held by the proof of work, or a sign-in's Argon2 check, takes
    # longer. (Only the wait is longer: no test asserts that something stays false.)
    expect.set_options(timeout=20_000)
except ImportError:
    if not REQUIRE_SERVICES:
        # The test modules import Playwright themselves: without it they cannot even
        # be collected, so they are left out. When services are required they are
        # collected anyway and fail on the import.
        collect_ignore_glob = ["test_*.py"]

#: Debian's Chromium (scripts/ensure-system-packages.sh installs it), driven through
#: Playwright's executable_path: no browser download at test time.
CHROMIUM = os.environ.get("TATTLETALE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"
#: Where the journeys' screenshots are kept (CI keeps the directory as the run's
#: artifacts). Inside the checkout by default, where .gitignore leaves it out.
SCREENSHOTS = Path(
    os.environ.get("TATTLETALE_BROWSER_ARTIFACTS")
    or Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
)


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    name: str


@dataclass(frozen=True)
class LiveServer:
    url: str
    app: Flask
    officer: Account
    supervisor: Account
    coordinator: Account
    detective: Account
    admin: Account
    case_id: str
    case_number: str
    media_root: Path


def _needs(path: str) -> None:
    if not shutil.which(path):
        if REQUIRE_SERVICES:
            pytest.fail(f"{path} is required (TATTLETALE_TEST_REQUIRE_SERVICES) but not installed")
        pytest.skip(f"{path} is not installed")


@pytest.fixture(scope="module", autouse=True)
def _module_logging_left_as_found() -> Iterator[None]:
    # The live server's app lives for the module, beyond any one test's restore.
    with logging_restored():
        yield


@pytest.fixture(scope="module")
def live_server(
    request: pytest.FixtureRequest,
    template_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    """The app serving on a free port. A test module that sets ``RUN_JOBS = False``
    gets no job runner: its uploads are attached but never processed."""
    _needs(CHROMIUM)
    _needs("ffmpeg")
    root = tmp_path_factory.mktemp("live")
    instance = root / "instance"
    instance.mkdir()
    if Path(template_database).exists():
        database_url = f"sqlite:///{root / 'tattletale.db'}"
        shutil.copyfile(template_database, root / "tattletale.db")
    else:  # PostgreSQL: the browser tests run on SQLite only
        pytest.skip("browser tests run on SQLite")
    settings = replace(
        load_settings({"TATTLETALE_ENV": "testing", "TATTLETALE_LOG_FORMAT": "text"}),
        database_url=database_url,
        instance_path=instance,
        storage_url=f"file://{instance / 'media'}",
        require_mfa=False,
    )
    app = create_app(settings)
    officer = Account("officer@springfield-pd.example.org", PASSWORD, "Officer Reyes")
    supervisor = Account("sergeant@springfield-pd.example.org", PASSWORD, "Sgt. Okafor")
    coordinator = Account("media@springfield-pd.example.org", PASSWORD, "Dana Whitlock")
    detective = Account("detective@springfield-pd.example.org", PASSWORD, "Det. Amari Cole")
    admin = Account("admin@springfield-pd.example.org", PASSWORD, "Lee Park")
    with app.app_context():
        agency = Agency(name="Springfield Police Department", slug="springfield")
        db.session.add(agency)
        db.session.flush()
        officer_user = create_user(
            agency, officer.email, PASSWORD, {Role.OFFICER}, display_name=officer.name
        )
        create_user(
            agency, supervisor.email, PASSWORD, {Role.SUPERVISOR}, display_name=supervisor.name
        )
        for account, role in ((coordinator, Role.COORDINATOR), (admin, Role.ADMIN)):
            create_user(agency, account.email, PASSWORD, {role}, display_name=account.name)
        detective_user = create_user(
            agency, detective.email, PASSWORD, {Role.DETECTIVE}, display_name=detective.name
        )
        case = create_case(
            agency,
            number="24-0117",
            title="Package theft on Elm Street",
            offense="Theft",
            location_address="742 Elm Street",
            created_by=officer_user,
        )
        assign_detective(case, detective_user, actor=None)
        db.session.commit()
        case_id, case_number = case.public_id, case.number
        db.session.remove()

    runner = app.extensions["tattletale.runner"]
    run_jobs = getattr(request.module, "RUN_JOBS", True)
    if run_jobs:
        runner.start()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(
            url=f"http://127.0.0.1:{server.server_port}",
            app=app,
            officer=officer,
            supervisor=supervisor,
            coordinator=coordinator,
            detective=detective,
            admin=admin,
            case_id=case_id,
            case_number=case_number,
            media_root=instance / "media",
        )
    finally:
        server.shutdown()
        thread.join(timeout=10)
        if run_jobs:
            runner.stop()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    _needs(CHROMIUM)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # A CSP violation is reported on the console: fail the test on one.
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    yield page
    context.close()
    assert not errors, f"errors in the page: {errors}"


#: A phone-sized screen (an iPhone 14's CSS pixels), touch and the mobile viewport.
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def keep_to_site(context: BrowserContext, base_url: str) -> list[str]:
    """Every request of the context goes through here: the site's own go on, any other
    host's are refused and returned (a public page must contact nobody else: no CDN,
    font, analytics or embed that would learn who reads an appeal)."""
    outside: list[str] = []

    def handle(route: Route) -> None:
        url = route.request.url
        if url == base_url or url.startswith(base_url + "/"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", handle)
    return outside


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def make_clip(
    path: Path, *, seconds: float = 4, size: str = "640x360", lossless: bool = False
) -> Path:
    """A real H.264 + AAC MP4 from ffmpeg's test sources."""
    video = ["-c:v", "libx264", "-preset", "ultrafast"]
    video += ["-qp", "0"] if lossless else ["-crf", "28"]
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            *video, "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
            "-movflags", "+faststart", str(path),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    return path


def make_noise_clip(path: Path, *, seconds: float = 12) -> Path:
    """A big (about 3.5 MB a second) but cheap-to-process lossless clip of noise."""
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"color=c=gray:s=320x240:r=25:d={seconds},noise=alls=100:allf=t+u",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(path),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    return path


def pad_clip(path: Path, total_bytes: int) -> Path:
    """Grow an MP4 to ``total_bytes`` with a top-level ``free`` box at its end.

    ISO/IEC 14496-12 (8.1.2): readers ignore free-space boxes, so the file stays the
    same valid clip to ffprobe and ffmpeg (a few seconds to process) while it is as
    large as a real DVR export for the upload.
    """
    padding = total_bytes - path.stat().st_size
    assert 8 <= padding < 2**32, padding
    block = bytes(1024 * 1024)
    with path.open("ab") as clip:
        clip.write(struct.pack(">I", padding) + b"free")
        remaining = padding - 8
        while remaining:
            remaining -= clip.write(block[: min(len(block), remaining)])
    return path
