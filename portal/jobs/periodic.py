"""Housekeeping that runs on a timer, as ordinary job rows.

Each tick of a task is enqueued with the uniqueness key ``periodic:<task>:<tick
start>``, the tick start being the time aligned to the task's interval. However many
schedulers tick (two web processes, beat restarted mid-interval), a tick has one row,
and the claim runs it once. The scheduler is the local runner's thread in the
embedded mode and Celery beat's control pass in the scale-out one
(:mod:`portal.jobs.control`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from portal.extensions import db
from portal.jobs.errors import PermanentJobError
from portal.jobs.registry import JobContext, enqueue, job
from portal.models import Job
from portal.models.base import utcnow

log = logging.getLogger(__name__)

PERIODIC_JOB = "periodic.run"


@dataclass(frozen=True)
class Periodic:
    name: str
    interval_s: int
    function: Callable[[], object]


_periodic: dict[str, Periodic] = {}


def periodic(name: str, *, every_s: int) -> Callable[[Callable[[], object]], Callable[[], object]]:
    """Register ``function`` to run every ``every_s`` seconds, at most once per tick."""
    if every_s < 1:
        raise ValueError("a periodic task needs an interval of at least one second")

    def decorator(function: Callable[[], object]) -> Callable[[], object]:
        if name in _periodic and _periodic[name].function is not function:
            raise ValueError(f"periodic task {name!r} is registered twice")
        _periodic[name] = Periodic(name, every_s, function)
        return function

    return decorator


def all_periodic() -> list[Periodic]:
    return list(_periodic.values())


def tick_start(task: Periodic, now: datetime) -> datetime:
    """The start of the tick ``now`` falls in: intervals aligned to the Unix epoch, so
    every scheduler computes the same tick without talking to the others."""
    seconds = int(now.timestamp()) // task.interval_s * task.interval_s
    return datetime.fromtimestamp(seconds, UTC)


def tick_key(task: Periodic, start: datetime) -> str:
    return f"periodic:{task.name}:{start.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def enqueue_due_ticks(now: datetime | None = None) -> list[Job]:
    """Make sure the current tick of every task has its job row; commits. Returns
    the rows (new or already there). Call inside an app context."""
    now = now or utcnow()
    rows = [
        enqueue(PERIODIC_JOB, unique_key=tick_key(task, tick_start(task, now)), task=task.name)
        for task in _periodic.values()
    ]
    db.session.commit()
    return rows


@job(PERIODIC_JOB, max_attempts=1)
def run_periodic_job(ctx: JobContext, task: str) -> None:
    """One tick of a periodic task. A missed tick is not made up: the next one runs."""
    spec = _periodic.get(task)
    if spec is None:
        raise PermanentJobError(f"no periodic task named {task!r}")
    ctx.report(0.0, task)
    spec.function()
