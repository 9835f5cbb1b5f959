"""Recovery and scaling of the README's scale-out, on the topology the tests start
(tests/scaleout/topology.py: PostgreSQL, Redis, moto S3, two gunicorn web machines,
two Celery workers, beat), with the default job settings.

    python bench/scaleout_bench.py [--quick]

* ``worker_loss_recovery_s``: from SIGKILL of the worker running a render to that
  render running again on the other worker.
* ``stall_detection_s``: from SIGSTOP of a render's ffmpeg to its process group killed
  and the job queued again.
* ``transcode_scaling_2_workers``: clips per minute (upload to rendered) with two
  workers divided by one; each worker held to one core (``taskset``) and each x264
  encoder to one thread (``TATTLETALE_TRANSCODE_THREADS=1``). The one-worker and the
  two-worker batches alternate, so load from elsewhere on the machine falls on both.
  A batch is 6 clips (8 with the full run): each clip's chain (upload, ingest,
  proxy, render, each job picked up from the broker) has seconds of latency that no
  number of workers shortens, and a batch of 2 measured mostly that (1.29 to 1.52
  here, where 6 gave 1.78). A worker started again is used once it says it is ready
  in this start's log (the harness once found the previous start's line, and the
  two-worker batch began on one).

Figures go to stdout as ``name: figure``; what was measured along the way to stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from targets import target_met, verdict  # noqa: E402

from tests.scaleout.client import Api, make_clip  # noqa: E402
from tests.scaleout.test_worker_faults import render_job, wait_rendering  # noqa: E402
from tests.scaleout.topology import Topology, wait_for  # noqa: E402

TARGETS = {
    "worker_loss_recovery_s": ("<=", 120.0),
    "stall_detection_s": ("<=", 180.0),
    "transcode_scaling_2_workers": (">=", 1.7),
}


def log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def bench_recovery(work: Path) -> dict[str, float]:
    topology = Topology(work / "recovery")
    try:
        topology.start()
        api = Api(topology, "officer")
        clip = make_clip(work / "recovery.mp4", seconds=30, size="640x360")
        case_id = api.create_case("BENCH-KILL")

        clip_id = api.add_clip(case_id, clip)
        worker, _ = wait_rendering(topology, clip_id)
        before = render_job(topology, clip_id)
        assert before is not None
        topology[worker].kill()
        killed = time.monotonic()

        def elsewhere() -> bool:
            job = render_job(topology, clip_id)
            return job is not None and job[1] == "running" and job[3] != before[3]

        wait_for(elsewhere, timeout_s=1200, what="the render running again", interval_s=0.25)
        recovery = time.monotonic() - killed
        log(f"render of {clip_id} running again {recovery:.1f} s after SIGKILL of {worker}")
        topology[worker].start()
        api.wait_ready(clip_id, timeout_s=900)

        clip_id = api.add_clip(case_id, clip)
        worker, ffmpeg = wait_rendering(topology, clip_id)
        os.kill(ffmpeg, signal.SIGSTOP)
        stopped = time.monotonic()

        def requeued() -> bool:
            gone = not Path(f"/proc/{ffmpeg}/cmdline").exists() or _zombie(ffmpeg)
            job = render_job(topology, clip_id)
            return gone and job is not None and (job[1] == "queued" or job[2] >= 2)

        wait_for(requeued, timeout_s=1200, what="the stopped ffmpeg killed", interval_s=0.25)
        stall = time.monotonic() - stopped
        log(f"stopped ffmpeg {ffmpeg} killed and the render queued again after {stall:.1f} s")
        api.wait_ready(clip_id, timeout_s=900)
    finally:
        topology.stop()
    return {"worker_loss_recovery_s": recovery, "stall_detection_s": stall}


def _batch(topology: Topology, api: Api, clip: Path, count: int, tag: str) -> float:
    """Clips per minute: ``count`` uploads at once, until every one is rendered."""
    case_id = api.create_case(f"BENCH-{tag}")
    started = time.monotonic()
    clip_ids = [api.add_clip(case_id, clip) for _ in range(count)]
    for clip_id in clip_ids:
        # Polled often: the batch is timed to its last clip ready, not to the poll.
        api.wait_ready(clip_id, timeout_s=1800, interval_s=0.2)
    return count / ((time.monotonic() - started) / 60)


def bench_scaling(work: Path, count: int, rounds: int) -> dict[str, float]:
    # Worker N on core N-1; ffmpeg inherits the affinity.
    topology = Topology(
        work / "scaling",
        extra_env={"TATTLETALE_TRANSCODE_THREADS": "1"},
        worker_affinity=True,
    )
    one, two = [], []
    try:
        topology.start()
        api = Api(topology, "officer")
        clip = make_clip(work / "scaling.mp4", seconds=8, size="640x360")
        for index in range(rounds):
            topology["worker2"].stop()
            one.append(_batch(topology, api, clip, count, f"ONE-{index}"))
            topology["worker2"].start()
            two.append(_batch(topology, api, clip, count, f"TWO-{index}"))
            log(f"round {index + 1}: {one[-1]:.2f} clips/min on one worker, {two[-1]:.2f} on two")
    finally:
        topology.stop()
    return {
        "transcode_clips_per_min_1_worker": statistics.median(one),
        "transcode_clips_per_min_2_workers": statistics.median(two),
        "transcode_scaling_2_workers": statistics.median(two) / statistics.median(one),
    }


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer clips and one round")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scaleout-bench-"))
    log(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    figures: dict[str, float] = {}
    try:
        figures.update(bench_recovery(work))
        figures.update(
            bench_scaling(work, count=6 if args.quick else 8, rounds=1 if args.quick else 2)
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"load average at the end: {os.getloadavg()[0]:.1f}")
    for name, value in figures.items():
        print(f"{name}: {value:.3f}")
    for name in TARGETS:
        print(verdict(TARGETS, name, figures[name]))
    return 0 if all(target_met(TARGETS, name, figures[name]) for name in TARGETS) else 1


if __name__ == "__main__":
    sys.exit(main())
