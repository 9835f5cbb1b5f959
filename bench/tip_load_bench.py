"""Tip intake under the load of the rest of the portal (issue 9), against the real
stack (bench/stack.py: gunicorn under config/gunicorn.py, PostgreSQL, Redis), load
from separate processes.

    python bench/tip_load_bench.py [--quick] [--only NAME ...]

- ``tip_flood_staff_p95_ms``: the p95 of the detective's tip queue (``/staff/tips``,
  signed in, from the staff pool as the README's load-balancer rule sends it) while
  tips arrive at 200/s at the pool for every path; ``tip_flood_tips_lost``: tips sent and not
  in the database (refused, failed, or answered and missing), must be 0.
- ``tip_intake_during_transcode``: tip intake while a render runs on this machine
  through the real job path (bench/portal_render.py: the job's claim, supervision,
  ffmpeg at ``TATTLETALE_TRANSCODE_NICE``), over tip intake without it.
- ``tip_intake_during_uploads``: tip intake while five clip uploads (tus PATCH
  streams) arrive at 1 MB/s each, over tip intake without them.

Idle and loaded windows alternate (their order swapped each round); each ratio is of
the medians; each window's load average is printed as ``*_load``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from stack import Stack, kill_tree, median, report

TARGETS = {
    "tip_flood_staff_p95_ms": ("<", 250.0),
    "tip_flood_tips_lost": ("==", 0),
    "tip_intake_during_transcode": (">=", 0.7),
    "tip_intake_during_uploads": (">=", 0.8),
    "tip_intake_tips_lost": ("==", 0),
}
CONCURRENCY = 16
MB = 1024 * 1024


class Bench:
    def __init__(self, stack: Stack, window: float, rounds: int) -> None:
        self.stack = stack
        self.window = window
        self.rounds = rounds
        self.results: dict[str, float] = {}
        self.accepted = 0

    def tips(self, **extra: Any) -> dict[str, Any]:
        cfg: dict[str, Any] = {"concurrency": CONCURRENCY, "duration": self.window, "warmup": 2.0}
        cfg.update(extra)
        out = self.stack.measure("tips", appeal=self.stack.info["viral"], **cfg)
        self.accepted += out["accepted_total"]
        return out

    def alternate(self, first: Any, second: Any) -> tuple[list[dict[str, Any]], ...]:
        a: list[dict[str, Any]] = []
        b: list[dict[str, Any]] = []
        for n in range(self.rounds):
            for which in (0, 1) if n % 2 == 0 else (1, 0):
                (a if which == 0 else b).append((first, second)[which]())
        return a, b

    def ratio(self, name: str, idle: list[dict[str, Any]], loaded: list[dict[str, Any]]) -> None:
        r = self.results
        r[f"{name}_idle_per_s"] = median([x["rate"] for x in idle])
        r[f"{name}_loaded_per_s"] = median([x["rate"] for x in loaded])
        r[name] = r[f"{name}_loaded_per_s"] / r[f"{name}_idle_per_s"]
        r[f"{name}_load"] = max(x["load"] for x in [*idle, *loaded])

    def tip_flood_staff_p95_ms(self) -> None:
        before = int(self.stack.sql("SELECT count(*) FROM tips"))
        flood = self.stack.load(
            "tips",
            appeal=self.stack.info["viral"],
            concurrency=48,
            rate=200,
            warmup=0.0,
        )
        try:
            time.sleep(2.0)
            # To the staff pool, as the load balancer sends it (README, "Scale-out").
            staff = self.stack.measure(
                "get",
                port=self.stack.port_for("/staff/tips"),
                paths=["/staff/tips"],
                staff={
                    "email": self.stack.info["detective"],
                    "password": self.stack.info["password"],
                },
                concurrency=1,
                duration=self.window * self.rounds,
                warmup=1.0,
            )
        finally:
            tips = flood.result()
        in_db = int(self.stack.sql("SELECT count(*) FROM tips")) - before
        refused = sum(n for status, n in tips["statuses"].items() if status != "200")
        r = self.results
        r["tip_flood_staff_p95_ms"] = staff["p95_ms"]
        r["tip_flood_staff_p50_ms"] = staff["p50_ms"]
        # Queue pages answered with anything but 200 (or not at all) in the window.
        r["tip_flood_staff_failures"] = sum(
            n for status, n in staff["statuses"].items() if status != "200"
        )
        r["tip_flood_tips_per_s"] = tips["rate"]
        r["tip_flood_tips_accepted"] = tips["accepted_total"]
        r["tip_flood_tips_lost"] = refused + tips["accepted_total"] - in_db
        r["tip_flood_staff_p95_ms_load"] = max(staff["load"], tips["load"])

    def tip_intake_during_transcode(self) -> None:
        def rendering() -> dict[str, Any]:
            job = self.stack.python("portal_render.py", self.stack.info["clip"])
            try:
                assert job.stdout is not None
                if job.stdout.readline().strip() != "rendering":
                    raise RuntimeError("the render job did not start")
                time.sleep(3.0)  # ffmpeg started and encoding
                out = self.tips()
                if job.poll() is not None:
                    raise RuntimeError("the render ended before the window did: longer clip")
                return out
            finally:
                kill_tree(job)

        idle, loaded = self.alternate(self.tips, rendering)
        self.ratio("tip_intake_during_transcode", idle, loaded)

    def tip_intake_during_uploads(self) -> None:
        def uploading() -> dict[str, Any]:
            uploads = self.stack.load(
                "uploads",
                token=self.stack.info["token"],
                concurrency=5,
                pace=1 * MB,
                length=int((self.window + 30) * MB),
            )
            try:
                time.sleep(2.0)
                out = self.tips()
            finally:
                sent = uploads.result()
            # What each upload got (64 KiB blocks, five uploads): 1 MB/s when nothing holds them.
            out["upload_mb_per_s"] = sent["ok"] * 64 * 1024 / MB / sent["seconds"] / 5
            return out

        idle, loaded = self.alternate(self.tips, uploading)
        self.ratio("tip_intake_during_uploads", idle, loaded)
        self.results["upload_mb_per_s_each_during"] = median([x["upload_mb_per_s"] for x in loaded])


BENCHMARKS = ["tip_flood_staff_p95_ms", "tip_intake_during_transcode", "tip_intake_during_uploads"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short windows, for a smoke run")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, default=BENCHMARKS)
    args = parser.parse_args()
    window, rounds = (5.0, 2) if args.quick else (15.0, 3)
    clip_seconds = 30 if "tip_intake_during_transcode" in args.only else 0
    with Stack(appeals=500, clip_seconds=clip_seconds) as stack:
        bench = Bench(stack, window, rounds)
        before = int(stack.sql("SELECT count(*) FROM tips"))
        flood_before = 0
        for name in args.only:
            if name == "tip_flood_staff_p95_ms":
                flood_before = int(stack.sql("SELECT count(*) FROM tips"))
            getattr(bench, name)()
            if name == "tip_flood_staff_p95_ms":
                before += int(stack.sql("SELECT count(*) FROM tips")) - flood_before
        in_db = int(stack.sql("SELECT count(*) FROM tips")) - before
        bench.results["tip_intake_tips_lost"] = bench.accepted - in_db
        return report(bench.results, {n: t for n, t in TARGETS.items() if n in bench.results})


if __name__ == "__main__":
    sys.exit(main())
