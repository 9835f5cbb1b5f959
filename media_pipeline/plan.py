"""The edit plan: what staff asked to be done to a clip, stored by the portal as JSON.

Times: ``trim_start``/``trim_end``, each region's ``start``/``end`` and keyframe ``t``,
and each audio range are seconds on the *source* timeline (what the staff editor
scrubs, through the proxy of the whole source). ``poster_time`` is seconds into the
*edited* clip, because that is the clip the poster advertises. Region boxes are pixels
of the source as displayed (rotation and pixel aspect applied:
``MediaInfo.video.display_width`` x ``display_height``).

A region is a :class:`Track`: boxes at keyframe times, between which the box moves
and resizes linearly, frame by frame. Version 1 plans held still rectangles under
``blur``; they are read as tracks of one box (see :meth:`BlurRegion.as_track`), so
every stored plan stays valid.
"""

from __future__ import annotations

import json
import math
import os
import re
import unicodedata
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, cast

from .errors import InvalidPlan
from .probe import MediaInfo

PLAN_VERSION = 2
#: Versions :meth:`EditPlan.from_dict` reads; 1 had still ``blur`` rectangles only.
READABLE_VERSIONS = (1, 2)
AudioMode = Literal["keep", "mute", "strip"]
Effect = Literal["blur", "pixelate", "box"]
EFFECTS: tuple[Effect, ...] = ("blur", "pixelate", "box")
AudioEffect = Literal["mute", "bleep"]
AUDIO_EFFECTS: tuple[AudioEffect, ...] = ("mute", "bleep")
Corner = Literal["top-left", "top-right", "bottom-left", "bottom-right"]
DEFAULT_PROMPT = "Do you recognize this person?"
MAX_CAPTION_LINES = 4
MAX_CAPTION_LINE_CHARS = 80
#: Regions per plan. Each one adds a crop, two scales and an overlay to the graph
#: that every frame passes through; 32 covers a crowd scene without letting one plan
#: make the render crawl.
MAX_REGIONS = 32
MAX_BLUR_REGIONS = MAX_REGIONS  # the name version 1 used
#: Keyframes per track, and in the whole plan. The motion is written into the
#: ffmpeg command as expressions (about 240 characters a keyframe), so that the
#: recorded command alone reproduces the output; Linux refuses a single argument over
#: 128 KiB (MAX_ARG_STRLEN), and the plan-wide cap keeps the filter graph well under
#: it (tests/media_pipeline/test_tracks.py builds the largest plan). A tracker's
#: per-frame boxes are thinned to the keyframes where the motion turns.
MAX_KEYFRAMES = 120
MAX_PLAN_KEYFRAMES = 400
#: Muted or bleeped ranges per plan (each is a term of one per-sample expression).
MAX_AUDIO_RANGES = 32
MIN_BOX_PX = 4
#: Who drew a region: a person ("manual"), or a detector or tracker whose proposal a
#: person accepted ("suggested:centerface@1.0.1", "tracked:csrt@4.8.0").
SOURCE_PATTERN = re.compile(
    r"^(?:manual|(?:suggested|tracked):[a-z0-9][a-z0-9_.-]{0,39}@[0-9A-Za-z][0-9A-Za-z_.+-]{0,39})$"
)
#: Unicode categories a caption line must not hold, the same as the portal's text
#: rules (portal/services/text.py; this package imports nothing of the portal):
#: control (Cc: a newline would let one line pose as several), format (Cf: bidi
#: overrides reorder what viewers read), lone surrogates (Cs: cannot be encoded, so
#: cannot be written to the caption file ffmpeg reads), private use (Co) and
#: unassigned (Cn: no font draws them the same), line and paragraph separators.
CAPTION_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_REFUSED_KIND = {
    "Cs": "an unpaired surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned character",
}
#: The shortest edited clip we make: below this, social networks refuse the upload.
MIN_CLIP_S = 1.0


@dataclass(frozen=True)
class Keyframe:
    """The box at source time ``t``: top-left ``x``, ``y`` and size ``w`` x ``h``."""

    t: float
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Track:
    """A region covered from ``start`` to ``end`` (the clip's edges when ``None``).

    Before the first keyframe the box stays at the first, after the last at the last;
    one keyframe is a still box. With ``whole_frame`` there are no keyframes and the
    whole picture is covered. ``source`` says who drew it (:data:`SOURCE_PATTERN`).
    """

    keyframes: tuple[Keyframe, ...] = ()
    start: float | None = None
    end: float | None = None
    effect: Effect = "blur"
    source: str = "manual"
    whole_frame: bool = False

    @property
    def moving(self) -> bool:
        """Whether the box changes at all (else it renders as a still box)."""
        return len({(k.x, k.y, k.w, k.h) for k in self.keyframes}) > 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["keyframes"] = [asdict(k) for k in self.keyframes]
        return data


@dataclass(frozen=True)
class BlurRegion:
    """A version 1 region: a still rectangle blurred from ``start`` to ``end``.

    With ``whole_frame`` the rectangle is ignored and the whole picture is blurred.
    """

    x: int = 0
    y: int = 0
    width: int = 0
    height: int = 0
    start: float | None = None
    end: float | None = None
    whole_frame: bool = False

    def as_track(self) -> Track:
        if self.whole_frame:
            return Track(start=self.start, end=self.end, whole_frame=True)
        box = Keyframe(self.start or 0.0, self.x, self.y, self.width, self.height)
        return Track(keyframes=(box,), start=self.start, end=self.end)


@dataclass(frozen=True)
class AudioRange:
    """Source seconds ``start`` to ``end`` silenced, or covered by a 1 kHz tone."""

    start: float
    end: float
    effect: AudioEffect = "mute"


@dataclass(frozen=True)
class Caption:
    """Lines of text burned in at the bottom of the picture.

    The text never enters the filter graph: it is written to a file that ``drawtext``
    reads with expansion off (threat: filter-graph and ``%{...}`` injection).
    """

    lines: tuple[str, ...]

    @classmethod
    def for_appeal(cls, case_number: str, tip_url: str, prompt: str = DEFAULT_PROMPT) -> Caption:
        return cls(tuple(line for line in (f"Case {case_number}", prompt, tip_url) if line))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class Watermark:
    """An agency logo (PNG or JPEG, operator-supplied) overlaid in a corner."""

    path: str
    corner: Corner = "top-right"
    #: Logo width as a fraction of the picture width.
    width_fraction: float = 0.15


@dataclass(frozen=True)
class EditPlan:
    trim_start: float | None = None
    trim_end: float | None = None
    regions: tuple[Track, ...] = ()
    audio: AudioMode = "keep"
    audio_ranges: tuple[AudioRange, ...] = ()
    caption: Caption | None = None
    watermark: Watermark | None = None
    #: Seconds into the edited clip; ``None`` means its middle.
    poster_time: float | None = None
    version: int = field(default=PLAN_VERSION)

    # -- serialisation -----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["regions"] = [region.to_dict() for region in self.regions]
        data["audio_ranges"] = [asdict(r) for r in self.audio_ranges]
        if self.caption is not None:
            data["caption"] = {"lines": list(self.caption.lines)}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> EditPlan:
        """Build a plan from untrusted JSON data, checking every field's type.

        The plan comes back from the database and, before that, from a browser, so
        unknown keys and wrong types are refused rather than ignored.
        """
        obj = _object(data, "plan", {f.name for f in fields(cls)} | {"blur"})
        version = obj.get("version", PLAN_VERSION)
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise InvalidPlan("version", f"unsupported plan version {version!r}")
        # Still rectangles of version 1 come first, so ``regions[i]`` in an error is
        # also ``blur[i]`` of a plan that has only those.
        blur_items = _list(obj.get("blur", []), "blur")
        track_items = _list(obj.get("regions", []), "regions")
        if len(blur_items) + len(track_items) > MAX_REGIONS:
            raise InvalidPlan("regions", f"at most {MAX_REGIONS} regions")
        regions = tuple(
            _blur_region(item, f"blur[{i}]").as_track() for i, item in enumerate(blur_items)
        ) + tuple(
            _track(item, f"regions[{len(blur_items) + i}]") for i, item in enumerate(track_items)
        )
        audio = obj.get("audio", "keep")
        if audio not in ("keep", "mute", "strip"):
            raise InvalidPlan("audio", "must be keep, mute or strip")
        range_items = _list(obj.get("audio_ranges", []), "audio_ranges")
        if len(range_items) > MAX_AUDIO_RANGES:
            raise InvalidPlan("audio_ranges", f"at most {MAX_AUDIO_RANGES} ranges")
        audio_ranges = tuple(
            _audio_range(item, f"audio_ranges[{i}]") for i, item in enumerate(range_items)
        )
        caption = None
        if obj.get("caption") is not None:
            cap = _object(obj["caption"], "caption", {"lines"})
            lines = cap.get("lines")
            if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
                raise InvalidPlan("caption.lines", "must be a list of strings")
            caption = Caption(tuple(lines))
        watermark = None
        if obj.get("watermark") is not None:
            wm = _object(obj["watermark"], "watermark", {"path", "corner", "width_fraction"})
            if not isinstance(wm.get("path"), str):
                raise InvalidPlan("watermark.path", "must be a string")
            corner = wm.get("corner", "top-right")
            if corner not in ("top-left", "top-right", "bottom-left", "bottom-right"):
                raise InvalidPlan("watermark.corner", "must be one of the four corners")
            watermark = Watermark(
                path=wm["path"],
                corner=cast(Corner, corner),
                width_fraction=_number(wm.get("width_fraction", 0.15), "watermark.width_fraction"),
            )
        plan = cls(
            trim_start=_optional_number(obj.get("trim_start"), "trim_start"),
            trim_end=_optional_number(obj.get("trim_end"), "trim_end"),
            regions=regions,
            audio=cast(AudioMode, audio),
            audio_ranges=audio_ranges,
            caption=caption,
            watermark=watermark,
            poster_time=_optional_number(obj.get("poster_time"), "poster_time"),
        )
        plan.validate()
        return plan

    @classmethod
    def from_json(cls, text: str | bytes) -> EditPlan:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidPlan("plan", f"not valid JSON ({exc})") from None
        return cls.from_dict(data)

    # -- validation --------------------------------------------------------------

    def validate(self) -> None:
        """Checks that need no source: types, signs, orders, text. Raises InvalidPlan."""
        for name in ("trim_start", "trim_end", "poster_time"):
            value = getattr(self, name)
            if value is not None:
                _finite_non_negative(value, name)
        if (
            self.trim_start is not None
            and self.trim_end is not None
            and self.trim_end - self.trim_start < MIN_CLIP_S
        ):
            raise InvalidPlan("trim_end", f"must be at least {MIN_CLIP_S:g} s after the in point")
        if len(self.regions) > MAX_REGIONS:
            raise InvalidPlan("regions", f"at most {MAX_REGIONS} regions")
        total = sum(len(track.keyframes) for track in self.regions)
        if total > MAX_PLAN_KEYFRAMES:
            raise InvalidPlan(
                "regions", f"at most {MAX_PLAN_KEYFRAMES} keyframes in all (this plan has {total})"
            )
        for i, track in enumerate(self.regions):
            _check_track(track, f"regions[{i}]")
        if len(self.audio_ranges) > MAX_AUDIO_RANGES:
            raise InvalidPlan("audio_ranges", f"at most {MAX_AUDIO_RANGES} ranges")
        for i, piece in enumerate(self.audio_ranges):
            name = f"audio_ranges[{i}]"
            _finite_non_negative(piece.start, f"{name}.start")
            _finite_non_negative(piece.end, f"{name}.end")
            if piece.end <= piece.start:
                raise InvalidPlan(f"{name}.end", "must be after the start")
            if piece.effect not in AUDIO_EFFECTS:
                raise InvalidPlan(f"{name}.effect", "must be mute or bleep")
        if self.audio_ranges and self.audio != "keep":
            raise InvalidPlan(
                "audio_ranges", f"the whole clip's audio is set to {self.audio}: nothing to cover"
            )
        if self.caption is not None:
            _check_caption(self.caption)
        if self.watermark is not None:
            if not self.watermark.path or "\x00" in self.watermark.path:
                raise InvalidPlan("watermark.path", "must name a file")
            if not 0.02 <= self.watermark.width_fraction <= 0.5:
                raise InvalidPlan("watermark.width_fraction", "must be between 0.02 and 0.5")

    def validate_against(self, info: MediaInfo) -> None:
        """Check the plan fits ``info`` (times inside the clip, regions inside the frame)."""
        self.validate()
        duration = info.duration_s
        start, end = self.clip_range(info)
        if self.trim_start is not None and self.trim_start >= duration:
            raise InvalidPlan(
                "trim_start",
                f"{self.trim_start:g} s is after the end of the video ({duration:g} s)",
            )
        # A trim_end up to one frame past the end is the editor rounding; allow it.
        slack = 1.0 / max(info.video.frame_rate, 1.0)
        if self.trim_end is not None and self.trim_end > duration + slack:
            raise InvalidPlan(
                "trim_end", f"{self.trim_end:g} s is after the end of the video ({duration:g} s)"
            )
        if end - start < MIN_CLIP_S:
            raise InvalidPlan("trim_end", f"the edited clip must be at least {MIN_CLIP_S:g} s long")
        width, height = info.video.display_width, info.video.display_height
        for i, track in enumerate(self.regions):
            name = f"regions[{i}]"
            for j, key in enumerate(track.keyframes):
                where = f"{name}.keyframes[{j}]"
                if key.t > duration + slack:
                    raise InvalidPlan(
                        f"{where}.t", f"{key.t:g} s is after the end of the video ({duration:g} s)"
                    )
                if key.x + key.w > width:
                    raise InvalidPlan(
                        f"{where}.w", f"the box goes past the right edge ({width} px)"
                    )
                if key.y + key.h > height:
                    raise InvalidPlan(
                        f"{where}.h", f"the box goes past the bottom edge ({height} px)"
                    )
            if track.start is not None and track.start >= end:
                raise InvalidPlan(f"{name}.start", "is after the end of the edited clip")
            if track.end is not None and track.end <= start:
                raise InvalidPlan(f"{name}.end", "is before the start of the edited clip")
        if self.audio_ranges and info.audio is None:
            raise InvalidPlan("audio_ranges", "the video has no sound to mute or bleep")
        for i, piece in enumerate(self.audio_ranges):
            if piece.start >= end:
                raise InvalidPlan(f"audio_ranges[{i}].start", "is after the end of the edited clip")
            if piece.end <= start:
                raise InvalidPlan(
                    f"audio_ranges[{i}].end", "is before the start of the edited clip"
                )
        if self.poster_time is not None and self.poster_time >= end - start:
            raise InvalidPlan(
                "poster_time", f"must be within the edited clip (0 to {end - start:g} s)"
            )
        if self.watermark is not None and not os.path.isfile(self.watermark.path):
            raise InvalidPlan("watermark.path", "the watermark file does not exist")

    def clip_range(self, info: MediaInfo) -> tuple[float, float]:
        """(in, out) of the edited clip on the source timeline."""
        start = self.trim_start or 0.0
        end = info.duration_s if self.trim_end is None else min(self.trim_end, info.duration_s)
        return start, end

    def poster_offset(self, info: MediaInfo) -> float:
        start, end = self.clip_range(info)
        return self.poster_time if self.poster_time is not None else (end - start) / 2


def _check_track(track: Track, name: str) -> None:
    for attr in ("start", "end"):
        value = getattr(track, attr)
        if value is not None:
            _finite_non_negative(value, f"{name}.{attr}")
    if track.start is not None and track.end is not None and track.end <= track.start:
        raise InvalidPlan(f"{name}.end", "must be after the start")
    if track.effect not in EFFECTS:
        raise InvalidPlan(f"{name}.effect", "must be blur, pixelate or box")
    if not isinstance(track.source, str) or not SOURCE_PATTERN.match(track.source):
        raise InvalidPlan(
            f"{name}.source", 'must be "manual", "suggested:NAME@VERSION" or "tracked:NAME@VERSION"'
        )
    if track.whole_frame:
        if track.keyframes:
            raise InvalidPlan(f"{name}.keyframes", "a whole-frame region has no boxes")
        return
    if not track.keyframes:
        raise InvalidPlan(f"{name}.keyframes", "give at least one box")
    if len(track.keyframes) > MAX_KEYFRAMES:
        raise InvalidPlan(f"{name}.keyframes", f"at most {MAX_KEYFRAMES} keyframes a region")
    previous: float | None = None
    for j, key in enumerate(track.keyframes):
        where = f"{name}.keyframes[{j}]"
        _finite_non_negative(key.t, f"{where}.t")
        if previous is not None and key.t <= previous:
            raise InvalidPlan(
                f"{where}.t", f"must be after the keyframe before it ({previous:g} s)"
            )
        previous = key.t
        for attr in ("x", "y"):
            value = getattr(key, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidPlan(f"{where}.{attr}", "must be a whole number of pixels >= 0")
        for attr in ("w", "h"):
            value = getattr(key, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value < MIN_BOX_PX:
                raise InvalidPlan(f"{where}.{attr}", f"must be at least {MIN_BOX_PX} pixels")


def _check_caption(caption: Caption) -> None:
    if not caption.lines:
        raise InvalidPlan("caption.lines", "give at least one line or no caption")
    if len(caption.lines) > MAX_CAPTION_LINES:
        raise InvalidPlan("caption.lines", f"at most {MAX_CAPTION_LINES} lines")
    for i, line in enumerate(caption.lines):
        name = f"caption.lines[{i}]"
        if not line.strip():
            raise InvalidPlan(name, "must not be blank")
        if len(line) > MAX_CAPTION_LINE_CHARS:
            raise InvalidPlan(name, f"at most {MAX_CAPTION_LINE_CHARS} characters")
        refused = next(
            (ch for ch in line if unicodedata.category(ch) in CAPTION_REFUSED_CATEGORIES), None
        )
        if refused is not None:
            kind = _REFUSED_KIND.get(unicodedata.category(refused))
            if kind is None:
                raise InvalidPlan(name, "must not contain control characters")
            raise InvalidPlan(name, f"must not contain {kind} (U+{ord(refused):04X})")


def _object(data: Any, name: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidPlan(name, "must be an object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidPlan(f"{name}.{unknown[0]}" if name != "plan" else unknown[0], "unknown field")
    return data


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidPlan(name, "must be a number")
    return float(value)


def _optional_number(value: Any, name: str) -> float | None:
    return None if value is None else _number(value, name)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPlan(name, "must be a whole number")
    return value


def _finite_non_negative(value: float, name: str) -> None:
    if not math.isfinite(value) or value < 0:
        raise InvalidPlan(name, "must be a number of seconds >= 0")


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidPlan(name, "must be a list")
    return value


def _track(data: Any, name: str) -> Track:
    obj = _object(data, name, {f.name for f in fields(Track)})
    whole = obj.get("whole_frame", False)
    if not isinstance(whole, bool):
        raise InvalidPlan(f"{name}.whole_frame", "must be true or false")
    effect = obj.get("effect", "blur")
    if effect not in EFFECTS:
        raise InvalidPlan(f"{name}.effect", "must be blur, pixelate or box")
    source = obj.get("source", "manual")
    if not isinstance(source, str):
        raise InvalidPlan(f"{name}.source", "must be a string")
    items = _list(obj.get("keyframes", []), f"{name}.keyframes")
    if len(items) > MAX_KEYFRAMES:
        raise InvalidPlan(f"{name}.keyframes", f"at most {MAX_KEYFRAMES} keyframes a region")
    keyframes = []
    for j, item in enumerate(items):
        where = f"{name}.keyframes[{j}]"
        key = _object(item, where, {"t", "x", "y", "w", "h"})
        missing = [k for k in ("t", "x", "y", "w", "h") if k not in key]
        if missing:
            raise InvalidPlan(f"{where}.{missing[0]}", "is missing")
        keyframes.append(
            Keyframe(
                t=_number(key["t"], f"{where}.t"),
                x=_integer(key["x"], f"{where}.x"),
                y=_integer(key["y"], f"{where}.y"),
                w=_integer(key["w"], f"{where}.w"),
                h=_integer(key["h"], f"{where}.h"),
            )
        )
    return Track(
        keyframes=tuple(keyframes),
        start=_optional_number(obj.get("start"), f"{name}.start"),
        end=_optional_number(obj.get("end"), f"{name}.end"),
        effect=cast(Effect, effect),
        source=source,
        whole_frame=whole,
    )


def _audio_range(data: Any, name: str) -> AudioRange:
    obj = _object(data, name, {f.name for f in fields(AudioRange)})
    effect = obj.get("effect", "mute")
    if effect not in AUDIO_EFFECTS:
        raise InvalidPlan(f"{name}.effect", "must be mute or bleep")
    for attr in ("start", "end"):
        if attr not in obj:
            raise InvalidPlan(f"{name}.{attr}", "is missing")
    return AudioRange(
        start=_number(obj["start"], f"{name}.start"),
        end=_number(obj["end"], f"{name}.end"),
        effect=cast(AudioEffect, effect),
    )


def _blur_region(data: Any, name: str) -> BlurRegion:
    obj = _object(data, name, {f.name for f in fields(BlurRegion)})
    whole = obj.get("whole_frame", False)
    if not isinstance(whole, bool):
        raise InvalidPlan(f"{name}.whole_frame", "must be true or false")
    return BlurRegion(
        x=_integer(obj.get("x", 0), f"{name}.x"),
        y=_integer(obj.get("y", 0), f"{name}.y"),
        width=_integer(obj.get("width", 0), f"{name}.width"),
        height=_integer(obj.get("height", 0), f"{name}.height"),
        start=_optional_number(obj.get("start"), f"{name}.start"),
        end=_optional_number(obj.get("end"), f"{name}.end"),
        whole_frame=whole,
    )
