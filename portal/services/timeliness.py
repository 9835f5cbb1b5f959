"""Timeliness: which tips are overdue.

A tip is overdue when it still wants an answer (not closed as no value, duplicate or
closed), no staff member has written to the tipster, and it came in longer ago than
its agency's first-response target (``Agency.first_response_hours``, 24 hours unless
the agency chose otherwise).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select

from portal.extensions import db
from portal.models import Agency, Tip, User
from portal.services.tip_queue import overdue_condition, triage_scope
from portal.services.tips import may_handle

DIGEST_LIMIT = 50


def overdue_tips_query(user: User, now: datetime | None = None) -> Select[tuple[Tip]]:
    """The tips ``user`` may see that are past their agency's first-response target
    (the queue's own rule, :func:`portal.services.tip_queue.overdue_condition`),
    longest waiting first."""
    agency = db.session.get(Agency, user.agency_id)
    assert agency is not None
    return (
        select(Tip)
        .where(triage_scope(user), overdue_condition(agency, now))
        .order_by(Tip.created_at, Tip.id)
    )


def overdue_tips_for(
    user: User, now: datetime | None = None, limit: int = DIGEST_LIMIT
) -> list[Tip]:
    tips = db.session.scalars(overdue_tips_query(user, now).limit(limit * 2))
    return [tip for tip in tips if may_handle(user, tip)][:limit]
