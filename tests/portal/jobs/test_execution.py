"""Running a job row: fenced claims, outcomes, transient and permanent failures."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from flask import Flask
from sqlalchemy import func, select, update

from portal.extensions import db
from portal.jobs import JobContext, enqueue, execute_job, job
from portal.jobs.errors import ClaimLost, classify_error
from portal.jobs.execution import (
    TRANSIENT_CAP_S,
    _Context,
    claim_job,
    requeue_stale_jobs,
)
from portal.models import Job
from portal.models.base import utcnow

# Runs of tests.gated, by attempt number: the test lets each one go when it likes.
STARTED: dict[int, threading.Event] = {}
RELEASE: dict[int, threading.Event] = {}


@job("tests.gated", max_attempts=3)
def gated(ctx: JobContext, label: str) -> None:
    row = db.session.get(Job, ctx.job_id)
    assert row is not None
    attempt = row.attempts
    db.session.commit()
    STARTED[attempt].set()
    assert RELEASE[attempt].wait(10), "the test never released this run"


FAILURES: dict[str, BaseException] = {}


@job("tests.noop")
def noop(ctx: JobContext, clip_id: int) -> None:
    ctx.report(0.5, "halfway")


@job("tests.raises", max_attempts=3)
def raises(ctx: JobContext, what: str) -> None:
    raise FAILURES[what]


def _run_in_thread(app: Flask, job_id: int, worker: str, out: dict[str, str]) -> threading.Thread:
    def target() -> None:
        with app.app_context():
            out[worker] = execute_job(job_id, worker)

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def test_execution_stale_worker_cannot_touch_the_run_that_replaced_it(app: Flask) -> None:
    for attempt in (1, 2):
        STARTED[attempt], RELEASE[attempt] = threading.Event(), threading.Event()
    row = enqueue("tests.gated", label="fenced")
    db.session.commit()
    outcomes: dict[str, str] = {}

    first = _run_in_thread(app, row.id, "worker-1", outcomes)
    assert STARTED[1].wait(10)
    # Worker 1 went silent (as far as the reaper can tell): its job goes back ...
    assert requeue_stale_jobs(timedelta(0)) == [row.id]
    # ... and worker 2 claims it.
    second = _run_in_thread(app, row.id, "worker-2", outcomes)
    assert STARTED[2].wait(10)
    db.session.expire_all()
    claimed = db.session.get(Job, row.id)
    assert claimed is not None and claimed.worker == "worker-2" and claimed.attempts == 2
    second_token = claimed.claim_token

    # Worker 1 wakes up and finishes: it must not mark worker 2's run succeeded.
    RELEASE[1].set()
    first.join(10)
    assert outcomes["worker-1"] == "lost"
    db.session.expire_all()
    after = db.session.get(Job, row.id)
    assert after is not None
    assert (after.status, after.worker, after.claim_token, after.finished_at) == (
        "running",
        "worker-2",
        second_token,
        None,
    )

    RELEASE[2].set()
    second.join(10)
    assert outcomes["worker-2"] == "succeeded"
    db.session.expire_all()
    assert db.session.get(Job, row.id).status == "succeeded"  # type: ignore[union-attr]


def test_execution_stale_worker_report_and_retry_write_nothing(app: Flask) -> None:
    row = enqueue("tests.noop", clip_id=1)
    db.session.commit()
    stale = claim_job(row.id, "worker-1")
    assert stale is not None
    assert requeue_stale_jobs(timedelta(0)) == [row.id]
    fresh = claim_job(row.id, "worker-2")
    assert fresh is not None and fresh.token != stale.token

    stale_ctx = _Context(claim=stale, engine=db.engine)
    with pytest.raises(ClaimLost):
        stale_ctx.report(0.9, "stale progress")
    assert stale_ctx.heartbeat() is False
    # A heartbeat from another thread (the pipeline's) reports the loss, never raises.
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(stale_ctx.heartbeat()))
    thread.start()
    thread.join(5)
    assert result == [False]

    # The stale worker's run fails and would be retried: the newer run is untouched.
    from portal.jobs.execution import _fail, _finish, _requeue

    assert _requeue(stale, 10, "stale failure") == "lost"
    assert _fail(stale, None, "stale failure") == "lost"
    from portal.models import JobStatus

    assert _finish(stale, JobStatus.SUCCEEDED) == "lost"
    db.session.expire_all()
    current = db.session.get(Job, row.id)
    assert current is not None
    assert (current.status, current.worker, current.progress, current.error) == (
        "running",
        "worker-2",
        0.0,
        "",
    )
    fresh_ctx = _Context(claim=fresh, engine=db.engine)
    fresh_ctx.report(0.5, "halfway")
    db.session.expire_all()
    assert db.session.get(Job, row.id).progress == 0.5  # type: ignore[union-attr]


def test_execution_reaper_leaves_a_run_that_beat_since_it_looked(app: Flask) -> None:
    row = enqueue("tests.noop", clip_id=2)
    db.session.commit()
    claim = claim_job(row.id, "worker-1")
    assert claim is not None
    db.session.execute(update(Job).values(heartbeat_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    # The run is claimed again between the reaper's look and its write: simulated by
    # a new claim token on the row. The reaper must not touch the new run.
    db.session.execute(update(Job).values(claim_token="another-run"))
    db.session.commit()
    assert _Context(claim=claim, engine=db.engine).heartbeat() is False
    assert requeue_stale_jobs(timedelta(minutes=1)) == [row.id]  # the new run is silent too
    db.session.expire_all()
    assert db.session.get(Job, row.id).claim_token == ""  # type: ignore[union-attr]


def _refused() -> ConnectionRefusedError:
    # A real refusal: a port nobody listens on.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError as exc:
        return exc
    raise AssertionError("nothing should listen on a port just released")


def test_execution_transient_failure_backs_off_with_jitter_without_using_attempts(
    app: Flask,
) -> None:
    FAILURES["refused"] = _refused()
    row = enqueue("tests.raises", what="refused")
    db.session.commit()
    delays = []
    for _ in range(5):
        db.session.execute(update(Job).values(run_after=utcnow()))
        db.session.commit()
        before = utcnow()
        assert execute_job(row.id, "w") == "queued"
        db.session.refresh(row)
        delays.append((row.run_after - before).total_seconds())
        assert "ConnectionRefusedError" in row.error
    # Five tries and still every attempt left: an outage is not the job's fault.
    assert row.attempts == 0 and row.transient_failures == 5
    assert all(-1 <= d <= TRANSIENT_CAP_S + 1 for d in delays)
    # Full jitter: the ceilings are 2, 4, 8, 16, 32 s, never all hit exactly.
    assert len({round(d, 3) for d in delays}) == 5


def test_execution_transient_failure_fails_once_the_retry_span_is_over(app: Flask) -> None:
    span = app.config["TATTLETALE"].job_retry_span_s
    assert span >= 15 * 60  # the default rides out a 15-minute outage
    FAILURES["refused"] = _refused()
    row = enqueue("tests.raises", what="refused")
    db.session.commit()
    assert execute_job(row.id, "w") == "queued"
    # Still inside the span (14 minutes into the outage): tried again.
    db.session.execute(
        update(Job).values(run_after=utcnow(), transient_since=utcnow() - timedelta(minutes=14))
    )
    db.session.commit()
    assert execute_job(row.id, "w") == "queued"
    db.session.execute(
        update(Job).values(
            run_after=utcnow(), transient_since=utcnow() - timedelta(seconds=span + 1)
        )
    )
    db.session.commit()
    assert execute_job(row.id, "w") == "failed"
    db.session.refresh(row)
    assert row.status == "failed" and "ConnectionRefusedError" in row.error
    assert "of retries" in row.error


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (EndpointConnectionError(endpoint_url="https://s3.example"), "transient"),
        (
            ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {}}, "PutObject"),
            "transient",
        ),
        (
            ClientError(
                {"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}},
                "GetObject",
            ),
            "transient",
        ),
        (
            ClientError(
                {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
                "GetObject",
            ),
            "permanent",
        ),
        (TimeoutError("timed out"), "transient"),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), "permanent"),
        (RuntimeError("a bug"), "error"),
    ],
)
def test_execution_classifies_failures(error: Exception, kind: str) -> None:
    assert classify_error(error) == kind


def test_execution_classifies_a_refused_database_connection_as_transient(app: Flask) -> None:
    import psycopg
    import sqlalchemy as sa

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = sa.create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{port}/none")
    with pytest.raises(sa.exc.OperationalError) as raised:
        engine.connect()
    engine.dispose()
    assert classify_error(raised.value) == "transient"
    assert isinstance(raised.value.orig, psycopg.OperationalError)
    assert classify_error(raised.value.orig) == "transient"


def test_execution_permanent_error_fails_at_once_with_its_reason(app: Flask) -> None:
    FAILURES["denied"] = ClientError(
        {
            "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "PutObject",
    )
    row = enqueue("tests.raises", what="denied")
    db.session.commit()
    assert execute_job(row.id, "w") == "failed"
    db.session.refresh(row)
    assert row.attempts == 1 and "AccessDenied" in row.error


def test_execution_heartbeats_from_a_thread_while_the_job_works(app: Flask) -> None:
    from dataclasses import replace

    app.config["TATTLETALE"] = replace(app.config["TATTLETALE"], job_stale_after_s=10)
    STARTED[1], RELEASE[1] = threading.Event(), threading.Event()
    row = enqueue("tests.gated", label="beats")
    db.session.commit()
    outcomes: dict[str, str] = {}
    thread = _run_in_thread(app, row.id, "worker", outcomes)
    assert STARTED[1].wait(10)
    db.session.expire_all()
    first_beat = db.session.get(Job, row.id).heartbeat_at  # type: ignore[union-attr]
    # stale_after 10 s: a beat every 10/6 s, while the job itself never reports (the
    # job waits for RELEASE at most 10 s).
    deadline = time.monotonic() + 8
    while True:
        db.session.expire_all()
        later_beat = db.session.get(Job, row.id).heartbeat_at  # type: ignore[union-attr]
        if later_beat != first_beat or time.monotonic() > deadline:
            break
        threading.Event().wait(0.1)
    RELEASE[1].set()
    thread.join(10)
    assert first_beat is not None and later_beat is not None and later_beat > first_beat
    assert outcomes["worker"] == "succeeded"
    assert db.session.scalar(select(func.count()).select_from(Job)) == 1
