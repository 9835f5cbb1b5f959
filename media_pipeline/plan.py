"""The edit plan: what staff asked to be done to a clip, stored by the portal as JSON.

Times: ``trim_start``/``trim_end`` and each blur region's ``start``/``end`` are seconds
on the *source* timeline (what the staff editor scrubs, through the proxy of the whole
source). ``poster_time`` is seconds into the *edited* clip, because that is the clip the
poster advertises. Blur rectangles are pixels of the source as displayed (rotation and
pixel aspect applied: ``MediaInfo.video.display_width`` x ``display_height``).
"""

from __future__ import annotations

import json
import math
import os
import unicodedata
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, cast

from .errors import InvalidPlan
from .probe import MediaInfo

PLAN_VERSION = 1
AudioMode = Literal["keep", "mute", "strip"]
Corner = Literal["top-left", "top-right", "bottom-left", "bottom-right"]
DEFAULT_PROMPT = "Do you recognize this person?"
MAX_CAPTION_LINES = 4
MAX_CAPTION_LINE_CHARS = 80
MAX_BLUR_REGIONS = 32
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
class BlurRegion:
    """A rectangle blurred from ``start`` to ``end`` (whole clip when ``None``).

    With ``whole_frame`` the rectangle is ignored and the whole picture is blurred.
    """

    x: int = 0
    y: int = 0
    width: int = 0
    height: int = 0
    start: float | None = None
    end: float | None = None
    whole_frame: bool = False


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
    blur: tuple[BlurRegion, ...] = ()
    audio: AudioMode = "keep"
    caption: Caption | None = None
    watermark: Watermark | None = None
    #: Seconds into the edited clip; ``None`` means its middle.
    poster_time: float | None = None
    version: int = field(default=PLAN_VERSION)

    # -- serialisation -----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["blur"] = [asdict(region) for region in self.blur]
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
        obj = _object(data, "plan", {f.name for f in fields(cls)})
        version = obj.get("version", PLAN_VERSION)
        if version != PLAN_VERSION:
            raise InvalidPlan("version", f"unsupported plan version {version!r}")
        blur_items = obj.get("blur", [])
        if not isinstance(blur_items, list):
            raise InvalidPlan("blur", "must be a list")
        regions = tuple(_blur_region(item, f"blur[{i}]") for i, item in enumerate(blur_items))
        audio = obj.get("audio", "keep")
        if audio not in ("keep", "mute", "strip"):
            raise InvalidPlan("audio", "must be keep, mute or strip")
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
            blur=regions,
            audio=cast(AudioMode, audio),
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
        if len(self.blur) > MAX_BLUR_REGIONS:
            raise InvalidPlan("blur", f"at most {MAX_BLUR_REGIONS} regions")
        for i, region in enumerate(self.blur):
            name = f"blur[{i}]"
            for attr in ("start", "end"):
                value = getattr(region, attr)
                if value is not None:
                    _finite_non_negative(value, f"{name}.{attr}")
            if region.start is not None and region.end is not None and region.end <= region.start:
                raise InvalidPlan(f"{name}.end", "must be after the start")
            if not region.whole_frame:
                for attr in ("x", "y"):
                    if not isinstance(getattr(region, attr), int) or getattr(region, attr) < 0:
                        raise InvalidPlan(f"{name}.{attr}", "must be a whole number of pixels >= 0")
                for attr in ("width", "height"):
                    value = getattr(region, attr)
                    if not isinstance(value, int) or value < 4:
                        raise InvalidPlan(f"{name}.{attr}", "must be at least 4 pixels")
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
        for i, region in enumerate(self.blur):
            name = f"blur[{i}]"
            if not region.whole_frame:
                if region.x + region.width > width:
                    raise InvalidPlan(
                        f"{name}.width", f"the region goes past the right edge ({width} px)"
                    )
                if region.y + region.height > height:
                    raise InvalidPlan(
                        f"{name}.height", f"the region goes past the bottom edge ({height} px)"
                    )
            if region.start is not None and region.start >= end:
                raise InvalidPlan(f"{name}.start", "is after the end of the edited clip")
            if region.end is not None and region.end <= start:
                raise InvalidPlan(f"{name}.end", "is before the start of the edited clip")
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
