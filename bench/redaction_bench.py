"""Benchmark of moving redaction regions (issue 14); prints ``name: figure`` lines, then
targets and verdicts. Exits 1 when a target is missed.

    python bench/redaction_bench.py [--quick] [--runs N] [--only tracks|faces]

``tracked_render_vs_still_render``: the wall time of rendering every default profile
of a version with 5 moving tracks (a keyframe a second, each box moving across the
frame and resizing) divided by the same version with the same 5 boxes held still.
Runs are interleaved and the figure is the ratio of medians of ``--runs`` (at least
3). The source is made here: 1080p30 H.264/AAC with noise, 60 s (10 s with --quick).
The renditions use x264 ``superfast``, as bench/media_pipeline_bench.py does. The CPU
seconds ratio is printed too: on a machine shared with other work it moves less.

``face_suggest_vs_duration``: the wall time of the face-suggestion job's work (the
detector loaded, every sampled frame of the editing proxy decoded and searched, the
detections linked into tracks) for a 1080p clip in which a face moves, divided by the
clip's duration: at most 1.0 is as fast as the clip plays. The clip is 60 s (10 s with
--quick), its proxy made first as ingest makes it (not timed); the figure is the median
of ``--runs``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from media_pipeline_bench import PROFILES, fresh, make_source, timed_with_cpu  # noqa: E402
from targets import report  # noqa: E402

from media_pipeline import (  # noqa: E402
    DEFAULT_LIMITS,
    EditPlan,
    Keyframe,
    Track,
    make_proxy,
    probe,
    process,
)
from media_pipeline.faces import suggest_faces  # noqa: E402
from tests.media_pipeline.test_faces import make_face_clip  # noqa: E402

TARGETS = {
    "tracked_render_vs_still_render": ("<=", 1.15),
    "face_suggest_vs_duration": ("<=", 1.0),
}
TRACKS = 5
WIDTH, HEIGHT = 1920, 1080


def moving_tracks(seconds: int) -> tuple[Track, ...]:
    """Five face-to-person sized boxes, each on its own path, a keyframe a second."""
    tracks = []
    for j in range(TRACKS):
        keys = []
        for i in range(seconds + 1):
            phase = i / seconds
            w = 160 + int(120 * abs(math.sin(phase * math.pi + j)))
            h = 200 + int(160 * abs(math.cos(phase * math.pi + j)))
            x = int((WIDTH - w) * (0.1 + 0.8 * ((phase + j / TRACKS) % 1.0)))
            y = int((HEIGHT - h) * (0.2 + 0.6 * abs(math.sin(phase * 2 + j))))
            keys.append(Keyframe(float(i), x, y, w, h))
        tracks.append(Track(keyframes=tuple(keys), effect=("blur", "pixelate")[j % 2]))
    return tuple(tracks)


def still_tracks(moving: tuple[Track, ...]) -> tuple[Track, ...]:
    return tuple(dataclasses.replace(t, keyframes=t.keyframes[:1]) for t in moving)


def measure(source: Path, root: Path, seconds: int, runs: int) -> dict[str, float]:
    moving = EditPlan(regions=moving_tracks(seconds))
    still = EditPlan(regions=still_tracks(moving.regions))
    walls: dict[str, list[float]] = {"moving": [], "still": []}
    cpus: dict[str, list[float]] = {"moving": [], "still": []}
    for run in range(runs):
        # Alternate which goes first, so a drift in the machine's load is shared.
        order = [("still", still), ("moving", moving)]
        for name, plan in order if run % 2 == 0 else order[::-1]:
            out = fresh(root / name)
            wall, cpu = timed_with_cpu(functools.partial(process, source, out, plan, PROFILES))
            walls[name].append(wall)
            cpus[name].append(cpu)
    still_s, moving_s = statistics.median(walls["still"]), statistics.median(walls["moving"])
    return {
        "still_render_s": still_s,
        "tracked_render_s": moving_s,
        "tracked_render_vs_still_render": moving_s / still_s,
        "tracked_render_vs_still_render_cpu": statistics.median(cpus["moving"])
        / statistics.median(cpus["still"]),
    }


def measure_faces(root: Path, seconds: int, runs: int) -> dict[str, float]:
    clip = make_face_clip(root / "face.mp4", seconds=seconds, size=(WIDTH, HEIGHT))
    info = probe(str(clip), DEFAULT_LIMITS)
    proxy = root / "face-proxy.mp4"
    make_proxy(str(clip), str(proxy), DEFAULT_LIMITS, info=info)
    walls = []
    results: list[Any] = []

    def run() -> None:
        results.append(
            suggest_faces(str(proxy), source_size=(WIDTH, HEIGHT), duration_s=info.duration_s)
        )

    for _ in range(runs):
        wall, _cpu = timed_with_cpu(run)
        walls.append(wall)
    found = len(results[-1].tracks)
    wall = statistics.median(walls)
    return {
        "face_suggest_s": wall,
        "face_suggest_tracks": float(found),
        "face_suggest_vs_duration": wall / info.duration_s,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10 s source")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--only", choices=("tracks", "faces"), help="run one of the two measurements"
    )
    args = parser.parse_args(argv)
    seconds = 10 if args.quick else 60
    root = Path(tempfile.mkdtemp(prefix="redaction-bench-"))
    try:
        figures: dict[str, float] = {}
        if args.only != "faces":
            source = root / "source.mp4"
            make_source(source, seconds)
            figures |= measure(source, root, seconds, max(3, args.runs))
        if args.only != "tracks":
            figures |= measure_faces(root, seconds, max(3, args.runs))
    except subprocess.CalledProcessError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(root, ignore_errors=True)
    measured = {
        "tracks": ["tracked_render_vs_still_render"],
        "faces": ["face_suggest_vs_duration"],
    }.get(args.only or "", list(TARGETS))
    return report({name: TARGETS[name] for name in measured}, figures)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
