"""Benchmarks of the public site (issue 10), against the real stack (bench/stack.py:
gunicorn under config/gunicorn.py, PostgreSQL, Redis), load from separate processes.

    python bench/public_bench.py [--quick] [--only NAME ...]

- ``tip_intake_vs_bare_insert``: tips/s the real tip form accepts (CSRF, text
  validation, rate limits counted in Redis, the receipt) over a bare endpoint of the
  same server inserting one row; and ``tip_intake_p99_ratio``, their p99 latencies.
  Every accepted tip must be in the database afterwards (``tip_intake_tips_lost``).
- ``appeal_page_vs_bare_page``: requests/s of appeal pages (500 published appeals,
  each request another one) over a bare endpoint rendering a constant page; and the
  p95 of one visitor's requests of an appeal page and of the index.
- ``tip_intake_during_viral_video``: tip intake while 200 viewers stream the appeal's
  720p rendition with Range requests, over tip intake without them.

Baseline and real windows alternate (their order swapped each round); each ratio is
of the medians. Each window's load average is printed as ``*_load``. The proof of
work on the tip form (when the product has one) is turned off by its setting.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stack import Stack, median, report

TARGETS = {
    "tip_intake_vs_bare_insert": (">=", 0.7),
    "tip_intake_p99_ratio": ("<=", 2.0),
    "tip_intake_tips_lost": ("==", 0),
    "appeal_page_vs_bare_page": (">=", 0.5),
    "appeal_page_p95_ms": ("<", 50.0),
    "appeals_index_p95_ms": ("<", 50.0),
    "tip_intake_during_viral_video": (">=", 0.8),
}
CONCURRENCY = 16


class Bench:
    def __init__(self, stack: Stack, window: float, rounds: int) -> None:
        self.stack = stack
        self.window = window
        self.rounds = rounds
        self.results: dict[str, float] = {}
        self.accepted = 0  # tips the server answered with a receipt, warm-ups included

    def tips(self, **extra: Any) -> dict[str, Any]:
        out = self.stack.measure(
            "tips",
            appeal=self.stack.info["viral"],
            concurrency=CONCURRENCY,
            duration=self.window,
            warmup=2.0,
            **extra,
        )
        self.accepted += out["accepted_total"]
        return out

    def alternate(self, first: Any, second: Any) -> tuple[list[dict[str, Any]], ...]:
        a: list[dict[str, Any]] = []
        b: list[dict[str, Any]] = []
        for n in range(self.rounds):
            for which in (0, 1) if n % 2 == 0 else (1, 0):
                (a if which == 0 else b).append((first, second)[which]())
        return a, b

    def note_load(self, name: str, *runs: list[dict[str, Any]]) -> None:
        loads = [run["load"] for group in runs for run in group]
        self.results[f"{name}_load"] = max(loads)

    def tip_intake_vs_bare_insert(self) -> None:
        def bare() -> dict[str, Any]:
            return self.stack.measure(
                "bare_insert", concurrency=CONCURRENCY, duration=self.window, warmup=2.0
            )

        tips, bares = self.alternate(self.tips, bare)
        r = self.results
        r["tip_intake_tips_per_s"] = median([t["rate"] for t in tips])
        r["tip_intake_bare_insert_per_s"] = median([b["rate"] for b in bares])
        r["tip_intake_vs_bare_insert"] = (
            r["tip_intake_tips_per_s"] / r["tip_intake_bare_insert_per_s"]
        )
        r["tip_intake_p99_ms"] = median([t["p99_ms"] for t in tips])
        r["tip_intake_bare_insert_p99_ms"] = median([b["p99_ms"] for b in bares])
        r["tip_intake_p99_ratio"] = r["tip_intake_p99_ms"] / r["tip_intake_bare_insert_p99_ms"]
        self.note_load("tip_intake_vs_bare_insert", tips, bares)

    def appeal_page_vs_bare_page(self) -> None:
        appeals = [f"/appeals/{public_id}" for public_id in self.stack.info["appeals"]]

        def pages(paths: list[str], concurrency: int = 8) -> Any:
            return lambda: self.stack.measure(
                "get", paths=paths, concurrency=concurrency, duration=self.window, warmup=1.0
            )

        real, bare = self.alternate(pages(appeals), pages(["/bench/bare-page"]))
        r = self.results
        r["appeal_page_per_s"] = median([x["rate"] for x in real])
        r["bare_page_per_s"] = median([x["rate"] for x in bare])
        r["appeal_page_vs_bare_page"] = r["appeal_page_per_s"] / r["bare_page_per_s"]
        # Latency as one visitor sees it: one client, no queue of our own making.
        one, index = self.alternate(pages(appeals, 1), pages(["/"], 1))
        r["appeal_page_p95_ms"] = median([x["p95_ms"] for x in one])
        r["appeals_index_p95_ms"] = median([x["p95_ms"] for x in index])
        self.note_load("appeal_page_vs_bare_page", real, bare, one, index)

    def tip_intake_during_viral_video(self) -> None:
        info = self.stack.info

        def viewers() -> dict[str, Any]:
            stream = self.stack.load(
                "stream",
                path=info["viral_media"],
                size=info["viral_media_size"],
                concurrency=200,
                # A player's fetch: about 3 s of this video per request (hls.js and
                # Shaka fetch segments of 2-6 s), its first 4 s at once.
                chunk=1024 * 1024,
                burst=1024 * 1024,
                # 2.5 Mbit/s video + audio, fetched 1.5 times as fast as it plays.
                pace=int(1.5 * info["viral_media_size"] / 60),
            )
            try:
                out = self.tips()
            finally:
                streamed = stream.result()
            out["stream"] = streamed
            return out

        idle, viral = self.alternate(self.tips, viewers)
        r = self.results
        r["tip_intake_idle_per_s"] = median([x["rate"] for x in idle])
        r["tip_intake_viral_per_s"] = median([x["rate"] for x in viral])
        r["tip_intake_during_viral_video"] = (
            r["tip_intake_viral_per_s"] / r["tip_intake_idle_per_s"]
        )
        r["viral_video_range_requests_per_s"] = median([x["stream"]["rate"] for x in viral])
        r["viral_video_range_p95_ms"] = median([x["stream"]["p95_ms"] for x in viral])
        r["viral_video_range_failures"] = sum(
            sum(n for status, n in x["stream"]["statuses"].items() if status != "206")
            for x in viral
        )
        self.note_load("tip_intake_during_viral_video", idle, viral)

    def count_check(self, before: int) -> None:
        in_db = int(self.stack.sql("SELECT count(*) FROM tips")) - before
        self.results["tip_intake_tips_accepted"] = self.accepted
        self.results["tip_intake_tips_lost"] = self.accepted - in_db


BENCHMARKS = [
    "tip_intake_vs_bare_insert",
    "appeal_page_vs_bare_page",
    "tip_intake_during_viral_video",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short windows, for a smoke run")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, default=BENCHMARKS)
    args = parser.parse_args()
    window, rounds = (5.0, 2) if args.quick else (15.0, 3)
    with Stack(appeals=500) as stack:
        bench = Bench(stack, window, rounds)
        before = int(stack.sql("SELECT count(*) FROM tips"))
        for name in args.only:
            getattr(bench, name)()
        bench.count_check(before)
        wanted = {name: target for name, target in TARGETS.items() if name in bench.results}
        return report(bench.results, wanted)


if __name__ == "__main__":
    sys.exit(main())
