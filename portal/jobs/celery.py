"""The scale-out runner: Celery workers (any number of machines) and one beat.

Tasks are thin: they take the job's id and call :func:`execute_job`, which claims the
row. ``acks_late`` means a message is acknowledged only after the work, so a worker
that dies mid-job leaves the message for another; the claim makes the redelivery safe.

Recovery does not go through the job queue: beat runs the control pass (stale jobs,
lost messages, periodic ticks) itself, in its own process, every
``TATTLETALE_JOB_REAP_INTERVAL`` seconds, so it runs even while every worker is busy.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta
from typing import Any

from celery import Celery, Task, shared_task
from celery.beat import Scheduler
from celery.signals import worker_init
from flask import Flask

from portal.jobs.cleanup import claim_instance_and_sweep
from portal.jobs.control import control_pass
from portal.jobs.execution import execute_job

log = logging.getLogger(__name__)


class TattletaleCelery(Celery):
    flask_app: Flask


def worker_name() -> str:
    # Host and process: two workers on one machine are told apart.
    return f"celery:{socket.gethostname()}:{os.getpid()}"


def create_celery(app: Flask) -> TattletaleCelery:
    """The Flask documentation's pattern: every task runs inside an app context."""
    settings = app.config["TATTLETALE"]

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = TattletaleCelery(app.name, task_cls=FlaskTask)
    celery_app.flask_app = app
    celery_app.conf.update(
        broker_url=settings.broker_url,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.celery_queue,
        broker_connection_retry_on_startup=True,
        # Periodic work is not in beat's schedule: the control pass enqueues it as
        # job rows with a key per tick (see portal.jobs.periodic).
        beat_scheduler="portal.jobs.celery:ControlScheduler",
        beat_schedule={},
        # The app's logging (one JSON object per line, no client addresses) stays in
        # charge: Celery would otherwise replace the root handler with its own text.
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


@worker_init.connect
def _sweep_what_a_dead_worker_left(sender: Any = None, **kwargs: Any) -> None:
    """In the worker's main process, before its pool starts: a killed worker's work
    files are removed when it comes back (see :func:`claim_instance_and_sweep`)."""
    flask_app = getattr(getattr(sender, "app", None), "flask_app", None)
    if isinstance(flask_app, Flask):
        claim_instance_and_sweep(flask_app.config["TATTLETALE"].instance_path)


class ControlScheduler(Scheduler):
    """Beat's scheduler, with the control pass run in beat's own loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_control = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        flask_app: Flask = self.app.flask_app
        settings = flask_app.config["TATTLETALE"]
        now = time.monotonic()
        if now >= self._next_control:
            self._next_control = now + settings.job_reap_interval_s
            try:
                with flask_app.app_context():
                    run_control_pass()
            except Exception:
                log.exception("control pass failed")
        remaining = super().tick(*args, **kwargs)
        return max(0.0, min(remaining, self._next_control - time.monotonic()))


def run_control_pass() -> None:
    from flask import current_app

    settings = current_app.config["TATTLETALE"]
    runner = current_app.extensions["tattletale.runner"]
    control_pass(runner.dispatch, lost_after=timedelta(seconds=settings.job_lost_after_s))


@shared_task(name="tattletale.run_job", ignore_result=True)
def run_job(job_id: int) -> str:
    return execute_job(job_id, worker_name())


@shared_task(name="tattletale.reap_jobs", ignore_result=True)
def reap_jobs() -> None:
    """The control pass as a task, for an operator who wants to run it by hand
    (``celery call tattletale.reap_jobs``); beat does not need it."""
    run_control_pass()


class CeleryRunner:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.celery = create_celery(app)

    def dispatch(self, job_id: int, delay_s: float = 0.0) -> None:
        queue = self.app.config["TATTLETALE"].celery_queue
        run_job.apply_async(args=[job_id], countdown=delay_s or None, queue=queue)
