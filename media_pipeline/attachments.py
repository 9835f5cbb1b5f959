"""Photos and videos a member of the public attaches to a tip: what they are, and
the derivative staff look at, with nothing in it that could identify the sender.

The threat: a hostile file (a decoder exploit, a decompression bomb, a playlist
renamed ``.jpg``) sent by anyone, and an honest file that gives its sender away (GPS
in the EXIF or in a QuickTime ``©xyz`` atom, the phone's serial number and model, an
ICC profile naming the device, the owner's name in XMP). So:

* a file is what its first bytes say it is, never its name or the browser's type;
* images are decoded in a child process under the pipeline's limits (address space,
  wall clock, an empty environment), refused above a pixel count before any pixel
  is decoded, turned upright by their EXIF orientation, converted to sRGB, and
  re-encoded from bare pixels, so no metadata block can survive;
* videos go through the hardened probe and one ffmpeg run that maps only the first
  video and audio stream and no metadata or chapters (``-map_metadata -1``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from .errors import PipelineError, Rejected
from .hashing import hash_file
from .limits import Limits
from .pipeline import make_proxy
from .probe import probe
from .profiles import VideoProfile
from .runner import run_tool

#: What a tipster may attach, by the format the bytes say they are.
KIND_OF_FORMAT: dict[str, str] = {
    "jpeg": "image",
    "png": "image",
    "heic": "image",
    "mp4": "video",
    "mov": "video",
}

#: The web copy of a video tip: fits 1280x720 in the picture's own orientation, never
#: upscaled, a keyframe every two seconds so the staff player seeks quickly.
TIP_VIDEO = VideoProfile(
    "tip_web", "fit", 1280, 720, crf=23, preset="veryfast", audio_bitrate_kbps=128
)

# ISO base media brands of HEIF still images (ISO/IEC 23008-12 annex B), and the
# QuickTime top-level atoms an old MOV may start with instead of ``ftyp``.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1"})
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_VIDEO_BRANDS_QT = frozenset({b"qt  "})

_DESCRIBED = (
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive or office document"),
    (b"BM", "a bitmap image"),
    (b"II*\x00", "a TIFF or raw camera image"),
    (b"MM\x00*", "a TIFF or raw camera image"),
    (b"\x1a\x45\xdf\xa3", "a WebM or MKV video"),
    (b"RIFF", "a RIFF file (AVI, WAV or WebP)"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a program"),
)

NOT_ACCEPTED = "we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"


def sniff_format(head: bytes) -> str:
    """The attachment format of a file that starts with ``head`` (its first 64 bytes
    or more), or :class:`Rejected` with a reason the sender understands."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    box = head[4:8]
    if box == b"ftyp" and len(head) >= 16:
        size = int.from_bytes(head[0:4], "big")
        major = head[8:12]
        brands = {major} | {
            head[i : i + 4] for i in range(16, min(max(size, 16), len(head)) - 3, 4)
        }
        if major in _HEIF_BRANDS or (b"mif1" in brands and major not in (b"isom", b"mp42")):
            return "heic"
        if b"avif" in brands:
            raise Rejected(f"this is an AVIF image; {NOT_ACCEPTED}")
        return "mov" if major in _VIDEO_BRANDS_QT else "mp4"
    if box in _QUICKTIME_ATOMS:
        return "mov"
    if not head:
        raise Rejected("the file is empty")
    for magic, what in _DESCRIBED:
        if head.startswith(magic):
            raise Rejected(f"this is {what}; {NOT_ACCEPTED}")
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        raise Rejected(f"this is a text file; {NOT_ACCEPTED}")
    raise Rejected(f"this is not a file type we accept; {NOT_ACCEPTED}")


def sniff_file(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as f:
        return sniff_format(f.read(64))


@dataclass(frozen=True)
class Derivative:
    """The stripped copy made for staff to look at."""

    path: str
    content_type: str
    size: int
    sha256: str
    width: int
    height: int
    duration_s: float | None = None


_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_strip_image.py")
_CHILD_OUTPUT_LIMIT = 4096


def strip_image(
    source: str, output_base: str, fmt: str, *, max_pixels: int, limits: Limits
) -> Derivative:
    """Decode ``source`` (JPEG, PNG or HEIC) in a bounded child process and write its
    pixels, upright and in sRGB, with no metadata, to ``output_base`` + ``.jpg`` (PNG
    for a PNG, so screenshots stay sharp). Raises :class:`Rejected` for a damaged
    file or one over ``max_pixels``."""
    suffix = ".png" if fmt == "png" else ".jpg"
    output = output_base + suffix
    # -I: no PYTHON* variables, no user site, not the script's directory on the
    # path; the child imports Pillow and nothing of ours.
    argv = [sys.executable, "-I", _CHILD, fmt, source, output, str(max_pixels)]
    result = run_tool(
        argv,
        timeout_s=limits.probe_timeout_s,
        memory_bytes=limits.memory_bytes,
        capture_stdout_limit=_CHILD_OUTPUT_LIMIT,
        nice=limits.nice,
    )
    if result.returncode != 0:
        if "MemoryError" in result.log or "Cannot allocate" in result.log:
            raise Rejected("the image needs more memory to open than allowed")
        raise PipelineError("the image could not be processed", command=argv, log=result.log)
    try:
        answer = json.loads(result.stdout)
    except ValueError:
        raise PipelineError("the image step gave no answer", command=argv) from None
    if "refused" in answer:
        raise Rejected(str(answer["refused"]))
    sha256, size = hash_file(output)
    return Derivative(
        path=output,
        content_type="image/png" if fmt == "png" else "image/jpeg",
        size=size,
        sha256=sha256,
        width=int(answer["width"]),
        height=int(answer["height"]),
    )


def strip_video(
    source: str,
    output_base: str,
    *,
    limits: Limits,
    heartbeat: Callable[[float], None] | None = None,
) -> Derivative:
    """Probe ``source`` with the pipeline's hostile-input rules and re-encode it to a
    web MP4 carrying only the picture and the sound. Raises :class:`Rejected`."""
    info = probe(source, limits)
    output = output_base + ".mp4"
    made = make_proxy(source, output, limits, heartbeat=heartbeat, profile=TIP_VIDEO, info=info)
    return Derivative(
        path=output,
        content_type=made.content_type,
        size=made.size,
        sha256=made.sha256,
        width=made.width or 0,
        height=made.height or 0,
        duration_s=made.duration_s,
    )
