"""Periodic work runs as job rows, one per tick, however many schedulers tick."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.jobs import periodic as periodic_module
from portal.jobs.periodic import enqueue_due_ticks, periodic
from portal.models import Job
from tests.portal.conftest import run_jobs

CALLS: list[str] = []


@pytest.fixture
def counted_task(monkeypatch: pytest.MonkeyPatch) -> str:
    # Only this task for the test, so the rows counted are its own.
    monkeypatch.setattr(periodic_module, "_periodic", {})
    CALLS.clear()

    @periodic("tests.counted", every_s=3600)
    def counted() -> None:
        CALLS.append("ran")

    return "tests.counted"


def test_periodic_two_schedulers_at_one_tick_make_one_row_and_one_run(
    app: Flask, counted_task: str
) -> None:
    now = datetime(2026, 12, 1, 20, 17, 42, tzinfo=UTC)
    barrier = threading.Barrier(2)
    seen: list[int] = []
    errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            with app.app_context():
                barrier.wait(10)
                seen.extend(row.id for row in enqueue_due_ticks(now))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    rows = db.session.scalars(select(Job).where(Job.name == "periodic.run")).all()
    assert [row.unique_key for row in rows] == ["periodic:tests.counted:2026-12-01T20:00:00Z"]
    assert seen == [rows[0].id, rows[0].id]
    assert run_jobs() == ["succeeded"]
    assert CALLS == ["ran"]

    # Beat restarted later in the same hour: still that tick, nothing new.
    enqueue_due_ticks(now + timedelta(minutes=30))
    assert run_jobs() == []
    # The next hour is the next tick.
    enqueue_due_ticks(now + timedelta(hours=1))
    assert run_jobs() == ["succeeded"]
    assert CALLS == ["ran", "ran"]


def test_periodic_builtin_tasks_are_registered() -> None:
    assert "uploads.expire" in {task.name for task in periodic_module.all_periodic()}
