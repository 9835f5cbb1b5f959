"""Real filesystems of a chosen size for tests of full disks and free-space checks.

A tmpfs mount is a real kernel filesystem: ENOSPC, statvfs and partial writes behave
as on a disk that is full. Its size is a limit, not an allocation: a 100 GiB tmpfs
costs nothing until written to. Mounting needs root (CI runs as root); elsewhere the
tests that need one are skipped, with the reason.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (mount's syntax: "8m", "100g") on ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)
