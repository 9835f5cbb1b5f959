"""The mail jobs: each builds one mail from ids and hands it to the server
(portal/services/mail.py). A server that is down or answers 4xx is a transient
failure (retried with backoff for TATTLETALE_JOB_RETRY_SPAN); 5xx, a refused login
or bad TLS fail the job at once, with the server's words as the reason.

Each job has a uniqueness key, so a mail is queued once. A worker that dies after
the server took the mail but before the job was marked done sends it again: mail is
at-least-once, like SMTP itself.
"""

from __future__ import annotations

from datetime import UTC, datetime

from portal.extensions import db
from portal.jobs.errors import PermanentJobError, TransientJobError
from portal.jobs.periodic import periodic
from portal.jobs.registry import JobContext, job
from portal.models import Tip, TipMessage, User
from portal.services.mail import Mail, MailDeferred, MailRefused, send_mail
from portal.services.notifications import (
    digests_due,
    new_tip_mail,
    overdue_digest_mail,
    reply_waiting_mail,
)
from portal.services.timeliness import overdue_tips_for
from portal.services.tips import may_handle


def _send(mail: Mail) -> None:
    try:
        send_mail(mail)
    except MailDeferred as exc:
        raise TransientJobError(str(exc)) from exc
    except MailRefused as exc:
        raise PermanentJobError(str(exc)) from exc


@job("mail.new_tip", max_attempts=5)
def send_new_tip_mail(ctx: JobContext, tip_id: int, user_id: int) -> None:
    tip, user = db.session.get(Tip, tip_id), db.session.get(User, user_id)
    # Unassigned or disabled since: they are no longer told.
    if tip is None or user is None or not may_handle(user, tip):
        return
    _send(new_tip_mail(tip, user))


@job("mail.reply_waiting", max_attempts=5)
def send_reply_waiting_mail(ctx: JobContext, message_id: int) -> None:
    message = db.session.get(TipMessage, message_id)
    if message is None:
        return
    tip = message.tip
    if not (tip.notify_by_email and tip.contact_email):
        return
    _send(reply_waiting_mail(tip))


@job("mail.overdue_digest", max_attempts=5)
def send_overdue_digest(ctx: JobContext, user_id: int, day: str) -> None:
    user = db.session.get(User, user_id)
    if user is None or user.is_disabled:
        return
    tips = overdue_tips_for(user)
    if tips:
        _send(overdue_digest_mail(user, tips))


@periodic("mail.overdue_digests", every_s=3600)
def enqueue_overdue_digests() -> None:
    """Hourly: the agencies where it is now the digest hour get theirs."""
    digests_due(datetime.now(UTC))
    db.session.commit()
