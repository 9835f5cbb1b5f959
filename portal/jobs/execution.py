"""Running one job row: claim it, call its function, record the outcome.

Every runner calls :func:`execute_job`. Running it twice for the same id is safe:
the claim is a conditional UPDATE, so only one caller ever gets a queued row, and it
gives the run a token of its own. Every later write of that run (progress, heartbeat,
outcome, retry) and the reaper's take-back match the token: a worker whose run was
taken from it (it stalled, the reaper put the job back, another worker claimed it)
writes nothing over the newer run.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import traceback
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from sqlalchemy import ColumnElement, Engine, select, update

from portal.extensions import db
from portal.jobs.errors import ClaimLost, PermanentJobError, classify_error, describe_error
from portal.jobs.registry import JobSpec, get_job_spec, schedule_dispatch
from portal.models import Job, JobStatus
from portal.models.base import utcnow

log = logging.getLogger(__name__)

# Backoff between attempts after an unexpected error: 10 s, 40 s, 90 s, ... capped at
# 15 minutes. Transient errors (outages, throttling) back off with full jitter instead.
BACKOFF_BASE_S = 10
BACKOFF_CAP_S = 900
TRANSIENT_BASE_S = 2.0
# Never more than this between two tries during an outage, so the job is tried again
# soon after the service is back (and before the retry span runs out).
TRANSIENT_CAP_S = 120.0

LOST_WORKER_REASON = "the worker running this job stopped, and no attempts are left"

__all__ = [
    "ClaimLost",
    "PermanentJobError",
    "claim_job",
    "due_job_ids",
    "execute_job",
    "requeue_stale_jobs",
]


def backoff_seconds(attempt: int) -> int:
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * attempt * attempt)


def transient_backoff_seconds(failures: int) -> float:
    """Full jitter (uniform between 0 and an exponential ceiling): workers hit by the
    same outage do not all come back at the same moment."""
    ceiling = min(TRANSIENT_CAP_S, TRANSIENT_BASE_S * 2 ** min(failures, 30))
    return random.uniform(0, ceiling)  # noqa: S311 (spreading load, not a secret)


@dataclass(frozen=True)
class Claim:
    job_id: int
    token: str
    worker: str

    def fence(self) -> tuple[ColumnElement[bool], ...]:
        """The WHERE clause of every write that belongs to this run."""
        return (
            Job.id == self.job_id,
            Job.status == JobStatus.RUNNING.value,
            Job.claim_token == self.token,
        )


@dataclass
class _Context:
    claim: Claim
    engine: Engine
    owner: int = field(default_factory=threading.get_ident)
    lost: threading.Event = field(default_factory=threading.Event)

    @property
    def job_id(self) -> int:
        return self.claim.job_id

    @property
    def worker(self) -> str:
        return self.claim.worker

    @property
    def token(self) -> str:
        return self.claim.token

    def _write(self, **values: object) -> bool:
        # A connection of its own, not the job's session: safe from any thread, and
        # it never commits half of the job's own work.
        with self.engine.begin() as connection:
            result = connection.execute(
                update(Job).where(*self.claim.fence()).values(heartbeat_at=utcnow(), **values)
            )
        if result.rowcount != 1:
            self.lost.set()
            return False
        return True

    def heartbeat(self) -> bool:
        """Say the run is alive. Cheap, and safe from any thread. False once the run
        is no longer this worker's (the reaper took it back)."""
        if self.lost.is_set():
            return False
        try:
            return self._write()
        except Exception:
            # A database hiccup must not kill the thread that calls this; the next
            # beat tries again, and the reaper's margin covers a few missed ones.
            log.warning("job heartbeat failed", exc_info=True, extra={"job_id": self.job_id})
            return True

    def report(self, progress: float, stage: str = "") -> None:
        """Record progress (0..1) and a heartbeat, visible to the pages at once.
        In the job's own thread, raises :class:`ClaimLost` once the run was taken
        from this worker, which stops the work (ffmpeg is killed) where it is."""
        progress = min(1.0, max(0.0, float(progress)))
        if not self.lost.is_set():
            try:
                self._write(progress=progress, stage=stage[:64])
            except Exception:
                log.warning("job progress failed", exc_info=True, extra={"job_id": self.job_id})
        if self.lost.is_set() and threading.get_ident() == self.owner:
            raise ClaimLost(f"job {self.job_id} was taken from {self.worker}")

    def confirm(self) -> None:
        """Call in the job's thread, in the transaction that records its results, just
        before the commit: raises :class:`ClaimLost` unless the run still holds its
        claim. The job row stays locked until the commit (PostgreSQL ``FOR UPDATE``;
        on SQLite the transaction's earlier writes already hold the only write lock),
        so the reaper cannot take the run back in between."""
        held = db.session.scalar(select(Job.id).where(*self.claim.fence()).with_for_update())
        if held is None:
            db.session.rollback()
            self.lost.set()
            raise ClaimLost(f"job {self.job_id} was taken from {self.worker}")

    def check(self) -> None:
        """Raise :class:`ClaimLost` unless the run is still this worker's: call it
        before recording results."""
        if not self.heartbeat():
            raise ClaimLost(f"job {self.job_id} was taken from {self.worker}")


class _Heartbeat(threading.Thread):
    """Beats for the whole run, whatever the job is doing (hashing, ffmpeg, S3): a
    run stops beating only when its process is gone."""

    def __init__(self, ctx: _Context, interval_s: float) -> None:
        super().__init__(name=f"tattletale-heartbeat-{ctx.job_id}", daemon=True)
        self.ctx = ctx
        self.interval_s = interval_s
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval_s):
            if not self.ctx.heartbeat():
                return

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)


def claim_job(job_id: int, worker: str) -> Claim | None:
    now = utcnow()
    token = secrets.token_hex(16)
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
            claim_token=token,
            error="",
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return Claim(job_id, token, worker[:128])


def heartbeat_interval_s() -> float:
    # Several beats within the stale limit, so one slow write never looks like death.
    return max(0.5, current_app.config["TATTLETALE"].job_stale_after_s / 6)


def execute_job(job_id: int, worker: str) -> str:
    """Run the job if it can be claimed. Returns the status it ended in,
    ``"skipped"`` when another worker has it, it is finished, or it is not due, and
    ``"lost"`` when the run was taken from this worker before it ended."""
    claim = claim_job(job_id, worker)
    if claim is None:
        return "skipped"
    job = db.session.get(Job, job_id)
    assert job is not None
    spec = get_job_spec(job.name)
    if spec is None:
        return _fail(claim, None, f"no job function named {job.name!r}")
    args = dict(job.args)
    db.session.commit()
    ctx = _Context(claim=claim, engine=db.engine)
    beat = _Heartbeat(ctx, heartbeat_interval_s())
    beat.start()
    try:
        spec.function(ctx, **args)
    except ClaimLost:
        db.session.rollback()
        log.warning("job was taken from this worker", extra={"job_id": job_id, "job": spec.name})
        return "lost"
    except Exception as exc:
        db.session.rollback()
        return _handle_error(claim, spec, exc)
    finally:
        beat.stop()
    return _finish(claim, JobStatus.SUCCEEDED)


def _handle_error(claim: Claim, spec: JobSpec, exc: Exception) -> str:
    kind = classify_error(exc)
    reason = describe_error(exc)
    extra = {"job_id": claim.job_id, "job": spec.name, "error_kind": kind}
    row = db.session.get(Job, claim.job_id)
    db.session.commit()
    if row is None or row.claim_token != claim.token:
        return "lost"
    if kind == "permanent":
        log.warning("job failed permanently", extra=extra)
        return _fail(claim, spec, reason)
    log.warning("job raised", exc_info=exc, extra=extra)
    now = utcnow()
    if kind == "transient":
        span = timedelta(seconds=current_app.config["TATTLETALE"].job_retry_span_s)
        since = row.transient_since or now
        if now - since < span:
            delay = transient_backoff_seconds(row.transient_failures)
            # A try during an outage is not one of the job's attempts.
            return _requeue(
                claim,
                delay,
                reason,
                attempts=Job.attempts - 1,
                transient_since=since,
                transient_failures=Job.transient_failures + 1,
            )
        reason = f"{reason} (still failing after {_duration(now - since)} of retries)"
        return _fail(claim, spec, reason)
    if row.attempts < row.max_attempts:
        return _requeue(
            claim, backoff_seconds(row.attempts), reason, transient_since=None, transient_failures=0
        )
    detail = "".join(traceback.format_exception(exc))
    return _fail(claim, spec, reason, detail=detail)


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes else f"{int(delta.total_seconds())} s"


def _requeue(claim: Claim, delay_s: float, reason: str, **values: object) -> str:
    result = db.session.execute(
        update(Job)
        .where(*claim.fence())
        .values(
            status=JobStatus.QUEUED.value,
            run_after=utcnow() + timedelta(seconds=delay_s),
            error=reason[:4000],
            worker="",
            claim_token="",
            **values,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        return "lost"
    schedule_dispatch(claim.job_id, delay_s)
    db.session.commit()
    return JobStatus.QUEUED.value


def _finish(claim: Claim, status: JobStatus) -> str:
    values: dict[str, object] = {"status": status.value, "finished_at": utcnow()}
    if status is JobStatus.SUCCEEDED:
        values["progress"] = 1.0
    result = db.session.execute(update(Job).where(*claim.fence()).values(**values))
    db.session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return "lost"
    return status.value


def _fail(claim: Claim, spec: JobSpec | None, reason: str, *, detail: str = "") -> str:
    """Fail the run and, in the same transaction, its subject (the job type's hook)."""
    error = (reason + ("\n\n" + detail if detail else ""))[:4000]
    values = {"status": JobStatus.FAILED.value, "finished_at": utcnow(), "error": error}
    for with_hook in (True, False):
        try:
            result = db.session.execute(update(Job).where(*claim.fence()).values(**values))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                db.session.rollback()
                return "lost"
            if with_hook:
                _run_failure_hook(spec, claim.job_id, reason)
            db.session.commit()
            return JobStatus.FAILED.value
        except Exception:
            # The subject could not be marked: the job at least ends failed.
            db.session.rollback()
            if not with_hook:
                raise
            log.exception("marking a failed job's subject raised", extra={"job_id": claim.job_id})
    raise AssertionError("unreachable")


def _run_failure_hook(spec: JobSpec | None, job_id: int, reason: str) -> None:
    if spec is None or spec.on_failure is None:
        return
    row = db.session.get(Job, job_id)
    assert row is not None
    spec.on_failure(row, reason[:2000])


def requeue_stale_jobs(stale_after: timedelta, *, worker_prefix: str | None = None) -> list[int]:
    """Put back running jobs whose worker stopped sending heartbeats (it crashed, or
    the machine went away); fail those with no attempts left, and their subject with
    them. With ``worker_prefix``, only jobs of those workers, at any age: used at start
    by the local runner for jobs its previous process left behind. Returns the ids put
    back, for the caller to dispatch."""
    now = utcnow()
    cutoff = now - stale_after
    query = select(Job.id, Job.claim_token, Job.name).where(Job.status == JobStatus.RUNNING.value)
    if worker_prefix is not None:
        query = query.where(Job.worker.startswith(worker_prefix, autoescape=True))
    else:
        query = query.where(Job.heartbeat_at < cutoff)
    rows = db.session.execute(query).all()
    db.session.commit()
    requeued = []
    for job_id, token, name in rows:
        # The same run we saw, still silent: a beat that arrived since, or a new
        # claim, makes the update match nothing.
        fence = [Job.id == job_id, Job.status == JobStatus.RUNNING.value, Job.claim_token == token]
        if worker_prefix is None:
            fence.append(Job.heartbeat_at < cutoff)
        result = db.session.execute(
            update(Job)
            .where(*fence, Job.attempts < Job.max_attempts)
            .values(status=JobStatus.QUEUED.value, run_after=now, worker="", claim_token="")
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            db.session.commit()
            requeued.append(job_id)
            continue
        result = db.session.execute(
            update(Job)
            .where(*fence)
            .values(status=JobStatus.FAILED.value, finished_at=now, error=LOST_WORKER_REASON)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            try:
                _run_failure_hook(get_job_spec(name), job_id, LOST_WORKER_REASON)
            except Exception:
                log.exception("marking a failed job's subject raised", extra={"job_id": job_id})
                db.session.rollback()
                db.session.execute(
                    update(Job)
                    .where(*fence)
                    .values(
                        status=JobStatus.FAILED.value, finished_at=now, error=LOST_WORKER_REASON
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
