"""The evidence store of this app (local directory or S3), and the keys inside it.

Keys are built from public ids only, never from anything a client sent (a file
name, a case number), so no request can choose where an object lands.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import current_app

from media_pipeline import Store, store_from_url
from media_pipeline.staging import Staging


def get_store() -> Store:
    store: Store | None = current_app.extensions.get("tattletale.store")
    if store is None:
        settings = current_app.config["TATTLETALE"]
        store = store_from_url(settings.storage_url, endpoint_url=settings.s3_endpoint_url)
        current_app.extensions["tattletale.store"] = store
    return store


def get_staging() -> Staging:
    """Where resumable uploads are received: on the store itself (a directory inside
    the local store's root, or S3 multipart uploads), never in this machine's instance
    directory, so every web machine and worker sharing the store sees every upload."""
    return get_store().staging()


def work_dir() -> Path:
    path = current_app.config["TATTLETALE"].instance_path / "work"
    path.mkdir(parents=True, exist_ok=True)
    return path


def clip_prefix(case_public_id: str, clip_public_id: str) -> str:
    return f"cases/{case_public_id}/clips/{clip_public_id}"


def original_key(case_public_id: str, clip_public_id: str) -> str:
    return f"{clip_prefix(case_public_id, clip_public_id)}/original"


def proxy_key(case_public_id: str, clip_public_id: str) -> str:
    return f"{clip_prefix(case_public_id, clip_public_id)}/proxy.mp4"


def version_prefix(case_public_id: str, clip_public_id: str, number: int) -> str:
    return f"{clip_prefix(case_public_id, clip_public_id)}/versions/{number}"


@contextlib.contextmanager
def local_copy(key: str) -> Iterator[str]:
    """A path to a stored object for ffmpeg: the file itself where the store has one, a
    temporary copy in the work directory (removed on exit) otherwise."""
    with get_store().local_path_or_copy(key, work_dir()) as path:
        yield path


#: Leftovers older than this are removed. Three times ffmpeg's wall-clock limit per
#: run (``Limits.timeout_s``, 4 hours): no live job holds a work entry, or an unfinished
#: write to the store, that long.
LEFTOVER_MAX_AGE = timedelta(hours=12)


@dataclass(frozen=True)
class Leftovers:
    work_entries: int
    store_writes: int


def _newest_mtime(path: str) -> float:
    """The latest modification inside ``path`` (itself included), symlinks not followed:
    a long render still writing its outputs is young, however old its directory."""
    newest = os.lstat(path).st_mtime
    if os.path.isdir(path) and not os.path.islink(path):
        for directory, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(FileNotFoundError):
                    newest = max(newest, os.lstat(os.path.join(directory, name)).st_mtime)
    return newest


def remove_leftovers(max_age: timedelta = LEFTOVER_MAX_AGE) -> Leftovers:
    """Remove what interrupted work left: entries of the work directory (source copies,
    render and proxy outputs of a killed process) and the store's unfinished writes.

    Every job removes its own work files on every exit it lives through; this is for
    the exits it does not (SIGKILL, a machine losing power).
    """
    cutoff = time.time() - max_age.total_seconds()
    removed = 0
    with os.scandir(work_dir()) as entries:
        for entry in entries:
            try:
                if _newest_mtime(entry.path) >= cutoff:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed += 1
    writes = get_store().remove_incomplete(max_age.total_seconds())
    return Leftovers(removed, writes)
