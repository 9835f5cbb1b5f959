"""The agency's publishing settings: its weekly slot and its caption templates.

Admins change them; every change is audited with the values before and after. Services
flush; the request commits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from portal.extensions import db
from portal.models import Agency, Appeal, User
from portal.publishing.caption_models import CaptionTemplate
from portal.publishing.captions import (
    CLOSING_FIELDS,
    ITEM_FIELDS,
    AppealFields,
    Caption,
    Template,
    fields_for,
    fit_caption,
)
from portal.publishing.limits import LIMITS, limits_for
from portal.services.audit import record_event
from portal.services.errors import ValidationFailed
from portal.services.localtime import is_known_zone

#: Networks whose captions an admin may write (the portal's own page shows the appeal).
CAPTION_NETWORKS = tuple(n for n in LIMITS if n != "portal")
MAX_APPEALS_PER_POST = 6
MAX_REMOVE_AFTER_DAYS = 3650


@dataclass(frozen=True)
class SlotSettings:
    weekday: int
    minute: int
    timezone: str
    appeals_per_post: int
    remove_posts_after_days: int


def slot_settings_of(agency: Agency) -> SlotSettings:
    return SlotSettings(
        weekday=agency.slot_weekday,
        minute=agency.slot_minute,
        timezone=agency.timezone,
        appeals_per_post=agency.appeals_per_post,
        remove_posts_after_days=agency.remove_posts_after_days,
    )


def update_slot_settings(
    agency: Agency, actor: User, settings: SlotSettings, *, client_addr: str | None = None
) -> None:
    """Change the weekly slot. Posts already planned keep their time (a changed slot
    applies to the slots planned from now on)."""
    if not 1 <= settings.weekday <= 7:
        raise ValidationFailed("Choose a weekday.", field="weekday")
    if not 0 <= settings.minute < 24 * 60:
        raise ValidationFailed("The time must be between 00:00 and 23:59.", field="time")
    if not is_known_zone(settings.timezone):
        raise ValidationFailed(
            f"{settings.timezone!r} is not a time zone of the tz database (such as "
            "America/New_York or Europe/Berlin).",
            field="timezone",
        )
    if not 1 <= settings.appeals_per_post <= MAX_APPEALS_PER_POST:
        raise ValidationFailed(
            f"A post carries 1 to {MAX_APPEALS_PER_POST} appeals.", field="appeals_per_post"
        )
    if not 0 <= settings.remove_posts_after_days <= MAX_REMOVE_AFTER_DAYS:
        raise ValidationFailed(
            f"Removal is after 0 (never) to {MAX_REMOVE_AFTER_DAYS} days.",
            field="remove_posts_after_days",
        )
    before = slot_settings_of(agency)
    agency.slot_weekday = settings.weekday
    agency.slot_minute = settings.minute
    agency.timezone = settings.timezone
    agency.appeals_per_post = settings.appeals_per_post
    agency.remove_posts_after_days = settings.remove_posts_after_days
    record_event(
        "publishing.slot_settings",
        agency_id=agency.id,
        actor=actor,
        object_type="agency",
        object_id=agency.public_id,
        client_addr=client_addr,
        details={"before": before.__dict__, "after": settings.__dict__},
    )
    db.session.flush()


def template_row(agency: Agency, network: str) -> CaptionTemplate | None:
    return db.session.scalar(
        select(CaptionTemplate).where(
            CaptionTemplate.agency_id == agency.id, CaptionTemplate.network == network
        )
    )


def check_template(template: Template) -> dict[str, list[str]]:
    """Problems per part of a template (empty when it may be saved)."""
    from portal.publishing.captions import template_problems

    problems = {
        "item": template_problems(template.item, ITEM_FIELDS, required=("tip_url",)),
        "closing": template_problems(template.closing, CLOSING_FIELDS),
    }
    return {part: found for part, found in problems.items() if found}


def save_caption_template(
    agency: Agency,
    actor: User,
    network: str,
    template: Template,
    *,
    client_addr: str | None = None,
) -> CaptionTemplate:
    if network not in CAPTION_NETWORKS:
        raise ValidationFailed(f"{network!r} is not a network with captions.", field="network")
    problems = check_template(template)
    if problems:
        part, found = next(iter(problems.items()))
        raise ValidationFailed("; ".join(found), field=part)
    row = template_row(agency, network)
    if row is None:
        row = CaptionTemplate(agency_id=agency.id, network=network)
        db.session.add(row)
    row.item, row.closing, row.hashtags = template.item, template.closing, template.hashtags
    row.updated_by_id = actor.id
    record_event(
        "publishing.caption_template",
        agency_id=agency.id,
        actor=actor,
        object_type="caption_template",
        object_id=network,
        client_addr=client_addr,
        details={"item": template.item, "closing": template.closing, "hashtags": template.hashtags},
    )
    db.session.flush()
    return row


def sample_fields(network: str) -> AppealFields:
    """Stand-in values for previewing a template when there is no appeal to show."""
    return AppealFields(
        case_number="26-0001",
        title="Man wanted for a robbery on Main Street",
        summary=(
            "On a Saturday evening a man in a grey hooded jacket threatened the cashier "
            "of the corner shop and left with the till's contents."
        ),
        when="Sat 14 Mar 2026, 21:40",
        where="Main Street and 5th Avenue",
        tip_url=f"https://tattletale.example/appeals/k3J9xQ2wP7?via={limits_for(network).via}",
    )


def preview_caption(
    agency: Agency, network: str, template: Template, appeal: Appeal | None
) -> Caption:
    """The template written out for ``appeal`` (or sample values), cut and counted as
    ``network`` will."""
    items = [fields_for(appeal, network, agency) if appeal is not None else sample_fields(network)]
    return fit_caption(template, items, limits_for(network))


def describe_preview(caption: Caption) -> dict[str, object]:
    """What the caption editor shows of a preview, worded once for the page and for the
    live preview's JSON (the browser only places these words, it counts nothing)."""
    if caption.limit:
        count = f"{caption.length} / {caption.limit}"
        if caption.byte_limit:
            count += f", {caption.byte_length} / {caption.byte_limit} bytes"
    else:
        count = "No length limit"
    if caption.cut and caption.fits:  # otherwise the warning says it was cut in vain
        count += " · shortened to fit"
    warning = ""
    if not caption.fits:
        over = (
            f"{caption.over_by}"
            if caption.over_by
            else f"{caption.byte_length - caption.byte_limit} bytes"
        )
        warning = f"Too long by {over} even with the summary and title cut: shorten the template."
    return {
        "text": caption.text,
        "count": count,
        "length": caption.length,
        "limit": caption.limit,
        "byte_length": caption.byte_length,
        "byte_limit": caption.byte_limit,
        "cut": caption.cut,
        "fits": caption.fits,
        "warning": warning,
    }
