"""Exactly one embedded job runner per instance directory, however many web
processes serve it.

The local runner's scheduler requeues jobs left behind by this host's earlier
processes, and its periodic pass must run once per tick: two runners in two
gunicorn workers would each requeue the other's running jobs as "lost". So the
runner starts only in the process that holds an exclusive ``flock`` on
``instance/job-runner.lock``. The kernel releases the lock when that process dies
(whatever killed it), and another process, which keeps trying, takes over within
``retry_s``. The other processes still enqueue: the rows wait in the database and
the leader's scheduler finds them on its next poll.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from typing import Protocol

from flask import Flask

log = logging.getLogger(__name__)

LOCK_NAME = "job-runner.lock"


class Startable(Protocol):
    def start(self) -> None: ...


class RunnerLease:
    def __init__(self, app: Flask, runner: Startable, *, retry_s: float = 5.0) -> None:
        self.app = app
        self.runner = runner
        self.retry_s = retry_s
        self.path = app.config["TATTLETALE"].instance_path / LOCK_NAME
        self._fd: int | None = None
        self._stop = threading.Event()
        self.acquired = threading.Event()

    def try_acquire(self) -> bool:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Opened in this process (after any fork): flock belongs to the open file
            # description, so a descriptor inherited from a parent would be shared.
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())
        return True

    def start(self) -> threading.Thread:
        """Start the runner now if the lease is free, else keep trying in a thread."""
        thread = threading.Thread(target=self._run, name="tattletale-runner-lease", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.try_acquire():
                log.info("this process runs the embedded jobs", extra={"pid": os.getpid()})
                self.runner.start()
                self.acquired.set()
                return
            self._stop.wait(self.retry_s)

    def stop(self) -> None:
        self._stop.set()


def start_embedded_runner(app: Flask) -> RunnerLease | None:
    """Called once in every web process that serves the embedded mode. With Celery
    configured, workers and beat run the jobs and nothing starts here."""
    if app.config["TATTLETALE"].uses_celery:
        return None
    lease = RunnerLease(app, app.extensions["tattletale.runner"])
    lease.start()
    app.extensions["tattletale.runner_lease"] = lease
    return lease
