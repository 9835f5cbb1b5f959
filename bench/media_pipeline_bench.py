"""Benchmarks of media_pipeline; prints ``name: figure`` lines, then targets and verdicts.
Exits 1 when a target is missed.

    python bench/media_pipeline_bench.py [--quick] [--runs N] [--keep DIR]

Every ratio compares runs made in this process, interleaved, medians of ``--runs``
(at least 3). The source is made here: 1080p30 H.264/AAC with noise (60 s, or 10 s
with --quick). The renditions use x264 ``superfast`` (a profile setting; the bench
passes it) so the full run stays around a quarter of an hour on two cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from targets import target_met, verdict  # noqa: E402

from media_pipeline import DEFAULT_PROFILES, EditPlan, Limits, hash_file, process  # noqa: E402
from media_pipeline.profiles import Profile, VideoProfile  # noqa: E402

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
PRESET = "superfast"
PROFILES: tuple[Profile, ...] = tuple(
    dataclasses.replace(p, preset=PRESET) if isinstance(p, VideoProfile) else p
    for p in DEFAULT_PROFILES
)
RENDITIONS_ONLY = tuple(p for p in PROFILES if isinstance(p, VideoProfile))
VIDEO_NAMES = [p.name for p in RENDITIONS_ONLY]

TARGETS = {
    "pipeline_vs_bare_ffmpeg": ("<=", 1.10),
    "pipeline_vs_bare_ffmpeg_md5_equal": ("==", 1),
    "pipeline_vs_per_rendition": ("<=", 0.85),
    "poster_sprite_overhead": ("<=", 1.05),
    "pipeline_peak_rss_mb": ("<", 150.0),
    "sha256_vs_hashlib": (">=", 0.95),
}


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_source(path: Path, seconds: int) -> None:
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s=1920x1080:r=30:d={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={seconds}",
        "-vf", "noise=alls=20:allf=t", "-c:v", "libx264", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", str(path),
    )  # fmt: skip


# -- the hand-written reference: the same outputs from one ffmpeg process -------------
#
# This is what the pipeline builds for a 1920x1080 square-pixel progressive source with
# an empty edit plan, written out by hand. The poster time (middle of the clip) and
# the sprite grid (one tile every 2 s, 10 columns) depend on the duration.


def _x264(audio_k: int) -> list[str]:
    return [
        "-f", "mp4", "-c:v", "libx264", "-profile:v", "high", "-preset", PRESET, "-crf", "22",
        "-pix_fmt", "yuv420p",
        "-force_key_frames", "expr:gte(t,n_forced*2)", "-movflags", "+faststart",
        "-map_metadata", "-1", "-map_chapters", "-1", "-fflags", "+bitexact",
        "-flags:v", "+bitexact", "-threads", "4",
        "-c:a", "aac", "-b:a", f"{audio_k}k", "-flags:a", "+bitexact",
    ]  # fmt: skip


def _jpeg(quality: int) -> list[str]:
    return ["-f", "image2", "-update", "1", "-frames:v", "1", "-c:v", "mjpeg",
            "-q:v", str(quality), "-fflags", "+bitexact", "-flags:v", "+bitexact"]  # fmt: skip


SQUARE_CHAIN = (
    "split=2[sqb][sqf];"
    "[sqb]scale=242:136:flags=area,crop=136:136:53:0,boxblur=luma_power=2:luma_radius=13,"
    "scale=1080:1080:flags=bilinear[sqbg];[sqf]scale=1080:608[sqfg];"
    "[sqbg][sqfg]overlay=eof_action=repeat:x=0:y=236,setsar=1"
)
VERTICAL_CHAIN = (
    "split=2[vtb][vtf];"
    "[vtb]scale=428:240:flags=area,crop=136:240:146:0,boxblur=luma_power=2:luma_radius=13,"
    "scale=1080:1920:flags=bilinear[vtbg];[vtf]scale=1080:608[vtfg];"
    "[vtbg][vtfg]overlay=eof_action=repeat:x=0:y=656,setsar=1"
)


def _sprite_grid(seconds: int) -> str:
    count = -(-seconds // 2)
    columns = min(10, count)
    return f"{columns}x{-(-count // columns)}"


def bare_command(src: Path, out: Path, seconds: int) -> list[str]:
    graph = (
        "[0:v]setsar=1,format=yuv420p,split=7[v1080][v720][v480][vsq][vvt][vposter][vsprite];"
        "[0:a]aresample=48000,aformat=channel_layouts=stereo:sample_fmts=fltp,"
        "asplit=5[a1080][a720][a480][asq][avt];"
        "[v1080]scale=1920:1080,setsar=1[o1080];"
        "[v720]scale=1280:720,setsar=1[o720];"
        "[v480]scale=854:480,setsar=1[o480];"
        f"[vsq]{SQUARE_CHAIN}[osq];"
        f"[vvt]{VERTICAL_CHAIN}[ovt];"
        f"[vposter]trim=start={seconds / 2:g}:duration=1,scale=1920:1080,setsar=1[oposter];"
        f"[vsprite]fps=1/2,scale=160:90,setsar=1,tile={_sprite_grid(seconds)}[osprite]"
    )
    return [
        FFMPEG, "-hide_banner", "-nostdin", "-v", "error", "-filter_complex_threads", "1", "-y",
        "-threads", "1", "-i", str(src),
        "-filter_complex", graph,
        "-map", "[o1080]", "-map", "[a1080]", *_x264(128), str(out / "web_1080.mp4"),
        "-map", "[o720]", "-map", "[a720]", *_x264(128), str(out / "web_720.mp4"),
        "-map", "[o480]", "-map", "[a480]", *_x264(96), str(out / "web_480.mp4"),
        "-map", "[osq]", "-map", "[asq]", *_x264(128), str(out / "square.mp4"),
        "-map", "[ovt]", "-map", "[avt]", *_x264(128), str(out / "vertical.mp4"),
        "-map", "[oposter]", *_jpeg(2), str(out / "poster.jpg"),
        "-map", "[osprite]", *_jpeg(5), str(out / "sprite.jpg"),
    ]  # fmt: skip


def per_rendition_commands(src: Path, out: Path, seconds: int) -> list[list[str]]:
    """The naive approach: one ffmpeg process, one decode, per output."""
    audio = "[0:a]aresample=48000,aformat=channel_layouts=stereo:sample_fmts=fltp[a]"
    base = "[0:v]setsar=1,format=yuv420p,"
    head = [FFMPEG, "-hide_banner", "-nostdin", "-v", "error", "-filter_complex_threads", "1",
            "-y", "-threads", "1", "-i", str(src)]  # fmt: skip
    videos = [
        ("web_1080", "scale=1920:1080,setsar=1", 128),
        ("web_720", "scale=1280:720,setsar=1", 128),
        ("web_480", "scale=854:480,setsar=1", 96),
        ("square", SQUARE_CHAIN, 128),
        ("vertical", VERTICAL_CHAIN, 128),
    ]
    commands = [
        [*head, "-filter_complex", f"{base}{chain}[v];{audio}", "-map", "[v]", "-map", "[a]",
         *_x264(audio_k), str(out / f"{name}.mp4")]
        for name, chain, audio_k in videos
    ]  # fmt: skip
    commands.append(
        [*head, "-filter_complex",
         f"{base}trim=start={seconds / 2:g}:duration=1,scale=1920:1080,setsar=1[v]",
         "-map", "[v]", *_jpeg(2), str(out / "poster.jpg")]
    )  # fmt: skip
    commands.append(
        [*head, "-filter_complex",
         f"{base}fps=1/2,scale=160:90,setsar=1,tile={_sprite_grid(seconds)}[v]",
         "-map", "[v]", *_jpeg(5), str(out / "sprite.jpg")]
    )  # fmt: skip
    return commands


def video_md5(path: Path) -> str:
    out = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:v", "-c", "copy", "-f", "md5", "-"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return out.strip()


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_with_cpu(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process and its reaped children: ffmpeg)."""
    cpu = _cpu_s()
    wall = timed(fn)
    return wall, _cpu_s() - cpu


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# -- transcoding ratios ----------------------------------------------------------------


def bench_transcode(work: Path, seconds: int, runs: int) -> dict[str, float]:
    src = work / "source_1080p.mp4"
    make_source(src, seconds)
    sha = hash_file(src)[0]  # as the portal passes it: hashed while uploaded
    names = ("pipeline", "bare", "naive", "renditions")
    times: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    pipe_out, bare_out, naive_out, rend_out = (work / n for n in ("pipe", "bare", "naive", "rend"))

    def run_naive() -> None:
        for command in per_rendition_commands(src, naive_out, seconds):
            subprocess.run(command, check=True)

    def run_pipeline(out: Path, profiles: tuple[Profile, ...]) -> None:
        # At the priority of the hand-written commands it is compared with.
        process(src, out, EditPlan(), profiles, Limits(nice=0), source_sha256=sha)

    def run_bare() -> None:
        subprocess.run(bare_command(src, bare_out, seconds), check=True)

    variants: list[tuple[str, Path, Callable[[], object]]] = [
        ("pipeline", pipe_out, lambda: run_pipeline(pipe_out, PROFILES)),
        ("bare", bare_out, run_bare),
        ("naive", naive_out, run_naive),
        ("renditions", rend_out, lambda: run_pipeline(rend_out, RENDITIONS_ONLY)),
    ]
    for run in range(runs):
        # Rotate the order each run so no variant always follows the same neighbour.
        for name, out, fn in variants[run % 4 :] + variants[: run % 4]:
            fresh(out)
            wall, cpu_s = timed_with_cpu(fn)
            times[name].append(wall)
            cpu[name].append(cpu_s)
            print(
                f"  run {run + 1}/{runs} {name}: {wall:.1f} s wall, {cpu_s:.1f} s CPU",
                file=sys.stderr,
            )

    equal = all(
        video_md5(pipe_out / f"{n}.mp4") == video_md5(bare_out / f"{n}.mp4") for n in VIDEO_NAMES
    )
    median = {k: statistics.median(v) for k, v in times.items()}
    median_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    for name, value in median.items():
        print(f"  median {name}: {value:.2f} s wall, {median_cpu[name]:.2f} s CPU", file=sys.stderr)
    return {
        "pipeline_vs_bare_ffmpeg": median["pipeline"] / median["bare"],
        "pipeline_vs_bare_ffmpeg_md5_equal": 1 if equal else 0,
        "pipeline_vs_per_rendition": median["pipeline"] / median["naive"],
        "poster_sprite_overhead": median["pipeline"] / median["renditions"],
        # The same ratios in CPU time: on a shared machine wall time is noisy, CPU
        # time shows whether the work itself differs.
        "pipeline_vs_bare_ffmpeg_cpu": median_cpu["pipeline"] / median_cpu["bare"],
        "pipeline_vs_per_rendition_cpu": median_cpu["pipeline"] / median_cpu["naive"],
        "poster_sprite_overhead_cpu": median_cpu["pipeline"] / median_cpu["renditions"],
    }


# -- memory ---------------------------------------------------------------------------

RSS_CHILD = """
import resource, sys
sys.path.insert(0, sys.argv[4])
from media_pipeline import EditPlan, process, profiles_by_name
from media_pipeline.limits import Limits
process(sys.argv[1], sys.argv[2], EditPlan(), profiles_by_name(sys.argv[3].split(",")),
        Limits(max_file_bytes=16 * 1024**3))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_large_source(work: Path, target_bytes: int) -> Path:
    """A high-bitrate MPEG-2 TS made by looping a short segment with stream copy."""
    segment = work / "segment.ts"
    if not segment.exists():
        ffmpeg(
            "-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=25:d=4",
            "-f", "lavfi", "-i", "sine=d=4", "-vf", "noise=alls=30:allf=t",
            "-c:v", "mpeg2video", "-q:v", "1", "-g", "12", "-c:a", "mp2", str(segment),
        )  # fmt: skip
    loops = max(0, round(target_bytes / segment.stat().st_size) - 1)
    big = work / f"large_{target_bytes // 1024**2}MB.ts"
    ffmpeg("-stream_loop", str(loops), "-i", str(segment), "-c", "copy", str(big))
    return big


def python_peak_rss_mb(source: Path, out: Path) -> float:
    # Only the cheap renditions: this measures the Python side, whose memory must not
    # depend on the source size; ffmpeg is a child and not counted by RUSAGE_SELF.
    profiles = "web_480,poster,sprite"
    done = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, str(source), str(fresh(out)), profiles, str(REPO)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout.split()[-1]) / 1024


def bench_rss(work: Path, sizes: list[int]) -> dict[str, float]:
    figures = {}
    for size in sizes:
        source = make_large_source(work, size)
        actual = source.stat().st_size
        rss = python_peak_rss_mb(source, work / "rss_out")
        print(f"  source {actual / 1024**2:.0f} MB: Python peak RSS {rss:.1f} MB", file=sys.stderr)
        figures[f"pipeline_peak_rss_mb_at_{round(actual / 1024**2)}mb"] = rss
        source.unlink()
    values = list(figures.values())
    figures["pipeline_peak_rss_mb"] = max(values)
    figures["pipeline_peak_rss_growth_mb"] = values[-1] - values[0]
    return figures


# -- hashing ----------------------------------------------------------------------------


def bare_hashlib(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def bench_sha256(work: Path, size: int, runs: int) -> dict[str, float]:
    path = work / "hash.bin"
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
    ours, bare = [], []
    for _ in range(runs):
        ours.append(timed(lambda: hash_file(path)))
        bare.append(timed(lambda: bare_hashlib(path)))
    assert hash_file(path)[0] == bare_hashlib(path)
    path.unlink()
    mb = size / 1024**2
    print(f"  sha256: ours {mb / statistics.median(ours):.0f} MB/s, "
          f"hashlib loop {mb / statistics.median(bare):.0f} MB/s", file=sys.stderr)  # fmt: skip
    return {"sha256_vs_hashlib": statistics.median(bare) / statistics.median(ours)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s source, 50/200 MB, 200 MB hash")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", metavar="DIR", help="work here and keep the files")
    args = parser.parse_args()
    runs = max(3, args.runs)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mp-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    seconds = 10 if args.quick else 60
    rss_sizes = [50 * 1024**2, 200 * 1024**2] if args.quick else [512 * 1024**2, 2 * 1024**3]
    hash_size = 200 * 1024**2 if args.quick else 1024**3
    try:
        figures: dict[str, float] = {}
        figures.update(bench_sha256(work, hash_size, runs))
        figures.update(bench_transcode(work, seconds, runs))
        figures.update(bench_rss(work, rss_sizes))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for name, value in figures.items():
        print(f"{name}: {value:.3f}" if isinstance(value, float) else f"{name}: {value}")
    for name in TARGETS:
        print(verdict(TARGETS, name, figures[name]))
    return 0 if all(target_met(TARGETS, name, figures[name]) for name in TARGETS) else 1


if __name__ == "__main__":
    sys.exit(main())
