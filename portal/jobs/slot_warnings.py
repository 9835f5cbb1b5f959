"""The empty-slot warning: a periodic pass that enqueues it, and the mail job."""

from __future__ import annotations

from datetime import UTC, datetime

from portal.extensions import db
from portal.jobs.errors import PermanentJobError, TransientJobError
from portal.jobs.periodic import periodic
from portal.jobs.registry import JobContext, job
from portal.models import Agency, Role, User
from portal.models.base import utcnow
from portal.publishing.notices import MAIL_JOB, empty_slot_mail, empty_slot_warnings_due
from portal.publishing.slots import empty_slot_ahead
from portal.services.mail import MailDeferred, MailRefused, send_mail


@periodic("publishing.empty_slot_warnings", every_s=900)
def enqueue_empty_slot_warnings() -> None:
    """Every 15 minutes: a slot becomes "a day away" at most a quarter-hour late."""
    empty_slot_warnings_due()
    db.session.commit()


@job(MAIL_JOB, max_attempts=5)
def send_empty_slot_mail(ctx: JobContext, agency_id: int, user_id: int, slot: str) -> None:
    agency, user = db.session.get(Agency, agency_id), db.session.get(User, user_id)
    if (
        agency is None
        or user is None
        or user.is_disabled
        or Role.COORDINATOR not in user.held_roles
    ):
        return
    when = datetime.strptime(slot, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    # Filled (or moved) since it was enqueued: nothing to say.
    now = utcnow()
    if now >= when or empty_slot_ahead(agency, now) != when:
        return
    try:
        send_mail(empty_slot_mail(agency, user, when))
    except MailDeferred as exc:
        raise TransientJobError(str(exc)) from exc
    except MailRefused as exc:
        raise PermanentJobError(str(exc)) from exc
