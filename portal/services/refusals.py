"""Why the media pipeline refused a tipster's file, in the reader's language.

The pipeline knows no Flask and writes its reasons in English, with the numbers and
names of the file in them ("the video is 1260 s long, over the limit of 900 s"), and
the row keeps that English text: staff read it as it is, and rows stored before
this module existed read the same. A public page shows the reason through
:func:`refusal_text`, which recognises each of the pipeline's reasons by its stable
code and its English pattern, takes the values out of it, and puts them into the
translated sentence. A reason not listed here is shown through the catalog (the
portal's own reasons, portal/services/attachments.py: REFUSAL_REASONS), or as it is.

tests/portal/public/test_refusals.py makes the pipeline refuse real files and checks
that each reason it gives is recognised, so a reworded reason in media_pipeline
fails a test instead of turning English on a Spanish page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString


@dataclass(frozen=True)
class Reason:
    """One of the pipeline's refusals: ``english`` is how media_pipeline writes it,
    with ``{name}`` where a value of the file goes; ``text`` the translatable
    sentence, with the same names as ``%(name)s``."""

    code: str
    english: str
    text: LazyString
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = re.split(r"\{(\w+)\}", self.english)
        regex = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts)
        )
        object.__setattr__(self, "pattern", re.compile(regex))


_ACCEPTED = "we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"

REASONS = (
    # media_pipeline/attachments.py: sniff_format, what the first bytes say the file is
    Reason("empty", "the file is empty", _l("the file is empty")),
    Reason(
        "gif",
        f"this is a GIF image; {_ACCEPTED}",
        _l("this is a GIF image; we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"),
    ),
    Reason(
        "pdf",
        f"this is a PDF document; {_ACCEPTED}",
        _l("this is a PDF document; we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"),
    ),
    Reason(
        "zip",
        f"this is a ZIP archive or office document; {_ACCEPTED}",
        _l(
            "this is a ZIP archive or office document; we accept photos (JPEG, PNG, HEIC) "
            "and videos (MP4, MOV)"
        ),
    ),
    Reason(
        "bitmap",
        f"this is a bitmap image; {_ACCEPTED}",
        _l("this is a bitmap image; we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"),
    ),
    Reason(
        "tiff",
        f"this is a TIFF or raw camera image; {_ACCEPTED}",
        _l(
            "this is a TIFF or raw camera image; we accept photos (JPEG, PNG, HEIC) and "
            "videos (MP4, MOV)"
        ),
    ),
    Reason(
        "webm",
        f"this is a WebM or MKV video; {_ACCEPTED}",
        _l("this is a WebM or MKV video; we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"),
    ),
    Reason(
        "riff",
        f"this is a RIFF file (AVI, WAV or WebP); {_ACCEPTED}",
        _l(
            "this is a RIFF file (AVI, WAV or WebP); we accept photos (JPEG, PNG, HEIC) and "
            "videos (MP4, MOV)"
        ),
    ),
    Reason(
        "program",
        f"this is a program; {_ACCEPTED}",
        _l("this is a program; we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"),
    ),
    Reason(
        "avif",
        f"this is an AVIF image; {_ACCEPTED}",
        _l("this is an AVIF image; we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"),
    ),
    Reason(
        "text",
        f"this is a text file; {_ACCEPTED}",
        _l("this is a text file; we accept photos (JPEG, PNG, HEIC) and videos (MP4, MOV)"),
    ),
    Reason(
        "unknown_type",
        f"this is not a file type we accept; {_ACCEPTED}",
        _l(
            "this is not a file type we accept; we accept photos (JPEG, PNG, HEIC) and "
            "videos (MP4, MOV)"
        ),
    ),
    # media_pipeline/probe.py: the file itself
    Reason(
        "file_too_large",
        "the file is {size}, over the limit of {limit}",
        _l("the file is %(size)s, over the limit of %(limit)s"),
    ),
    Reason(
        "incomplete",
        "the file is incomplete or damaged (its index is missing; was it cut short?)",
        _l("the file is incomplete or damaged (its index is missing; was it cut short?)"),
    ),
    Reason(
        "needs_memory",
        "the file needs more memory to read than allowed",
        _l("the file needs more memory to read than allowed"),
    ),
    Reason(
        "unreadable",
        "the file could not be read as a video (damaged or unsupported)",
        _l("the file could not be read as a video (damaged or unsupported)"),
    ),
    Reason(
        "unknown_format",
        "not a video format we accept, or the file is damaged",
        _l("not a video format we accept, or the file is damaged"),
    ),
    # ... its container and streams
    Reason(
        "container",
        "the container format {name} is not accepted",
        _l("the container format %(name)s is not accepted"),
    ),
    Reason("codec", "the codec {codec} is not accepted", _l("the codec %(codec)s is not accepted")),
    Reason(
        "video_codec",
        "the video codec {codec} is not accepted",
        _l("the video codec %(codec)s is not accepted"),
    ),
    Reason(
        "audio_codec",
        "the audio codec {codec} is not accepted",
        _l("the audio codec %(codec)s is not accepted"),
    ),
    Reason(
        "cover_codec",
        "the cover picture codec {codec} is not accepted",
        _l("the cover picture codec %(codec)s is not accepted"),
    ),
    Reason(
        "too_many_streams",
        "the file has {count} streams, over the limit of {limit}",
        _l("the file has %(count)s streams, over the limit of %(limit)s"),
    ),
    Reason("no_video", "the file has no video stream", _l("the file has no video stream")),
    Reason(
        "frame_size_unknown",
        "the frame size of the video cannot be read (damaged file?)",
        _l("the frame size of the video cannot be read (damaged file?)"),
    ),
    Reason(
        "frame_size",
        "the frame size {size} is over the limit of {limit}",
        _l("the frame size %(size)s is over the limit of %(limit)s"),
    ),
    Reason(
        "aspect_ratio",
        "the pixel aspect ratio of the video is not plausible (damaged file?)",
        _l("the pixel aspect ratio of the video is not plausible (damaged file?)"),
    ),
    Reason(
        "frame_rate",
        "the frame rate of the video is not plausible (damaged file?)",
        _l("the frame rate of the video is not plausible (damaged file?)"),
    ),
    Reason(
        "duration_unknown",
        "the length of the video cannot be determined (damaged file?)",
        _l("the length of the video cannot be determined (damaged file?)"),
    ),
    Reason(
        "too_long",
        "the video is {seconds} s long, over the limit of {limit} s",
        _l("the video is %(seconds)s s long, over the limit of %(limit)s s"),
    ),
    # media_pipeline/attachments.py and _strip_image.py: photos
    Reason(
        "image_damaged",
        "the image is damaged or incomplete",
        _l("the image is damaged or incomplete"),
    ),
    Reason(
        "image_pixels",
        "the image has more than {millions} million pixels",
        _l("the image has more than %(millions)s million pixels"),
    ),
    Reason(
        "image_memory",
        "the image needs more memory to open than allowed",
        _l("the image needs more memory to open than allowed"),
    ),
)


def match_reason(reason: str) -> tuple[Reason, dict[str, str]] | None:
    """The listed reason ``reason`` is, and the values in it; None if none is."""
    for known in REASONS:
        if (found := known.pattern.fullmatch(reason)) is not None:
            return known, found.groupdict()
    return None


def refusal_code(reason: str) -> str:
    """A stable code for a refusal (for scripts and the page's uploader); ``other``
    for a reason not listed."""
    found = match_reason(reason)
    return found[0].code if found else "other"


def refusal_text(reason: str) -> str:
    """``reason`` in the language of the request (English for staff)."""
    if not reason:
        return ""
    found = match_reason(reason)
    if found is None:
        return gettext(reason)
    known, values = found
    return str(known.text) % values
