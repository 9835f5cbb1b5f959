"""Rendition profiles, as data.

The portal may store its own tuples (per agency) and pass them to ``process``; these
are the defaults. Nothing in the graph builder branches on a profile's *name*.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

ProfileKind = Literal["fit", "fill"]
X264_PRESETS = ("superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


@dataclass(frozen=True)
class VideoProfile:
    """An H.264/AAC MP4 rendition.

    ``fit``: the picture scaled to fit a ``width`` x ``height`` box whose orientation
    follows the source (so a portrait phone clip gets a 1080x1920 "1080p"); produced
    only when the source's short side is at least ``height`` (never upscaled).
    ``fill``: a ``width`` x ``height`` canvas, the picture centred over a blurred,
    zoomed copy of itself (the square and vertical social cuts); the canvas shrinks
    rather than upscale the picture.
    """

    name: str
    kind: ProfileKind
    width: int
    height: int
    crf: int = 22
    preset: str = "faster"
    #: A VBV cap (``-maxrate``/``-bufsize``). Off by default on purpose: measured here,
    #: x264's VBV with frame threads is not deterministic, and without it re-running
    #: the command recorded in a manifest reproduces every output bit for bit.
    max_bitrate_kbps: int | None = None
    audio_bitrate_kbps: int = 128
    max_fps: float = 60.0
    keyframe_interval_s: float = 2.0

    def __post_init__(self) -> None:
        if self.preset not in X264_PRESETS:
            # "ultrafast" is left out on purpose: it turns off CABAC and 8x8 transforms,
            # and x264 then writes Constrained Baseline, not the High profile promised.
            raise ValueError(f"preset must be one of {', '.join(X264_PRESETS)}")
        if self.kind not in ("fit", "fill") or self.width < 16 or self.height < 16:
            raise ValueError("kind must be fit or fill, and the size at least 16x16")
        if not 0 < self.crf <= 51 or self.keyframe_interval_s <= 0 or self.max_fps <= 0:
            raise ValueError("crf must be 1..51, keyframe interval and max fps positive")

    @property
    def filename(self) -> str:
        return f"{self.name}.mp4"


@dataclass(frozen=True)
class PosterProfile:
    """One JPEG frame at the plan's poster time, fitted in the box, never upscaled."""

    name: str = "poster"
    width: int = 1920
    height: int = 1080
    #: ffmpeg's mjpeg ``-q:v``: 2 (best) .. 31.
    quality: int = 2

    @property
    def filename(self) -> str:
        return f"{self.name}.jpg"


@dataclass(frozen=True)
class SpriteProfile:
    """Thumbnails every ``interval_s`` tiled into one JPEG, indexed by a WebVTT file.

    For long clips the interval grows so there are at most ``max_thumbs`` thumbnails.
    """

    name: str = "sprite"
    thumb_width: int = 160
    interval_s: float = 2.0
    columns: int = 10
    max_thumbs: int = 100
    quality: int = 5

    @property
    def filename(self) -> str:
        return f"{self.name}.jpg"

    @property
    def index_filename(self) -> str:
        return f"{self.name}.vtt"


Profile = VideoProfile | PosterProfile | SpriteProfile

WEB_1080 = VideoProfile("web_1080", "fit", 1920, 1080)
WEB_720 = VideoProfile("web_720", "fit", 1280, 720)
WEB_480 = VideoProfile("web_480", "fit", 854, 480, audio_bitrate_kbps=96)
SQUARE = VideoProfile("square", "fill", 1080, 1080, max_fps=30.0)
VERTICAL = VideoProfile("vertical", "fill", 1080, 1920, max_fps=30.0)
POSTER = PosterProfile()
SPRITE = SpriteProfile()

DEFAULT_PROFILES: tuple[Profile, ...] = (
    WEB_1080,
    WEB_720,
    WEB_480,
    SQUARE,
    VERTICAL,
    POSTER,
    SPRITE,
)

#: The staff editor's proxy: whole source, unedited, small, a keyframe every half
#: second so that seeking lands on the frame asked for.
PROXY = VideoProfile(
    "proxy",
    "fit",
    854,
    480,
    crf=26,
    preset="veryfast",
    audio_bitrate_kbps=96,
    keyframe_interval_s=0.5,
)


def profiles_by_name(
    names: Iterable[str], available: Sequence[Profile] = DEFAULT_PROFILES
) -> tuple[Profile, ...]:
    """The profiles called ``names``, in the order given; ``KeyError`` names an unknown one."""
    table = {profile.name: profile for profile in available}
    chosen = []
    for name in names:
        if name not in table:
            raise KeyError(f"unknown profile {name!r} (known: {', '.join(table)})")
        chosen.append(table[name])
    return tuple(chosen)
