"""The coordinators' warning when the next slot is still empty a day before it.

Decided here and enqueued with a key per agency, slot and coordinator, so each is told
once however often the periodic pass runs; the job (portal/jobs/slot_warnings.py)
looks again before sending, so a slot filled meanwhile sends nothing.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import select

from portal.extensions import db
from portal.jobs.registry import enqueue
from portal.models import Agency, Role, User, UserRole
from portal.models.base import utcnow
from portal.publishing.slots import empty_slot_ahead
from portal.services.localtime import format_local
from portal.services.mail import Mail

MAIL_JOB = "mail.empty_slot"


def slot_key(slot: datetime) -> str:
    return slot.strftime("%Y-%m-%dT%H:%MZ")


def coordinators_of(agency: Agency) -> list[User]:
    return list(
        db.session.scalars(
            select(User)
            .join(UserRole)
            .where(
                User.agency_id == agency.id,
                UserRole.role == Role.COORDINATOR.value,
                User.is_disabled.is_(False),
            )
            .order_by(User.id)
        )
    )


def empty_slot_warnings_due(now: datetime | None = None) -> int:
    """Enqueue the warning for each coordinator of each agency whose next slot is less
    than a day away with nothing planned in it; returns how many were enqueued."""
    if not current_app.config["TATTLETALE"].sends_mail:
        return 0
    now = now or utcnow()
    count = 0
    for agency in db.session.scalars(select(Agency).order_by(Agency.id)):
        slot = empty_slot_ahead(agency, now)
        if slot is None:
            continue
        for user in coordinators_of(agency):
            enqueue(
                MAIL_JOB,
                unique_key=f"mail:empty_slot:{agency.id}:{slot_key(slot)}:{user.id}",
                agency_id=agency.id,
                user_id=user.id,
                slot=slot_key(slot),
            )
            count += 1
    return count


def empty_slot_mail(agency: Agency, user: User, slot: datetime) -> Mail:
    from portal.services.notifications import page_url

    when = format_local(slot, agency.timezone, "%A %-d %B, %H:%M %Z")
    link = page_url("staff.schedule_calendar")
    text = (
        f"Nothing is planned for {agency.name}'s #TattletaleTuesday slot on {when}.\n\n"
        f"Fill it on the calendar, where the backlog suggests an appeal (sign-in "
        f"required):\n{link}\n\n"
        "If the slot stays empty, nothing is posted this week.\n"
    )
    return Mail(to=user.email, subject=f"The slot on {when} is empty", text=text)
