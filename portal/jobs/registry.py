"""The table of job functions, and ``enqueue``, which runs them after commit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.extensions import db
from portal.models import Job
from portal.models.base import utcnow

log = logging.getLogger(__name__)

_PENDING_KEY = "tattletale.pending_jobs"


class JobContext(Protocol):
    job_id: int
    worker: str

    def report(self, progress: float, stage: str = "") -> None: ...


JobFunction = Callable[..., None]


@dataclass(frozen=True)
class JobSpec:
    name: str
    function: JobFunction
    max_attempts: int | None


_registry: dict[str, JobSpec] = {}


def job(name: str, *, max_attempts: int | None = None) -> Callable[[JobFunction], JobFunction]:
    """Register a job function. It is called as ``function(ctx, **ids)``."""

    def decorator(function: JobFunction) -> JobFunction:
        if name in _registry and _registry[name].function is not function:
            raise ValueError(f"job {name!r} is registered twice")
        _registry[name] = JobSpec(name, function, max_attempts)
        return function

    return decorator


def get_job_spec(name: str) -> JobSpec | None:
    return _registry.get(name)


class Runner(Protocol):
    def dispatch(self, job_id: int, delay_s: float = 0.0) -> None: ...


def _check_ids(ids: dict[str, Any]) -> None:
    # Jobs take ids, never objects: an object pickled into a queue goes stale.
    for key, value in ids.items():
        if not isinstance(value, int | str) or isinstance(value, bool):
            raise TypeError(f"job argument {key!r} must be an id (int or str)")


def enqueue(name: str, *, delay: timedelta | None = None, **ids: Any) -> Job:
    """Add a job row to the current transaction; it is handed to the runner only
    after that transaction commits, so a worker never looks for a row that is not
    there yet (and a rolled-back request starts no job)."""
    spec = get_job_spec(name)
    if spec is None:
        raise KeyError(f"no job named {name!r}")
    _check_ids(ids)
    settings = current_app.config["TATTLETALE"]
    delay_s = delay.total_seconds() if delay else 0.0
    row = Job(
        name=name,
        args=ids,
        max_attempts=spec.max_attempts or settings.job_max_attempts,
        run_after=utcnow() + timedelta(seconds=delay_s),
    )
    db.session.add(row)
    db.session.flush()
    schedule_dispatch(row.id, delay_s)
    return row


def schedule_dispatch(job_id: int, delay_s: float = 0.0) -> None:
    runner: Runner = current_app.extensions["tattletale.runner"]
    session = db.session()
    session.info.setdefault(_PENDING_KEY, []).append((runner, job_id, delay_s))


@event.listens_for(Session, "after_commit")
def _dispatch_after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    for runner, job_id, delay_s in pending or ():
        try:
            runner.dispatch(job_id, delay_s)
        except Exception:
            # The row is committed and queued: the periodic pass will send it. The
            # request that enqueued it must not fail for a broker hiccup.
            log.exception("could not dispatch job; it will be picked up later")


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
