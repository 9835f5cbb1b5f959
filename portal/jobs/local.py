"""The embedded runner: worker threads inside the web process.

The database is the queue. The in-memory queue only saves the pollers a trip: a
scheduler thread looks for due rows every few seconds, so a job enqueued by another
process (the CLI, a second web process) or delayed for a retry is still run.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from datetime import timedelta

from flask import Flask

from portal.jobs.control import control_pass
from portal.jobs.execution import execute_job, requeue_stale_jobs

log = logging.getLogger(__name__)


class LocalRunner:
    def __init__(self, app: Flask, *, threads: int, poll_interval_s: float = 2.0) -> None:
        self.app = app
        self.threads = threads
        self.poll_interval_s = poll_interval_s
        self.worker_prefix = f"local:{socket.gethostname()}:"
        # Named by the process that runs the jobs, which under a forking server is
        # not the one that built the app: set again in start().
        self.worker_name = f"{self.worker_prefix}{os.getpid()}"
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._queued: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def started(self) -> bool:
        return bool(self._threads)

    def dispatch(self, job_id: int, delay_s: float = 0.0) -> None:
        # Not started (a CLI command, a test that does not run jobs): the row waits
        # in the database for the process that serves the runner. Delayed: the
        # scheduler picks it up when it is due.
        if not self.started or delay_s > 0:
            return
        self._put(job_id)

    def _put(self, job_id: int) -> None:
        with self._lock:
            if job_id in self._queued:
                return
            self._queued.add(job_id)
        self._queue.put(job_id)

    def start(self) -> None:
        if self.started:
            return
        self.worker_name = f"{self.worker_prefix}{os.getpid()}"
        with self.app.app_context():
            # Jobs this host's runners were running when their process died. Only
            # one web process per host may use the local runner; scale-out is Celery.
            lost = requeue_stale_jobs(timedelta(0), worker_prefix=self.worker_prefix)
            if lost:
                log.info("requeued jobs left running by a previous process", extra={"jobs": lost})
        self._stop.clear()
        for index in range(self.threads):
            thread = threading.Thread(
                target=self._work, name=f"tattletale-job-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        scheduler = threading.Thread(
            target=self._schedule, name="tattletale-scheduler", daemon=True
        )
        scheduler.start()
        self._threads.append(scheduler)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        for _ in range(self.threads):
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads.clear()

    def _schedule(self) -> None:
        # Its own thread, never one of the workers: recovery and periodic ticks run
        # however long the jobs take. The database is the queue, so every due row is
        # handed to the workers on each pass (lost_after=0).
        while not self._stop.is_set():
            try:
                with self.app.app_context():
                    control_pass(self._put, lost_after=timedelta(0))
            except Exception:
                log.exception("job scheduler pass failed")
            self._stop.wait(self.poll_interval_s)

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                with self.app.app_context():
                    execute_job(job_id, self.worker_name)
            except Exception:
                log.exception("job runner failed", extra={"job_id": job_id})
            finally:
                with self._lock:
                    self._queued.discard(job_id)
