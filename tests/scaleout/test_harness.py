"""The topology's own harness: a service started again is ready when this start says
so. The log is appended to across restarts, and a check that read the whole file
found the previous start's " ready." line: a restarted worker counted as ready at
once, and work meant for two workers began on one."""

from __future__ import annotations

import time
from pathlib import Path

from tests.scaleout.topology import Service

# Says it is ready after a second; a second start says so after another second.
SCRIPT = 'sleep 1; echo "worker@host ready."; exec sleep 60'


def test_a_restarted_service_is_ready_only_when_it_says_so_again(tmp_path: Path) -> None:
    service = Service(
        "slow",
        ["sh", "-c", SCRIPT],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "slow.log",
        ready=lambda s: " ready." in s.log_since_start(),
        ready_timeout_s=30,
    )
    try:
        service.start()
        assert " ready." in service.log_text()
        service.stop(timeout_s=5)

        started = time.monotonic()
        service.start()
        waited = time.monotonic() - started
        assert waited >= 0.9, f"taken as ready after {waited:.2f} s, before it said so"
        assert service.log_text().count(" ready.") == 2
        assert service.log_since_start().count(" ready.") == 1
    finally:
        service.stop(timeout_s=5)


def test_a_service_is_not_ready_while_its_log_holds_only_an_earlier_start(
    tmp_path: Path,
) -> None:
    log = tmp_path / "quiet.log"
    log.write_text("worker@host ready.\n")  # a previous run's line
    service = Service(
        "quiet",
        ["sh", "-c", "exec sleep 60"],
        {"PATH": "/usr/bin:/bin"},
        log,
        ready=lambda s: " ready." in s.log_since_start(),
    )
    try:
        service.start(wait=False)
        assert service.log_since_start() == ""
        assert not service.ready(service)  # type: ignore[misc]
    finally:
        service.stop(timeout_s=5)
