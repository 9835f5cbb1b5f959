"""Run ffmpeg and ffprobe as hardened, bounded, supervised, killable children.

Each child gets: an empty environment but ``PATH`` (threat: ``LD_PRELOAD``-style or
proxy variables leaking into a parser of hostile data), no stdin, no inherited file
descriptors, an address-space limit, no core dumps, a lower CPU priority, and its own
session so that a timeout, a stall or a cancel kills the whole process tree with one
``killpg``.

The limits and the priority are set by exec wrappers (util-linux ``prlimit``, then
coreutils ``nice``), not by a ``preexec_fn``: Python runs a ``preexec_fn`` in the
forked child of a threaded parent, where a lock held by another thread at the fork
can deadlock it, and the portal's job runner is threaded. Both wrappers exec the tool
in place, so the child's pid is the tool's own and every thread it starts inherits
the limits and the priority.

While the child runs, the caller's thread supervises it: every half second it looks
at what the child is doing (CPU time, bytes read from the input, bytes written to the
outputs, anything on its pipes). That gives a progress figure that moves from the
first second (ffmpeg prints no ``-progress`` report at all until every output file
has started, and a sprite sheet starts only at the end of the clip), a heartbeat that
is sent while the child is busy and only then, and a stall detector for a child that
is stopped or hung.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from .errors import Cancelled, PipelineError, Stalled, TimedOut

ProgressCallback = Callable[[float], None]

#: Bytes of the child's stderr kept for error messages and the job log. The rest is
#: dropped as it arrives, so a child that floods its log cannot grow our memory.
LOG_TAIL_BYTES = 64 * 1024
_POLL_S = 0.1
#: How often the child's /proc entries and the output directory are looked at.
_SAMPLE_S = 0.5
_CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"
#: The progress figure stays below this until the exit status says success.
_UNFINISHED = 0.999


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stdout: bytes
    log: str
    elapsed_s: float


@dataclass(frozen=True)
class Watch:
    """What the supervisor may look at to tell progress and activity.

    ``input_path`` is the one file the child reads from start to end; the read offset
    of its descriptor, between ``input_start`` and ``input_end`` (bytes), is a
    progress figure that moves from the first second. It is only trusted once the
    child has written to ``output_dir``: before that, a demuxer may be reading an
    index at the end of the file (MP4 with the moov last, AVI's idx1).
    ``output_dir``'s growing files also count as activity.
    """

    input_path: str | None = None
    input_start: int = 0
    input_end: int = 0
    output_dir: str | None = None


def find_tool(name: str) -> str:
    """Absolute path of ``ffmpeg`` or ``ffprobe``, from ``TATTLETALE_<NAME>`` or PATH."""
    configured = os.environ.get(f"TATTLETALE_{name.upper()}")
    found = configured or shutil.which(name)
    if not found:
        raise PipelineError(f"{name} is not installed or not on PATH")
    return os.path.abspath(found)


@lru_cache(maxsize=4)
def _wrapper(name: str, package: str) -> str:
    found = shutil.which(name, path=_CHILD_PATH)
    if not found:
        raise PipelineError(f"{name} is not installed (Debian package {package})")
    return found


def limited_argv(argv: list[str], memory_bytes: int, nice: int) -> list[str]:
    """``argv`` behind the wrappers that set its limits and priority, then exec it."""
    wrapped = [
        # The child is killed when the thread that started it dies. The child has a
        # session of its own (so one killpg ends its tree), which also means nothing
        # else reaches it: a worker killed with SIGKILL (the OOM killer, an operator)
        # would otherwise leave its ffmpeg running, orphaned, for the length of the
        # render, next to the new attempt on another worker.
        _wrapper("setpriv", "util-linux"),
        "--pdeathsig",
        "KILL",
        "--",
        _wrapper("prlimit", "util-linux"),
        # The address-space cap bounds what a decoder bug or a hostile header asking
        # for a huge allocation can take from the machine.
        f"--as={memory_bytes}",
        "--core=0",
        "--",
    ]
    if nice:
        wrapped += [_wrapper("nice", "coreutils"), "-n", str(nice), "--"]
    return [*wrapped, *argv]


class _Reader(threading.Thread):
    """Drains one pipe so the child never blocks on a full pipe buffer."""

    def __init__(self, pipe: object, handle: Callable[[bytes], None]) -> None:
        super().__init__(daemon=True)
        self._pipe = pipe
        self._handle = handle
        self.error: BaseException | None = None
        self.received = 0

    def run(self) -> None:
        read = self._pipe.read1  # type: ignore[attr-defined]
        try:
            while chunk := read(65536):
                self.received += len(chunk)
                self._handle(chunk)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self.error = exc


class _ProgressParser:
    """Turns ffmpeg's ``-progress`` key=value stream into a 0..1 fraction."""

    def __init__(self, expected_duration_s: float) -> None:
        self._expected_us = max(expected_duration_s, 1e-3) * 1e6
        self._partial = b""
        self.fraction = 0.0
        self.ended = False

    def feed(self, chunk: bytes) -> None:
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()[-4096:]
        for line in lines:
            key, _, value = line.strip().partition(b"=")
            if key == b"out_time_us" and value.lstrip(b"-").isdigit():
                fraction = min(1.0, max(0.0, int(value) / self._expected_us))
                # ffmpeg reports the furthest output; with several outputs it can
                # momentarily step back, and callers want a monotonic bar.
                self.fraction = max(self.fraction, fraction)
            elif key == b"progress" and value == b"end":
                self.ended = True


class _Observer:
    """Samples the child from /proc and the output directory (Linux).

    Every figure is optional: when /proc cannot be read the supervisor still has the
    pipes and the output directory, and the wall-clock limit.
    """

    def __init__(self, pid: int, watch: Watch) -> None:
        self._pid = pid
        self._watch = watch
        self._input = os.path.realpath(watch.input_path) if watch.input_path else None
        self._input_fd: str | None = None
        self._outputs_at_start = self._output_bytes()
        self.outputs_started = False

    def cpu_ticks(self) -> int:
        try:
            with open(f"/proc/{self._pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return -1
        fields = stat[stat.rindex(b")") + 2 :].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    def _output_bytes(self) -> int:
        if not self._watch.output_dir:
            return 0
        total = 0
        with contextlib.suppress(OSError), os.scandir(self._watch.output_dir) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    total += entry.stat(follow_symlinks=False).st_size
        return total

    def output_bytes(self) -> int:
        total = self._output_bytes()
        if total != self._outputs_at_start:
            self.outputs_started = True
        return total

    def input_position(self) -> int:
        if self._input is None:
            return -1
        if self._input_fd is None:
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{self._pid}/fd"):
                    with contextlib.suppress(OSError):
                        if os.readlink(f"/proc/{self._pid}/fd/{fd}") == self._input:
                            self._input_fd = fd
                            break
            if self._input_fd is None:
                return -1
        try:
            with open(f"/proc/{self._pid}/fdinfo/{self._input_fd}", "rb") as f:
                for line in f:
                    if line.startswith(b"pos:"):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            self._input_fd = None
        return -1

    def input_fraction(self, position: int) -> float:
        span = self._watch.input_end - self._watch.input_start
        if position < 0 or span <= 0 or not self.outputs_started:
            return 0.0
        return min(1.0, max(0.0, (position - self._watch.input_start) / span))


def run_tool(
    argv: list[str],
    *,
    timeout_s: float,
    memory_bytes: int,
    capture_stdout_limit: int = 0,
    expected_duration_s: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    heartbeat: ProgressCallback | None = None,
    heartbeat_interval_s: float = 5.0,
    stall_timeout_s: float | None = None,
    nice: int = 0,
    watch: Watch | None = None,
) -> RunResult:
    """Run ``argv`` (ffmpeg or ffprobe) and wait for it, supervising it from this thread.

    ``capture_stdout_limit`` > 0 keeps stdout (ffprobe's JSON) up to that many bytes and
    kills the child if it writes more. With ``expected_duration_s`` stdout is instead
    parsed as ffmpeg's ``-progress`` output; the progress figure is the furthest of
    that and of the input read offset (``watch``). ``progress`` is called with it,
    non-decreasing, whenever it grows, and with 1.0 once the run succeeded.

    ``heartbeat`` is called every ``heartbeat_interval_s`` with the current progress
    figure, as long as the child did something (used CPU, read its input, wrote an
    output or to a pipe) since the previous call, whether or not ffmpeg printed any
    progress. Both callbacks run in this thread; an exception from either kills the
    child and propagates.

    Raises :class:`TimedOut`, :class:`Stalled` (nothing done for ``stall_timeout_s``)
    or :class:`Cancelled` after killing the process group; a non-zero exit is
    returned, not raised, so the caller can word the error.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    log_tail = bytearray()
    captured = bytearray()
    overflow = threading.Event()
    parser = _ProgressParser(expected_duration_s) if expected_duration_s is not None else None

    def keep_log(chunk: bytes) -> None:
        log_tail.extend(chunk)
        if len(log_tail) > LOG_TAIL_BYTES:
            del log_tail[: len(log_tail) - LOG_TAIL_BYTES]

    def keep_stdout(chunk: bytes) -> None:
        if parser is not None:
            parser.feed(chunk)
        elif len(captured) + len(chunk) > capture_stdout_limit:
            overflow.set()
        else:
            captured.extend(chunk)

    # The argv is a list (no shell) whose user-derived parts are only "file:" +
    # an absolute path checked by the caller, so nothing in it is interpreted.
    proc = subprocess.Popen(  # noqa: S603
        limited_argv(argv, memory_bytes, nice),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        close_fds=True,
        env={"PATH": _CHILD_PATH, "LC_ALL": "C"},
        start_new_session=True,
    )
    readers = [_Reader(proc.stdout, keep_stdout), _Reader(proc.stderr, keep_log)]
    for reader in readers:
        reader.start()
    observer = _Observer(proc.pid, watch or Watch())

    reported = -1.0
    fraction = 0.0
    last_signs: tuple[int, ...] = ()
    last_activity = last_sample = last_beat = started
    active_since_beat = False
    failure: BaseException | None = None
    try:
        while True:
            try:
                proc.wait(timeout=_POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now - last_sample >= _SAMPLE_S:
                last_sample = now
                position = observer.input_position()
                signs = (
                    observer.cpu_ticks(),
                    position,
                    observer.output_bytes(),
                    *(reader.received for reader in readers),
                )
                if signs != last_signs:
                    last_signs, last_activity, active_since_beat = signs, now, True
                fraction = max(fraction, observer.input_fraction(position))
            if parser is not None:
                fraction = max(fraction, parser.fraction)
            if cancel is not None and cancel.is_set():
                failure = Cancelled("processing was cancelled", command=argv)
            elif now > deadline:
                failure = TimedOut(
                    f"processing took longer than the {timeout_s:g} s limit", command=argv
                )
            elif stall_timeout_s is not None and now - last_activity > stall_timeout_s:
                failure = Stalled(
                    f"ffmpeg stalled: no progress, CPU time or output for {stall_timeout_s:g} s",
                    command=argv,
                )
            elif overflow.is_set():
                failure = PipelineError("ffprobe wrote more output than allowed", command=argv)
            if failure is not None:
                raise failure
            current = min(fraction, _UNFINISHED)
            if progress is not None and expected_duration_s is not None and current > reported:
                # The final 1.0 is only reported once the exit status says success.
                reported = current
                progress(current)
            if heartbeat is not None and now - last_beat >= heartbeat_interval_s:
                last_beat = now
                if active_since_beat:
                    active_since_beat = False
                    heartbeat(current)
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()

    log = log_tail.decode("utf-8", "replace")
    if overflow.is_set():
        raise PipelineError("ffprobe wrote more output than allowed", command=argv, log=log)
    if proc.returncode == 0 and progress is not None and expected_duration_s is not None:
        progress(1.0)
    return RunResult(
        returncode=proc.returncode,
        stdout=bytes(captured),
        log=log,
        elapsed_s=time.monotonic() - started,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole process group and reap the child.

    The group id is the child's pid (``start_new_session``). It cannot have been reused
    yet because the child is not reaped until after the kill.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
