"""The table of job functions, and ``enqueue``, which runs them after commit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from portal.extensions import db
from portal.models import Job
from portal.models.base import utcnow

log = logging.getLogger(__name__)

_PENDING_KEY = "tattletale.pending_jobs"


class JobContext(Protocol):
    """What a job function gets: who runs it, and the run's fenced writes."""

    @property
    def job_id(self) -> int: ...

    @property
    def worker(self) -> str: ...

    @property
    def token(self) -> str:
        """This run's claim token: unique to the run, for claiming what it works on."""
        ...

    def report(self, progress: float, stage: str = "") -> None: ...

    def heartbeat(self) -> bool: ...

    def check(self) -> None: ...

    def confirm(self) -> None: ...


JobFunction = Callable[..., None]
# Called when a job of this type has failed for good (no attempts left, a permanent
# error, or its worker vanished on the last attempt): marks what the job worked on as
# failed with ``reason``, in the transaction that fails the job. Gets the job's row.
FailureHook = Callable[[Job, str], None]


@dataclass(frozen=True)
class JobSpec:
    name: str
    function: JobFunction
    max_attempts: int | None
    # (subject type, name of the argument holding its id), e.g. ("clip", "clip_id").
    subject: tuple[str, str] | None = None
    on_failure: FailureHook | None = None


_registry: dict[str, JobSpec] = {}


def job(
    name: str,
    *,
    max_attempts: int | None = None,
    subject: tuple[str, str] | None = None,
    on_failure: FailureHook | None = None,
) -> Callable[[JobFunction], JobFunction]:
    """Register a job function. It is called as ``function(ctx, **ids)``.

    ``subject`` says what the job works on, so its rows can be found from it;
    ``on_failure`` says how that subject is marked failed when the job gives up.
    """

    def decorator(function: JobFunction) -> JobFunction:
        if name in _registry and _registry[name].function is not function:
            raise ValueError(f"job {name!r} is registered twice")
        _registry[name] = JobSpec(name, function, max_attempts, subject, on_failure)
        return function

    return decorator


def get_job_spec(name: str) -> JobSpec | None:
    return _registry.get(name)


def all_job_names() -> list[str]:
    return sorted(_registry)


class Runner(Protocol):
    def dispatch(self, job_id: int, delay_s: float = 0.0) -> None: ...


def _check_ids(ids: dict[str, Any]) -> None:
    # Jobs take ids, never objects: an object pickled into a queue goes stale.
    for key, value in ids.items():
        if not isinstance(value, int | str) or isinstance(value, bool):
            raise TypeError(f"job argument {key!r} must be an id (int or str)")


def enqueue(
    name: str,
    *,
    delay: timedelta | None = None,
    unique_key: str | None = None,
    **ids: Any,
) -> Job:
    """Add a job row to the current transaction; it is handed to the runner only
    after that transaction commits, so a worker never looks for a row that is not
    there yet (and a rolled-back request starts no job).

    With ``unique_key``, there is never a second row for the key: if one exists
    (even one another session is inserting right now) that row is returned and
    nothing new is dispatched.
    """
    spec = get_job_spec(name)
    if spec is None:
        raise KeyError(f"no job named {name!r}")
    _check_ids(ids)
    settings = current_app.config["TATTLETALE"]
    delay_s = delay.total_seconds() if delay else 0.0
    values: dict[str, Any] = {
        "name": name,
        "args": ids,
        "max_attempts": spec.max_attempts or settings.job_max_attempts,
        "run_after": utcnow() + timedelta(seconds=delay_s),
    }
    if spec.subject is not None:
        subject_type, id_argument = spec.subject
        subject_id = ids.get(id_argument)
        if not isinstance(subject_id, int):
            raise TypeError(f"job {name!r} needs its subject id {id_argument!r} (an int)")
        values.update(subject_type=subject_type, subject_id=subject_id)
    if unique_key is None:
        row = Job(**values)
        db.session.add(row)
        db.session.flush()
        schedule_dispatch(row.id, delay_s)
        return row
    return _enqueue_unique(unique_key, values, delay_s)


def _enqueue_unique(unique_key: str, values: dict[str, Any], delay_s: float) -> Job:
    # INSERT ... ON CONFLICT DO NOTHING, then read the row: race-free on both
    # databases without a savepoint. On PostgreSQL a concurrent insert of the same key
    # makes this one wait for that transaction and then do nothing; SQLite has one
    # writer at a time.
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.flush()
    statement = (
        insert(Job)
        .values(unique_key=unique_key, **values)
        .on_conflict_do_nothing(index_elements=["unique_key"])
        .returning(Job.id)
    )
    # No id back: the key had a row already.
    inserted_id = db.session.execute(statement).scalar()
    row = db.session.scalar(select(Job).where(Job.unique_key == unique_key))
    assert row is not None, "the row of a unique key vanished"
    if inserted_id is not None:
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
