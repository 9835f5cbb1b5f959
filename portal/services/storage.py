"""The evidence store of this app (local directory or S3), and the keys inside it.

Keys are built from public ids only, never from anything a client sent (a file
name, a case number), so no request can choose where an object lands.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import current_app

from media_pipeline import LocalStore, Store, store_from_url


def get_store() -> Store:
    store: Store | None = current_app.extensions.get("tattletale.store")
    if store is None:
        settings = current_app.config["TATTLETALE"]
        store = store_from_url(settings.storage_url, endpoint_url=settings.s3_endpoint_url)
        current_app.extensions["tattletale.store"] = store
    return store


def upload_dir() -> Path:
    """Where tus uploads are received. Inside the media root for the local store, so a
    finished upload is renamed into place instead of copied."""
    store = get_store()
    if isinstance(store, LocalStore):
        path = Path(store.root) / ".uploads"
    else:
        path = current_app.config["TATTLETALE"].instance_path / "uploads"
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


class LocalCopy:
    """A path to an object for ffmpeg: the file itself for the local store, a
    temporary download (removed on exit) for S3."""

    def __init__(self, store: Store, key: str) -> None:
        self.store = store
        self.key = key
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> str:
        if isinstance(self.store, LocalStore):
            return self.store.local_path(self.key)
        self._tmpdir = tempfile.TemporaryDirectory(prefix="source-", dir=work_dir())
        path = os.path.join(self._tmpdir.name, "source")
        self.store.get_to_path(self.key, path)
        return path

    def __exit__(self, *exc: object) -> None:
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
