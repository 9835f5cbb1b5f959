"""Background jobs: thin, id-taking, idempotent functions run by a runner.

Feature packages register their jobs with :func:`job` and start them with
:func:`enqueue`. Which runner delivers them is configuration: the local runner
(threads in the web process) by default, Celery when ``TATTLETALE_BROKER_URL`` is set.
"""

from __future__ import annotations

from flask import Flask

from portal.jobs import builtin  # noqa: F401  (registers the built-in jobs)
from portal.jobs.execution import PermanentJobError, execute_job
from portal.jobs.registry import JobContext, enqueue, job

__all__ = ["JobContext", "PermanentJobError", "enqueue", "execute_job", "init_jobs", "job"]


def init_jobs(app: Flask) -> None:
    # Feature jobs import services, which import the registry: registered here, after
    # the package is whole, to keep the import graph acyclic.
    from portal.jobs import cleanup, footage  # noqa: F401

    settings = app.config["TATTLETALE"]
    if settings.uses_celery:
        from portal.jobs.celery import CeleryRunner

        app.extensions["tattletale.runner"] = CeleryRunner(app)
    else:
        from portal.jobs.local import LocalRunner

        app.extensions["tattletale.runner"] = LocalRunner(app, threads=settings.job_threads)
