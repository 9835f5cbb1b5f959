"""Errors raised by the media pipeline.

The portal maps them to responses: :class:`Rejected` and :class:`InvalidPlan` are the
uploader's or editor's problem and carry a reason a person understands; everything
under :class:`PipelineError` is ours (or ffmpeg's) and is retried or shown to staff.
"""

from __future__ import annotations


class MediaPipelineError(Exception):
    """Base class of every error this package raises on purpose."""


class Rejected(MediaPipelineError):
    """The input file is refused: not a video we accept, damaged, or over a limit."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidPlan(MediaPipelineError, ValueError):
    """An edit plan field is invalid, or does not fit the source it is applied to.

    ``field`` names the offending field the way the portal's editor does, e.g.
    ``trim_end`` or ``regions[1].keyframes[0].w``, so the form can show the error next to it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class PipelineError(MediaPipelineError):
    """ffmpeg or ffprobe failed, or the pipeline could not do its work."""

    def __init__(self, message: str, *, command: list[str] | None = None, log: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.command = command
        self.log = log


class Cancelled(PipelineError):
    """The caller's cancel event was set; the ffmpeg process tree was killed."""


class TimedOut(PipelineError):
    """The wall-clock limit passed; the ffmpeg process tree was killed."""


class Stalled(PipelineError):
    """ffmpeg did nothing (no CPU time, input read, output or progress) for the stall
    limit, as a stopped or hung process does; its process tree was killed."""


class InvalidKey(MediaPipelineError, ValueError):
    """A storage key is unsafe (path traversal, absolute, backslash, NUL) or malformed."""


class StorageError(MediaPipelineError):
    """A storage backend failed (I/O error, S3 error after retries)."""


class ObjectNotFound(StorageError):
    """No object is stored under the key."""


class HashMismatch(StorageError):
    """What was stored is not the file whose hash the caller recorded; nothing is kept."""
