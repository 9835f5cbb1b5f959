"""process() and make_proxy(): real ffmpeg runs on generated clips, outputs inspected."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from media_pipeline import (
    DEFAULT_PROFILES,
    BlurRegion,
    Cancelled,
    Caption,
    EditPlan,
    InvalidPlan,
    Limits,
    LocalStore,
    Manifest,
    Stalled,
    TimedOut,
    Watermark,
    make_proxy,
    process,
    profiles_by_name,
    store_outputs,
)

from .conftest import (
    FAST_PROFILES,
    FFMPEG,
    FFPROBE,
    Corpus,
    ffprobe_json,
    top_level_atoms,
    video_stream,
)

CLIP_IN, CLIP_OUT = 0.25, 1.75
BLUR = BlurRegion(x=100, y=100, width=400, height=300, start=0.5, end=1.0)
HOSTILE_CAPTION = "x';[0:v]movie=/etc/passwd[a];%{pts}\\:,"


@pytest.fixture(scope="module")
def hd_run(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One full run on a 720p clip: trim, blur, caption, watermark, every profile."""
    out = tmp_path_factory.mktemp("hd_out")
    plan = EditPlan(
        trim_start=CLIP_IN,
        trim_end=CLIP_OUT,
        regions=(BLUR.as_track(),),
        caption=Caption(("Case 24-001", "Do you recognize this person?", HOSTILE_CAPTION)),
        watermark=Watermark(str(corpus("watermark_png")), corner="bottom-right"),
        poster_time=0.5,
    )
    seen: list[float] = []
    manifest = process(corpus("hd_mp4"), out, plan, FAST_PROFILES, progress=seen.append)
    return {"manifest": manifest, "out": out, "progress": seen, "source": corpus("hd_mp4")}


def _videos(manifest: Manifest) -> list[Any]:
    return [o for o in manifest.outputs if o.role == "video"]


def test_process_makes_renditions_at_or_below_source_height_only(hd_run: dict[str, Any]) -> None:
    names = [o.name for o in hd_run["manifest"].outputs]
    assert names == ["web_720", "web_480", "square", "vertical", "poster", "sprite", "sprite_index"]


def test_process_videos_are_h264_high_yuv420p_square_pixels_even_sizes(
    hd_run: dict[str, Any],
) -> None:
    expected = {
        "web_720": (1280, 720),
        "web_480": (854, 480),
        "square": (1080, 1080),
        "vertical": (1080, 1920),
    }
    for output in _videos(hd_run["manifest"]):
        probe = ffprobe_json(hd_run["out"] / output.file)
        video = next(s for s in probe["streams"] if s["codec_type"] == "video")
        audio = next(s for s in probe["streams"] if s["codec_type"] == "audio")
        assert (video["codec_name"], video["profile"], video["pix_fmt"]) == (
            "h264",
            "High",
            "yuv420p",
        )
        assert video.get("sample_aspect_ratio", "1:1") == "1:1"
        assert (video["width"], video["height"]) == expected[output.name]
        assert video["width"] % 2 == 0 and video["height"] % 2 == 0
        assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == ("aac", "48000", 2)
        assert (output.width, output.height) == expected[output.name]


def test_process_videos_are_fast_start(hd_run: dict[str, Any]) -> None:
    for output in _videos(hd_run["manifest"]):
        atoms = top_level_atoms(hd_run["out"] / output.file)
        assert atoms.index("moov") < atoms.index("mdat"), atoms


def test_process_trimmed_duration_is_within_one_frame(hd_run: dict[str, Any]) -> None:
    for output in _videos(hd_run["manifest"]):
        video = video_stream(hd_run["out"] / output.file)
        assert abs(float(video["duration"]) - (CLIP_OUT - CLIP_IN)) <= 1 / 30 + 1e-3, output.name
        assert abs(output.duration_s - (CLIP_OUT - CLIP_IN)) <= 0.05


def test_process_progress_is_monotonic_and_ends_at_one(hd_run: dict[str, Any]) -> None:
    seen = hd_run["progress"]
    assert seen and seen[-1] == 1.0
    assert all(0.0 <= a <= b <= 1.0 for a, b in zip(seen, seen[1:], strict=False))


def test_process_manifest_records_hashes_sizes_and_source(hd_run: dict[str, Any]) -> None:
    manifest: Manifest = hd_run["manifest"]
    on_disk = json.loads((hd_run["out"] / "manifest.json").read_text())
    assert on_disk == manifest.to_dict()
    assert Manifest.from_dict(on_disk) == manifest
    for output in manifest.outputs:
        data = (hd_run["out"] / output.file).read_bytes()
        assert output.size == len(data)
        assert output.sha256 == hashlib.sha256(data).hexdigest()
    assert manifest.source.sha256 == hashlib.sha256(hd_run["source"].read_bytes()).hexdigest()
    assert manifest.plan["trim_start"] == CLIP_IN
    assert EditPlan.from_dict(manifest.plan).regions == (BLUR.as_track(),)
    assert manifest.ffmpeg_version.startswith("ffmpeg version")
    assert manifest.command[0].endswith("ffmpeg")
    assert not any(p.name.startswith(".work-") for p in hd_run["out"].iterdir())


def test_process_command_carries_input_hardening(hd_run: dict[str, Any]) -> None:
    argv = list(hd_run["manifest"].command)
    before_input = argv[: argv.index("-i")]
    assert before_input[before_input.index("-protocol_whitelist") + 1] == "file"
    assert before_input[before_input.index("-f") + 1] == "mov"
    assert "hls" not in before_input[before_input.index("-format_whitelist") + 1].split(",")
    assert argv[argv.index("-i") + 1] == "file:" + str(hd_run["source"])
    assert argv.count("-filter_complex") == 1 and argv.count("-i") == 2  # source + watermark


def test_process_caption_text_never_enters_the_command(hd_run: dict[str, Any]) -> None:
    command = " ".join(hd_run["manifest"].command)
    assert "movie=" not in command and "%{pts}" not in command and "Case 24-001" not in command
    assert "expansion=none" in command and "textfile=" in command


def test_process_poster_is_a_jpeg_at_the_fitted_size(hd_run: dict[str, Any]) -> None:
    poster = video_stream(hd_run["out"] / "poster.jpg")
    assert (poster["codec_name"], poster["width"], poster["height"]) == ("mjpeg", 1280, 720)
    assert (hd_run["out"] / "poster.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


def test_process_sprite_index_maps_every_interval_to_a_tile(hd_run: dict[str, Any]) -> None:
    vtt = (hd_run["out"] / "sprite.vtt").read_text()
    assert vtt.startswith("WEBVTT\n")
    cues = re.findall(r"(\S+) --> (\S+)\nsprite\.jpg#xywh=(\d+),(\d+),(\d+),(\d+)", vtt)
    assert [c[:2] for c in cues] == [("00:00:00.000", "00:00:01.500")]
    sprite = video_stream(hd_run["out"] / "sprite.jpg")
    assert (sprite["width"], sprite["height"]) == (160, 90)
    assert cues[0][2:] == ("0", "0", "160", "90")


def _gray_frame(path: Path, t: float, width: int, height: int) -> bytes:
    return subprocess.run(
        [FFMPEG, "-v", "error", "-ss", str(t), "-i", str(path), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        check=True, capture_output=True,
    ).stdout[: width * height]  # fmt: skip


def _edge_strength(frame: bytes, width: int, box: tuple[int, int, int, int]) -> float:
    """Mean over rows of the largest step between neighbouring pixels.

    The box straddles a colour-bar edge: sharp, the step is the whole contrast; blurred,
    the same change is spread over many small steps.
    """
    x, y, w, h = box
    steps = []
    for row in range(y, y + h):
        line = frame[row * width + x : row * width + x + w]
        steps.append(max(abs(a - b) for a, b in zip(line, line[1:], strict=False)))
    return sum(steps) / len(steps)


def test_process_blurs_region_only_during_its_time_range(hd_run: dict[str, Any]) -> None:
    web = hd_run["out"] / "web_720.mp4"
    # The red/green bar edge at x=213 crosses the blur region (x 100-500, y 100-400).
    inside, below = (150, 120, 130, 250), (150, 420, 130, 100)
    # Source time 0.75 is inside the blur range (0.5-1.0); clip time = source - 0.25.
    during = _gray_frame(web, 0.5, 1280, 720)
    after = _gray_frame(web, 1.2, 1280, 720)
    assert _edge_strength(during, 1280, inside) < 0.3 * _edge_strength(after, 1280, inside)
    assert _edge_strength(during, 1280, below) > 0.8 * _edge_strength(after, 1280, below)


def test_process_strips_source_metadata(corpus: Corpus, tmp_path: Path) -> None:
    source_tags = ffprobe_json(corpus("h264_mp4"))["format"]["tags"]
    assert "location" in source_tags and "creation_time" in source_tags
    process(corpus("h264_mp4"), tmp_path, EditPlan(), profiles_by_name(["web_480"], FAST_PROFILES))
    probe = ffprobe_json(tmp_path / "web_480.mp4")
    tags = " ".join(f"{k}={v}" for k, v in probe["format"].get("tags", {}).items())
    for stream in probe["streams"]:
        tags += " " + " ".join(f"{k}={v}" for k, v in stream.get("tags", {}).items())
    for leaked in ("location", "creation_time", "Apple", "iPhone", "Suspect", "Lavf"):
        assert leaked not in tags


REAL_WORLD = ["moov_at_end", "hevc_mov", "matroska", "mjpeg_avi_mulaw", "mpeg2_ts_interlaced",
              "vp9_webm_silent", "rotated_phone", "odd_size", "vfr", "mp4_named_avi"]  # fmt: skip
EXPECTED_SIZE = {
    "mjpeg_avi_mulaw": (352, 288),
    "mpeg2_ts_interlaced": (426, 240),
    "rotated_phone": (240, 320),
    "odd_size": (320, 240),
}


@pytest.mark.parametrize("name", REAL_WORLD)
def test_process_handles_real_world_shape(corpus: Corpus, tmp_path: Path, name: str) -> None:
    profiles = profiles_by_name(["web_480", "poster"], FAST_PROFILES)
    manifest = process(corpus(name), tmp_path, EditPlan(), profiles)
    web = manifest.output("web_480")
    probe = ffprobe_json(tmp_path / web.file)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["profile"], video["pix_fmt"]) == ("h264", "High", "yuv420p")
    assert video.get("sample_aspect_ratio", "1:1") == "1:1"
    assert "side_data_list" not in video  # rotation applied to pixels, no display matrix left
    assert (video["width"], video["height"]) == EXPECTED_SIZE.get(name, (320, 240))
    has_audio = any(s["codec_type"] == "audio" for s in probe["streams"])
    assert has_audio == (name not in ("vp9_webm_silent", "odd_size", "vfr"))
    deinterlaced = any("yadif" in arg for arg in manifest.command)
    assert deinterlaced == (name == "mpeg2_ts_interlaced")


def test_process_strip_audio_leaves_no_audio_stream(corpus: Corpus, tmp_path: Path) -> None:
    process(
        corpus("h264_mp4"),
        tmp_path,
        EditPlan(audio="strip"),
        profiles_by_name(["web_480"], FAST_PROFILES),
    )
    assert [s["codec_type"] for s in ffprobe_json(tmp_path / "web_480.mp4")["streams"]] == ["video"]


def test_process_mute_keeps_a_silent_audio_track(corpus: Corpus, tmp_path: Path) -> None:
    process(
        corpus("h264_mp4"),
        tmp_path,
        EditPlan(audio="mute"),
        profiles_by_name(["web_480"], FAST_PROFILES),
    )
    log = subprocess.run(
        [FFMPEG, "-hide_banner", "-i", str(tmp_path / "web_480.mp4"), "-map", "0:a",
         "-af", "volumedetect", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    assert "max_volume: -91.0 dB" in log


def test_process_refuses_plan_that_does_not_fit_before_running_ffmpeg(
    corpus: Corpus, tmp_path: Path
) -> None:
    with pytest.raises(InvalidPlan) as caught:
        process(corpus("h264_mp4"), tmp_path, EditPlan(trim_start=0, trim_end=9))
    assert caught.value.field == "trim_end"
    assert list(tmp_path.iterdir()) == []


def test_process_times_out_and_leaves_nothing(corpus: Corpus, tmp_path: Path) -> None:
    slow = tuple(
        replace(p, preset="veryslow") if hasattr(p, "preset") else p for p in FAST_PROFILES
    )
    with pytest.raises(TimedOut):
        process(
            corpus("long_10s"),
            tmp_path,
            EditPlan(),
            slow,
            Limits(timeout_base_s=0.5, timeout_per_media_s=0),
        )
    assert list(tmp_path.iterdir()) == []


def test_process_cancel_stops_ffmpeg(corpus: Corpus, tmp_path: Path) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    try:
        with pytest.raises(Cancelled):
            process(corpus("long_10s"), tmp_path, EditPlan(), FAST_PROFILES, cancel=cancel)
    finally:
        timer.cancel()
    assert list(tmp_path.iterdir()) == []


def test_make_proxy_is_whole_source_with_half_second_keyframes(
    corpus: Corpus, tmp_path: Path
) -> None:
    proxy = make_proxy(corpus("hd_mp4"), tmp_path / "proxy.mp4")
    assert (proxy.width, proxy.height) == (854, 480)
    assert proxy.duration_s is not None and abs(proxy.duration_s - 2.0) < 0.05
    keyframes = subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", "v", "-skip_frame", "nokey",
         "-show_entries", "frame=pts_time", "-of", "csv=p=0", str(tmp_path / "proxy.mp4")],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert [round(float(t.strip(",")), 2) for t in keyframes] == [0.0, 0.5, 1.0, 1.5]
    assert top_level_atoms(tmp_path / "proxy.mp4").index("moov") < top_level_atoms(
        tmp_path / "proxy.mp4"
    ).index("mdat")


def test_store_outputs_uploads_everything_and_verifies_hashes(
    hd_run: dict[str, Any], tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "media")
    stored = store_outputs(hd_run["manifest"], hd_run["out"], store, "cases/c1/v1")
    for output in hd_run["manifest"].outputs:
        assert stored[output.name].sha256 == output.sha256
        assert store.exists(f"cases/c1/v1/{output.file}")
    assert store.exists("cases/c1/v1/manifest.json")


def _on_one_cpu(run: Any) -> Any:
    """``run()`` with this thread (and so the ffmpeg it forks) held to one CPU: what a
    worker on a one-core machine sees when ffmpeg and x264 count cores."""
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(saved)})
    try:
        return run()
    finally:
        os.sched_setaffinity(0, saved)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to compare")
def test_process_is_reproducible_bit_for_bit_on_any_core_count(
    corpus: Corpus, tmp_path: Path
) -> None:
    """The same source, plan and ffmpeg give the same bytes in every output, whether
    the worker has one core or several (x264's output depends on its thread count)."""
    plan = EditPlan(trim_start=0.5)
    first = process(corpus("h264_mp4"), tmp_path / "a", plan, FAST_PROFILES)
    _on_one_cpu(lambda: process(corpus("h264_mp4"), tmp_path / "b", plan, FAST_PROFILES))
    names = [o.file for o in first.outputs]
    assert names == ["web_480.mp4", "square.mp4", "vertical.mp4", "poster.jpg", "sprite.jpg",
                     "sprite.vtt"]  # fmt: skip

    def hashes(directory: Path) -> dict[str, str]:
        return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in names}

    assert hashes(tmp_path / "a") == hashes(tmp_path / "b")


def test_process_outputs_carry_no_encoder_version_string(corpus: Corpus, tmp_path: Path) -> None:
    profiles = profiles_by_name(["web_480", "poster"], FAST_PROFILES)
    process(corpus("h264_mp4"), tmp_path, EditPlan(), profiles)
    # Bitexact still names the encoder ("Lavc libx264"), but without its version.
    for stream in ffprobe_json(tmp_path / "web_480.mp4")["streams"]:
        assert not re.search(r"Lavc\d", stream["tags"].get("encoder", "")), stream["tags"]
    assert not re.search(rb"Lavc\d", (tmp_path / "poster.jpg").read_bytes())


def test_process_progress_and_heartbeat_move_long_before_the_end(
    corpus: Corpus, tmp_path: Path
) -> None:
    """With a sprite sheet, ffmpeg prints no progress until the last second of the
    clip; the figures must move through the middle of the run anyway."""
    progress: list[float] = []
    beats: list[float] = []
    process(
        corpus("long_10s"),
        tmp_path,
        EditPlan(),
        FAST_PROFILES,
        Limits(heartbeat_interval_s=0.3),
        progress=progress.append,
        heartbeat=beats.append,
    )
    assert [f for f in progress if 0.05 < f < 0.8], progress
    assert len(beats) >= 2 and [f for f in beats if 0.05 < f < 0.8], beats
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_process_time_limit_scales_with_the_clip(corpus: Corpus, tmp_path: Path) -> None:
    # 10 s of clip at 0.01 s per second of clip plus 0.3 s: a 0.4 s limit.
    limits = Limits(timeout_base_s=0.3, timeout_per_media_s=0.01)
    with pytest.raises(TimedOut, match="0.4 s limit"):
        process(corpus("long_10s"), tmp_path, EditPlan(), FAST_PROFILES, limits)


def test_process_kills_a_stopped_ffmpeg_and_leaves_nothing(corpus: Corpus, tmp_path: Path) -> None:
    # Short bounds on purpose: this tests the mechanism; the defaults have their own test.
    spawned: list[int] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)
        spawned.append(proc.pid)
        return proc

    def stop_ffmpeg(fraction: float) -> None:
        if fraction > 0 and not stopped:
            stopped.append(time.monotonic())
            os.kill(spawned[-1], signal.SIGSTOP)

    stopped: list[float] = []
    slow = tuple(
        replace(p, preset="veryslow") if hasattr(p, "preset") else p for p in FAST_PROFILES
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess, "Popen", recording_popen)
        with pytest.raises(Stalled):
            process(corpus("long_10s"), tmp_path, EditPlan(), slow,
                    Limits(stall_timeout_s=2.0), progress=stop_ffmpeg)  # fmt: skip
    # Killed after the 2 s stall setting, long before any time limit.
    assert stopped and time.monotonic() - stopped[0] < 15.0
    with pytest.raises(ProcessLookupError):
        os.kill(spawned[-1], 0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to compare")
def test_process_scaled_rendition_beside_a_fill_one_is_reproducible(
    corpus: Corpus, tmp_path: Path
) -> None:
    """A downscaled rendition in the same graph as a fill one (measured on ffmpeg 5.1:
    with a frame-threaded decoder its bytes changed from run to run)."""
    profiles = profiles_by_name(["web_480", "square"], DEFAULT_PROFILES)
    runs = [
        process(corpus("hd_mp4"), tmp_path / "a", EditPlan(), profiles),
        process(corpus("hd_mp4"), tmp_path / "b", EditPlan(), profiles),
        _on_one_cpu(lambda: process(corpus("hd_mp4"), tmp_path / "c", EditPlan(), profiles)),
    ]
    hashes = [{o.file: o.sha256 for o in manifest.outputs} for manifest in runs]
    assert hashes[0] == hashes[1] == hashes[2]
