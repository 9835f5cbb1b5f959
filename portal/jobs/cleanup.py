"""Periodic removal of what interrupted work left behind (see
:func:`portal.services.storage.remove_leftovers`)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from pathlib import Path

from portal.jobs.periodic import periodic
from portal.services.storage import remove_leftovers

log = logging.getLogger(__name__)


@periodic("storage.remove_leftovers", every_s=3600)
def remove_storage_leftovers() -> None:
    """Hourly; the local runner's scheduler also runs it as it starts, so what a
    killed process left is removed on the next start once it is older than the bound."""
    leftovers = remove_leftovers()
    if leftovers.work_entries or leftovers.store_writes:
        log.info(
            "removed leftovers of interrupted work",
            extra={"work_entries": leftovers.work_entries, "store_writes": leftovers.store_writes},
        )


WORKER_LOCK = "worker.lock"


def claim_instance_and_sweep(instance_path: Path) -> int | None:
    """At a Celery worker's start: if no other live worker uses this instance path,
    remove everything its work directory holds and return how many entries; else None.

    The work directory holds only what running jobs are using, so what is there when a
    worker starts alone was left by one that died (SIGKILL, the OOM killer), often
    hundreds of MB of source copies and render outputs, which the hourly sweep would
    keep for hours. Every worker holds a shared ``flock`` on ``instance/worker.lock``
    for its life (its pool processes inherit it; the kernel drops it when the last one
    dies); the sweep needs the exclusive lock, which it gets only when no other live
    worker holds one. Two workers misconfigured onto one instance path therefore never
    remove each other's files.
    """
    instance_path.mkdir(parents=True, exist_ok=True)
    fd = os.open(instance_path / WORKER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    _held.append(fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        # Waits only while a starting worker sweeps (a moment).
        fcntl.flock(fd, fcntl.LOCK_SH)
        log.warning(
            "another worker uses this instance path; its work files are left alone",
            extra={"instance_path": str(instance_path)},
        )
        return None
    try:
        removed = _empty(instance_path / "work")
    finally:
        fcntl.flock(fd, fcntl.LOCK_SH)
    if removed:
        log.info("removed work files of a worker that died", extra={"work_entries": removed})
    return removed


def _empty(work: Path) -> int:
    removed = 0
    if work.is_dir():
        with os.scandir(work) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path)
                    else:
                        os.unlink(entry.path)
                    removed += 1
    return removed


#: Lock descriptors kept open for the life of the process.
_held: list[int] = []
