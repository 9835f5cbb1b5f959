"""Background jobs: durable rows, claimed once, delivered by threads or by Celery."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, update

from config import Settings
from portal import create_app
from portal.extensions import db
from portal.jobs import JobContext, enqueue, execute_job, job
from portal.jobs.execution import PermanentJobError, requeue_stale_jobs
from portal.jobs.local import LocalRunner
from portal.models import Job
from portal.models.base import utcnow

PROJECT_ROOT = Path(__file__).resolve().parents[3]
REDIS_URL = os.environ.get("TATTLETALE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

CALLS: list[tuple[str, dict[str, object]]] = []


@job("tests.record")
def record(ctx: JobContext, **ids: object) -> None:
    CALLS.append((ctx.worker, ids))
    ctx.report(0.5, "halfway")


@job("tests.flaky", max_attempts=2)
def flaky(ctx: JobContext, fail_times: int) -> None:
    row = db.session.get(Job, ctx.job_id)
    assert row is not None
    if row.attempts <= fail_times:
        raise RuntimeError(f"attempt {row.attempts} fails")


@job("tests.broken_input")
def broken_input(ctx: JobContext) -> None:
    raise PermanentJobError("the clip does not exist")


def wait_for_status(job_id: int, statuses: set[str], timeout_s: float = 20.0) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        db.session.commit()
        db.session.expire_all()
        row = db.session.get(Job, job_id)
        assert row is not None
        if row.status in statuses:
            return row
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {row.status} after {timeout_s} s")


def test_enqueue_dispatches_only_after_commit(app: Flask) -> None:
    dispatched: list[int] = []

    class Recorder:
        def dispatch(self, job_id: int, delay_s: float = 0.0) -> None:
            dispatched.append(job_id)

    app.extensions["tattletale.runner"] = Recorder()
    row = enqueue("tests.record", clip_id=7)
    assert dispatched == []
    db.session.commit()
    assert dispatched == [row.id]

    enqueue("tests.record", clip_id=8)
    db.session.rollback()
    db.session.commit()
    assert dispatched == [row.id]


def test_enqueue_refuses_objects_and_unknown_jobs(app: Flask) -> None:
    with pytest.raises(TypeError, match="must be an id"):
        enqueue("tests.record", clip=object())
    with pytest.raises(KeyError):
        enqueue("no.such.job")


def test_execute_job_runs_once_and_second_run_does_nothing(app: Flask) -> None:
    CALLS.clear()
    row = enqueue("tests.record", clip_id=1)
    db.session.commit()
    assert execute_job(row.id, "test-worker") == "succeeded"
    assert execute_job(row.id, "test-worker") == "skipped"
    assert CALLS == [("test-worker", {"clip_id": 1})]
    db.session.refresh(row)
    assert row.status == "succeeded" and row.progress == 1.0 and row.attempts == 1


def test_execute_job_retries_with_backoff_then_succeeds(app: Flask) -> None:
    row = enqueue("tests.flaky", fail_times=1)
    db.session.commit()
    assert execute_job(row.id, "w") == "queued"
    db.session.refresh(row)
    assert row.status == "queued" and "attempt 1 fails" in row.error
    assert row.run_after > utcnow() + timedelta(seconds=5)
    assert execute_job(row.id, "w") == "skipped"  # not due yet
    db.session.execute(update(Job).values(run_after=utcnow()))
    db.session.commit()
    assert execute_job(row.id, "w") == "succeeded"


def test_execute_job_fails_when_attempts_are_used_up(app: Flask) -> None:
    row = enqueue("tests.flaky", fail_times=5)
    db.session.commit()
    execute_job(row.id, "w")
    db.session.execute(update(Job).values(run_after=utcnow()))
    db.session.commit()
    assert execute_job(row.id, "w") == "failed"
    db.session.refresh(row)
    assert row.status == "failed" and "attempt 2 fails" in row.error


def test_execute_job_permanent_error_is_not_retried(app: Flask) -> None:
    row = enqueue("tests.broken_input")
    db.session.commit()
    assert execute_job(row.id, "w") == "failed"
    db.session.refresh(row)
    assert row.error == "the clip does not exist" and row.attempts == 1


def test_stale_running_job_is_requeued(app: Flask) -> None:
    row = enqueue("tests.record", clip_id=3)
    db.session.commit()
    db.session.execute(
        update(Job).values(status="running", attempts=1, heartbeat_at=utcnow() - timedelta(hours=1))
    )
    db.session.commit()
    assert requeue_stale_jobs(timedelta(minutes=10)) == [row.id]
    db.session.refresh(row)
    assert row.status == "queued"


@pytest.fixture
def local_runner(app: Flask) -> Iterator[LocalRunner]:
    runner = LocalRunner(app, threads=2, poll_interval_s=0.2)
    app.extensions["tattletale.runner"] = runner
    yield runner
    runner.stop()


def test_local_runner_runs_enqueued_jobs(app: Flask, local_runner: LocalRunner) -> None:
    local_runner.start()
    row = enqueue("ping")
    db.session.commit()
    done = wait_for_status(row.id, {"succeeded", "failed"})
    assert done.status == "succeeded"
    assert done.stage == f"pong from {local_runner.worker_name}"


def test_local_runner_picks_up_jobs_left_by_a_dead_process(
    app: Flask, local_runner: LocalRunner
) -> None:
    # A job this host's previous web process was running when it died, and one that
    # was queued while no runner was up (enqueued from the CLI).
    orphan = Job(
        name="ping",
        args={},
        status="running",
        attempts=1,
        max_attempts=3,
        worker=f"{local_runner.worker_prefix}99999999",
        heartbeat_at=utcnow(),
    )
    waiting = enqueue("ping")
    db.session.add(orphan)
    db.session.commit()
    local_runner.start()
    assert wait_for_status(orphan.id, {"succeeded", "failed"}).status == "succeeded"
    assert wait_for_status(waiting.id, {"succeeded", "failed"}).status == "succeeded"


def _redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def celery_app(settings: Settings) -> Iterator[Flask]:
    if not _redis_available():
        if os.environ.get("TATTLETALE_TEST_REQUIRE_SERVICES"):
            pytest.fail(f"Redis is required but not reachable at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    queue = f"tattletale-test-{uuid.uuid4().hex[:8]}"
    celery_settings = replace(settings, broker_url=REDIS_URL, celery_queue=queue)
    app = create_app(celery_settings)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.mark.slow
def test_celery_worker_runs_enqueued_job(celery_app: Flask, settings: Settings) -> None:
    celery_settings = celery_app.config["TATTLETALE"]
    env = {
        **os.environ,
        "TATTLETALE_ENV": "testing",
        "TATTLETALE_DATABASE_URL": settings.database_url,
        "TATTLETALE_INSTANCE_PATH": str(settings.instance_path),
        "TATTLETALE_BROKER_URL": REDIS_URL,
        "TATTLETALE_CELERY_QUEUE": celery_settings.celery_queue,
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal.celery_worker",
            "worker",
            "--pool",
            "solo",
            "--queues",
            celery_settings.celery_queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        row = enqueue("ping")
        db.session.commit()
        done = wait_for_status(row.id, {"succeeded", "failed"}, timeout_s=60)
        assert done.status == "succeeded"
        # Host and process id: two workers on one host are told apart.
        assert done.worker == f"celery:{socket.gethostname()}:{worker.pid}"
        assert done.stage == f"pong from {done.worker}"
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode(errors="replace")
    assert "Traceback" not in output, output


@pytest.mark.slow
def test_celery_beat_recovers_jobs_with_no_worker_free(
    celery_app: Flask, settings: Settings, tmp_path: Path
) -> None:
    """Beat runs the control pass itself: a lost worker's job is put back and sent
    again, and periodic ticks are enqueued, while no worker takes anything."""
    celery_settings = celery_app.config["TATTLETALE"]
    lost = Job(
        name="ping",
        args={},
        status="running",
        attempts=1,
        max_attempts=3,
        worker="celery:gone:1",
        claim_token="token-of-the-dead-run",
        heartbeat_at=utcnow() - timedelta(minutes=5),
    )
    db.session.add(lost)
    db.session.commit()
    env = {
        **os.environ,
        "TATTLETALE_ENV": "testing",
        "TATTLETALE_DATABASE_URL": settings.database_url,
        "TATTLETALE_INSTANCE_PATH": str(settings.instance_path),
        "TATTLETALE_BROKER_URL": REDIS_URL,
        "TATTLETALE_CELERY_QUEUE": celery_settings.celery_queue,
        "TATTLETALE_JOB_REAP_INTERVAL": "1",
    }
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal.celery_worker",
            "beat",
            "--loglevel",
            "WARNING",
            "--pidfile=",
            "--schedule",
            str(tmp_path / "beat-schedule"),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        row = wait_for_status(lost.id, {"queued"}, timeout_s=30)
        assert row.claim_token == "" and row.worker == ""
        deadline = time.monotonic() + 15
        tick = None
        while tick is None and time.monotonic() < deadline:
            db.session.commit()
            tick = db.session.scalar(
                select(Job).where(Job.unique_key.startswith("periodic:uploads.expire:"))
            )
            time.sleep(0.2)
        assert tick is not None and tick.name == "periodic.run"
        # Both were handed to the broker: the messages wait in the job queue.
        import redis

        queued = redis.Redis.from_url(REDIS_URL).llen(celery_settings.celery_queue)
        assert queued >= 2
    finally:
        beat.terminate()
        output = beat.communicate(timeout=30)[0].decode(errors="replace")
        import redis

        redis.Redis.from_url(REDIS_URL).delete(celery_settings.celery_queue)
    assert "Traceback" not in output, output


def test_recovery_defaults_bring_a_killed_workers_job_back_within_two_minutes() -> None:
    from config import ConfigError, load_settings

    defaults = load_settings({"TATTLETALE_ENV": "testing"})
    # Silent for stale_after, noticed by the next control pass, sent at once.
    assert defaults.job_stale_after_s + defaults.job_reap_interval_s <= 120
    assert defaults.job_lost_after_s <= 120
    # Transient failures are retried through a 15-minute outage.
    assert defaults.job_retry_span_s > 15 * 60
    chosen = load_settings(
        {
            "TATTLETALE_ENV": "testing",
            "TATTLETALE_JOB_STALE_AFTER": "30",
            "TATTLETALE_JOB_REAP_INTERVAL": "5",
            "TATTLETALE_JOB_LOST_AFTER": "90",
            "TATTLETALE_JOB_RETRY_SPAN": "3600",
        }
    )
    assert (
        chosen.job_stale_after_s,
        chosen.job_reap_interval_s,
        chosen.job_lost_after_s,
        chosen.job_retry_span_s,
    ) == (30, 5, 90, 3600)
    with pytest.raises(ConfigError, match="TATTLETALE_JOB_REAP_INTERVAL"):
        load_settings({"TATTLETALE_ENV": "testing", "TATTLETALE_JOB_REAP_INTERVAL": "0"})


SLOW_WORKER_MODULE = """
import time

from portal.extensions import db
from portal.jobs.registry import job
from portal.models import Job


@job("tests.slow_first_time")
def slow_first_time(ctx):
    # The first attempt works "forever" (until its worker is killed); the next is quick.
    row = db.session.get(Job, ctx.job_id)
    attempt = row.attempts
    db.session.commit()
    deadline = time.monotonic() + (120 if attempt == 1 else 0)
    while time.monotonic() < deadline:
        time.sleep(0.1)
    ctx.report(1.0, f"done by {ctx.worker}")


from portal.celery_worker import celery, flask_app  # noqa: E402
"""


@job("tests.slow_first_time")
def slow_first_time(ctx: JobContext) -> None:  # pragma: no cover - runs in the worker
    raise AssertionError("only the worker process runs this job (SLOW_WORKER_MODULE)")


@pytest.mark.slow
def test_celery_killed_worker_job_is_run_by_another_within_the_stale_limit(
    celery_app: Flask, settings: Settings, tmp_path: Path
) -> None:
    """SIGKILL a worker mid-job: its heartbeats stop, beat puts the job back and sends
    it, a second worker on the same host (a name of its own) finishes it."""
    import signal

    (tmp_path / "tt_slow_worker.py").write_text(SLOW_WORKER_MODULE)
    celery_settings = celery_app.config["TATTLETALE"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PROJECT_ROOT)]),
        "TATTLETALE_ENV": "testing",
        "TATTLETALE_DATABASE_URL": settings.database_url,
        "TATTLETALE_INSTANCE_PATH": str(settings.instance_path),
        "TATTLETALE_BROKER_URL": REDIS_URL,
        "TATTLETALE_CELERY_QUEUE": celery_settings.celery_queue,
        # The smallest stale limit allowed, so the test is quick.
        "TATTLETALE_JOB_STALE_AFTER": "10",
        "TATTLETALE_JOB_REAP_INTERVAL": "1",
    }

    def start(*command: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tt_slow_worker", *command],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    worker_args = (
        "worker",
        "--pool",
        "solo",
        "--queues",
        celery_settings.celery_queue,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        "WARNING",
    )
    first = start(*worker_args)
    processes = [first]
    try:
        row = enqueue("tests.slow_first_time")
        db.session.commit()
        running = wait_for_status(row.id, {"running"}, timeout_s=60)
        first_name = running.worker
        assert first_name == f"celery:{socket.gethostname()}:{first.pid}"
        # The second worker and beat start while the first still runs the job (it is
        # claimed: they cannot take it), so the time measured is the recovery's, not
        # two cold starts on a loaded machine.
        second = start(*worker_args)
        processes.append(second)
        processes.append(
            start(
                "beat",
                "--loglevel",
                "WARNING",
                "--pidfile=",
                "--schedule",
                str(tmp_path / "beat-schedule"),
            )
        )
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        killed_at = time.monotonic()
        done = wait_for_status(row.id, {"succeeded", "failed"}, timeout_s=60)
        recovered_s = time.monotonic() - killed_at
        assert done.status == "succeeded"
        assert done.worker == f"celery:{socket.gethostname()}:{second.pid}" != first_name
        assert done.stage == f"done by {done.worker}" and done.attempts == 2
        # Stale after 10 s, a control pass every second: well within half a minute.
        assert recovered_s < 30, recovered_s
        print(f"recovery after SIGKILL (stale_after=10 s, reap=1 s): {recovered_s:.1f} s")
    finally:
        for process in processes[1:]:
            process.terminate()
        outputs = []
        for process in processes:
            if process.poll() is None:
                process.kill()
            outputs.append(process.communicate(timeout=30)[0].decode(errors="replace"))
        import redis

        redis.Redis.from_url(REDIS_URL).delete(celery_settings.celery_queue)
    for output in outputs[1:]:
        assert "Traceback" not in output, output
