"""The scale-out runner: Celery workers (any number of machines) and one beat.

Tasks are thin: they take the job's id and call :func:`execute_job`, which claims the
row. ``acks_late`` means a message is acknowledged only after the work, so a worker
that dies mid-job leaves the message for another; the claim makes the redelivery safe.
"""

from __future__ import annotations

import socket
from datetime import timedelta

from celery import Celery, Task, shared_task
from flask import Flask

from portal.jobs.execution import due_job_ids, execute_job, requeue_stale_jobs
from portal.jobs.periodic import all_periodic, run_periodic

REAP_INTERVAL_S = 60


def create_celery(app: Flask) -> Celery:
    """The Flask documentation's pattern: every task runs inside an app context."""
    settings = app.config["TATTLETALE"]

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=settings.broker_url,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.celery_queue,
        broker_connection_retry_on_startup=True,
        beat_schedule={
            "reap-jobs": {"task": "tattletale.reap_jobs", "schedule": REAP_INTERVAL_S},
            **{
                task.name: {
                    "task": "tattletale.periodic",
                    "schedule": task.interval_s,
                    "args": [task.name],
                }
                for task in all_periodic()
            },
        },
    )
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


@shared_task(name="tattletale.run_job", ignore_result=True)
def run_job(job_id: int) -> str:
    return execute_job(job_id, f"celery:{socket.gethostname()}")


@shared_task(name="tattletale.reap_jobs", ignore_result=True)
def reap_jobs() -> None:
    """Beat's periodic pass: put back jobs of lost workers, resend lost messages."""
    from flask import current_app

    settings = current_app.config["TATTLETALE"]
    requeue_stale_jobs(timedelta(seconds=settings.job_stale_after_s))
    # Only jobs that have waited a while: their message was probably lost (broker
    # restart, dispatch failure after commit). A second message is harmless.
    for job_id in due_job_ids(waiting_for=timedelta(seconds=REAP_INTERVAL_S * 5)):
        run_job.apply_async(args=[job_id], queue=settings.celery_queue)


@shared_task(name="tattletale.periodic", ignore_result=True)
def run_periodic_task(name: str) -> None:
    run_periodic(name)


class CeleryRunner:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.celery = create_celery(app)

    def dispatch(self, job_id: int, delay_s: float = 0.0) -> None:
        queue = self.app.config["TATTLETALE"].celery_queue
        run_job.apply_async(args=[job_id], countdown=delay_s or None, queue=queue)
