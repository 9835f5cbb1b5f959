"""Running one job row: claim it, call its function, record the outcome.

Every runner calls :func:`execute_job`. Running it twice for the same id is safe:
the claim is a conditional UPDATE, so only one caller ever gets a queued row.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from portal.extensions import db
from portal.jobs.registry import get_job_spec, schedule_dispatch
from portal.models import Job, JobStatus
from portal.models.base import utcnow

log = logging.getLogger(__name__)

# Backoff between attempts: 10 s, 40 s, 90 s, ... capped at 15 minutes.
BACKOFF_BASE_S = 10
BACKOFF_CAP_S = 900


class PermanentJobError(Exception):
    """A failure that another attempt cannot fix (bad input, missing object)."""


def backoff_seconds(attempt: int) -> int:
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * attempt * attempt)


@dataclass
class _Context:
    job_id: int
    worker: str

    def report(self, progress: float, stage: str = "") -> None:
        """Record progress (0..1) and a heartbeat. Runs in its own short transaction
        so the web pages see it while the job is still working."""
        progress = min(1.0, max(0.0, float(progress)))
        db.session.execute(
            update(Job)
            .where(Job.id == self.job_id, Job.status == JobStatus.RUNNING.value)
            .values(progress=progress, stage=stage[:64], heartbeat_at=utcnow())
        )
        db.session.commit()


def claim_job(job_id: int, worker: str) -> bool:
    now = utcnow()
    result = db.session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == JobStatus.QUEUED.value,
            Job.run_after <= now,
        )
        .values(
            status=JobStatus.RUNNING.value,
            attempts=Job.attempts + 1,
            started_at=now,
            heartbeat_at=now,
            worker=worker[:128],
            error="",
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


def execute_job(job_id: int, worker: str) -> str:
    """Run the job if it can be claimed. Returns the status it ended in, or
    ``"skipped"`` when another worker has it, it is finished, or it is not due."""
    if not claim_job(job_id, worker):
        return "skipped"
    job = db.session.get(Job, job_id)
    assert job is not None
    spec = get_job_spec(job.name)
    if spec is None:
        _finish(job_id, JobStatus.FAILED, error=f"no job function named {job.name!r}")
        return JobStatus.FAILED.value
    args = dict(job.args)
    attempts, max_attempts = job.attempts, job.max_attempts
    db.session.commit()
    try:
        spec.function(_Context(job_id=job_id, worker=worker), **args)
    except PermanentJobError as exc:
        db.session.rollback()
        log.warning("job failed permanently", extra={"job_id": job_id, "job": spec.name})
        _finish(job_id, JobStatus.FAILED, error=str(exc) or type(exc).__name__)
        return JobStatus.FAILED.value
    except Exception as exc:
        db.session.rollback()
        log.exception("job raised", extra={"job_id": job_id, "job": spec.name})
        message = f"{type(exc).__name__}: {exc}"
        if attempts < max_attempts:
            delay = backoff_seconds(attempts)
            db.session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.RUNNING.value)
                .values(
                    status=JobStatus.QUEUED.value,
                    run_after=utcnow() + timedelta(seconds=delay),
                    error=message[:4000],
                    worker="",
                )
            )
            schedule_dispatch(job_id, delay)
            db.session.commit()
            return JobStatus.QUEUED.value
        _finish(job_id, JobStatus.FAILED, error=(message + "\n" + traceback.format_exc())[:4000])
        return JobStatus.FAILED.value
    _finish(job_id, JobStatus.SUCCEEDED)
    return JobStatus.SUCCEEDED.value


def _finish(job_id: int, status: JobStatus, *, error: str = "") -> None:
    values: dict[str, object] = {"status": status.value, "finished_at": utcnow()}
    if status is JobStatus.SUCCEEDED:
        values["progress"] = 1.0
    if error:
        values["error"] = error
    db.session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING.value).values(**values)
    )
    db.session.commit()


def requeue_stale_jobs(stale_after: timedelta, *, worker_prefix: str | None = None) -> list[int]:
    """Put back running jobs whose worker stopped sending heartbeats (it crashed, or
    the machine went away). With ``worker_prefix``, only jobs of those workers, at any
    age: used at start by the local runner for jobs its previous process left behind."""
    now = utcnow()
    query = select(Job.id).where(Job.status == JobStatus.RUNNING.value)
    if worker_prefix is not None:
        query = query.where(Job.worker.startswith(worker_prefix, autoescape=True))
    else:
        query = query.where(Job.heartbeat_at < now - stale_after)
    ids = list(db.session.scalars(query))
    requeued = []
    for job_id in ids:
        running = (Job.id == job_id, Job.status == JobStatus.RUNNING.value)
        result = db.session.execute(
            update(Job)
            .where(*running, Job.attempts < Job.max_attempts)
            .values(status=JobStatus.QUEUED.value, run_after=now, worker="")
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            requeued.append(job_id)
            continue
        db.session.execute(
            update(Job)
            .where(*running)
            .values(
                status=JobStatus.FAILED.value,
                finished_at=now,
                error="the worker running this job stopped, and no attempts are left",
            )
        )
    db.session.commit()
    return requeued


def due_job_ids(limit: int = 100, *, waiting_for: timedelta = timedelta(0)) -> list[int]:
    """Queued jobs that have been due for at least ``waiting_for``."""
    return list(
        db.session.scalars(
            select(Job.id)
            .where(
                Job.status == JobStatus.QUEUED.value,
                Job.run_after <= utcnow() - waiting_for,
            )
            .order_by(Job.run_after, Job.id)
            .limit(limit)
        )
    )
