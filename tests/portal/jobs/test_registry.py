"""Enqueueing: uniqueness keys hold under races; discovery finds job modules."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from config import Settings
from portal import create_app
from portal.extensions import db
from portal.jobs import JobContext, enqueue, job
from portal.jobs.registry import get_job_spec
from portal.models import Job

RUNS: list[str] = []


@job("tests.unique")
def unique_job(ctx: JobContext, post: int, channel: int) -> None:
    RUNS.append(f"{post}:{channel}")


def _count(key: str) -> int:
    return db.session.scalar(select(func.count()).select_from(Job).where(Job.unique_key == key))


def test_enqueue_with_a_known_key_returns_the_existing_row(app: Flask) -> None:
    dispatched: list[int] = []

    class Recorder:
        def dispatch(self, job_id: int, delay_s: float = 0.0) -> None:
            dispatched.append(job_id)

    app.extensions["tattletale.runner"] = Recorder()
    first = enqueue("tests.unique", unique_key="publish:post-1:channel-2", post=1, channel=2)
    db.session.commit()
    again = enqueue("tests.unique", unique_key="publish:post-1:channel-2", post=1, channel=2)
    db.session.commit()
    assert again.id == first.id
    assert _count("publish:post-1:channel-2") == 1
    assert dispatched == [first.id]  # the existing row is not sent a second time
    # Jobs without a key never collide.
    plain = [enqueue("tests.unique", post=1, channel=2) for _ in range(2)]
    db.session.commit()
    assert plain[0].id != plain[1].id


def test_enqueue_with_a_key_under_a_race_makes_one_row(app: Flask) -> None:
    key = "publish:post-7:channel-3"
    inserted = threading.Event()
    ids: dict[str, int] = {}
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with app.app_context():
                ids["first"] = enqueue("tests.unique", unique_key=key, post=7, channel=3).id
                inserted.set()
                # Hold the transaction open while the other session tries the same key.
                time.sleep(0.5)
                db.session.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            inserted.set()

    def second() -> None:
        try:
            with app.app_context():
                assert inserted.wait(10)
                ids["second"] = enqueue("tests.unique", unique_key=key, post=7, channel=3).id
                db.session.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    assert ids["first"] == ids["second"]
    db.session.expire_all()
    assert _count(key) == 1


def test_enqueue_key_is_unique_in_the_database(app: Flask) -> None:
    import sqlalchemy as sa

    db.session.add(Job(name="tests.unique", args={}, unique_key="k"))
    db.session.commit()
    db.session.add(Job(name="tests.unique", args={}, unique_key="k"))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_discovery_finds_job_modules_and_a_broken_one_stops_the_app(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import portal.jobs
    from portal.jobs import periodic, registry

    # What the module registers is forgotten after the test.
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    monkeypatch.setattr(periodic, "_periodic", dict(periodic._periodic))
    extra = tmp_path / "extra_jobs"
    extra.mkdir()
    (extra / "tt_discovered_jobs.py").write_text(
        "from portal.jobs.periodic import periodic\n"
        "from portal.jobs.registry import job\n\n"
        "@job('tests.discovered')\n"
        "def discovered(ctx):\n"
        "    pass\n\n"
        "@periodic('tests.discovered_tick', every_s=60)\n"
        "def tick():\n"
        "    pass\n"
    )
    # A module dropped into the package: nothing else names it.
    monkeypatch.setattr(portal.jobs, "__path__", [*portal.jobs.__path__, str(extra)])
    monkeypatch.delitem(sys.modules, "portal.jobs.tt_discovered_jobs", raising=False)
    app = create_app(settings)
    assert get_job_spec("tests.discovered") is not None
    assert "tests.discovered_tick" in {task.name for task in periodic.all_periodic()}
    with app.app_context():
        db.engine.dispose()

    (extra / "tt_broken_jobs.py").write_text("import no_such_module_anywhere\n")
    with pytest.raises(RuntimeError, match="portal.jobs.tt_broken_jobs"):
        create_app(settings)
