"""Probe a file with ffprobe and decide whether we accept it.

Threats answered here, for files written by an attacker (tip attachments are):

* a playlist, concat script, DASH manifest or image sequence renamed ``.mp4`` that
  makes ffmpeg open other local files or URLs: only allow-listed demuxers may be used
  (``-format_whitelist``), only the ``file`` protocol (``-protocol_whitelist``);
* a file name that ffmpeg would read as a protocol (``http:``, ``concat:``) or an
  option (``-i``): the path is made absolute and passed as ``file:`` + path;
* a stream that reaches a rarely used decoder: ``-codec_whitelist``;
* resource exhaustion: file size, frame size, duration and stream count are bounded
  before any decoding, ffprobe runs under a memory limit and a timeout.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from .errors import PipelineError, Rejected
from .limits import (
    ALLOWED_AUDIO_CODECS,
    ALLOWED_FORMATS,
    ALLOWED_IMAGE_CODECS,
    ALLOWED_IMAGE_FORMATS,
    ALLOWED_VIDEO_CODECS,
    DEFAULT_LIMITS,
    Limits,
    decoder_whitelist,
)
from .runner import find_tool, run_tool

_PROBE_OUTPUT_LIMIT = 4 * 1024 * 1024
_INTERLACED_FIELD_ORDERS = frozenset({"tt", "bb", "tb", "bt"})
_ATTACHED_PICTURE_CODECS = frozenset({"mjpeg", "png"})
#: Watermark images are small logos; anything bigger is a mistake or an attack.
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGE_SIDE = 4096


@dataclass(frozen=True)
class VideoStream:
    index: int
    codec: str
    profile: str | None
    width: int
    height: int
    #: Size of the picture as shown: pixel aspect ratio and display rotation applied.
    #: Blur regions are given in this coordinate space.
    display_width: int
    display_height: int
    #: Clockwise degrees (0, 90, 180, 270) ffmpeg turns the picture to show it upright.
    rotation: int
    sample_aspect_ratio: str
    pix_fmt: str | None
    frame_rate: float
    variable_frame_rate: bool
    field_order: str
    interlaced: bool


@dataclass(frozen=True)
class AudioStream:
    index: int
    codec: str
    sample_rate: int
    channels: int
    channel_layout: str | None


@dataclass(frozen=True)
class MediaInfo:
    path: str
    #: The demuxer ffprobe chose by content, e.g. ``mov`` (MP4/MOV), ``matroska``.
    container: str
    format_name: str
    duration_s: float
    size_bytes: int
    bit_rate: int | None
    stream_count: int
    video: VideoStream
    audio: AudioStream | None
    #: Subtitle, data and attachment streams, and extra audio/video: counted, not used.
    ignored_streams: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def input_url(path: str | os.PathLike[str]) -> str:
    """The only form in which a path reaches ffmpeg: ``file:`` + absolute path.

    Threat: a relative name such as ``concat:a|b``, ``http://...`` or ``-f`` would be
    read by ffmpeg as a protocol or an option; with ``file:`` and a leading ``/`` it
    can only be a local file name.
    """
    return "file:" + os.path.abspath(os.fspath(path))


def _check_regular_file(path: str, max_bytes: int) -> int:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise Rejected("the file does not exist") from None
    except OSError as exc:
        raise Rejected(f"the file cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        # Threat: a FIFO or device would make ffprobe block or read endless data.
        raise Rejected("not a regular file")
    if st.st_size == 0:
        raise Rejected("the file is empty")
    if st.st_size > max_bytes:
        raise Rejected(
            f"the file is {_human_bytes(st.st_size)}, over the limit of {_human_bytes(max_bytes)}"
        )
    return st.st_size


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


_REFUSED_CODEC = re.compile(r"Codec \(([A-Za-z0-9_-]{1,32})\) not on whitelist")
_UNKNOWN_REASON = "not a video format we accept, or the file is damaged"


def _sniff_reason(path: str) -> str:
    """Say what a file is when no allowed demuxer accepted it.

    Only Python reads these bytes; no ffmpeg component is ever run on a file that the
    allow-listed demuxers refused.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        head = b""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"#EXTM3U") or b"#EXT-X-" in head:
        return "playlists (HLS/M3U) are not accepted; upload the video file itself"
    if text.startswith(b"ffconcat") or text.startswith(b"file ") or text.startswith(b"file '"):
        return "ffmpeg concat scripts are not accepted; upload the video file itself"
    if text.startswith(b"<?xml") or text.startswith(b"<MPD") or text.startswith(b"<"):
        return "XML and HTML documents (such as DASH manifests) are not accepted"
    for magic, kind in (
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"BM", "a bitmap image"),
        (b"%PDF", "a PDF document"),
        (b"PK\x03\x04", "a ZIP archive"),
    ):
        if head.startswith(magic):
            return f"this is {kind}, not a video"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "this is a WebP image, not a video"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "this is a text file, not a video"
    return _UNKNOWN_REASON


def _run_ffprobe(
    url: str,
    limits: Limits,
    formats: frozenset[str],
    codecs: frozenset[str],
    force_format: str | None = None,
) -> Any:
    argv = [
        find_tool("ffprobe"),
        "-v",
        "error",
        "-hide_banner",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        ",".join(sorted(formats)),
        "-codec_whitelist",
        decoder_whitelist(codecs),
        "-probesize",
        str(limits.probesize_bytes),
        "-analyzeduration",
        str(int(limits.analyzeduration_s * 1_000_000)),
        "-of",
        "json",
        "-show_format",
        "-show_streams",
        *(["-f", force_format] if force_format else []),
        url,
    ]
    result = run_tool(
        argv,
        timeout_s=limits.probe_timeout_s,
        memory_bytes=limits.memory_bytes,
        capture_stdout_limit=_PROBE_OUTPUT_LIMIT,
        nice=limits.nice,
    )
    if result.returncode != 0:
        return result.log
    try:
        data = json.loads(result.stdout or b"{}")
    except ValueError:
        raise PipelineError("ffprobe returned unreadable output", command=argv) from None
    if not isinstance(data, dict) or "format" not in data:
        return result.log
    return data


def _failure_reason(log: str, path: str) -> str:
    refused_codec = _REFUSED_CODEC.search(log)
    if refused_codec:
        # ffprobe itself refused to open a decoder outside -codec_whitelist.
        return f"the codec {refused_codec.group(1)} is not accepted"
    sniffed = _sniff_reason(path)
    if sniffed != _UNKNOWN_REASON:
        return sniffed
    if "moov atom not found" in log:
        return "the file is incomplete or damaged (its index is missing; was it cut short?)"
    if "not on whitelist" in log or "Invalid data found" in log:
        return _UNKNOWN_REASON
    if "Cannot allocate memory" in log:
        return "the file needs more memory to read than allowed"
    return "the file could not be read as a video (damaged or unsupported)"


def _fraction(value: Any) -> Fraction | None:
    try:
        num, _, den = str(value).replace(":", "/").partition("/")
        frac = Fraction(int(num), int(den or 1))
    except (ValueError, ZeroDivisionError):
        return None
    return frac if frac > 0 else None


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result == result and result not in (float("inf"), float("-inf")) else None


def _rotation(stream: dict[str, Any]) -> int:
    """Clockwise degrees ffmpeg's autorotate turns the picture.

    ffprobe reports the display matrix angle counter-clockwise; ffmpeg rotates by its
    negation. Older muxers only leave a ``rotate`` tag, which is clockwise already.
    """
    for side in stream.get("side_data_list") or ():
        if isinstance(side, dict) and "rotation" in side:
            angle = _float(side["rotation"])
            if angle is not None:
                return int(round(-angle / 90.0)) * 90 % 360
    tag = _float((stream.get("tags") or {}).get("rotate"))
    if tag is not None:
        return int(round(tag / 90.0)) * 90 % 360
    return 0


def _video_stream(stream: dict[str, Any], limits: Limits) -> VideoStream:
    codec = str(stream.get("codec_name") or "unknown")
    if codec not in ALLOWED_VIDEO_CODECS:
        raise Rejected(f"the video codec {codec} is not accepted")
    width = int(stream.get("width") or 0)
    height = int(stream.get("height") or 0)
    if width <= 0 or height <= 0:
        raise Rejected("the frame size of the video cannot be read (damaged file?)")
    if width > limits.max_width or height > limits.max_height:
        raise Rejected(
            f"the frame size {width}x{height} is over the limit of "
            f"{limits.max_width}x{limits.max_height}"
        )
    sar = _fraction(stream.get("sample_aspect_ratio")) or Fraction(1)
    if not Fraction(1, 4) <= sar <= 4:
        raise Rejected("the pixel aspect ratio of the video is not plausible (damaged file?)")
    rotation = _rotation(stream)
    display_width = max(2, round(width * sar))
    display_height = height
    if rotation in (90, 270):
        display_width, display_height = display_height, display_width
    avg = _fraction(stream.get("avg_frame_rate"))
    real = _fraction(stream.get("r_frame_rate"))
    rate = avg or real or Fraction(25)
    if rate > 1000:
        raise Rejected("the frame rate of the video is not plausible (damaged file?)")
    field_order = str(stream.get("field_order") or "unknown")
    return VideoStream(
        index=int(stream["index"]),
        codec=codec,
        profile=stream.get("profile"),
        width=width,
        height=height,
        display_width=display_width,
        display_height=display_height,
        rotation=rotation,
        sample_aspect_ratio=f"{sar.numerator}:{sar.denominator}",
        pix_fmt=stream.get("pix_fmt"),
        frame_rate=round(float(rate), 3),
        # r_frame_rate is the lowest rate that represents every timestamp; when the
        # average differs, frames are not evenly spaced (phones, screen recorders).
        variable_frame_rate=bool(avg and real and abs(float(avg) - float(real)) > 0.01),
        field_order=field_order,
        interlaced=field_order in _INTERLACED_FIELD_ORDERS,
    )


def _audio_stream(stream: dict[str, Any]) -> AudioStream:
    codec = str(stream.get("codec_name") or "unknown")
    if codec not in ALLOWED_AUDIO_CODECS:
        raise Rejected(f"the audio codec {codec} is not accepted")
    return AudioStream(
        index=int(stream["index"]),
        codec=codec,
        sample_rate=int(stream.get("sample_rate") or 0),
        channels=int(stream.get("channels") or 0),
        channel_layout=stream.get("channel_layout"),
    )


def probe(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> MediaInfo:
    """Probe ``path`` and return what it holds, or raise :class:`Rejected` saying why not."""
    abspath = os.path.realpath(os.fspath(path))
    size = _check_regular_file(abspath, limits.max_file_bytes)
    data = _run_ffprobe(
        input_url(abspath), limits, ALLOWED_FORMATS, ALLOWED_VIDEO_CODECS | ALLOWED_AUDIO_CODECS
    )
    if isinstance(data, str):
        raise Rejected(_failure_reason(data, abspath))

    fmt = data.get("format") or {}
    format_name = str(fmt.get("format_name") or "")
    # Defence in depth: -format_whitelist already limited the demuxers ffprobe tried.
    if not set(format_name.split(",")) & ALLOWED_FORMATS:
        raise Rejected(f"the container format {format_name or 'unknown'} is not accepted")
    streams = [s for s in data.get("streams") or () if isinstance(s, dict)]
    stream_count = max(len(streams), int(fmt.get("nb_streams") or 0))
    if stream_count > limits.max_streams:
        raise Rejected(
            f"the file has {stream_count} streams, over the limit of {limits.max_streams}"
        )

    video: VideoStream | None = None
    audio: AudioStream | None = None
    used = 0
    for stream in streams:
        kind = stream.get("codec_type")
        attached = (stream.get("disposition") or {}).get("attached_pic") == 1
        if kind == "video" and attached:
            if stream.get("codec_name") not in _ATTACHED_PICTURE_CODECS:
                raise Rejected(
                    f"the cover picture codec {stream.get('codec_name')} is not accepted"
                )
        elif kind == "video":
            parsed = _video_stream(stream, limits)
            if video is None:
                video, used = parsed, used + 1
        elif kind == "audio":
            parsed_audio = _audio_stream(stream)
            if audio is None:
                audio, used = parsed_audio, used + 1
    if video is None:
        raise Rejected("the file has no video stream")

    duration = _float(fmt.get("duration"))
    if duration is None:
        duration = _float(next(s for s in streams if s.get("index") == video.index).get("duration"))
    if duration is None or duration <= 0:
        raise Rejected("the length of the video cannot be determined (damaged file?)")
    if duration > limits.max_duration_s:
        raise Rejected(
            f"the video is {duration:.0f} s long, over the limit of {limits.max_duration_s:.0f} s"
        )
    bit_rate = _float(fmt.get("bit_rate"))
    return MediaInfo(
        path=abspath,
        container=format_name.split(",")[0],
        format_name=format_name,
        duration_s=round(duration, 6),
        size_bytes=size,
        bit_rate=int(bit_rate) if bit_rate is not None else None,
        stream_count=stream_count,
        video=video,
        audio=audio,
        ignored_streams=stream_count - used,
    )


@dataclass(frozen=True)
class ImageInfo:
    path: str
    container: str
    codec: str
    width: int
    height: int


def _image_format(path: str) -> str | None:
    """The single-image demuxer for ``path`` by its magic bytes.

    Forcing it matters: left to probe a ``.png`` name, ffmpeg picks the image2 demuxer,
    which expands ``%d`` sequences and globs in file names (threat: reading other
    files); the ``*_pipe`` demuxers read exactly one file.
    """
    with open(path, "rb") as f:
        head = f.read(8)
    if head == b"\x89PNG\r\n\x1a\n":
        return "png_pipe"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg_pipe"
    return None


def probe_image(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> ImageInfo:
    """Probe a watermark image (PNG or JPEG) with the same hardening as videos."""
    abspath = os.path.realpath(os.fspath(path))
    _check_regular_file(abspath, min(limits.max_file_bytes, MAX_IMAGE_BYTES))
    container = _image_format(abspath)
    if container is None:
        raise Rejected("the watermark must be a PNG or JPEG image")
    data = _run_ffprobe(
        input_url(abspath), limits, ALLOWED_IMAGE_FORMATS, ALLOWED_IMAGE_CODECS, container
    )
    if isinstance(data, str):
        raise Rejected("the watermark must be a PNG or JPEG image")
    fmt = str((data.get("format") or {}).get("format_name") or "")
    streams = [s for s in data.get("streams") or () if isinstance(s, dict)]
    if fmt not in ALLOWED_IMAGE_FORMATS or len(streams) != 1:
        raise Rejected("the watermark must be a PNG or JPEG image")
    stream = streams[0]
    codec = str(stream.get("codec_name") or "")
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    if codec not in ALLOWED_IMAGE_CODECS or width <= 0 or height <= 0:
        raise Rejected("the watermark must be a PNG or JPEG image")
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
        raise Rejected(f"the watermark is {width}x{height}, over {MAX_IMAGE_SIDE} pixels a side")
    return ImageInfo(path=abspath, container=fmt, codec=codec, width=width, height=height)


def probe_output(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Duration and picture size of a file we wrote ourselves (for the manifest).

    Our own outputs get the same hardened ffprobe: the pipeline never runs an
    unrestricted parser, not even on files it believes it made.
    """
    is_image = os.fspath(path).endswith(".jpg")
    data = _run_ffprobe(
        input_url(path),
        limits,
        ALLOWED_IMAGE_FORMATS if is_image else ALLOWED_FORMATS,
        frozenset({"mjpeg"}) if is_image else frozenset({"h264", "aac"}),
        "jpeg_pipe" if is_image else None,
    )
    if isinstance(data, str):
        raise PipelineError(f"cannot read back the output {os.path.basename(path)}", log=data)
    return data
