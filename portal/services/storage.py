"""The evidence store of this app (local directory or S3), and the keys inside it.

Keys are built from public ids only, never from anything a client sent (a file
name, a case number), so no request can choose where an object lands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from flask import current_app

from media_pipeline import Store, store_from_url


def get_store() -> Store:
    store: Store | None = current_app.extensions.get("tattletale.store")
    if store is None:
        settings = current_app.config["TATTLETALE"]
        store = store_from_url(settings.storage_url, endpoint_url=settings.s3_endpoint_url)
        current_app.extensions["tattletale.store"] = store
    return store


def upload_dir() -> Path:
    """Where tus uploads are received: where the store adopts them from most cheaply
    (inside the media root for the local store, so a finished upload is renamed into
    place instead of copied)."""
    fallback = current_app.config["TATTLETALE"].instance_path / "uploads"
    path = Path(get_store().staging_dir(fallback))
    path.mkdir(parents=True, exist_ok=True)
    return path


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
