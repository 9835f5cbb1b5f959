"""run_tool(): clean environment, limits, timeout and cancel kill the whole process tree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from media_pipeline import Cancelled, Stalled, TimedOut
from media_pipeline.runner import Watch, run_tool

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


def test_run_tool_child_dies_with_a_process_killed_by_sigkill(tmp_path: Path) -> None:
    """A worker killed with SIGKILL runs no cleanup: its ffmpeg (in a session of its
    own) must still not outlive it."""
    pidfile = tmp_path / "child.pid"
    script = (
        "import sys\n"
        "from media_pipeline.runner import run_tool\n"
        f"run_tool(['/bin/sh', '-c', 'echo $$ > {pidfile}; exec sleep 60'],"
        " timeout_s=120, memory_bytes=1 << 30, capture_stdout_limit=4096)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(repo)}
    )
    try:
        deadline = time.monotonic() + 30
        while not pidfile.exists() or not pidfile.read_text().strip():
            assert time.monotonic() < deadline, "the child did not start"
            time.sleep(0.05)
        child = int(pidfile.read_text())
        worker.kill()
        worker.wait()
        assert not _group_alive(child)
    finally:
        worker.kill()
        worker.wait()


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


def _ffmpeg_forever(*extra: str) -> list[str]:
    """An ffmpeg that runs (in real time) until it is killed."""
    return [FFMPEG, "-v", "error", "-nostdin", *extra, "-re", "-f", "lavfi",
            "-i", "testsrc2=s=1280x720", "-f", "null", "-"]  # fmt: skip


def _proc_limits(pid: int) -> dict[str, list[str]]:
    """``/proc/<pid>/limits`` as {name: [soft, hard, ...]}."""
    rows = Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]
    return {row[:26].strip(): row[26:].split() for row in rows}


class _Seen(Exception):
    """Stops a run once the test has looked at the child."""


def test_run_tool_limits_and_priority_are_in_force_on_the_running_ffmpeg(
    spawned: list[int],
) -> None:
    seen: dict[str, Any] = {}

    def look(_: float) -> None:
        # Called from run_tool's loop while the child runs: read its /proc entry.
        if not seen:
            pid = spawned[0]
            seen["limits"] = _proc_limits(pid)
            stat = Path(f"/proc/{pid}/stat").read_text()
            seen["nice"] = int(stat[stat.rindex(")") + 2 :].split()[16])
            seen["exe"] = os.readlink(f"/proc/{pid}/exe")
            raise _Seen

    with pytest.raises(_Seen):
        run_tool(_ffmpeg_forever(), timeout_s=30, memory_bytes=3 * GIB, nice=7,
                 heartbeat=look, heartbeat_interval_s=0.3)  # fmt: skip
    assert seen["limits"]["Max address space"][:2] == [str(3 * GIB)] * 2
    assert seen["limits"]["Max core file size"][:2] == ["0", "0"]
    assert seen["nice"] == 7
    # The wrappers exec'd ffmpeg in place: the pid run_tool supervises is ffmpeg's.
    assert os.path.basename(seen["exe"]) == "ffmpeg"


def test_run_tool_spawns_without_preexec_fn(monkeypatch: pytest.MonkeyPatch) -> None:
    # A preexec_fn runs Python in the forked child of a threaded parent, which can
    # deadlock on a lock another thread held at the fork.
    calls: list[dict[str, Any]] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        calls.append(kwargs)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    run_tool(["/bin/true"], timeout_s=10, memory_bytes=GIB, capture_stdout_limit=16)
    assert calls and calls[0].get("preexec_fn") is None
    assert calls[0]["start_new_session"] is True


def test_run_tool_kills_a_stopped_ffmpeg_as_stalled(spawned: list[int]) -> None:
    # The bounds here are short on purpose: this tests the mechanism, not a default.
    # ffmpeg is stopped at its first progress report (so it surely runs by then).
    stopped: list[float] = []

    def stop(_fraction: float) -> None:
        if not stopped:
            os.kill(spawned[0], signal.SIGSTOP)
            stopped.append(time.monotonic())

    with pytest.raises(Stalled, match="stalled"):
        run_tool(_ffmpeg_forever("-progress", "pipe:1", "-stats_period", "0.1"),
                 timeout_s=60, memory_bytes=4 * GIB, expected_duration_s=60,
                 stall_timeout_s=2.0, progress=stop)  # fmt: skip
    assert stopped
    elapsed = time.monotonic() - stopped[0]
    # Killed after the stall setting, and long before the time limit.
    assert 2.0 < elapsed < 15.0
    assert not _group_alive(spawned[0])
    with pytest.raises(ProcessLookupError):
        os.kill(spawned[0], 0)


def test_run_tool_heartbeats_while_busy_without_any_progress_line(spawned: list[int]) -> None:
    # No -progress at all, as when ffmpeg holds its first report back until every
    # output has started: the heartbeat must still come, from CPU time alone.
    beats: list[float] = []

    def beat(fraction: float) -> None:
        beats.append(fraction)
        if len(beats) == 3:  # enough: the run is ended here
            os.kill(spawned[0], signal.SIGTERM)

    # Without a heartbeat the run would go on until this ends it.
    stop = threading.Timer(20, lambda: os.kill(spawned[0], signal.SIGTERM))
    stop.start()
    try:
        run_tool(_ffmpeg_forever(), timeout_s=30, memory_bytes=4 * GIB,
                 heartbeat=beat, heartbeat_interval_s=0.5)  # fmt: skip
    finally:
        stop.cancel()
    assert len(beats) >= 3


def test_run_tool_sends_no_heartbeat_while_the_child_is_stopped(spawned: list[int]) -> None:
    beats: list[float] = []
    stopped_at: list[float] = []

    def stop() -> None:
        os.kill(spawned[0], signal.SIGSTOP)
        stopped_at.append(time.monotonic())

    def beat(fraction: float) -> None:
        beats.append(time.monotonic())

    stopper = threading.Timer(1.0, stop)
    stopper.start()
    try:
        with pytest.raises(Stalled):
            run_tool(_ffmpeg_forever(), timeout_s=30, memory_bytes=4 * GIB, heartbeat=beat,
                     heartbeat_interval_s=0.3, stall_timeout_s=3.0)  # fmt: skip
    finally:
        stopper.cancel()
    assert beats and stopped_at
    # A beat may still cover activity sampled just before the stop (one due, one from
    # the next sample); none after that, in a stall of 3 s with a beat every 0.3 s.
    assert len([t for t in beats if t > stopped_at[0]]) <= 2, (beats, stopped_at)


def test_run_tool_progress_moves_from_the_input_offset_before_ffmpeg_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tile output holds ffmpeg's first -progress report back to the very end; the
    read offset of the input gives a figure from the first second anyway."""
    source = tmp_path / "in.ts"
    subprocess.run(
        [FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:d=4",
         "-c:v", "mpeg2video", "-q:v", "2", str(source)],
        check=True,
    )  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    seen: list[tuple[float, float]] = []
    spawned_at: list[float] = []  # ffmpeg's start: -re paces the input from there
    real_popen = subprocess.Popen

    def timed_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)
        spawned_at.append(time.monotonic())
        return proc

    monkeypatch.setattr(subprocess, "Popen", timed_popen)
    result = run_tool(
        [FFMPEG, "-v", "error", "-nostdin", "-progress", "pipe:1", "-stats_period", "0.1",
         "-re", "-i", f"file:{source}", "-filter_complex", "split[a][b];[b]fps=1,tile=2x2[t]",
         "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast", f"file:{out / 'a.mp4'}",
         "-map", "[t]", "-frames:v", "1", "-update", "1", "-y", f"file:{out / 't.jpg'}"],
        timeout_s=30, memory_bytes=4 * GIB, expected_duration_s=4,
        progress=lambda f: seen.append((time.monotonic() - spawned_at[0], f)),
        watch=Watch(input_path=str(source), input_start=0,
                    input_end=source.stat().st_size, output_dir=str(out)),
    )  # fmt: skip
    assert result.returncode == 0
    early = [f for t, f in seen if t < 3.0]
    assert early and max(early) > 0.2
    assert [f for _, f in seen] == sorted(f for _, f in seen) and seen[-1][1] == 1.0
