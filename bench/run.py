"""Run every benchmark: ``make bench`` (``make bench BENCH_ARGS=--quick`` for a smoke run).

Each benchmark prints ``name: figure`` lines and its targets; this exits non-zero if
any benchmark failed to run or missed a target.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["media_pipeline_bench.py", "upload_bench.py"]


def main() -> int:
    status = 0
    for name in BENCHMARKS:
        print(f"# {name}", flush=True)
        result = subprocess.run([sys.executable, str(HERE / name), *sys.argv[1:]], check=False)
        status = status or result.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
