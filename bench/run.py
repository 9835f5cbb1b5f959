"""Run every benchmark: ``make bench`` (``make bench BENCH_ARGS=--quick`` for a smoke run).

Each benchmark prints ``name: figure`` lines and one ``target NAME OP VALUE: met`` (or
``NOT MET``) line per target. This runs them all, whatever the first ones give, then
names every missed target and every benchmark that failed to run, and exits 1 if there
is any.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["media_pipeline_bench.py", "upload_bench.py", "scaleout_bench.py"]
TARGET_LINE = re.compile(
    r"^target (?P<name>\S+) (?P<op>\S+) (?P<value>\S+): (?P<verdict>met|NOT MET)$"
)


def run_benchmark(script: Path, args: list[str]) -> tuple[int, list[str], int]:
    """Run one benchmark, passing its output through. Returns its exit status, the
    targets it missed, and how many targets it reported."""
    missed: list[str] = []
    reported = 0
    with subprocess.Popen(
        [sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            if match := TARGET_LINE.match(line.rstrip("\n")):
                reported += 1
                if match["verdict"] != "met":
                    missed.append(f"{match['name']} {match['op']} {match['value']}")
    return process.returncode, missed, reported


def main(args: list[str], scripts: list[Path] | None = None) -> int:
    problems: list[str] = []
    for script in scripts or [HERE / name for name in BENCHMARKS]:
        name = script.name
        print(f"# {name}", flush=True)
        status, missed, reported = run_benchmark(script, args)
        problems += [f"{name}: target missed: {target}" for target in missed]
        if status != 0 and not missed:
            problems.append(f"{name}: exited with status {status} without a missed target")
        elif status == 0 and missed:
            problems.append(f"{name}: missed targets but exited 0")
        elif reported == 0:
            problems.append(f"{name}: reported no targets")
    if problems:
        print("# benchmarks FAILED:", flush=True)
        for problem in problems:
            print(f"#   {problem}", flush=True)
        return 1
    print("# every benchmark target met", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
