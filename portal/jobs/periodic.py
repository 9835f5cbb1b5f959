"""Housekeeping that runs on a timer: the local runner's scheduler thread calls it in
the embedded mode, Celery beat in the scale-out one."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    interval_s: int
    function: Callable[[], object]


_periodic: dict[str, Periodic] = {}


def periodic(name: str, *, every_s: int) -> Callable[[Callable[[], object]], Callable[[], object]]:
    def decorator(function: Callable[[], object]) -> Callable[[], object]:
        _periodic[name] = Periodic(name, every_s, function)
        return function

    return decorator


def all_periodic() -> list[Periodic]:
    return list(_periodic.values())


def run_periodic(name: str) -> None:
    _periodic[name].function()


def run_due(last_run: dict[str, float]) -> None:
    """Run each task whose interval has passed since ``last_run`` (updated in place).
    Call inside an app context."""
    now = time.monotonic()
    for task in _periodic.values():
        if now - last_run.get(task.name, float("-inf")) < task.interval_s:
            continue
        last_run[task.name] = now
        try:
            task.function()
        except Exception:
            log.exception("periodic task failed", extra={"task": task.name})
