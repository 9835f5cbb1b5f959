"""The production server ``make run`` uses: gunicorn, with the embedded job runner in
exactly one of its processes, taken over by another when that one dies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.http.server import pool_for, server_options
from portal.jobs.lease import LOCK_NAME, RunnerLease
from portal.models import Job, JobStatus

ROOT = Path(__file__).resolve().parents[3]


class CountingRunner:
    def __init__(self) -> None:
        self.starts = 0

    def start(self) -> None:
        self.starts += 1


def test_runner_lease_admits_one_holder_until_it_lets_go(app: Flask) -> None:
    first, second = CountingRunner(), CountingRunner()
    lease_a = RunnerLease(app, first, retry_s=0.05)
    lease_b = RunnerLease(app, second, retry_s=0.05)
    lease_a.start()
    assert lease_a.acquired.wait(5)
    lease_b.start()
    time.sleep(0.3)
    assert (first.starts, second.starts) == (1, 0)
    # The holder's process dies: the kernel drops its lock with its descriptor.
    assert lease_a._fd is not None
    os.close(lease_a._fd)
    assert lease_b.acquired.wait(5)
    assert (first.starts, second.starts) == (1, 1)
    lease_b.stop()
    assert lease_b._fd is not None
    os.close(lease_b._fd)


def test_server_options_are_a_threaded_gunicorn_without_access_log() -> None:
    options = server_options({"TATTLETALE_PORT": "5123"})
    assert options["bind"] == "127.0.0.1:5123"
    assert options["worker_class"] == "gthread"
    assert (options["workers"], options["threads"]) == (1, 32)
    assert options["accesslog"] is None


@pytest.mark.parametrize("value", ["0", "-2", "many", "²"])
def test_server_options_refuse_a_bad_worker_count(value: str) -> None:
    with pytest.raises(ValueError, match="TATTLETALE_WEB_WORKERS"):
        server_options({"TATTLETALE_WEB_WORKERS": value})


def test_staff_pool_options_are_its_own() -> None:
    options = server_options({"TATTLETALE_PORT": "5123", "TATTLETALE_WEB_POOL": "staff"})
    assert options["bind"] == "127.0.0.1:5124"
    assert (options["workers"], options["threads"]) == (1, 8)
    assert options["proc_name"] == "tattletale-staff"
    options = server_options(
        {
            "TATTLETALE_BIND": "0.0.0.0:8000",
            "TATTLETALE_STAFF_BIND": "0.0.0.0:8001",
            "TATTLETALE_WEB_WORKERS": "4",
            "TATTLETALE_STAFF_WORKERS": "2",
            "TATTLETALE_STAFF_THREADS": "4",
        },
        pool="staff",
    )
    assert options["bind"] == "0.0.0.0:8001"
    assert (options["workers"], options["threads"]) == (2, 4)
    # The pool for every path keeps its own settings.
    options = server_options({"TATTLETALE_BIND": "0.0.0.0:8000", "TATTLETALE_STAFF_WORKERS": "2"})
    assert (options["bind"], options["workers"]) == ("0.0.0.0:8000", 1)
    assert options["proc_name"] == "tattletale-web"


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"TATTLETALE_WEB_POOL": "public"}, "TATTLETALE_WEB_POOL"),
        ({"TATTLETALE_WEB_POOL": "staff", "TATTLETALE_STAFF_WORKERS": "0"}, "STAFF_WORKERS"),
        ({"TATTLETALE_WEB_POOL": "staff", "TATTLETALE_STAFF_PORT": "x"}, "STAFF_PORT"),
    ],
)
def test_staff_pool_refuses_bad_settings(environ: dict[str, str], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        server_options(environ)


@pytest.mark.parametrize(
    ("path", "pool"),
    [
        ("/staff/tips", "staff"),
        ("/staff/login", "staff"),
        ("/api/v1/tips", "staff"),
        ("/api/v1/uploads", "all"),
        ("/api/v1/uploads/abc", "all"),
        ("/staff/uploads/", "all"),
        ("/staff/uploads/abc", "all"),
        ("/api/v1/public/appeals", "all"),
        ("/tips", "all"),
        ("/appeals/x", "all"),
        ("/staffroom", "all"),
        ("/", "all"),
    ],
)
def test_the_load_balancer_rule_sends_staff_paths_to_the_staff_pool(path: str, pool: str) -> None:
    assert pool_for(path) == pool


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(predicate, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _enqueue_pings(count: int) -> list[int]:
    rows = [Job(name="ping", args={}, max_attempts=1) for _ in range(count)]
    db.session.add_all(rows)
    db.session.commit()
    return [row.id for row in rows]


def _finished_workers(ids: list[int]) -> set[str] | None:
    db.session.expire_all()
    rows = db.session.execute(select(Job.status, Job.worker).where(Job.id.in_(ids))).all()
    db.session.commit()
    if all(status == JobStatus.SUCCEEDED.value for status, _ in rows):
        return {worker for _, worker in rows}
    return None


@pytest.mark.slow
def test_serve_runs_jobs_in_one_of_several_web_processes_and_fails_over(  # type: ignore[no-untyped-def]
    app: Flask, settings
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "TATTLETALE_ENV": "testing",
        "TATTLETALE_DATABASE_URL": settings.database_url,
        "TATTLETALE_INSTANCE_PATH": str(settings.instance_path),
        "TATTLETALE_STORAGE_URL": settings.storage_url,
        "TATTLETALE_PORT": str(port),
        "TATTLETALE_WEB_WORKERS": "3",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def answers() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:  # noqa: S310
                    return r.status == 200 and "gunicorn" in r.headers.get("Server", "")
            except OSError:
                assert server.poll() is None, "the server exited"
                return False

        assert _wait_for(answers, 60, "the server")
        ids = _enqueue_pings(12)
        workers = _wait_for(lambda: _finished_workers(ids), 60, "the pings")
        lock = settings.instance_path / LOCK_NAME
        leader = int(lock.read_text().strip())
        # Three web processes, one runner: every job ran in the lease holder.
        assert workers == {f"local:{socket.gethostname()}:{leader}"}

        os.kill(leader, signal.SIGKILL)
        ids = _enqueue_pings(6)
        workers = _wait_for(lambda: _finished_workers(ids), 60, "the pings after failover")
        new_leader = int(lock.read_text().strip())
        assert new_leader != leader
        assert workers == {f"local:{socket.gethostname()}:{new_leader}"}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


@pytest.mark.slow
def test_serve_with_a_staff_port_runs_a_staff_pool_stopped_with_it(  # type: ignore[no-untyped-def]
    app: Flask, settings
) -> None:
    port, staff_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "TATTLETALE_ENV": "testing",
        "TATTLETALE_DATABASE_URL": settings.database_url,
        "TATTLETALE_INSTANCE_PATH": str(settings.instance_path),
        "TATTLETALE_STORAGE_URL": settings.storage_url,
        "TATTLETALE_PORT": str(port),
        "TATTLETALE_STAFF_PORT": str(staff_port),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answers(on: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{on}/healthz", timeout=2) as r:  # noqa: S310
                return r.status == 200
        except OSError:
            assert server.poll() is None, "the server exited"
            return False

    try:
        assert _wait_for(lambda: answers(port) and answers(staff_port), 60, "both pools")
        ids = _enqueue_pings(3)
        # Two pools on one instance directory: still one job runner.
        workers = _wait_for(lambda: _finished_workers(ids), 60, "the pings")
        assert len(workers) == 1
    finally:
        server.send_signal(signal.SIGTERM)  # what a service manager sends the command
        server.wait(30)

    def closed(on: int) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", on)) != 0

    assert _wait_for(lambda: closed(port) and closed(staff_port), 30, "both pools to stop")
