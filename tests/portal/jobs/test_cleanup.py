"""Leftovers of interrupted work: work files and unfinished store writes are removed,
by the job on every exit it lives through and by the periodic sweep for the rest."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from flask import Flask

from portal.extensions import db
from portal.jobs.periodic import all_periodic
from portal.models import Clip, Role, User
from portal.services.clips import create_version, plan_from_request
from portal.services.storage import LEFTOVER_MAX_AGE, get_store, remove_leftovers, work_dir
from tests.portal.conftest import run_jobs

ON_BOTH_STORES = pytest.mark.parametrize("storage_location", ["local", "s3"], indirect=True)
OLD = time.time() - LEFTOVER_MAX_AGE.total_seconds() - 3600


def _age(path: Path) -> None:
    for directory, dirs, files in os.walk(path):
        for name in dirs + files:
            os.utime(os.path.join(directory, name), (OLD, OLD))
    os.utime(path, (OLD, OLD))


def _killed_mid_render(work: Path) -> Path:
    """A process that made its work directory, wrote into it, and was killed (SIGKILL:
    no finally, no atexit) before it could clean up."""
    script = (
        "import os, signal, sys, tempfile\n"
        "tmp = tempfile.mkdtemp(prefix='render-', dir=sys.argv[1])\n"
        "open(os.path.join(tmp, 'web_480.mp4'), 'wb').write(b'half a video')\n"
        "print(tmp, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(work)], capture_output=True, text=True, check=False
    )
    assert done.returncode == -signal.SIGKILL
    return Path(done.stdout.strip())


@ON_BOTH_STORES
def test_remove_leftovers_removes_old_work_of_a_killed_process(app: Flask) -> None:
    work = work_dir()
    killed = _killed_mid_render(work)
    assert killed.is_dir()
    young = _killed_mid_render(work)  # killed just now: within the bound, kept for now
    loose = work / "caption.txt"
    loose.write_text("old caption")
    _age(killed)
    os.utime(loose, (OLD, OLD))
    # A long render: its directory is old, but ffmpeg is still writing into it.
    running = work / "render-running"
    running.mkdir()
    (running / "web_720.mp4").write_bytes(b"growing")
    os.utime(running, (OLD, OLD))

    assert remove_leftovers().work_entries == 2
    assert sorted(p.name for p in work.iterdir()) == sorted([young.name, "render-running"])


def test_remove_leftovers_removes_old_temp_files_of_the_local_store(app: Flask) -> None:
    store = get_store()
    store.put_stream("cases/c1/kept", io.BytesIO(b"evidence"), "video/mp4")
    root = Path(app.config["TATTLETALE"].storage_url.removeprefix("file://"))
    partial = root / "cases" / "c1" / ".tmp-killed"
    partial.write_bytes(b"half an object")
    os.utime(partial, (OLD, OLD))
    assert remove_leftovers().store_writes == 1
    assert not partial.exists() and store.exists("cases/c1/kept")


@pytest.mark.parametrize("storage_location", ["s3"], indirect=True)
def test_periodic_sweep_aborts_unfinished_multipart_uploads(app: Flask) -> None:
    settings = app.config["TATTLETALE"]
    bucket = settings.storage_url.removeprefix("s3://").split("/", 1)[0]
    raw = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name="us-east-1")
    # What a worker killed mid-upload leaves (moto reports it as started in 2010).
    raw.create_multipart_upload(Bucket=bucket, Key="media/cases/c1/clips/k/original")
    tasks = {task.name: task for task in all_periodic()}
    assert "storage.remove_leftovers" in tasks
    tasks["storage.remove_leftovers"].function()
    assert raw.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@ON_BOTH_STORES
def test_failed_render_leaves_no_work_files(
    ready_clip: Clip, users: dict[Role, User], app: Flask
) -> None:
    # The stored original turned unreadable: ffmpeg fails on it, after the source was
    # copied into the work directory (S3) and the output directory was made.
    get_store().put_stream(
        ready_clip.original_key, io.BytesIO(b"\x00" * 4096), "application/octet-stream"
    )
    version = create_version(ready_clip, plan_from_request({"audio": "strip"}), users[Role.OFFICER])
    run_jobs(limit=1)  # one attempt; what it does next is the job runner's concern
    db.session.refresh(version)
    assert version.status != "ready" and version.error
    assert list(work_dir().iterdir()) == []


def test_a_worker_starting_removes_what_a_dead_worker_left(tmp_path: Path) -> None:
    from portal.jobs import cleanup

    work = tmp_path / "work"
    (work / "render-abc").mkdir(parents=True)
    (work / "render-abc" / "web_480.mp4").write_bytes(b"x" * 1000)
    (work / "source-def.mp4").write_bytes(b"y")
    try:
        assert cleanup.claim_instance_and_sweep(tmp_path) == 2
        assert list(work.iterdir()) == []
        # Alive, it keeps the next worker on this path from sweeping its files.
        (work / "render-mine").mkdir()
        assert cleanup.claim_instance_and_sweep(tmp_path) is None
        assert [p.name for p in work.iterdir()] == ["render-mine"]
    finally:
        for fd in cleanup._held:
            os.close(fd)
        cleanup._held.clear()


def test_a_worker_sharing_a_live_workers_instance_path_removes_nothing(tmp_path: Path) -> None:
    import fcntl

    from portal.jobs import cleanup

    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "render-live").mkdir()
    # A live worker that started second, so never swept: it holds the shared lock only.
    live = os.open(tmp_path / cleanup.WORKER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(live, fcntl.LOCK_SH)
    try:
        assert cleanup.claim_instance_and_sweep(tmp_path) is None
        assert [p.name for p in (tmp_path / "work").iterdir()] == ["render-live"]
    finally:
        os.close(live)
        for fd in cleanup._held:
            os.close(fd)
        cleanup._held.clear()
