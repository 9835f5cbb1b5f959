"""Who is told what by e-mail, and when: a new tip to its case's detectives, a daily
digest of overdue tips to each detective, and a tipster who asked for it that a
reply waits. This module decides and enqueues; the jobs (portal/jobs/mail.py) build
and send, after the request's commit. What a mail may say: portal/services/mail.py.

Which tips are overdue: portal/services/timeliness.py.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from portal.extensions import db
from portal.jobs.registry import enqueue
from portal.models import Agency, Case, Role, Tip, TipMessage, User, UserRole
from portal.models.base import utcnow
from portal.services.appeals import CHANNEL_LABELS
from portal.services.mail import Mail

# The digest goes out when it is this hour in the agency's time zone.
DIGEST_LOCAL_HOUR = 7


def _sends_mail() -> bool:
    return bool(current_app.config["TATTLETALE"].sends_mail)


def page_url(endpoint: str, **values: str) -> str:
    """An absolute link to a page, for a mail: a job has no request to take the host
    from, so it comes from TATTLETALE_PUBLIC_URL."""
    base = urlsplit(current_app.config["TATTLETALE"].public_url)
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme
    )
    return adapter.build(endpoint, values, force_external=True)


# -- deciding and enqueueing (called by the tip services, inside the request) ----------


def tip_received(tip: Tip) -> None:
    """A new tip: each detective assigned to its case gets a mail (a general tip,
    with no case, waits for the queue and the digest)."""
    if not _sends_mail() or tip.case_id is None:
        return
    case = db.session.get(Case, tip.case_id)
    assert case is not None
    for detective in case.detectives:
        if detective.is_disabled:
            continue
        enqueue(
            "mail.new_tip",
            unique_key=f"mail:new_tip:{tip.id}:{detective.id}",
            tip_id=tip.id,
            user_id=detective.id,
        )


def staff_replied(message: TipMessage) -> None:
    """A detective wrote to the tipster: if they asked to be told, they are."""
    tip = message.tip
    if not _sends_mail() or not (tip.notify_by_email and tip.contact_email):
        return
    enqueue("mail.reply_waiting", unique_key=f"mail:reply:{message.id}", message_id=message.id)


def digests_due(now: datetime | None = None) -> int:
    """Enqueue today's digest for each detective of each agency where it is now
    the digest hour; one per detective and local day, however often this runs."""
    if not _sends_mail():
        return 0
    from zoneinfo import ZoneInfo

    now = now or utcnow()
    count = 0
    for agency in db.session.scalars(select(Agency)):
        local = now.astimezone(ZoneInfo(agency.timezone or "UTC"))
        if local.hour != DIGEST_LOCAL_HOUR:
            continue
        day = local.date().isoformat()
        detectives = db.session.scalars(
            select(User.id)
            .join(UserRole)
            .where(
                User.agency_id == agency.id,
                UserRole.role == Role.DETECTIVE.value,
                User.is_disabled.is_(False),
            )
        )
        for user_id in detectives:
            enqueue(
                "mail.overdue_digest",
                unique_key=f"mail:digest:{user_id}:{day}",
                user_id=user_id,
                day=day,
            )
            count += 1
    return count


# -- the mails ----------------------------------------------------------------------------


def new_tip_mail(tip: Tip, detective: User) -> Mail:
    case_number = tip.case.number if tip.case is not None else "none"
    channel = CHANNEL_LABELS.get(tip.channel, "the site")
    link = page_url("staff.tip_detail", tip_id=tip.public_id)
    text = (
        f"A new tip, {tip.number}, came in for case {case_number} (through {channel}).\n\n"
        f"Read it and answer the tipster here (sign-in required):\n{link}\n\n"
        "This mail carries neither the tip's text nor anything about who sent it.\n"
    )
    return Mail(to=detective.email, subject=f"New tip for case {case_number}", text=text)


def overdue_digest_mail(detective: User, tips: list[Tip], now: datetime | None = None) -> Mail:
    now = now or utcnow()
    lines = []
    for tip in tips:
        waited = int((now - tip.created_at).total_seconds() // 3600)
        case_number = tip.case.number if tip.case is not None else "no case"
        link = page_url("staff.tip_detail", tip_id=tip.public_id)
        lines.append(f"- {tip.number} (case {case_number}), waiting {waited} h: {link}")
    count = len(tips)
    text = (
        f"{count} tip{'s' if count != 1 else ''} you may answer had no reply within "
        "your agency's first-response target:\n\n" + "\n".join(lines) + "\n\n"
        "Tipsters who hear nothing rarely come back. Sign in to answer them.\n"
    )
    subject = f"{count} overdue tip{'s' if count != 1 else ''}"
    return Mail(to=detective.email, subject=subject, text=text)


def reply_waiting_mail(tip: Tip) -> Mail:
    """In the language the tip was sent in (one no longer offered: the default), with
    a link that opens the page in it. The staff mails above stay English."""
    assert tip.contact_email
    offered = current_app.config["TATTLETALE"].languages
    language = tip.language if tip.language in offered else offered[0]
    values = {"lang": language} if language != offered[0] else {}
    link = page_url("public.tip_check", **values)
    with force_locale(language):
        text = "\n\n".join(
            (
                _("Hello,"),
                _(
                    "You sent information through this site and asked to be told when "
                    "there is an answer. There is one waiting for you."
                ),
                _("Open it here with the tip number and passphrase of your receipt:") + f"\n{link}",
                _(
                    "This mail does not contain the answer. If you did not send anything, "
                    "you can ignore it."
                ),
            )
        )
        subject = _("A reply is waiting for you")
    return Mail(to=tip.contact_email, subject=subject, text=text + "\n")
