"""The single-pass command: sizes computed in Python, one decode, hardened input."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from media_pipeline import DEFAULT_LIMITS, Caption, EditPlan, PipelineError
from media_pipeline.graph import build_renditions, choose_profiles, fit_size, sprite_layout
from media_pipeline.probe import AudioStream, MediaInfo, VideoStream
from media_pipeline.profiles import DEFAULT_PROFILES, SPRITE, VideoProfile, profiles_by_name


def _info(
    width: int, height: int, *, rotation: int = 0, interlaced: bool = False, audio: bool = True
) -> MediaInfo:
    dw, dh = (height, width) if rotation in (90, 270) else (width, height)
    video = VideoStream(0, "h264", "High", width, height, dw, dh, rotation, "1:1", "yuv420p", 30.0,
                        False, "tt" if interlaced else "progressive", interlaced)  # fmt: skip
    sound = AudioStream(1, "aac", 48000, 2, "stereo") if audio else None
    return MediaInfo("/src/in put.mp4", "mov", "mov,mp4", 60.0, 1000, None, 2, video, sound, 0)


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((1920, 1080), (1280, 720), (1280, 720)),
        ((1080, 1920), (1280, 720), (720, 1280)),  # portrait: the box turns with it
        ((640, 360), (1920, 1080), (640, 360)),  # never upscaled
        ((321, 241), (854, 480), (320, 240)),  # odd source: even output
        ((1440, 1080), (1280, 720), (960, 720)),  # 4:3 inside a 16:9 box
        ((427, 240), (854, 480), (426, 240)),
    ],
)
def test_fit_size_is_even_fitted_and_never_upscaled(
    size: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert fit_size(*size, *box) == expected


def test_choose_profiles_keeps_web_sizes_at_or_below_source_height() -> None:
    names = [p.name for p in choose_profiles(DEFAULT_PROFILES, _info(1280, 720))]
    assert names == ["web_720", "web_480", "square", "vertical", "poster", "sprite"]
    portrait = [p.name for p in choose_profiles(DEFAULT_PROFILES, _info(1920, 1080, rotation=90))]
    assert portrait[:3] == ["web_1080", "web_720", "web_480"]


def test_choose_profiles_makes_smallest_web_size_for_tiny_source() -> None:
    names = [p.name for p in choose_profiles(DEFAULT_PROFILES, _info(320, 240))]
    assert names == ["web_480", "square", "vertical", "poster", "sprite"]


def test_choose_profiles_refuses_unsafe_profile_names() -> None:
    evil = replace(DEFAULT_PROFILES[0], name="../../etc/x")
    with pytest.raises(PipelineError, match="safe file name"):
        choose_profiles((evil,), _info(1920, 1080))


def test_profile_refuses_preset_that_cannot_write_high_profile() -> None:
    with pytest.raises(ValueError, match="preset"):
        VideoProfile("x", "fit", 640, 360, preset="ultrafast")


def test_sprite_layout_covers_the_clip_with_at_most_max_thumbs() -> None:
    short = sprite_layout(SPRITE, 25.0, 1920, 1080)
    assert (short.interval_s, short.count, short.columns, short.rows) == (2.0, 13, 10, 2)
    assert (short.thumb_width, short.thumb_height) == (160, 90)
    long = sprite_layout(SPRITE, 3600.0, 1920, 1080)
    assert long.count <= SPRITE.max_thumbs and long.interval_s == 36.0
    cues = short.to_vtt("sprite.jpg").split("\n\n")
    assert cues[1] == "00:00:00.000 --> 00:00:02.000\nsprite.jpg#xywh=0,0,160,90"
    assert cues[-1].strip() == "00:00:24.000 --> 00:00:25.000\nsprite.jpg#xywh=320,90,160,90"


def test_build_renditions_uses_one_input_one_graph_and_split(tmp_path: Path) -> None:
    command = build_renditions(
        _info(1920, 1080), EditPlan(), DEFAULT_PROFILES, str(tmp_path), DEFAULT_LIMITS
    )
    argv = command.argv
    assert argv.count("-i") == 1 and argv.count("-filter_complex") == 1
    graph = argv[argv.index("-filter_complex") + 1]
    assert "split=7" in graph and "asplit=5" in graph
    assert argv[argv.index("-i") + 1] == "file:/src/in put.mp4"
    assert [o.filename for o in command.outputs] == [
        "web_1080.mp4", "web_720.mp4", "web_480.mp4", "square.mp4", "vertical.mp4",
        "poster.jpg", "sprite.jpg", "sprite.vtt",
    ]  # fmt: skip
    for flag in ("-map_metadata", "-movflags", "-profile:v"):
        assert argv.count(flag) == 5


def test_build_renditions_trims_on_input_and_deinterlaces(tmp_path: Path) -> None:
    plan = EditPlan(trim_start=2.5, trim_end=10.0)
    argv = build_renditions(
        _info(720, 576, interlaced=True), plan, DEFAULT_PROFILES, str(tmp_path), DEFAULT_LIMITS
    ).argv
    before_input = argv[: argv.index("-i")]
    assert before_input[before_input.index("-ss") + 1] == "2.5"
    assert before_input[before_input.index("-t") + 1] == "7.5"
    assert "yadif=deint=all:mode=send_frame:parity=auto" in argv[argv.index("-filter_complex") + 1]


def test_build_renditions_strip_audio_maps_no_audio(tmp_path: Path) -> None:
    argv = build_renditions(
        _info(1280, 720),
        EditPlan(audio="strip"),
        profiles_by_name(["web_720"]),
        str(tmp_path),
        DEFAULT_LIMITS,
    ).argv
    assert "-c:a" not in argv and "aresample" not in " ".join(argv)


def test_build_renditions_caption_needs_a_font(tmp_path: Path) -> None:
    plan = EditPlan(caption=Caption(("Case 1",)))
    with pytest.raises(PipelineError, match="font"):
        build_renditions(_info(640, 360), plan, DEFAULT_PROFILES, str(tmp_path), DEFAULT_LIMITS,
                         font_path=str(tmp_path / "missing.ttf"))  # fmt: skip


def test_build_renditions_writes_caption_to_a_file_not_the_graph(tmp_path: Path) -> None:
    text = "a'b:c;d[e]f,%{localtime}"
    plan = EditPlan(caption=Caption((text,)))
    argv = build_renditions(
        _info(640, 360), plan, DEFAULT_PROFILES, str(tmp_path), DEFAULT_LIMITS
    ).argv
    assert text not in " ".join(argv)
    assert (tmp_path / "caption.txt").read_text(encoding="utf-8") == text


def _threads_by_output(argv: list[str]) -> dict[str, str]:
    """The ``-threads`` value given to each output file (by its name)."""
    found, pending = {}, None
    for i, arg in enumerate(argv):
        if arg == "-threads":
            pending = argv[i + 1]
        elif arg.startswith("file:"):
            if argv[i - 1] != "-i":  # an input's own -threads is its decoder's
                found[Path(arg).name] = pending or "auto"
            pending = None
    return found


def test_build_renditions_gives_every_x264_encoder_an_explicit_thread_count(
    tmp_path: Path,
) -> None:
    # Automatic counts follow the worker's cores, and x264's output follows its count.
    command = build_renditions(_info(1280, 720), EditPlan(), DEFAULT_PROFILES, str(tmp_path),
                               DEFAULT_LIMITS)  # fmt: skip
    threads = _threads_by_output(command.argv)
    videos = {name: value for name, value in threads.items() if name.endswith(".mp4")}
    assert videos == {n: "4" for n in ("web_720.mp4", "web_480.mp4", "square.mp4", "vertical.mp4")}


def test_build_renditions_one_thread_holds_decoder_filters_and_encoders(tmp_path: Path) -> None:
    limits = replace(DEFAULT_LIMITS, threads=1)
    command = build_renditions(_info(1280, 720), EditPlan(), DEFAULT_PROFILES, str(tmp_path),
                               limits)  # fmt: skip
    argv = command.argv
    assert argv[argv.index("-filter_complex_threads") + 1] == "1"
    assert argv[argv.index("-i") - 2 : argv.index("-i")] == ["-threads", "1"]
    videos = {n: v for n, v in _threads_by_output(argv).items() if n.endswith(".mp4")}
    assert set(videos.values()) == {"1"} and len(videos) == 4
