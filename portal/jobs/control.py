"""The control pass: recovery and scheduling, run on a path that never waits behind
the job queue (the local runner's scheduler thread; Celery beat itself).

It puts back jobs whose worker went silent and sends them at once, resends queued
jobs whose message seems lost, and enqueues the current tick of every periodic task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from flask import current_app

from portal.extensions import db
from portal.jobs.execution import due_job_ids, requeue_stale_jobs
from portal.jobs.periodic import enqueue_due_ticks

log = logging.getLogger(__name__)


def control_pass(dispatch: Callable[[int], None], *, lost_after: timedelta) -> None:
    """One pass; call inside an app context. ``dispatch`` hands a job id to the
    runner. Each part runs even if another failed."""
    settings = current_app.config["TATTLETALE"]
    try:
        requeued = requeue_stale_jobs(timedelta(seconds=settings.job_stale_after_s))
        if requeued:
            log.warning("put back jobs of silent workers", extra={"jobs": requeued})
        for job_id in requeued:
            dispatch(job_id)
    except Exception:
        db.session.rollback()
        log.exception("recovering stale jobs failed")
    try:
        enqueue_due_ticks()
    except Exception:
        db.session.rollback()
        log.exception("enqueueing periodic tasks failed")
    try:
        # A second message for a job is harmless: the claim runs it once.
        for job_id in due_job_ids(waiting_for=lost_after):
            dispatch(job_id)
    except Exception:
        db.session.rollback()
        log.exception("resending due jobs failed")
