"""What a journey finds already done when it starts, made through the services.

Each journey drives in the browser only the steps it is about; what came before (an
officer's upload, a supervisor's approval) is done here by the same service calls the
pages make, and the live server's own job runner renders the footage with ffmpeg.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from media_pipeline.plan import EditPlan
from portal.extensions import db
from portal.jobs.execution import LOST_WORKER_REASON, requeue_stale_jobs
from portal.models import Appeal, Case, Clip, ClipVersion, JobStatus, Tip, User
from portal.models.base import utcnow
from portal.services.appeals import appeal_of, publish_appeal, save_appeal
from portal.services.cases import assign_detective, create_case
from portal.services.clips import (
    APPROVAL_CHECKLIST,
    approve_version,
    attach_upload,
    create_version,
)
from portal.services.tips import TipInput, add_staff_message, submit_tip
from tests.browser.conftest import LiveServer
from tests.portal.conftest import staged_upload

RENDER_TIMEOUT_S = 120


@dataclass(frozen=True)
class Footage:
    case_id: str
    case_number: str
    clip_id: str
    version_id: str


@dataclass(frozen=True)
class SentTip:
    tip_id: str
    number: str
    passphrase: str


@contextmanager
def in_app(live: LiveServer) -> Iterator[None]:
    with live.app.app_context():
        try:
            yield
        finally:
            db.session.remove()


def _user(email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == email))
    assert user is not None, email
    return user


def _case(public_id: str) -> Case:
    case = db.session.scalar(select(Case).where(Case.public_id == public_id))
    assert case is not None, public_id
    return case


def new_case(live: LiveServer, number: str, title: str, *, place: str = "") -> str:
    with in_app(live):
        officer = _user(live.officer.email)
        case = create_case(
            officer.agency,
            number=number,
            title=title,
            offense="Burglary",
            location_address=place or "1200 Maple Avenue",
            created_by=officer,
        )
        assign_detective(case, _user(live.detective.email), actor=None)
        db.session.commit()
        return case.public_id


def wait_version(live: LiveServer, version_id: str, status: str = "ready") -> None:
    deadline = time.monotonic() + RENDER_TIMEOUT_S
    while True:
        with in_app(live):
            version = db.session.scalar(
                select(ClipVersion).where(ClipVersion.public_id == version_id)
            )
            assert version is not None
            if version.status == status:
                return
            assert version.status != "failed" or status == "failed", version.error
        assert time.monotonic() < deadline, f"version {version_id} never became {status}"
        time.sleep(0.5)


def ready_footage(live: LiveServer, case_id: str, source: Path) -> Footage:
    """The officer's upload of ``source`` into the case, ingested and its first
    version rendered by the live server's job runner."""
    with in_app(live):
        officer = _user(live.officer.email)
        case = _case(case_id)
        upload = staged_upload(officer, case, source)
        clip = attach_upload(case, upload.public_id, officer)
        db.session.commit()
        clip_id, case_number = clip.public_id, case.number
    deadline = time.monotonic() + RENDER_TIMEOUT_S
    while True:
        with in_app(live):
            clip = db.session.scalar(select(Clip).where(Clip.public_id == clip_id))
            assert clip is not None
            assert clip.status not in ("failed", "rejected"), clip.rejection_reason
            if clip.versions:
                version_id = clip.versions[0].public_id
                break
        assert time.monotonic() < deadline, "the clip was never ingested"
        time.sleep(0.5)
    wait_version(live, version_id)
    return Footage(case_id, case_number, clip_id, version_id)


def approve(live: LiveServer, footage: Footage) -> None:
    with in_app(live):
        version = db.session.scalar(
            select(ClipVersion).where(ClipVersion.public_id == footage.version_id)
        )
        assert version is not None
        approve_version(
            version, _user(live.supervisor.email), {key: True for key in APPROVAL_CHECKLIST}
        )
        db.session.commit()


def published_appeal(live: LiveServer, footage: Footage, title: str) -> str:
    """The case's appeal showing the (approved) footage, published by the coordinator."""
    with in_app(live):
        coordinator = _user(live.coordinator.email)
        case = _case(footage.case_id)
        appeal = save_appeal(
            case,
            coordinator,
            title=title,
            summary="A man was seen forcing the back door at 2 a.m.\n\nHe left on a bicycle.",
            question="",
            version_ids=[footage.version_id],
        )
        publish_appeal(appeal, coordinator)
        db.session.commit()
        return appeal.public_id


def tip_with_question(live: LiveServer, appeal_id: str, question: str) -> SentTip:
    """A tip sent to the appeal, and a detective's question in its thread."""
    with in_app(live):
        appeal = db.session.scalar(select(Appeal).where(Appeal.public_id == appeal_id))
        assert appeal is not None
        tip, receipt = submit_tip(
            TipInput(
                body="That looks like my neighbour's bicycle.",
                seen_when="Last Tuesday night",
                name="Sam",
                phone="",
                email="sam@example.net",
                notify_by_email=False,
                via="qr",
            ),
            agency=appeal.agency,
            appeal=appeal,
        )
        db.session.flush()
        add_staff_message(tip, _user(live.detective.email), question)
        db.session.commit()
        return SentTip(tip.public_id, receipt.number, receipt.passphrase)


def tip_by_number(live: LiveServer, number: str) -> str:
    with in_app(live):
        tip = db.session.scalar(select(Tip).where(Tip.number == number))
        assert tip is not None, number
        return tip.public_id


def appeal_status(live: LiveServer, case_id: str) -> str:
    with in_app(live):
        appeal = appeal_of(_case(case_id))
        return appeal.status if appeal is not None else ""


def version_lost_with_its_worker(live: LiveServer, footage: Footage) -> int:
    """A new version whose render was on its last attempt when its worker died (as a
    SIGKILLed Celery worker leaves it), failed by the reaper: what the Retry button is
    for. Made in one transaction, so the live runner never sees the job queued."""
    with in_app(live):
        clip = db.session.scalar(select(Clip).where(Clip.public_id == footage.clip_id))
        assert clip is not None
        version = create_version(clip, EditPlan(trim_end=1.5), _user(live.officer.email))
        db.session.flush()
        db.session.expire(version, ["jobs"])
        job = version.job
        assert job is not None
        long_ago = utcnow() - timedelta(hours=1)
        job.status = JobStatus.RUNNING.value
        job.attempts = job.max_attempts = 1
        job.worker = "celery:gone:1"
        job.claim_token = "d" * 32
        job.started_at = job.heartbeat_at = long_ago
        version.status = "processing"
        version.render_token = job.claim_token
        db.session.commit()
        number, version_id = version.number, version.public_id
    with in_app(live):
        requeue_stale_jobs(timedelta(minutes=1))
    wait_version(live, version_id, "failed")
    with in_app(live):
        version = db.session.scalar(select(ClipVersion).where(ClipVersion.public_id == version_id))
        assert version is not None and version.error == LOST_WORKER_REASON
    return number
