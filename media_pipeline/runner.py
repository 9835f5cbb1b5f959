"""Run ffmpeg and ffprobe as hardened, bounded, killable children.

Each child gets: an empty environment but ``PATH`` (threat: ``LD_PRELOAD``-style or
proxy variables leaking into a parser of hostile data), no stdin, no inherited file
descriptors, an address-space limit, no core dumps, and its own session so that a
timeout or a cancel kills the whole process tree with one ``killpg``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import Cancelled, PipelineError, TimedOut

ProgressCallback = Callable[[float], None]

#: Bytes of the child's stderr kept for error messages and the job log. The rest is
#: dropped as it arrives, so a child that floods its log cannot grow our memory.
LOG_TAIL_BYTES = 64 * 1024
_POLL_S = 0.1
_CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stdout: bytes
    log: str
    elapsed_s: float


def find_tool(name: str) -> str:
    """Absolute path of ``ffmpeg`` or ``ffprobe``, from ``TATTLETALE_<NAME>`` or PATH."""
    configured = os.environ.get(f"TATTLETALE_{name.upper()}")
    found = configured or shutil.which(name)
    if not found:
        raise PipelineError(f"{name} is not installed or not on PATH")
    return os.path.abspath(found)


def _child_setup(memory_bytes: int) -> Callable[[], None]:
    def limit_child() -> None:
        # Runs in the forked child before exec: two syscalls, no locks taken. The
        # address-space cap bounds what a decoder bug or a hostile header that asks
        # for a huge allocation can take from the machine.
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return limit_child


class _Reader(threading.Thread):
    """Drains one pipe so the child never blocks on a full pipe buffer."""

    def __init__(self, pipe: object, handle: Callable[[bytes], None]) -> None:
        super().__init__(daemon=True)
        self._pipe = pipe
        self._handle = handle
        self.error: BaseException | None = None

    def run(self) -> None:
        read = self._pipe.read1  # type: ignore[attr-defined]
        try:
            while chunk := read(65536):
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


def run_tool(
    argv: list[str],
    *,
    timeout_s: float,
    memory_bytes: int,
    capture_stdout_limit: int = 0,
    expected_duration_s: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> RunResult:
    """Run ``argv`` (ffmpeg or ffprobe) and wait for it.

    ``capture_stdout_limit`` > 0 keeps stdout (ffprobe's JSON) up to that many bytes and
    kills the child if it writes more. With ``expected_duration_s`` stdout is instead
    parsed as ffmpeg's ``-progress`` output and ``progress`` is called, from this
    thread, with a non-decreasing fraction, and with 1.0 once the run succeeded.

    Raises :class:`TimedOut` or :class:`Cancelled` after killing the process group;
    a non-zero exit is returned, not raised, so the caller can word the error.
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
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        close_fds=True,
        env={"PATH": _CHILD_PATH, "LC_ALL": "C"},
        start_new_session=True,
        preexec_fn=_child_setup(memory_bytes),
    )
    readers = [_Reader(proc.stdout, keep_stdout), _Reader(proc.stderr, keep_log)]
    for reader in readers:
        reader.start()

    reported = -1.0
    failure: BaseException | None = None
    try:
        while True:
            try:
                proc.wait(timeout=_POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            if cancel is not None and cancel.is_set():
                failure = Cancelled("processing was cancelled", command=argv)
            elif time.monotonic() > deadline:
                failure = TimedOut(
                    f"processing took longer than the {timeout_s:g} s limit", command=argv
                )
            elif overflow.is_set():
                failure = PipelineError("ffprobe wrote more output than allowed", command=argv)
            if failure is not None:
                raise failure
            if parser is not None and progress is not None and parser.fraction > reported:
                # The final 1.0 is only reported once the exit status says success.
                reported = min(parser.fraction, 0.999)
                progress(reported)
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
    if proc.returncode == 0 and progress is not None and parser is not None:
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
