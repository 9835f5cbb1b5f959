"""run_tool(): clean environment, limits, timeout and cancel kill the whole process tree."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from media_pipeline import Cancelled, TimedOut
from media_pipeline.runner import run_tool

from .conftest import FFMPEG

GIB = 1024**3


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the pid of every child run_tool starts."""
    pids: list[int] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)
        pids.append(proc.pid)
        return proc

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    return pids


def _group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is still running.

    Zombies do not count: in a container whose PID 1 does not reap orphans, killed
    grandchildren linger as zombies, which hold no memory and run nothing.
    """
    deadline = time.monotonic() + 2
    while True:
        running = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                running.append(entry)
        if not running or time.monotonic() > deadline:
            return bool(running)
        time.sleep(0.05)


def test_run_tool_gives_child_only_path_and_locale() -> None:
    result = run_tool(["/usr/bin/env"], timeout_s=10, memory_bytes=GIB, capture_stdout_limit=4096)
    assert sorted(result.stdout.decode().split()) == [
        "LC_ALL=C",
        "PATH=/usr/local/bin:/usr/bin:/bin",
    ]


def test_run_tool_applies_address_space_limit() -> None:
    result = run_tool(
        ["/bin/sh", "-c", "ulimit -v; ulimit -c"],
        timeout_s=10,
        memory_bytes=512 * 1024 * 1024,
        capture_stdout_limit=4096,
    )
    assert result.stdout.decode().split() == [str(512 * 1024), "0"]


def test_run_tool_child_has_no_stdin_and_own_session() -> None:
    result = run_tool(
        ["/bin/sh", "-c", "cat; ps -o sid= -p $$; echo $$"],
        timeout_s=10,
        memory_bytes=GIB,
        capture_stdout_limit=4096,
    )
    sid, pid = result.stdout.decode().split()
    assert sid == pid


def test_run_tool_timeout_kills_the_whole_process_tree(spawned: list[int]) -> None:
    started = time.monotonic()
    with pytest.raises(TimedOut):
        run_tool(
            ["/bin/sh", "-c", "sleep 60 & sleep 60 & wait"],
            timeout_s=0.5,
            memory_bytes=GIB,
            capture_stdout_limit=4096,
        )
    assert time.monotonic() - started < 5
    assert not _group_alive(spawned[0])


def test_run_tool_cancel_kills_ffmpeg(spawned: list[int]) -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(Cancelled):
        run_tool(
            [FFMPEG, "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2", "-f", "null", "-"],
            timeout_s=30,
            memory_bytes=4 * GIB,
            expected_duration_s=60,
            cancel=cancel,
        )
    assert not _group_alive(spawned[0])
    with pytest.raises(ProcessLookupError):
        os.kill(spawned[0], 0)


def test_run_tool_reports_ffmpeg_progress_from_progress_pipe() -> None:
    seen: list[float] = []
    result = run_tool(
        [FFMPEG, "-v", "error", "-nostdin", "-progress", "pipe:1", "-stats_period", "0.1",
         "-re", "-f", "lavfi", "-i", "testsrc2=d=1.5:s=320x240", "-f", "null", "-"],
        timeout_s=30, memory_bytes=4 * GIB, expected_duration_s=1.5, progress=seen.append,
    )  # fmt: skip
    assert result.returncode == 0
    assert seen[-1] == 1.0 and len(seen) >= 2
    assert seen == sorted(seen)


def test_run_tool_progress_callback_error_kills_child(spawned: list[int]) -> None:
    def explode(_: float) -> None:
        raise RuntimeError("portal went away")

    with pytest.raises(RuntimeError, match="portal went away"):
        run_tool(
            [FFMPEG, "-v", "error", "-progress", "pipe:1", "-stats_period", "0.1", "-re",
             "-f", "lavfi", "-i", "testsrc2", "-f", "null", "-"],
            timeout_s=30, memory_bytes=4 * GIB, expected_duration_s=60, progress=explode,
        )  # fmt: skip
    assert not _group_alive(spawned[0])


def test_run_tool_keeps_only_the_tail_of_a_flooding_log() -> None:
    result = run_tool(
        ["/bin/sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x >&2; echo END >&2"],
        timeout_s=10,
        memory_bytes=GIB,
        capture_stdout_limit=16,
    )
    assert len(result.log) == 64 * 1024 and result.log.endswith("END\n")
