"""Timeliness: which tips are overdue.

A tip is overdue when it still wants an answer (not closed as no value, duplicate or
closed), no staff member has written to the tipster, and it came in longer ago than
its agency's first-response target (``Agency.first_response_hours``, 24 hours unless
the agency chose otherwise).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, select

from portal.extensions import db
from portal.models import Agency, Tip, TipStatus, User
from portal.models.base import utcnow
from portal.services.tips import may_handle, visible_tips_query

# Statuses in which a tip no longer waits for a first answer.
SETTLED = (TipStatus.NO_VALUE.value, TipStatus.DUPLICATE.value, TipStatus.CLOSED.value)
DIGEST_LIMIT = 50


def overdue_tips_query(user: User, now: datetime | None = None) -> Select[tuple[Tip]]:
    """The tips ``user`` may see that are past their agency's first-response target,
    longest waiting first."""
    now = now or utcnow()
    hours = db.session.scalar(
        select(Agency.first_response_hours).where(Agency.id == user.agency_id)
    )
    cutoff = now - timedelta(hours=hours if hours is not None else 24)
    return (
        visible_tips_query(user)
        .where(
            Tip.last_staff_message_at.is_(None),
            Tip.status.not_in(SETTLED),
            Tip.created_at < cutoff,
        )
        .order_by(Tip.created_at, Tip.id)
    )


def overdue_tips_for(
    user: User, now: datetime | None = None, limit: int = DIGEST_LIMIT
) -> list[Tip]:
    tips = db.session.scalars(overdue_tips_query(user, now).limit(limit * 2))
    return [tip for tip in tips if may_handle(user, tip)][:limit]
