"""Build the one ffmpeg command that makes every rendition from a single decode.

The source is decoded once; its frames pass through the edits (deinterlace, square
pixels, blurs, caption, watermark), then a ``split`` feeds one branch per output. All
sizes are computed here in Python, from the probe, so the manifest and tests know
exactly what ffmpeg was asked for and nothing depends on ffmpeg's rounding.

Commands are built with ffmpeg-python and compiled to an argv; ``runner`` runs them.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import ffmpeg

from .errors import PipelineError
from .limits import (
    ALLOWED_AUDIO_CODECS,
    ALLOWED_FORMATS,
    ALLOWED_IMAGE_CODECS,
    ALLOWED_VIDEO_CODECS,
    Limits,
    decoder_whitelist,
)
from .plan import AudioRange, EditPlan, Keyframe, Track
from .probe import ImageInfo, MediaInfo, input_url
from .profiles import PosterProfile, Profile, SpriteProfile, VideoProfile
from .runner import find_tool

OutputRole = Literal["video", "poster", "sprite", "sprite_index"]
_SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: Debian's fonts-dejavu-core; the only font drawtext is pointed at by default.
DEFAULT_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#: Blur = shrink the box until its shorter side is this many samples, then scale it
#: back smoothly. Relative to the box, not a fixed factor: a face is unrecognisable
#: once it is a handful of samples across (people still name familiar faces from
#: Harmon's 14x18-block portraits, not from 4x5), and a fixed factor left a 400 px
#: face 33 samples, which is recognisable. Done once on the source frame before the
#: split, so every rendition, however large, shows only these samples.
BLUR_CELLS = 4
#: Pixelate = the same shrink with hard-edged blocks; blocks keep their edges, so a
#: few more are allowed, still far below recognisable (and below Harmon's 14).
PIXELATE_CELLS = 6
#: A solid box is limited-range black (Y 16, Cb Cr 128), what drawbox's black is.
BOX_YUV = {"y": "16", "u": "128", "v": "128"}


@dataclass(frozen=True)
class OutputSpec:
    """One file the command (or the pipeline, for the sprite index) writes."""

    name: str
    filename: str
    role: OutputRole
    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class SpriteLayout:
    interval_s: float
    thumb_width: int
    thumb_height: int
    columns: int
    rows: int
    count: int
    duration_s: float

    def to_vtt(self, image_name: str) -> str:
        """WebVTT cues mapping each interval to its tile (``sprite.jpg#xywh=x,y,w,h``)."""
        lines = ["WEBVTT", ""]
        for i in range(self.count):
            start = i * self.interval_s
            end = min((i + 1) * self.interval_s, self.duration_s)
            x = (i % self.columns) * self.thumb_width
            y = (i // self.columns) * self.thumb_height
            lines.append(f"{_vtt_time(start)} --> {_vtt_time(end)}")
            lines.append(f"{image_name}#xywh={x},{y},{self.thumb_width},{self.thumb_height}")
            lines.append("")
        return "\n".join(lines)


@dataclass(frozen=True)
class Command:
    argv: list[str]
    outputs: tuple[OutputSpec, ...]
    duration_s: float
    sprite: SpriteLayout | None = None


def _vtt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _even(value: float, cap: int) -> int:
    """Nearest even integer to ``value``, at least 2, at most ``cap`` rounded down to even."""
    return max(2, min(2 * round(value / 2), cap - cap % 2))


def _num(value: float) -> str:
    """A number for ffmpeg options: no exponent, no trailing zeros."""
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def fit_size(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """Even size of a ``width`` x ``height`` picture fitted in a box whose orientation
    follows the picture's, never larger than the picture."""
    if height > width:
        box_w, box_h = box_h, box_w
    scale = min(box_w / width, box_h / height, 1.0)
    return _even(width * scale, min(box_w, width)), _even(height * scale, min(box_h, height))


def fit_eligible(profile: VideoProfile, width: int, height: int) -> bool:
    """A ``fit`` profile is made only if the source's short side reaches the profile's."""
    return min(width, height) >= profile.height


def choose_profiles(profiles: Sequence[Profile], info: MediaInfo) -> list[Profile]:
    """The profiles to make for ``info``: ``fit`` ones only at or below the source size.

    If the source is smaller than every requested ``fit`` profile, the smallest one is
    still made, at the source's own size, so there is always a web rendition.
    """
    width, height = info.video.display_width, info.video.display_height
    fits = [p for p in profiles if isinstance(p, VideoProfile) and p.kind == "fit"]
    eligible = [p for p in fits if fit_eligible(p, width, height)]
    fallback = min(fits, key=lambda p: p.height) if fits and not eligible else None
    chosen = []
    for profile in profiles:
        if not _SAFE_NAME.match(profile.name):
            raise PipelineError(f"profile name {profile.name!r} is not a safe file name")
        is_fit = isinstance(profile, VideoProfile) and profile.kind == "fit"
        if not is_fit or profile in eligible or profile is fallback:
            chosen.append(profile)
    names = [p.name for p in chosen]
    if len(set(names)) != len(names):
        raise PipelineError("profile names must be unique")
    return chosen


def sprite_layout(
    profile: SpriteProfile, duration_s: float, width: int, height: int
) -> SpriteLayout:
    interval = max(profile.interval_s, duration_s / profile.max_thumbs)
    # A rational interval with a small denominator so that ffmpeg's fps filter and the
    # cue times agree exactly.
    interval = float(Fraction(interval).limit_denominator(100))
    count = max(1, math.ceil(duration_s / interval - 1e-6))
    thumb_w = _even(min(profile.thumb_width, width), width)
    thumb_h = _even(thumb_w * height / width, height)
    columns = min(profile.columns, count)
    return SpriteLayout(
        interval_s=interval,
        thumb_width=thumb_w,
        thumb_height=thumb_h,
        columns=columns,
        rows=math.ceil(count / columns),
        count=count,
        duration_s=duration_s,
    )


def _input(info: MediaInfo, limits: Limits, start: float | None, length: float | None) -> Any:
    """The source as an ffmpeg input, with every hardening option on it.

    ``-f`` forces the demuxer the probe found (and the allow-list passed), so the real
    run cannot probe its way to another one; the white-lists are repeated because
    they also bind any file the demuxer itself tries to open.
    """
    kwargs: dict[str, Any] = {
        "format": info.container,
        "protocol_whitelist": "file",
        "format_whitelist": ",".join(sorted(ALLOWED_FORMATS)),
        "codec_whitelist": decoder_whitelist(ALLOWED_VIDEO_CODECS | ALLOWED_AUDIO_CODECS),
        "probesize": str(limits.probesize_bytes),
        "analyzeduration": str(int(limits.analyzeduration_s * 1_000_000)),
    }
    if start:
        kwargs["ss"] = _num(start)
    if length is not None:
        kwargs["t"] = _num(length)
    # One decoding thread, always: measured on ffmpeg 5.1, with a frame-threaded
    # decoder the pixels reaching one rendition changed from run to run (and with the
    # worker's core count) whenever a fill rendition shared the graph; with one
    # thread every output is the same bytes on every run.
    kwargs["threads"] = "1"
    return ffmpeg.input(input_url(info.path), **kwargs)


def _normalised_video(source: Any, info: MediaInfo) -> Any:
    """Deinterlace, make pixels square, yuv420p: the frames every output starts from.

    Display rotation is applied by ffmpeg's autorotate (on by default, never turned off
    here) before the graph, so the frames arriving are already upright.
    """
    video = info.video
    stream = source[str(video.index)]
    if video.interlaced:
        stream = stream.filter("yadif", mode="send_frame", parity="auto", deint="all")
    upright = (
        (video.height, video.width) if video.rotation in (90, 270) else (video.width, video.height)
    )
    if upright != (video.display_width, video.display_height):
        stream = stream.filter("scale", video.display_width, video.display_height)
    return stream.filter("setsar", "1").filter("format", "yuv420p")


def _cells(width: int, height: int, effect: str) -> tuple[int, int]:
    """The size a ``width`` x ``height`` box is shrunk to (see :data:`BLUR_CELLS`)."""
    cells = BLUR_CELLS if effect == "blur" else PIXELATE_CELLS
    short = min(width, height)
    return (
        min(width, max(2, round(cells * width / short))),
        min(height, max(2, round(cells * height / short))),
    )


def _enable(track: Track, clip_start: float) -> dict[str, str]:
    if track.start is None and track.end is None:
        return {}
    begin = max(0.0, (track.start or 0.0) - clip_start)
    end = (track.end - clip_start) if track.end is not None else 1e9
    return {"enable": f"between(t,{_num(begin)},{_num(end)})"}


def _region(stream: Any, track: Track, info: MediaInfo, clip_start: float) -> Any:
    if track.moving:
        return _moving_region(stream, track, info, clip_start)
    width, height = info.video.display_width, info.video.display_height
    if track.whole_frame:
        x, y, w, h = 0, 0, width, height
    else:
        box = track.keyframes[0]
        # Grow to even edges: yuv420p chroma is shared by 2x2 pixels, and an odd edge
        # would leave a half-covered column next to the face.
        x, y = box.x - box.x % 2, box.y - box.y % 2
        w = min(width, box.x + box.w + (box.x + box.w) % 2) - x
        h = min(height, box.y + box.h + (box.y + box.h) % 2) - y
    if track.effect == "box":
        return stream.filter(
            "drawbox", x=x, y=y, w=w, h=h, color="black", t="fill", **_enable(track, clip_start)
        )
    parts = stream.filter_multi_output("split")
    cells_w, cells_h = _cells(w, h, track.effect)
    patch = (
        parts[1]
        .filter("crop", w, h, x, y)
        .filter("scale", cells_w, cells_h, flags="area")
        .filter("scale", w, h, flags="bilinear" if track.effect == "blur" else "neighbor")
    )
    return ffmpeg.overlay(parts[0], patch, x=x, y=y, **_enable(track, clip_start))


def _lerp(times: Sequence[float], values: Sequence[int]) -> str:
    """An ffmpeg expression of ``t``: ``values`` at ``times``, linear in between, held
    before the first and after the last. A sum of clamped ramps rather than nested
    ifs: flat, so its length (and parse depth) grows by one term a keyframe."""
    terms = [str(values[0])]
    for (t0, v0), (t1, v1) in zip(
        zip(times, values, strict=True), zip(times[1:], values[1:], strict=True), strict=False
    ):
        if v1 != v0:
            terms.append(f"{_num((v1 - v0) / (t1 - t0))}*clip(t-{_num(t0)},0,{_num(t1 - t0)})")
    return "+".join(terms).replace("+-", "-")


def _moving_region(stream: Any, track: Track, info: MediaInfo, clip_start: float) -> Any:
    """A box that moves and resizes, frame by frame, in the same graph.

    The size of a link is fixed, so the patch is cut as a fixed window (the largest
    box) that follows the box's corner; it is shrunk to the effect's samples and
    scaled, per frame (``eval=frame``), to the box's size at that frame's time, then
    laid at the box's corner. Every position and size is an expression of the frame
    time written into the command, so the recorded command alone reproduces the
    output.
    """
    width, height = info.video.display_width, info.video.display_height
    keys: tuple[Keyframe, ...] = track.keyframes
    times = [k.t - clip_start for k in keys]
    x, y = _lerp(times, [k.x for k in keys]), _lerp(times, [k.y for k in keys])
    w, h = _lerp(times, [k.w for k in keys]), _lerp(times, [k.h for k in keys])
    # Crop and overlay floor an odd corner to even on yuv420p; the patch is one
    # pixel wider than the box, rounded up to even, so from the floored corner it
    # still reaches the box's far edge (overlay clips it at the frame's edge).
    box_w, box_h = f"2*ceil(({w}+1)/2)", f"2*ceil(({h}+1)/2)"
    window_w = min(width, max(k.w for k in keys) + 2)
    window_h = min(height, max(k.h for k in keys) + 2)
    parts = stream.filter_multi_output("split")
    patch = parts[1].filter("crop", window_w, window_h, x, y)
    if track.effect == "box":
        patch = patch.filter("scale", 2, 2, flags="area").filter("lutyuv", **BOX_YUV)
        flags = "neighbor"
    else:
        cells_w, cells_h = _cells(window_w, window_h, track.effect)
        patch = patch.filter("scale", cells_w, cells_h, flags="area")
        flags = "bilinear" if track.effect == "blur" else "neighbor"
    patch = patch.filter("scale", w=box_w, h=box_h, eval="frame", flags=flags)
    return ffmpeg.overlay(parts[0], patch, x=x, y=y, **_enable(track, clip_start))


def _caption(stream: Any, text_path: str, font_path: str, info: MediaInfo, longest: int) -> Any:
    width, height = info.video.display_width, info.video.display_height
    # DejaVu Sans averages ~0.55 em a character: keep the longest line inside the frame.
    size = max(8, min(height // 22, int(width * 0.92 / (0.55 * max(longest, 1)))))
    return stream.filter(
        "drawtext",
        fontfile=font_path,
        textfile=text_path,
        # Threat: text expansion would evaluate %{...} sequences typed by a user.
        expansion="none",
        fontsize=size,
        fontcolor="white",
        box=1,
        boxcolor="black@0.6",
        boxborderw=max(2, size // 3),
        line_spacing=max(1, size // 4),
        x="(w-text_w)/2",
        y=f"h-text_h-{max(4, size)}",
        fix_bounds=1,
    )


def _watermark(
    stream: Any, image: ImageInfo, plan_corner: str, fraction: float, info: MediaInfo
) -> Any:
    width, height = info.video.display_width, info.video.display_height
    logo_w = _even(width * fraction, width)
    logo_h = _even(logo_w * image.height / image.width, height)
    margin = 2 * round(min(width, height) * 0.02)
    x = margin if plan_corner.endswith("left") else width - logo_w - margin
    y = margin if plan_corner.startswith("top") else height - logo_h - margin
    logo = ffmpeg.input(
        input_url(image.path),
        format=image.container,
        protocol_whitelist="file",
        codec_whitelist=decoder_whitelist(ALLOWED_IMAGE_CODECS),
    ).video.filter("scale", logo_w, logo_h)
    return ffmpeg.overlay(stream, logo, x=max(0, x), y=max(0, y))


def _fit_branch(stream: Any, profile: VideoProfile, info: MediaInfo) -> tuple[Any, int, int]:
    width, height = fit_size(
        info.video.display_width, info.video.display_height, profile.width, profile.height
    )
    stream = _cap_fps(stream, profile, info)
    return stream.filter("scale", width, height).filter("setsar", "1"), width, height


def _fill_branch(stream: Any, profile: VideoProfile, info: MediaInfo) -> tuple[Any, int, int]:
    src_w, src_h = info.video.display_width, info.video.display_height
    canvas_w, canvas_h = profile.width, profile.height
    scale = min(canvas_w / src_w, canvas_h / src_h)
    if scale > 1:  # shrink the canvas rather than upscale the picture
        canvas_w, canvas_h = _even(canvas_w / scale, canvas_w), _even(canvas_h / scale, canvas_h)
        scale = min(canvas_w / src_w, canvas_h / src_h)
    fg_w, fg_h = _even(src_w * scale, canvas_w), _even(src_h * scale, canvas_h)
    x, y = (canvas_w - fg_w) // 4 * 2, (canvas_h - fg_h) // 4 * 2
    # The fill is blurred at 1/8 size then scaled up: the same look as a large blur
    # at a fraction of the cost.
    small_w, small_h = max(4, _even(canvas_w / 8, canvas_w)), max(4, _even(canvas_h / 8, canvas_h))
    cover = max(small_w / src_w, small_h / src_h)
    cover_w = max(small_w, 2 * math.ceil(src_w * cover / 2))
    cover_h = max(small_h, 2 * math.ceil(src_h * cover / 2))
    stream = _cap_fps(stream, profile, info)
    parts = stream.filter_multi_output("split")
    background = (
        parts[0]
        .filter("scale", cover_w, cover_h, flags="area")
        .filter("crop", small_w, small_h, (cover_w - small_w) // 2, (cover_h - small_h) // 2)
        .filter("boxblur", luma_radius=max(1, min(small_w, small_h) // 10), luma_power=2)
        .filter("scale", canvas_w, canvas_h, flags="bilinear")
    )
    foreground = parts[1].filter("scale", fg_w, fg_h)
    combined = ffmpeg.overlay(background, foreground, x=x, y=y).filter("setsar", "1")
    return combined, canvas_w, canvas_h


def _cap_fps(stream: Any, profile: VideoProfile, info: MediaInfo) -> Any:
    if info.video.frame_rate > profile.max_fps + 0.01:
        return stream.filter("fps", _num(profile.max_fps))
    return stream


def video_output_args(profile: VideoProfile, limits: Limits, with_audio: bool) -> dict[str, Any]:
    """H.264 High + AAC in a fast-start MP4 carrying no metadata from the source."""
    args: dict[str, Any] = {
        "format": "mp4",
        "c:v": "libx264",
        "profile:v": "high",
        "preset": profile.preset,
        "crf": str(profile.crf),
        "pix_fmt": "yuv420p",
        "force_key_frames": f"expr:gte(t,n_forced*{_num(profile.keyframe_interval_s)})",
        "movflags": "+faststart",
        # Evidence hygiene: no location, device, creation time or chapter from the
        # source, and no muxer or encoder version string in the container.
        "map_metadata": "-1",
        "map_chapters": "-1",
        "fflags": "+bitexact",
        "flags:v": "+bitexact",
        # Always explicit: x264's output depends on its thread count, so a count
        # chosen from the machine's cores would make the same command write different
        # bytes on different workers.
        "threads": str(limits.x264_threads),
    }
    if profile.max_bitrate_kbps:
        args.update(
            {
                "maxrate": f"{profile.max_bitrate_kbps}k",
                "bufsize": f"{2 * profile.max_bitrate_kbps}k",
            }
        )
    if with_audio:
        args.update({"c:a": "aac", "b:a": f"{profile.audio_bitrate_kbps}k", "flags:a": "+bitexact"})
    return args


#: The bleep: a 1 kHz tone at -12 dBFS, the broadcast convention, loud enough to be
#: heard as a deliberate cover, not so loud it clips once the source is gone.
BLEEP_HZ = 1000
BLEEP_GAIN = 0.25


def _audio_ranges(stream: Any, ranges: Sequence[AudioRange], clip_start: float) -> Any:
    """Silence each range, and add the tone in the bleeped ones, sample by sample.

    ``aeval`` evaluates its expression for every sample at that sample's time, so a
    range starts and ends on the sample, not on the edge of a 1024-sample frame
    (``volume``'s ``enable`` would leave up to 21 ms of a spoken name).
    """

    def inside(pieces: Sequence[AudioRange]) -> str:
        return "+".join(
            f"between(t,{_num(max(0.0, p.start - clip_start))},{_num(p.end - clip_start)})"
            for p in pieces
        )

    bleeps = [p for p in ranges if p.effect == "bleep"]
    tone = ""
    if bleeps:
        tone = f"+{_num(BLEEP_GAIN)}*sin({_num(2 * math.pi * BLEEP_HZ)}*t)*gt({inside(bleeps)},0)"
    exprs = "|".join(f"val({c})*eq({inside(ranges)},0){tone}" for c in range(2))
    return stream.filter("aeval", exprs=exprs, c="same")


def _audio(
    source: Any,
    info: MediaInfo,
    plan_audio: str,
    count: int,
    ranges: Sequence[AudioRange] = (),
    clip_start: float = 0.0,
) -> list[Any]:
    """``count`` copies of the edited audio (48 kHz stereo), or none."""
    if info.audio is None or plan_audio == "strip" or count == 0:
        return []
    stream = source[str(info.audio.index)]
    if plan_audio == "mute":
        stream = stream.filter("volume", "0")
    stream = stream.filter("aresample", "48000").filter(
        "aformat", sample_fmts="fltp", channel_layouts="stereo"
    )
    if ranges:
        stream = _audio_ranges(stream, ranges, clip_start)
    if count == 1:
        return [stream]
    parts = stream.filter_multi_output("asplit")
    return [parts[i] for i in range(count)]


def _global_args(limits: Limits) -> list[str]:
    args = ["-hide_banner", "-nostdin", "-v", "error", "-nostats", "-progress", "pipe:1"]
    args += ["-stats_period", "0.5"]
    # One filter-graph thread, always, for the same measured reason as the decoder's.
    args += ["-filter_complex_threads", "1"]
    return args


def build_renditions(
    info: MediaInfo,
    plan: EditPlan,
    profiles: Sequence[Profile],
    work_dir: str,
    limits: Limits,
    *,
    watermark: ImageInfo | None = None,
    font_path: str = DEFAULT_FONT,
) -> Command:
    """The single command writing every profile's output into ``work_dir``.

    ``plan`` must already be validated against ``info``; ``watermark`` is the probed
    image of ``plan.watermark``. The caption text is written to ``work_dir``.
    """
    clip_start, clip_end = plan.clip_range(info)
    duration = clip_end - clip_start
    source = _input(
        info, limits, clip_start or None, duration if plan.trim_end is not None else None
    )
    stream = _normalised_video(source, info)
    for track in plan.regions:
        stream = _region(stream, track, info, clip_start)
    if plan.caption is not None:
        if not os.path.isfile(font_path):
            raise PipelineError(
                f"captions need the font {font_path} (Debian package fonts-dejavu-core)"
            )
        text_path = os.path.join(work_dir, "caption.txt")
        with open(text_path, "w", encoding="utf-8") as f:
            f.write(plan.caption.text)
        longest = max(len(line) for line in plan.caption.lines)
        stream = _caption(stream, text_path, font_path, info, longest)
    if plan.watermark is not None:
        if watermark is None:
            raise PipelineError("the watermark image was not probed")
        stream = _watermark(
            stream, watermark, plan.watermark.corner, plan.watermark.width_fraction, info
        )

    chosen = choose_profiles(profiles, info)
    if not chosen:
        raise PipelineError("no profile to make")
    branches = stream.filter_multi_output("split") if len(chosen) > 1 else None
    videos = [p for p in chosen if isinstance(p, VideoProfile)]
    audio = iter(_audio(source, info, plan.audio, len(videos), plan.audio_ranges, clip_start))
    outputs: list[Any] = []
    specs: list[OutputSpec] = []
    sprite: SpriteLayout | None = None
    width, height = info.video.display_width, info.video.display_height
    for i, profile in enumerate(chosen):
        branch = branches[i] if branches is not None else stream
        path = "file:" + os.path.join(os.path.abspath(work_dir), profile.filename)
        if isinstance(profile, VideoProfile):
            build = _fit_branch if profile.kind == "fit" else _fill_branch
            video, out_w, out_h = build(branch, profile, info)
            streams = [video]
            audio_stream = next(audio, None)
            if audio_stream is not None:
                streams.append(audio_stream)
            outputs.append(
                ffmpeg.output(
                    *streams, path, **video_output_args(profile, limits, audio_stream is not None)
                )
            )
            specs.append(
                OutputSpec(profile.name, profile.filename, "video", "video/mp4", out_w, out_h)
            )
        elif isinstance(profile, PosterProfile):
            out_w, out_h = fit_size(width, height, profile.width, profile.height)
            poster = (
                # A one-second window: once it has passed, trim ends the branch and
                # split stops feeding it frames for the rest of the clip.
                branch.filter("trim", start=_num(plan.poster_offset(info)), duration="1")
                .filter("scale", out_w, out_h)
                .filter("setsar", "1")
            )
            outputs.append(_jpeg_output(poster, path, profile.quality))
            specs.append(
                OutputSpec(profile.name, profile.filename, "poster", "image/jpeg", out_w, out_h)
            )
        else:
            sprite = sprite_layout(profile, duration, width, height)
            tiles = (
                branch.filter(
                    "fps", str(Fraction(1) / Fraction(sprite.interval_s).limit_denominator(100))
                )
                .filter("scale", sprite.thumb_width, sprite.thumb_height)
                .filter("setsar", "1")
                .filter("tile", f"{sprite.columns}x{sprite.rows}")
            )
            outputs.append(_jpeg_output(tiles, path, profile.quality))
            specs.append(
                OutputSpec(
                    profile.name,
                    profile.filename,
                    "sprite",
                    "image/jpeg",
                    sprite.columns * sprite.thumb_width,
                    sprite.rows * sprite.thumb_height,
                )
            )
            specs.append(
                OutputSpec(
                    profile.name + "_index",
                    profile.index_filename,
                    "sprite_index",
                    "text/vtt",
                    0,
                    0,
                )
            )
    argv = _compile(outputs, limits)
    return Command(argv=argv, outputs=tuple(specs), duration_s=duration, sprite=sprite)


def _jpeg_output(stream: Any, path: str, quality: int) -> Any:
    # One frame through the image2 muxer in update mode: the file name is used as
    # given, never as a %d sequence pattern.
    return ffmpeg.output(
        stream,
        path,
        format="image2",
        update="1",
        # Bitexact leaves the encoder's version string out of the JPEG.
        **{
            "frames:v": "1",
            "c:v": "mjpeg",
            "q:v": str(quality),
            "fflags": "+bitexact",
            "flags:v": "+bitexact",
        },
    )


def _compile(outputs: list[Any], limits: Limits) -> list[str]:
    spec = ffmpeg.merge_outputs(*outputs) if len(outputs) > 1 else outputs[0]
    args: list[str] = ffmpeg.get_args(spec)
    return [find_tool("ffmpeg"), *_global_args(limits), "-y", *args]


def build_proxy(
    info: MediaInfo, output_path: str, limits: Limits, profile: VideoProfile
) -> Command:
    """The staff editor's proxy: the whole source, unedited, small, dense keyframes."""
    source = _input(info, limits, None, None)
    video, width, height = _fit_branch(_normalised_video(source, info), profile, info)
    streams = [video, *_audio(source, info, "keep", 1)]
    path = "file:" + os.path.abspath(output_path)
    output = ffmpeg.output(*streams, path, **video_output_args(profile, limits, len(streams) > 1))
    spec = OutputSpec(
        profile.name, os.path.basename(output_path), "video", "video/mp4", width, height
    )
    return Command(argv=_compile([output], limits), outputs=(spec,), duration_s=info.duration_s)
