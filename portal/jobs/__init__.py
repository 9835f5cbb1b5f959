"""Background jobs: thin, id-taking, idempotent functions run by a runner.

Feature packages register their jobs with :func:`job` and start them with
:func:`enqueue`. Which runner delivers them is configuration: the local runner
(threads in the web process) by default, Celery when ``TATTLETALE_BROKER_URL`` is set.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

from flask import Flask

from portal.jobs import builtin  # noqa: F401  (registers the built-in jobs)
from portal.jobs.errors import PermanentJobError, TransientJobError
from portal.jobs.execution import execute_job
from portal.jobs.registry import JobContext, enqueue, job

__all__ = [
    "JobContext",
    "PermanentJobError",
    "TransientJobError",
    "enqueue",
    "execute_job",
    "init_jobs",
    "job",
]


def discover_job_modules() -> list[str]:
    """Import every module of this package and every feature package's ``jobs``
    module (``portal/<feature>/jobs.py`` or ``portal/<feature>/jobs/``), which
    registers their jobs and periodic tasks: a new one needs its module, nothing
    else. A module that cannot be imported stops the app from starting, by name."""
    import portal

    names = [
        f"{__name__}.{info.name}"
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]
    for info in pkgutil.iter_modules(portal.__path__):
        if info.ispkg and info.name != "jobs":
            candidate = f"portal.{info.name}.jobs"
            if importlib.util.find_spec(candidate) is not None:
                names.append(candidate)
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise RuntimeError(f"the job module {name} could not be loaded: {exc}") from exc
    return names


def init_jobs(app: Flask) -> None:
    # Feature jobs import services, which import the registry: found here, after the
    # package is whole, to keep the import graph acyclic.
    discover_job_modules()

    settings = app.config["TATTLETALE"]
    if settings.uses_celery:
        from portal.jobs.celery import CeleryRunner

        app.extensions["tattletale.runner"] = CeleryRunner(app)
    else:
        from portal.jobs.local import LocalRunner

        app.extensions["tattletale.runner"] = LocalRunner(app, threads=settings.job_threads)
