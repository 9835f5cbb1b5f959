"""Captions: written from the agency's templates (data, per network), counted as each
network counts them, and cut to the network's limit without breaking a character.

A caption is the *item* template once per appeal the post carries, then the *closing*
once. Fields are written ``{name}``; a line whose fields are all empty (a case with
no known place) is left out rather than printed as "Where: ". Templates are filled by a
plain substitution of known names, never ``str.format``: an admin's template must not
reach attributes of the objects behind the values.

When a caption is too long the summaries are shortened first, then the titles, each
at a grapheme boundary (a word boundary where one is near) with an ellipsis; the
tip link, the closing and the rest of the template are never cut. If it is still too
long, :func:`fit_caption` says by how much, and preflight refuses the post.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import regex
from sqlalchemy import select

from portal.extensions import db
from portal.models import Agency, Appeal
from portal.publishing.caption_models import CaptionTemplate
from portal.publishing.counting import count_bytes, count_length, graphemes
from portal.publishing.limits import NetworkLimits, limits_for
from portal.services.localtime import format_local

DEFAULT_HASHTAGS = "#TattletaleTuesday"
DEFAULT_ITEM = (
    "Case {case_number}: {title}\n"
    "{summary}\n"
    "When: {when}\n"
    "Where: {where}\n"
    "Know something? Tell us here: {tip_url}"
)
# Naming a suspect in public comments can hurt an innocent person and the case; the
# tip form reaches detectives privately.
DEFAULT_CLOSING = (
    "Please don't name anyone in the comments: use the tip link, it goes straight to "
    "the detectives and can be anonymous.\n{hashtags}"
)
ITEM_FIELDS = ("case_number", "title", "summary", "when", "where", "tip_url")
CLOSING_FIELDS = ("hashtags",)
#: How an incident time reads in a caption (in the agency's zone).
WHEN_FORMAT = "%a %-d %b %Y, %H:%M"
ELLIPSIS = "…"

_FIELD = regex.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Template:
    item: str = DEFAULT_ITEM
    closing: str = DEFAULT_CLOSING
    hashtags: str = DEFAULT_HASHTAGS


@dataclass(frozen=True)
class AppealFields:
    """One appeal's values for the item template, already public."""

    case_number: str
    title: str
    summary: str
    when: str
    where: str
    tip_url: str

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in ITEM_FIELDS}


@dataclass(frozen=True)
class Caption:
    """A caption as it will be sent, with its length as the network counts it."""

    text: str
    length: int
    #: The network's ceiling (0: none).
    limit: int
    byte_length: int
    byte_limit: int
    #: Whether summaries or titles were shortened to fit.
    cut: bool

    @property
    def fits(self) -> bool:
        return (not self.limit or self.length <= self.limit) and (
            not self.byte_limit or self.byte_length <= self.byte_limit
        )

    @property
    def over_by(self) -> int:
        return max(0, self.length - self.limit) if self.limit else 0


def template_problems(text: str, allowed: Sequence[str], required: Sequence[str] = ()) -> list[str]:
    """What is wrong with a template's text: fields it may not use, fields it must."""
    used = set(_FIELD.findall(text))
    problems = [
        f"{{{name}}} is not a field here (fields: {', '.join('{' + a + '}' for a in allowed)})"
        for name in sorted(used - set(allowed))
    ]
    problems += [f"the template must contain {{{name}}}" for name in required if name not in used]
    return problems


def template_for(agency: Agency, network: str) -> Template:
    """The agency's template for ``network``: its own, else the agency's template for
    every network, else the defaults."""
    rows = {
        row.network: row
        for row in db.session.scalars(
            select(CaptionTemplate).where(
                CaptionTemplate.agency_id == agency.id, CaptionTemplate.network.in_((network, ""))
            )
        )
    }
    row = rows.get(network) or rows.get("")
    if row is None:
        return Template()
    return Template(item=row.item, closing=row.closing, hashtags=row.hashtags)


def tip_url(appeal: Appeal, network: str) -> str:
    """The appeal's public page with the channel a tip came through (``?via=``)."""
    from portal.publishing.limits import LIMITS
    from portal.services.notifications import page_url

    limits = LIMITS.get(network)
    if limits is None:  # a network without limits of its own: the page, uncounted
        return page_url("public.appeal_page", appeal_id=appeal.public_id)
    return page_url("public.appeal_page", appeal_id=appeal.public_id, via=limits.via)


def fields_for(appeal: Appeal, network: str, agency: Agency) -> AppealFields:
    case = appeal.case
    return AppealFields(
        case_number=case.number,
        title=appeal.title,
        summary=appeal.summary.strip(),
        when=format_local(case.occurred_at, agency.timezone, WHEN_FORMAT),
        where=case.location_address.strip(),
        tip_url=tip_url(appeal, network),
    )


def _fill(template: str, values: dict[str, str]) -> str:
    lines = []
    for line in template.splitlines():
        names = [name for name in _FIELD.findall(line) if name in values]
        if names and not any(values[name] for name in names):
            continue
        lines.append(_FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), line).strip())
    return "\n".join(lines).strip()


def render_caption(template: Template, items: Sequence[AppealFields]) -> str:
    parts = [_fill(template.item, item.as_dict()) for item in items]
    parts.append(_fill(template.closing, {"hashtags": template.hashtags.strip()}))
    return "\n\n".join(part for part in parts if part)


def shorten(value: str, keep: int) -> str:
    """``value`` in at most ``keep`` graphemes, the ellipsis included; cut at a word
    boundary when one lies in the last third, never inside a grapheme."""
    clusters = graphemes(value)
    if len(clusters) <= keep:
        return value
    if keep <= 1:
        return ""
    cut = "".join(clusters[: keep - 1]).rstrip()
    space = cut.rfind(" ")
    if space >= len(cut) * 2 // 3:
        cut = cut[:space].rstrip()
    return cut.rstrip(" ,;:.-") + ELLIPSIS


def measure(text: str, limits: NetworkLimits) -> Caption:
    limit = limits.caption_max.value if limits.caption_max else 0
    byte_limit = limits.caption_max_bytes.value if limits.caption_max_bytes else 0
    return Caption(
        text=text,
        length=count_length(text, limits.counting),
        limit=limit,
        byte_length=count_bytes(text),
        byte_limit=byte_limit,
        cut=False,
    )


def _largest_fitting(longest: int, attempt: Callable[[int], Caption]) -> Caption | None:
    """The caption at the largest ``keep`` in 0..longest that fits, by bisection (a
    shorter field never makes a caption longer), or None when even 0 does not."""
    low, high = 0, longest
    best = attempt(0)
    if not best.fits:
        return None
    while low < high:
        middle = (low + high + 1) // 2
        caption = attempt(middle)
        if caption.fits:
            low, best = middle, caption
        else:
            high = middle - 1
    return best


def fit_caption(
    template: Template, items: Sequence[AppealFields], limits: NetworkLimits
) -> Caption:
    """The caption cut to the network's limit; when even shortened summaries and titles
    do not fit, the shortest caption possible (``fits`` False, ``over_by`` says how
    much of the template's own text must go)."""
    full = measure(render_caption(template, items), limits)
    if full.fits:
        return full

    def with_summaries(keep: int) -> Caption:
        shortened = [replace(i, summary=shorten(i.summary, keep)) for i in items]
        return replace(measure(render_caption(template, shortened), limits), cut=True)

    longest = max((len(graphemes(i.summary)) for i in items), default=0)
    fitted = _largest_fitting(longest, with_summaries)
    if fitted is not None:
        return fitted

    def with_titles(keep: int) -> Caption:
        shortened = [replace(i, summary="", title=shorten(i.title, keep)) for i in items]
        return replace(measure(render_caption(template, shortened), limits), cut=True)

    longest = max((len(graphemes(i.title)) for i in items), default=0)
    fitted = _largest_fitting(longest, with_titles)
    return fitted if fitted is not None else with_titles(0)


def caption_for(appeals: Sequence[Appeal], network: str, agency: Agency) -> Caption:
    """The caption of a post of ``appeals`` on ``network``, as it will be sent."""
    items = [fields_for(appeal, network, agency) for appeal in appeals]
    return fit_caption(template_for(agency, network), items, limits_for(network))
