"""Preflight: before a post can be scheduled, what each network will be sent is fixed
and checked against that network's limits, so that a post is never sent to fail.

:func:`prepare_delivery` writes the caption (portal/publishing/captions.py, counted and
cut as the network does) and picks the rendition: the first of the network's
preferred cuts (portal/publishing/limits.py ``prefer``), over the appeals' approved
versions in the order they are shown, that fits every limit. What cannot be made to
fit is raised as :class:`PreflightFailed`, each problem saying what must change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import regex
from sqlalchemy import func, select

from media_pipeline.profiles import DEFAULT_PROFILES, VideoProfile
from portal.extensions import db
from portal.models import Agency, Appeal, ClipVersion, Rendition
from portal.publishing.captions import Caption, caption_for, measure
from portal.publishing.limits import LIMITS, Limit, NetworkLimits
from portal.publishing.models import Channel, Delivery, DeliveryStatus, Post
from portal.services.clips import approval_is_intact

HASHTAG = regex.compile(r"(?<![\w&])#\w+")
_MAX_FPS = {p.name: p.max_fps for p in DEFAULT_PROFILES if isinstance(p, VideoProfile)}


@dataclass(frozen=True)
class Prepared:
    """What one delivery will send: the caption exactly as previewed, the rendition
    (None where the network takes no video), and the caption's length as the network
    counts it against its ``limit`` (0: the network sets none)."""

    text: str
    rendition_id: int | None
    counted_length: int = 0
    limit: int = 0


class PreflightFailed(Exception):
    """The post cannot go to this network as it is; ``problems`` say what must change."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _megabytes(value: int) -> str:
    return f"{value / (1024 * 1024):.1f} MB"


def _ratio(value: float) -> str:
    return f"{value:.3f}"


def rendition_fps(rendition: Rendition) -> float | None:
    """A rendition's frame rate: the source's, capped by its profile's ceiling (the
    pipeline drops frames above it and never adds any)."""
    source = rendition.version.clip.frame_rate
    if source is None:
        return None
    cap = _MAX_FPS.get(rendition.name)
    return min(source, cap) if cap else source


def rendition_problems(rendition: Rendition, limits: NetworkLimits) -> list[str]:
    """Every limit of the network that ``rendition`` breaks, each with what to do."""
    label = limits.label
    problems: list[str] = []

    def low(limit: Limit[float] | Limit[int] | None, value: float | None) -> bool:
        return limit is not None and value is not None and value < limit.value

    def high(limit: Limit[float] | Limit[int] | None, value: float | None) -> bool:
        return limit is not None and value is not None and value > limit.value

    types = limits.content_types
    if types is not None and rendition.content_type not in types.value:
        problems.append(f"{label} takes {', '.join(types.value)}, not {rendition.content_type}")
    duration = rendition.duration_s
    if low(limits.duration_min_s, duration):
        assert limits.duration_min_s is not None and duration is not None
        problems.append(
            f"it runs {_seconds(duration)}; {label} needs at least "
            f"{_seconds(limits.duration_min_s.value)}: make the clip longer"
        )
    if high(limits.duration_max_s, duration):
        assert limits.duration_max_s is not None and duration is not None
        problems.append(
            f"it runs {_seconds(round(duration, 1))}; {label} takes at most "
            f"{_seconds(limits.duration_max_s.value)}: trim the clip to "
            f"{_seconds(limits.duration_max_s.value)} or less"
        )
    if high(limits.size_max, rendition.size):
        assert limits.size_max is not None
        problems.append(
            f"it is {_megabytes(rendition.size)}; {label} takes at most "
            f"{_megabytes(limits.size_max.value)}: shorten the clip or re-render it smaller"
        )
    width, height = rendition.width, rendition.height
    if width and height:
        aspect = width / height
        if low(limits.aspect_min, aspect) or high(limits.aspect_max, aspect):
            assert limits.aspect_min is not None and limits.aspect_max is not None
            problems.append(
                f"it is {width}x{height} (aspect {_ratio(aspect)}); {label} takes "
                f"{_ratio(limits.aspect_min.value)} to {_ratio(limits.aspect_max.value)}"
            )
        if low(limits.width_min, width) or low(limits.height_min, height):
            problems.append(
                f"it is {width}x{height}; {label} needs at least "
                f"{limits.width_min.value if limits.width_min else 0}x"
                f"{limits.height_min.value if limits.height_min else 0}: the source is too "
                "small for this cut"
            )
        if high(limits.width_max, width) or high(limits.height_max, height):
            problems.append(
                f"it is {width}x{height}; {label} takes at most "
                f"{limits.width_max.value if limits.width_max else width}x"
                f"{limits.height_max.value if limits.height_max else height}"
            )
        if high(limits.pixels_max, width * height):
            assert limits.pixels_max is not None
            problems.append(
                f"it is {width}x{height}; {label} takes at most "
                f"{limits.pixels_max.value} pixels a frame"
            )
    fps = rendition_fps(rendition)
    if low(limits.fps_min, fps) or high(limits.fps_max, fps):
        assert fps is not None
        problems.append(
            f"it plays at {fps:g} fps; {label} takes "
            f"{limits.fps_min.value if limits.fps_min else 0:g} to "
            f"{limits.fps_max.value if limits.fps_max else fps:g} fps"
        )
    return problems


def _versions(appeals: Sequence[Appeal]) -> list[tuple[Appeal, int, ClipVersion]]:
    return [
        (appeal, position, shown.version)
        for appeal in appeals
        for position, shown in enumerate(appeal.clips, start=1)
    ]


def _pick_rendition(
    appeals: Sequence[Appeal], limits: NetworkLimits
) -> tuple[Rendition | None, list[str]]:
    """The first preferred cut that fits, or None and why each candidate did not."""
    why: list[str] = []
    for appeal, position, version in _versions(appeals):
        by_name = {r.name: r for r in version.renditions if r.role == "video"}
        for name in limits.prefer:
            rendition = by_name.get(name)
            where = f"case {appeal.case.number}, clip {position}"
            if rendition is None:
                why.append(f"{where} has no {name} cut: re-render the version with it")
                continue
            problems = rendition_problems(rendition, limits)
            if not problems:
                return rendition, []
            why.extend(f"{where}, {name} cut: {problem}" for problem in problems)
    return None, why


def _appeal_problems(appeals: Sequence[Appeal], agency: Agency) -> list[str]:
    problems = []
    if not appeals:
        problems.append("choose at least one appeal for the post")
    for appeal in appeals:
        name = f"the appeal of case {appeal.case.number}"
        if appeal.agency_id != agency.id:
            problems.append(f"{name} belongs to another agency")
        elif not appeal.is_published:
            problems.append(f"{name} is not published on the portal: publish it first")
        elif not appeal.clips:
            problems.append(f"{name} shows no clip: add an approved version")
        for position, shown in enumerate(appeal.clips, start=1):
            if not approval_is_intact(shown.version):
                problems.append(
                    f"{name}: clip {position} (version {shown.version.number}) is no longer "
                    "approved: have a supervisor approve it again, or remove it"
                )
    return problems


def prepare_delivery(network: str, appeals: list[Appeal], agency: Agency) -> Prepared:
    """What a post of ``appeals`` sends to ``network``; :class:`PreflightFailed` with
    every problem (not just the first) when it cannot go as it is."""
    limits = LIMITS.get(network)
    if limits is None:
        raise PreflightFailed([f"{network!r} is not a network this portal posts to"])
    problems = _appeal_problems(appeals, agency)
    if problems:
        raise PreflightFailed(problems)

    caption = caption_for(appeals, network, agency)
    if not caption.fits:
        if caption.limit and caption.length > caption.limit:
            problems.append(
                f"the caption is {caption.length} long as {limits.label} counts it, over its "
                f"{caption.limit} by {caption.over_by} even with the summary and title cut: "
                f"shorten the {limits.label} caption template by {caption.over_by}"
            )
        if caption.byte_limit and caption.byte_length > caption.byte_limit:
            problems.append(
                f"the caption is {caption.byte_length} bytes, over {limits.label}'s "
                f"{caption.byte_limit}: shorten the {limits.label} caption template"
            )
    if limits.hashtags_max is not None:
        tags = len(HASHTAG.findall(caption.text))
        if tags > limits.hashtags_max.value:
            problems.append(
                f"the caption has {tags} hashtags; {limits.label} takes at most "
                f"{limits.hashtags_max.value}: remove {tags - limits.hashtags_max.value}"
            )

    rendition: Rendition | None = None
    if limits.media != "none":
        rendition, why = _pick_rendition(appeals, limits)
        if rendition is None and limits.media == "required":
            problems.append(f"no video fits {limits.label}: " + "; ".join(why))
    if problems:
        raise PreflightFailed(problems)
    return Prepared(
        text=caption.text,
        rendition_id=rendition.id if rendition is not None else None,
        counted_length=caption.length,
        limit=caption.limit,
    )


def caption_problems(network: str, text: str) -> tuple[Caption, list[str]]:
    """A caption a person wrote for ``network``, counted as the network counts it, and
    what must change before it can be sent: nothing of it is cut, so what is too long
    is refused with by how much."""
    limits = LIMITS[network]
    caption = measure(text, limits)
    problems: list[str] = []
    if not text.strip():
        problems.append("write a caption")
    if caption.limit and caption.length > caption.limit:
        problems.append(
            f"the caption is {caption.length} long as {limits.label} counts it, over its "
            f"{caption.limit}: shorten it by {caption.over_by}"
        )
    if caption.byte_limit and caption.byte_length > caption.byte_limit:
        problems.append(
            f"the caption is {caption.byte_length} bytes, over {limits.label}'s "
            f"{caption.byte_limit}: shorten it by {caption.byte_length - caption.byte_limit} bytes"
        )
    if limits.hashtags_max is not None:
        tags = len(HASHTAG.findall(text))
        if tags > limits.hashtags_max.value:
            problems.append(
                f"the caption has {tags} hashtags; {limits.label} takes at most "
                f"{limits.hashtags_max.value}: remove {tags - limits.hashtags_max.value}"
            )
    return caption, problems


#: Deliveries that took (or will take) one of the account's daily posts.
_COUNTED = (
    DeliveryStatus.QUEUED.value,
    DeliveryStatus.SENDING.value,
    DeliveryStatus.RETRYING.value,
    DeliveryStatus.SENT.value,
    DeliveryStatus.NEEDS_ATTENTION.value,
)


def daily_cap_problem(
    channel: Channel, slot_at: datetime, *, post_id: int | None = None
) -> str | None:
    """What must change when the channel's account would pass its network's daily cap
    (posts in any 24 hours) by posting at ``slot_at``; None when it would not. Other
    posts of this channel within 24 hours either side count (the window moves), the
    post being checked (``post_id``) does not."""
    limits = LIMITS.get(channel.network)
    if limits is None or limits.daily_cap is None:
        return None
    day = timedelta(hours=24)
    query = (
        select(func.count())
        .select_from(Delivery)
        .join(Post, Delivery.post_id == Post.id)
        .where(
            Delivery.channel_id == channel.id,
            Delivery.status.in_(_COUNTED),
            Post.slot_at > slot_at - day,
            Post.slot_at < slot_at + day,
        )
    )
    if post_id is not None:
        query = query.where(Post.id != post_id)
    taken = db.session.scalar(query) or 0
    cap = limits.daily_cap.value
    if taken < cap:
        return None
    return (
        f"{channel.name} already has {taken} posts within 24 hours of this time and "
        f"{limits.label} takes {cap} in 24 hours: choose a time a day away from them"
    )
