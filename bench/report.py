"""Write docs/benchmarks.md: ``make bench-report`` (``BENCH_ARGS=--quick`` for the
short run). Runs every benchmark through bench/run.py and writes each figure and
target, the machine (CPU model, cores, memory, OS, Python, ffmpeg, PostgreSQL), the
command and the date. Exits as bench/run.py does.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import run

FIGURE = re.compile(r"^(?P<name>[a-z0-9_]+): (?P<value>\S+)$")


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        return f"unavailable ({exc})"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if done.stdout or done.stderr else ""
    )


def machine() -> list[tuple[str, str]]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"^MemTotal:\s+(\d+)", meminfo, re.M).group(1))  # type: ignore[union-attr]
    os_release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    pretty = re.search(r'^PRETTY_NAME="?([^"\n]+)"?$', os_release, re.M)
    try:
        with psycopg.connect(run_pg_url()) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            postgres = f"PostgreSQL {row[0]}" if row else "unknown"
    except psycopg.Error as exc:
        postgres = f"unavailable ({exc})"
    return [
        ("CPU", model.group(1) if model else platform.processor()),
        ("cores", str(os.cpu_count())),
        ("memory", f"{total_kb / 1024 / 1024:.1f} GiB"),
        ("OS", f"{pretty.group(1) if pretty else platform.system()} ({platform.release()})"),
        ("Python", platform.python_version()),
        ("ffmpeg", _first_line(["ffmpeg", "-version"])),
        ("PostgreSQL", postgres),
        ("Redis", _first_line(["redis-server", "--version"])),
        ("load average at the start", Path("/proc/loadavg").read_text().split()[0]),
    ]


def run_pg_url() -> str:
    from stack import PG_ADMIN

    return PG_ADMIN


def render(
    outputs: dict[str, list[str]],
    status: int | None,
    *,
    args: list[str],
    started: datetime,
    seconds: float,
    facts: list[tuple[str, str]],
) -> str:
    quick = "--quick" in args
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench-report"
        + (" BENCH_ARGS=--quick" if quick else "")
        + "` (bench/report.py); do not edit by hand.",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC, {seconds / 60:.1f} minutes",
        f"- command: `{shlex.join(['python', 'bench/run.py', *args])}`",
        "- run: "
        + (
            "**quick** (`--quick`: short windows and small files; figures are noisier "
            "than a full run's)"
            if quick
            else "full"
        ),
        "- outcome: "
        + (
            "**unfinished**: the run was interrupted after the benchmarks below"
            if status is None
            else "every target met"
            if status == 0
            else "**targets missed** (see below)"
        ),
        "",
        "The machine is shared (other people's tests and transcodes run on it at the same "
        "time), so every target is a ratio against a baseline measured in the same run, "
        "interleaved, or a latency; the `*_load` figures are the highest 1-minute load "
        "average seen during that benchmark's windows.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in facts],
        "",
    ]
    for script, output in outputs.items():
        if script == "problems":
            continue
        figures = [m for line in output if (m := FIGURE.match(line))]
        targets = [m for line in output if (m := run.TARGET_LINE.match(line))]
        lines += [f"## {script}", ""]
        if targets:
            lines += ["| target | verdict | measured |", "|---|---|---|"]
            values = {m["name"]: m["value"] for m in figures}
            for m in targets:
                verdict = "met" if m["verdict"] == "met" else "**missed**"
                lines.append(
                    f"| `{m['name']} {m['op']} {m['value']}` | {verdict} | "
                    f"{values.get(m['name'], '?')} |"
                )
            lines.append("")
        if figures:
            lines += ["| figure | value |", "|---|---|"]
            lines += [f"| `{m['name']}` | {m['value']} |" for m in figures]
            lines.append("")
        if not figures and not targets:
            lines += ["No figures: the benchmark failed to run.", ""]
    if outputs.get("problems"):
        lines += ["## Problems", "", *[f"- {p}" for p in outputs["problems"]], ""]
    return "\n".join(lines)


def write_report(target: Path, args: list[str]) -> int:
    started = datetime.now(UTC)
    facts = machine()
    clock = time.monotonic()
    outputs: dict[str, list[str]] = {}

    def write(status: int | None) -> None:
        text = render(
            outputs,
            status,
            args=args,
            started=started,
            seconds=time.monotonic() - clock,
            facts=facts,
        )
        target.write_text(text + "\n")

    # Written after each benchmark too, so an interrupted run still leaves what it
    # measured (marked unfinished).
    status = run.main(args, outputs=outputs, after_each=lambda: write(None))
    write(status)
    print(f"# wrote {target}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(write_report(Path(sys.argv[1]), sys.argv[2:]))
