"""Moving regions (tracks), effects per region and audio ranges: the plan data, the
command, and real renders of a generated clip in which a sharp checkerboard moves
along a known straight line."""

from __future__ import annotations

import hashlib
import json
import math
import operator
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from media_pipeline import (
    DEFAULT_LIMITS,
    AudioRange,
    EditPlan,
    InvalidPlan,
    Keyframe,
    Track,
    process,
)
from media_pipeline.graph import build_renditions
from media_pipeline.plan import MAX_KEYFRAMES, MAX_PLAN_KEYFRAMES, MAX_REGIONS
from media_pipeline.probe import AudioStream, MediaInfo, VideoStream
from media_pipeline.profiles import DEFAULT_PROFILES, VideoProfile

from .conftest import FFMPEG, run_ffmpeg

# -- plan data ------------------------------------------------------------------------


def _info(
    duration: float = 10.0, width: int = 640, height: int = 360, audio: bool = True
) -> MediaInfo:
    video = VideoStream(0, "h264", "High", width, height, width, height, 0, "1:1", "yuv420p",
                        30.0, False, "progressive", False)  # fmt: skip
    sound = AudioStream(1, "aac", 48000, 2, "stereo") if audio else None
    return MediaInfo("/x.mp4", "mov", "mov,mp4", duration, 1000, None, 2, video, sound, 0)


def _key(t: float, x: int = 10, y: int = 10, w: int = 40, h: int = 40) -> dict[str, Any]:
    return {"t": t, "x": x, "y": y, "w": w, "h": h}


def _plan(**track: Any) -> dict[str, Any]:
    region = {"keyframes": [_key(1.0), _key(2.0, x=50)], "start": 1.0, "end": 3.0} | track
    return {"version": 2, "regions": [region]}


TRACKED = EditPlan(
    regions=(
        Track(
            keyframes=(Keyframe(1.0, 10, 20, 40, 40), Keyframe(2.5, 100, 60, 80, 60)),
            start=0.5,
            end=4.0,
            effect="pixelate",
            source="suggested:centerface@1.0.1",
        ),
        Track(whole_frame=True, start=7.0, effect="box"),
    ),
    audio_ranges=(AudioRange(1.0, 1.5, "bleep"), AudioRange(3.0, 3.25)),
)


def test_track_plan_round_trips_through_json() -> None:
    text = TRACKED.to_json()
    assert json.loads(text)["regions"][0]["keyframes"][1] == {
        "t": 2.5, "x": 100, "y": 60, "w": 80, "h": 60
    }  # fmt: skip
    assert EditPlan.from_json(text) == TRACKED


def test_track_version_1_still_region_is_read_as_a_track_of_one_box() -> None:
    old = {
        "version": 1,
        "blur": [
            {"x": 10, "y": 20, "width": 100, "height": 50, "start": 2.0, "end": 3.5,
             "whole_frame": False},
            {"x": 0, "y": 0, "width": 0, "height": 0, "start": None, "end": None,
             "whole_frame": True},
        ],
    }  # fmt: skip
    plan = EditPlan.from_dict(old)
    assert plan.regions == (
        Track(keyframes=(Keyframe(2.0, 10, 20, 100, 50),), start=2.0, end=3.5),
        Track(whole_frame=True),
    )
    assert plan.to_dict()["version"] == 2
    assert plan.regions[0].effect == "blur" and plan.regions[0].source == "manual"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (_plan(keyframes=[_key(2.0), _key(1.0)]), "regions[0].keyframes[1].t",
         "must be after the keyframe before it (2 s)"),
        (_plan(keyframes=[_key(2.0), _key(2.0)]), "regions[0].keyframes[1].t",
         "must be after the keyframe before it (2 s)"),
        (_plan(keyframes=[]), "regions[0].keyframes", "give at least one box"),
        (_plan(keyframes=[_key(1.0, w=3)]), "regions[0].keyframes[0].w",
         "must be at least 4 pixels"),
        (_plan(keyframes=[_key(1.0, x=-2)]), "regions[0].keyframes[0].x",
         "must be a whole number of pixels >= 0"),
        (_plan(keyframes=[{"t": 1.0, "x": 1, "y": 1, "w": 8}]), "regions[0].keyframes[0].h",
         "is missing"),
        (_plan(keyframes=[_key(1.0) | {"x": 1.5}]), "regions[0].keyframes[0].x",
         "must be a whole number"),
        (_plan(keyframes=[_key(float(i)) for i in range(MAX_KEYFRAMES + 1)]),
         "regions[0].keyframes", f"at most {MAX_KEYFRAMES} keyframes a region"),
        (_plan(start=3.0, end=3.0), "regions[0].end", "must be after the start"),
        (_plan(start=-1.0), "regions[0].start", "must be a number of seconds >= 0"),
        (_plan(effect="smudge"), "regions[0].effect", "must be blur, pixelate or box"),
        (_plan(source="robot"), "regions[0].source", 'must be "manual"'),
        (_plan(source="suggested:face;rm -rf@1"), "regions[0].source", 'must be "manual"'),
        (_plan(whole_frame=True), "regions[0].keyframes", "a whole-frame region has no boxes"),
        (_plan(colour="red"), "regions[0].colour", "unknown field"),
        ({"regions": [_plan()["regions"][0]] * (MAX_REGIONS + 1)}, "regions",
         f"at most {MAX_REGIONS} regions"),
        ({"regions": [{"keyframes": [_key(float(i)) for i in range(MAX_KEYFRAMES)]}] * 5},
         "regions", f"at most {MAX_PLAN_KEYFRAMES} keyframes in all (this plan has 600)"),
        ({"audio_ranges": [{"start": 2.0, "end": 1.0}]}, "audio_ranges[0].end",
         "must be after the start"),
        ({"audio_ranges": [{"start": 1.0, "end": 2.0, "effect": "beep"}]},
         "audio_ranges[0].effect", "must be mute or bleep"),
        ({"audio_ranges": [{"start": 1.0}]}, "audio_ranges[0].end", "is missing"),
        ({"audio_ranges": [{"start": 1.0, "end": 2.0}], "audio": "strip"}, "audio_ranges",
         "the whole clip's audio is set to strip: nothing to cover"),
        ({"audio_ranges": [{"start": i, "end": i + 0.5} for i in range(33)]}, "audio_ranges",
         "at most 32 ranges"),
    ],
)  # fmt: skip
def test_track_plan_from_dict_refuses_with_a_message_naming_the_field(
    data: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidPlan) as caught:
        EditPlan.from_dict(data)
    assert caught.value.field == field
    assert message in caught.value.reason


@pytest.mark.parametrize(
    ("data", "info", "field", "message"),
    [
        (_plan(keyframes=[_key(1.0), _key(2.0, x=601)]), _info(), "regions[0].keyframes[1].w",
         "the box goes past the right edge (640 px)"),
        (_plan(keyframes=[_key(1.0, y=330)]), _info(), "regions[0].keyframes[0].h",
         "the box goes past the bottom edge (360 px)"),
        (_plan(keyframes=[_key(1.0), _key(12.0)], end=None), _info(),
         "regions[0].keyframes[1].t", "12 s is after the end of the video (10 s)"),
        (_plan(start=9.0, end=None) | {"trim_end": 8.0}, _info(), "regions[0].start",
         "is after the end of the edited clip"),
        ({"audio_ranges": [{"start": 1.0, "end": 2.0}]}, _info(audio=False), "audio_ranges",
         "the video has no sound to mute or bleep"),
        ({"audio_ranges": [{"start": 1.0, "end": 2.0}], "trim_start": 3.0}, _info(),
         "audio_ranges[0].end", "is before the start of the edited clip"),
    ],
)  # fmt: skip
def test_track_plan_validate_against_refuses_what_does_not_fit_the_clip(
    data: dict[str, Any], info: MediaInfo, field: str, message: str
) -> None:
    plan = EditPlan.from_dict(data)
    with pytest.raises(InvalidPlan) as caught:
        plan.validate_against(info)
    assert (caught.value.field, caught.value.reason) == (field, message)


# -- the command ----------------------------------------------------------------------

#: main's graph (before tracks) for the version 1 plan below, with only the blur
#: sample sizes changed: 1/12 of the box (33x25, 160x90) became 4 samples on the
#: shorter side (5x4, 7x4). Everything else, the filters, their order and the
#: overlays' positions and times, is the same.
_OLD_GRAPH_HEAD = (
    "[0:0]setsar=1[s0];[s0]format=yuv420p[s1];[s1]split=2[s2][s3];"
    "[s3]crop=402:302:100:50[s4];[s4]scale=5:4:flags=area[s5];"
    "[s5]scale=402:302:flags=bilinear[s6];"
    "[s2][s6]overlay=enable=between(t\\,0.5\\,2.5):eof_action=repeat:x=100:y=50[s7];"
    "[s7]split=2[s8][s9];[s9]crop=1920:1080:0:0[s10];[s10]scale=7:4:flags=area[s11];"
    "[s11]scale=1920:1080:flags=bilinear[s12];[s8][s12]overlay=eof_action=repeat:x=0:y=0[s13];"
    "[s13]split=7[s14][s15][s16][s17][s18][s19][s20];"
)
_OLD_PLAN = {
    "version": 1,
    "trim_start": 1.5,
    "blur": [
        {"x": 101, "y": 51, "width": 400, "height": 301, "start": 2.0, "end": 4.0,
         "whole_frame": False},
        {"x": 0, "y": 0, "width": 0, "height": 0, "start": None, "end": None,
         "whole_frame": True},
    ],
}  # fmt: skip


def _graph(argv: list[str]) -> str:
    return argv[argv.index("-filter_complex") + 1]


def test_track_old_plan_gives_the_same_graph_as_before_but_stronger_blur(
    tmp_path: Path,
) -> None:
    info = _info(60.0, 1920, 1080)
    command = build_renditions(
        info, EditPlan.from_dict(_OLD_PLAN), DEFAULT_PROFILES, str(tmp_path), DEFAULT_LIMITS
    )
    assert _graph(command.argv).startswith(_OLD_GRAPH_HEAD)
    assert "eval=frame" not in _graph(command.argv)  # still boxes stay constant filters


def test_track_largest_plan_fits_in_one_command_argument(tmp_path: Path) -> None:
    """The caps keep the graph under Linux's 128 KiB limit on one argument."""
    per_track = MAX_PLAN_KEYFRAMES // MAX_REGIONS
    regions = tuple(
        Track(
            keyframes=tuple(
                Keyframe(round(i * 0.123457 + j * 0.000123, 6), 1000 + i % 7, 500 + i % 5,
                         300 + i % 11, 200 + i % 13)
                for i in range(per_track)
            ),
            start=0.0,
            end=59.0,
        )
        for j in range(MAX_REGIONS)
    )  # fmt: skip
    plan = EditPlan(
        regions=regions,
        audio_ranges=tuple(AudioRange(i + 0.123457, i + 0.623457, "bleep") for i in range(32)),
    )
    plan.validate_against(_info(60.0, 1920, 1080))
    command = build_renditions(
        _info(60.0, 1920, 1080), plan, DEFAULT_PROFILES, str(tmp_path), DEFAULT_LIMITS
    )
    assert max(len(arg.encode()) for arg in command.argv) < 128 * 1024


# -- renders ----------------------------------------------------------------------------

W, H, FPS, SECONDS = 640, 360, 30, 3
PATCH = 64  # the checkerboard's side, 8 px squares


def _patch_at(t: float) -> tuple[float, float]:
    """The checkerboard's top-left corner at time ``t`` (the recipe's overlay path)."""
    return 40 + 460 * t / 3, 40 + 200 * t / 3


#: The track follows the patch with a margin, growing in the middle of the path.
KEYS = (Keyframe(0.0, 36, 36, 72, 72), Keyframe(1.5, 250, 120, 104, 104),
        Keyframe(3.0, 496, 236, 72, 72))  # fmt: skip


def _box_at(t: float) -> tuple[float, float, float, float]:
    """The track's box at ``t``, interpolated here independently of the graph."""
    a, b = (KEYS[0], KEYS[1]) if t <= 1.5 else (KEYS[1], KEYS[2])
    f = (t - a.t) / (b.t - a.t)
    return tuple(getattr(a, k) + f * (getattr(b, k) - getattr(a, k)) for k in "xywh")


#: Renditions at three scales: the source size, half, and a fill canvas (0.5625, the
#: picture centred on a blurred copy of itself).
PROFILES = (
    VideoProfile("full", "fit", 640, 360, preset="superfast"),
    VideoProfile("half", "fit", 320, 180, preset="superfast"),
    VideoProfile("square", "fill", 360, 360, preset="superfast"),
)
#: name -> (scale, x offset, y offset) of the picture inside the rendition.
PLACEMENT = {"full": (1.0, 0, 0), "half": (0.5, 0, 0), "square": (0.5625, 0, 78)}
SIZES = {"full": (640, 360), "half": (320, 180), "square": (360, 360)}


@pytest.fixture(scope="module")
def moving_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("moving") / "moving.mp4"
    checker = (
        f"color=c=black:s={PATCH}x{PATCH}:r={FPS}:d={SECONDS},"
        "geq=lum='if(mod(floor(X/8)+floor(Y/8),2),235,16)':cb=128:cr=128"
    )
    run_ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s={W}x{H}:r={FPS}:d={SECONDS}",
        "-f", "lavfi", "-i", checker,
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={SECONDS}",
        "-filter_complex", "[0:v][1:v]overlay=x='40+460*t/3':y='40+200*t/3'[v]",
        "-map", "[v]", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "192k", str(path),
    )  # fmt: skip
    return path


def _frames(path: Path, width: int, height: int) -> list[bytes]:
    raw = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        check=True,
        capture_output=True,
    ).stdout
    size = width * height
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def _sharpness(frame: bytes, width: int, box: tuple[int, int, int, int]) -> float:
    """Mean step between horizontal neighbours: a sharp checkerboard has large ones."""
    x0, y0, x1, y1 = box
    total = 0
    for row in range(y0, y1):
        line = frame[row * width + x0 : row * width + x1]
        total += sum(map(abs, map(operator.sub, line[1:], line[:-1])))
    return total / ((y1 - y0) * (x1 - x0 - 1))


def _outside_difference(
    a: bytes, b: bytes, width: int, height: int, box: tuple[int, int, int, int]
) -> float:
    """Mean absolute difference of ``a`` and ``b`` outside ``box`` (every third row)."""
    x0, y0, x1, y1 = box
    total = count = 0
    for row in range(0, height, 3):
        ra, rb = a[row * width : (row + 1) * width], b[row * width : (row + 1) * width]
        spans = [(0, x0), (x1, width)] if y0 <= row < y1 else [(0, width)]
        for s, e in spans:
            if e > s:
                total += sum(map(abs, map(operator.sub, ra[s:e], rb[s:e])))
                count += e - s
    return total / count


def _scaled(
    name: str, box: tuple[float, float, float, float], grow: float
) -> tuple[int, int, int, int]:
    """``box`` (x0, y0, x1, y1 in source pixels) in rendition pixels, grown by ``grow``."""
    scale, ox, oy = PLACEMENT[name]
    width, height = SIZES[name]
    x0, y0, x1, y1 = box
    return (
        max(0, math.floor(ox + x0 * scale - grow)),
        max(0, math.floor(oy + y0 * scale - grow)),
        min(width, math.ceil(ox + x1 * scale + grow)),
        min(height, math.ceil(oy + y1 * scale + grow)),
    )


def _render(clip: Path, out: Path, plan: EditPlan, profiles: tuple[Any, ...] = PROFILES) -> Any:
    return process(clip, out, plan, profiles)


#: The renders start half a second in: keyframe and range times are source times.
TRIM = 0.5


@pytest.fixture(scope="module")
def renders(moving_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("renders")
    plan = EditPlan(
        trim_start=TRIM,
        regions=(Track(keyframes=KEYS, start=0.0, end=3.0),),
        audio_ranges=(AudioRange(1.0, 1.5, "mute"), AudioRange(2.0, 2.5, "bleep")),
    )
    return {
        "plan": plan,
        "plain": _render(moving_clip, root / "plain", EditPlan(trim_start=TRIM)),
        "tracked": _render(moving_clip, root / "tracked", plan),
        "root": root,
    }


def test_track_blurs_the_moving_patch_in_every_frame_of_every_rendition(
    renders: dict[str, Any],
) -> None:
    root = renders["root"]
    for name, (width, height) in SIZES.items():
        plain = _frames(root / "plain" / f"{name}.mp4", width, height)
        tracked = _frames(root / "tracked" / f"{name}.mp4", width, height)
        assert len(plain) == len(tracked) == FPS * (SECONDS - TRIM), name
        for n, (before, after) in enumerate(zip(plain, tracked, strict=True)):
            t = TRIM + n / FPS
            px, py = _patch_at(t)
            inside = _scaled(name, (px + 4, py + 4, px + PATCH - 4, py + PATCH - 4), -1)
            sharp, blurred = _sharpness(before, width, inside), _sharpness(after, width, inside)
            assert sharp > 20, (name, n, sharp)  # the checkerboard is there, and sharp
            assert blurred < 0.1 * sharp, (name, n, sharp, blurred)
            bx, by, bw, bh = _box_at(t)
            # Grown by the renditions' scaler reach and the box's even edges.
            covered = _scaled(name, (bx, by, bx + bw, by + bh), 6)
            assert _outside_difference(before, after, width, height, covered) < 1.0, (name, n)


@pytest.mark.parametrize("effect", ["pixelate", "box"])
def test_track_pixelate_and_box_cover_the_moving_patch(
    moving_clip: Path, tmp_path: Path, effect: str
) -> None:
    plan = EditPlan(regions=(Track(keyframes=KEYS, effect=effect),))  # type: ignore[arg-type]
    _render(moving_clip, tmp_path, plan, PROFILES[:1])
    for n, frame in enumerate(_frames(tmp_path / "full.mp4", W, H)):
        px, py = _patch_at(n / FPS)
        x0, y0, x1, y1 = round(px) + 4, round(py) + 4, round(px) + PATCH - 4, round(py) + PATCH - 4
        values = [frame[row * W + col] for row in range(y0, y1) for col in range(x0, x1)]
        if effect == "box":
            assert max(values) <= 20, (n, max(values))  # black (16) but for coding noise
            continue
        # Blocks of at least a sixth of the 72-104 px box: the 8 px squares are gone,
        # and what is left changes only at block edges.
        assert _sharpness(frame, W, (x0, y0, x1, y1)) < 4, n
        line = frame[((y0 + y1) // 2) * W + x0 : ((y0 + y1) // 2) * W + x1]
        steps = sum(1 for a, b in zip(line, line[1:], strict=False) if abs(a - b) > 8)
        assert steps <= 4, (n, steps)


def _samples(path: Path) -> list[float]:
    raw = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-ac", "1", "-ar", "48000", "-f", "s16le", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return [v / 32768 for v in struct.unpack(f"<{len(raw) // 2}h", raw)]


def _level(samples: list[float], start: float, end: float, hz: float) -> float:
    """Amplitude of the ``hz`` component between ``start`` and ``end`` (Goertzel)."""
    piece = samples[int(start * 48000) : int(end * 48000)]
    k = 2 * math.cos(2 * math.pi * hz / 48000)
    s1 = s2 = 0.0
    for v in piece:
        s1, s2 = v + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / len(piece)


def test_track_audio_ranges_mute_and_bleep_only_their_time(renders: dict[str, Any]) -> None:
    # Times below are source seconds; the render starts at TRIM.
    samples = _samples(renders["root"] / "tracked" / "full.mp4")

    def level(start: float, end: float, hz: float) -> float:
        return _level(samples, start - TRIM, end - TRIM, hz)

    # The source is a mono 440 Hz tone at amplitude 1/8 (lavfi sine's default); made
    # stereo at -3 dB a channel and read back as their mean, 0.125 / sqrt(2).
    before = level(0.55, 0.95, 440)
    assert abs(before - 0.125 / math.sqrt(2)) < 0.005
    muted = samples[int((1.03 - TRIM) * 48000) : int((1.47 - TRIM) * 48000)]
    assert max(abs(v) for v in muted) < 0.002
    assert level(2.03, 2.47, 440) < 0.01 * before  # the name is gone
    assert abs(level(2.03, 2.47, 1000) - 0.25) < 0.01  # the tone, -12 dBFS
    assert level(1.6, 1.9, 440) > 0.9 * before  # between the ranges, as it was
    assert level(2.6, 2.9, 440) > 0.9 * before and level(2.6, 2.9, 1000) < 0.01


def test_track_manifest_records_the_tracks_and_its_command_reproduces_the_output(
    renders: dict[str, Any], tmp_path: Path
) -> None:
    manifest = renders["tracked"]
    assert EditPlan.from_dict(manifest.plan) == renders["plan"]
    assert manifest.plan["regions"][0]["keyframes"][1] == {
        "t": 1.5, "x": 250, "y": 120, "w": 104, "h": 104
    }  # fmt: skip
    # The command wrote into a work directory since removed: point it at a new one.
    argv = list(manifest.command)
    work = next(a for a in argv if a.endswith("/full.mp4"))[len("file:") : -len("/full.mp4")]
    subprocess.run([a.replace(work, str(tmp_path)) for a in argv], check=True, capture_output=True)
    for output in manifest.outputs:
        if output.role == "video":
            data = (tmp_path / output.file).read_bytes()
            assert hashlib.sha256(data).hexdigest() == output.sha256, output.file


def test_track_many_moving_tracks_render_in_one_pass(moving_clip: Path, tmp_path: Path) -> None:
    """Every region at the keyframe cap per track of the plan-wide budget, so ffmpeg
    parses the longest expressions the plan allows (and nothing but the graph ran)."""
    per_track = MAX_PLAN_KEYFRAMES // MAX_REGIONS
    regions = tuple(
        Track(
            keyframes=tuple(
                Keyframe(i * SECONDS / per_track, (j * 17 + i * 3) % 500, (j * 11 + i) % 250,
                         40 + i % 9, 30 + j % 7)
                for i in range(per_track)
            ),
            effect=("blur", "pixelate", "box")[j % 3],
        )
        for j in range(MAX_REGIONS)
    )  # fmt: skip
    manifest = _render(moving_clip, tmp_path, EditPlan(regions=regions), PROFILES[1:2])
    assert manifest.command.count("-i") == 1
    assert [o.file for o in manifest.outputs] == ["half.mp4"]
