from __future__ import annotations

import hashlib
import http.client
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from config import Settings
from portal import create_app
from portal.extensions import db
from portal.jobs.execution import due_job_ids, execute_job
from portal.models import (
    Agency,
    Appeal,
    AppealClip,
    AppealStatus,
    Approval,
    Case,
    CaseStatus,
    Clip,
    ClipVersion,
    Rendition,
    Role,
    Upload,
    User,
    UserRole,
)
from portal.models.base import utcnow
from portal.services.cases import assign_detective, create_case
from portal.services.clips import attach_upload, renditions_digest
from portal.services.uploads import append_to_upload, create_upload
from tests.conftest import TEST_PASSWORD


@pytest.fixture
def agency(app: Flask) -> Agency:
    agency = Agency(name="Springfield Police Department", slug="springfield")
    db.session.add(agency)
    db.session.commit()
    return agency


@pytest.fixture
def other_agency(app: Flask) -> Agency:
    agency = Agency(name="Shelbyville Police Department", slug="shelbyville")
    db.session.add(agency)
    db.session.commit()
    return agency


UserFactory = Callable[..., User]


@pytest.fixture
def make_user(agency: Agency, password_hash: str) -> UserFactory:
    counter = iter(range(1, 10_000))

    def make(*roles: Role, email: str | None = None, agency_: Agency | None = None) -> User:
        number = next(counter)
        user = User(
            agency=agency_ or agency,
            email=email or f"user{number}@springfield.example",
            display_name=f"User {number}",
            password_hash=password_hash,
            role_rows=[UserRole(role=r.value) for r in roles],
        )
        db.session.add(user)
        db.session.commit()
        return user

    return make


@pytest.fixture
def users(make_user: UserFactory) -> dict[Role, User]:
    return {role: make_user(role, email=f"{role.value}@springfield.example") for role in Role}


@pytest.fixture
def case(agency: Agency, users: dict[Role, User]) -> Case:
    case = create_case(
        agency, number="24-0001", title="Robbery at the Kwik-E-Mart", created_by=users[Role.OFFICER]
    )
    assign_detective(case, users[Role.DETECTIVE], actor=users[Role.OFFICER])
    db.session.commit()
    return case


def csrf_token(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = TEST_PASSWORD):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/staff/login")
    return client.post(
        "/staff/login", data={"email": email, "password": password, "csrf_token": token}
    )


@pytest.fixture
def signed_in(client: FlaskClient) -> Callable[[User], FlaskClient]:
    def do(user: User) -> FlaskClient:
        response = sign_in(client, user.email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return do


# -- footage ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sample_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "doorbell.mp4"
    subprocess.run(
        [
            shutil.which("ffmpeg") or "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        check=True,
    )
    return path


def staged_upload(user: User, case: Case, source: Path) -> Upload:
    """An upload whose bytes all arrived, staged on the app's store by the upload
    service in one request (the tus HTTP path is tested on its own)."""
    size = source.stat().st_size
    upload = create_upload(user, length=size, max_bytes=10**9, filename=source.name, case=case)
    db.session.commit()
    with open(source, "rb") as stream:
        append_to_upload(upload, offset=0, stream=stream)
    assert upload.status == "complete"
    assert upload.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    return upload


def run_jobs(limit: int = 20) -> list[str]:
    outcomes = []
    for _ in range(limit):
        ids = due_job_ids()
        if not ids:
            break
        for job_id in ids:
            outcomes.append(execute_job(job_id, "test"))
    return outcomes


@pytest.fixture
def ready_clip(users: dict[Role, User], case: Case, sample_clip: Path) -> Clip:
    upload = staged_upload(users[Role.OFFICER], case, sample_clip)
    clip = attach_upload(case, upload.public_id, users[Role.OFFICER])
    assert run_jobs() == ["succeeded"] * 3  # ingest, proxy, render version 1
    db.session.refresh(clip)
    return clip


# -- appeals -----------------------------------------------------------------------------


def listed_appeal(
    agency: Agency,
    owner: User,
    approver: User,
    *,
    number: str,
    title: str,
    offense: str = "",
    place: str = "",
    published_days_ago: float = 0,
    solved: bool = False,
    status: AppealStatus = AppealStatus.PUBLISHED,
) -> Appeal:
    """A published appeal made of rows only (for listings, which fetch no media)."""
    case = create_case(
        agency,
        number=number,
        title=title,
        created_by=owner,
        offense=offense,
        location_address=place,
    )
    if solved:
        case.status = CaseStatus.SOLVED.value
    clip = Clip(case=case, uploaded_by=owner, status="ready", original_key=f"{number}/original")
    version = ClipVersion(clip=clip, number=1, plan={}, created_by=owner, status="ready")
    version.renditions = [
        Rendition(
            name="web_720",
            role="video",
            storage_key=f"{number}/web_720.mp4",
            content_type="video/mp4",
            size=10,
            sha256="a" * 64,
            width=1280,
            height=720,
            duration_s=75.0,
        ),
        Rendition(
            name="poster",
            role="poster",
            storage_key=f"{number}/poster.jpg",
            content_type="image/jpeg",
            size=10,
            sha256="b" * 64,
            width=1280,
            height=720,
        ),
    ]
    db.session.add_all([clip, version])
    db.session.flush()
    db.session.add(
        Approval(
            version=version,
            approved_by=approver,
            renditions_digest=renditions_digest(version.renditions),
        )
    )
    appeal = Appeal(
        agency_id=agency.id,
        case=case,
        title=title,
        created_by=owner,
        status=status.value,
        published_at=utcnow() - timedelta(days=published_days_ago),
    )
    appeal.clips = [AppealClip(version=version, position=0)]
    db.session.add(appeal)
    db.session.commit()
    return appeal


# -- proof of work -----------------------------------------------------------------------


def solve_challenge(challenge: str, bits: int) -> str:
    """The puzzle as the browser's worker solves it, written here from its definition
    (SHA-256 of "challenge:counter" below 2**(256-bits)), not from the server's code."""
    limit = 1 << (256 - bits)
    counter = 0
    while int.from_bytes(hashlib.sha256(f"{challenge}:{counter}".encode()).digest()) >= limit:
        counter += 1
    return str(counter)


def proof_fields(html: str) -> dict[str, str]:
    """The form's proof-of-work fields, solved as a browser with JavaScript sends them
    (empty when the page asks for none)."""
    challenge = re.search(r'name="pow_challenge" type="hidden" value="([^"]*)"', html)
    bits = re.search(r'data-pow-bits="(\d+)"', html)
    if not challenge or not bits:
        return {}
    token = challenge.group(1)
    return {"pow_challenge": token, "pow_solution": solve_challenge(token, int(bits.group(1)))}


# -- several machines ------------------------------------------------------------------------
# The scale-out tests of uploads (tests/portal/test_upload_nodes.py) and of tips' files
# (tests/portal/public/test_tip_file_nodes.py): each machine has its own instance
# directory and shares only the database and the store.


class Node:
    """One machine of the deployment: its own app (engine, instance directory, store
    client), served on a port of its own."""

    def __init__(self, settings: Settings, instance: Path) -> None:
        instance.mkdir()
        self.instance = instance
        self.app = create_app(replace(settings, instance_path=instance))
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.address = ("127.0.0.1", self._server.server_port)
        self._thread = threading.Thread(target=self._server.serve_forever, name=instance.name)
        self._thread.start()

    def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(*self.address, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        with self.app.app_context():
            db.engine.dispose()


@pytest.fixture
def nodes(app: Flask, settings: Settings, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    first = Node(settings, tmp_path / "web-1")
    second = Node(settings, tmp_path / "web-2")
    try:
        yield first, second
    finally:
        first.close()
        second.close()


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    """A third machine that only runs jobs."""
    instance = tmp_path / "worker"
    instance.mkdir()
    app = create_app(replace(settings, instance_path=instance))
    yield app
    with app.app_context():
        db.engine.dispose()
