"""Run every benchmark: ``make bench`` (``make bench BENCH_ARGS=--quick`` for a smoke run).

Each benchmark prints ``name: figure`` lines and one ``target NAME OP VALUE: met`` (or
``NOT MET``) line per target. This runs them all, whatever the first ones give, then
names every missed target and every benchmark that failed to run, and exits 1 if there
is any. A new benchmark is one more line in ``BENCHMARKS`` (a script taking
``--quick``). ``--report FILE`` also writes what was measured as Markdown
(bench/report.py; ``make bench-report``).

Each benchmark's duration is printed after it (``bench_seconds``), and the whole run's
is a target of its own (``bench_run_minutes``: under 45 minutes, under 10 with
``--quick``; issue 9).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from targets import target_met, verdict  # noqa: E402

RUN_MINUTES = {"full": 45.0, "quick": 10.0}
BENCHMARKS = [
    "public_bench.py",  # issue 10: tip intake, appeal pages, a viral video
    "tip_load_bench.py",  # issue 9: tips during staff reads, transcodes, uploads
    "media_pipeline_bench.py",
    "upload_bench.py",
    "scaleout_bench.py",  # issue 9: worker loss, stalls, two workers
    "queue_bench.py",  # issue 11: the tip queue at a million tips
    "queue_page_bench.py",  # issue 9: one request of the queue page, its queries
    "outcomes_bench.py",  # issue 11: the outcomes page
    "redaction_bench.py",  # issue 14: moving redaction regions
]
TARGET_LINE = re.compile(
    r"^target (?P<name>\S+) (?P<op>\S+) (?P<value>\S+): (?P<verdict>met|NOT MET|MISSED)$"
)


def run_benchmark(
    script: Path, args: list[str], lines: list[str] | None = None
) -> tuple[int, list[str], int]:
    """Run one benchmark, passing its output through (and into ``lines``). Returns its
    exit status, the targets it missed, and how many targets it reported."""
    missed: list[str] = []
    reported = 0
    with subprocess.Popen(
        [sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            if lines is not None:
                lines.append(line.rstrip("\n"))
            if match := TARGET_LINE.match(line.rstrip("\n")):
                reported += 1
                if match["verdict"] != "met":
                    missed.append(f"{match['name']} {match['op']} {match['value']}")
    return process.returncode, missed, reported


def main(
    args: list[str],
    scripts: list[Path] | None = None,
    outputs: dict[str, list[str]] | None = None,
    after_each: Callable[[], None] | None = None,
) -> int:
    """``outputs``, when given, receives each benchmark's lines by script name;
    ``after_each`` is called when each benchmark has finished."""
    problems: list[str] = []
    clock = time.monotonic()
    for script in scripts or [HERE / name for name in BENCHMARKS]:
        name = script.name
        print(f"# {name}", flush=True)
        lines: list[str] = []
        if outputs is not None:
            outputs[name] = lines
        started = time.monotonic()
        status, missed, reported = run_benchmark(script, args, lines)
        lines.append(f"bench_seconds: {time.monotonic() - started:.1f}")
        print(lines[-1], flush=True)
        problems += [f"{name}: target missed: {target}" for target in missed]
        if status != 0 and not missed:
            problems.append(f"{name}: exited with status {status} without a missed target")
        elif status == 0 and missed:
            problems.append(f"{name}: missed targets but exited 0")
        elif reported == 0:
            problems.append(f"{name}: reported no targets")
        if outputs is not None:
            outputs["problems"] = problems
        if after_each is not None:
            after_each()
    whole = {"bench_run_minutes": ("<", RUN_MINUTES["quick" if "--quick" in args else "full"])}
    minutes = (time.monotonic() - clock) / 60
    summary = [f"bench_run_minutes: {minutes:.3f}", verdict(whole, "bench_run_minutes", minutes)]
    print("# run.py", *summary, sep="\n", flush=True)
    if outputs is not None:
        outputs["run.py"] = summary
    if not target_met(whole, "bench_run_minutes", minutes):
        bound = whole["bench_run_minutes"][1]
        problems.append(f"run.py: target missed: bench_run_minutes < {bound:g}")
        if outputs is not None:
            outputs["problems"] = problems
    if problems:
        print("# benchmarks FAILED:", flush=True)
        for problem in problems:
            print(f"#   {problem}", flush=True)
        return 1
    print("# every benchmark target met", flush=True)
    return 0


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if "--report" in arguments:
        from report import write_report

        at = arguments.index("--report")
        target = Path(arguments[at + 1])
        del arguments[at : at + 2]
        sys.exit(write_report(target, arguments))
    sys.exit(main(arguments))
