"""The weekly slot and what fills it.

The slot is a local time (an ISO weekday and minutes after midnight in the agency's
IANA zone), so "Tuesday 10:00" stays 10:00 on the wall clock in March and November
while its UTC instant moves by an hour. Two local times need a rule of their own:

* a time that does not exist (the hour skipped when clocks go forward) goes out as
  many minutes after the jump as it was meant after the hour began: 02:30 on the
  spring-forward night in New York is 03:30 EDT (PEP 495's ``fold=0``, which reads
  the time with the offset in force before the change);
* a time that happens twice (the hour repeated when clocks go back) goes out once,
  at its first occurrence (``fold=0`` again: the offset before the change).

The backlog is every published appeal of an unsolved case that no post carries yet;
the suggestion for a slot is the oldest case first, never the case of the slot the
week before (when the backlog has run dry, appeals already posted come round again,
the longest unposted first, under the same rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from portal.extensions import db
from portal.models import Agency, Appeal, AppealStatus, Case, CaseStatus
from portal.publishing.models import Post, PostAppeal, PostStatus
from portal.services.localtime import zone_of

WEEK = timedelta(days=7)
#: The coordinators are warned this long before an empty slot.
EMPTY_SLOT_WARNING = timedelta(days=1)
#: Cases no longer appealed for.
CLOSED_CASES = (CaseStatus.SOLVED.value, CaseStatus.CLOSED.value)
#: Posts that will go out (or went out): what counts as a slot being filled.
LIVE_POSTS = (PostStatus.SCHEDULED.value, PostStatus.PUBLISHING.value, PostStatus.DONE.value)


def slot_instant(agency: Agency, day: date) -> datetime:
    """The UTC instant of the slot on local date ``day`` (see the module's rules for
    nonexistent and repeated local times)."""
    hour, minute = divmod(agency.slot_minute, 60)
    local = datetime.combine(day, time(hour, minute), tzinfo=zone_of(agency.timezone))
    return local.replace(fold=0).astimezone(UTC)


def next_slots(agency: Agency, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` slots strictly after ``after``, in UTC."""
    if after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    local_day = after.astimezone(zone_of(agency.timezone)).date()
    # Back up a day: the slot on ``after``'s local date may still be ahead of it.
    day = local_day - timedelta(days=1)
    day += timedelta(days=(agency.slot_weekday - day.isoweekday()) % 7)
    slots: list[datetime] = []
    while len(slots) < count:
        instant = slot_instant(agency, day)
        if instant > after:
            slots.append(instant)
        day += WEEK
    return slots


def previous_slot(agency: Agency, before: datetime) -> datetime:
    """The last slot at or before ``before``."""
    candidate = next_slots(agency, before - WEEK - timedelta(days=1), 3)
    return max(s for s in candidate if s <= before)


def _posted_appeal_ids(agency: Agency) -> set[int]:
    rows = db.session.scalars(
        select(PostAppeal.appeal_id)
        .join(Post)
        .where(Post.agency_id == agency.id, Post.status != PostStatus.CANCELLED.value)
    )
    return set(rows)


def open_appeals(agency: Agency) -> list[Appeal]:
    """Published appeals of cases still open, oldest case first (the incident's time,
    else when the case was opened)."""
    oldest = func.coalesce(Case.occurred_at, Case.created_at)
    return list(
        db.session.scalars(
            select(Appeal)
            .join(Case, Appeal.case_id == Case.id)
            .options(joinedload(Appeal.case))
            .where(
                Appeal.agency_id == agency.id,
                Appeal.status == AppealStatus.PUBLISHED.value,
                Case.status.not_in(CLOSED_CASES),
            )
            .order_by(oldest, Case.id)
        )
    )


def backlog(agency: Agency) -> list[Appeal]:
    """Published appeals of open cases that no post carries, oldest case first."""
    posted = _posted_appeal_ids(agency)
    return [appeal for appeal in open_appeals(agency) if appeal.id not in posted]


def posts_between(agency: Agency, start: datetime, end: datetime) -> list[Post]:
    """The agency's posts (not cancelled) going out in [start, end), by time."""
    return list(
        db.session.scalars(
            select(Post)
            .where(
                Post.agency_id == agency.id,
                Post.status != PostStatus.CANCELLED.value,
                Post.slot_at >= start,
                Post.slot_at < end,
            )
            .order_by(Post.slot_at, Post.id)
        )
    )


def posts_in_week_of(agency: Agency, slot: datetime) -> list[Post]:
    """The posts that count for ``slot``: those going out after the slot before it, up
    to it (a "post now" on the Friday before counts for Tuesday's slot). Bounded by the
    previous slot itself, not by seven days: across a clock change two slots are 7 days
    and an hour, or 7 days less an hour, apart."""
    before = previous_slot(agency, slot - timedelta(seconds=1))
    return posts_between(agency, before + timedelta(seconds=1), slot + timedelta(seconds=1))


def _last_posted(agency: Agency) -> dict[int, datetime]:
    rows = db.session.execute(
        select(PostAppeal.appeal_id, func.max(Post.slot_at))
        .join(Post)
        .where(Post.agency_id == agency.id, Post.status.in_(LIVE_POSTS))
        .group_by(PostAppeal.appeal_id)
    )
    return {appeal_id: when for appeal_id, when in rows}


@dataclass
class SlotPlan:
    """One coming slot: its time, the posts in it, and what to fill it with."""

    slot_at: datetime
    posts: list[Post] = field(default_factory=list)
    suggestion: list[Appeal] = field(default_factory=list)

    @property
    def filled(self) -> bool:
        return any(p.status in LIVE_POSTS for p in self.posts)

    @property
    def case_ids(self) -> set[int]:
        return {pa.appeal.case_id for p in self.posts for pa in p.appeals}


def plan_slots(agency: Agency, now: datetime, weeks: int) -> list[SlotPlan]:
    """The next ``weeks`` slots with their posts and, for each slot not yet filled, a
    suggestion of ``appeals_per_post`` appeals (each suggested once over the weeks)."""
    slots = next_slots(agency, now, weeks)
    plans = []
    for slot in slots:
        plans.append(SlotPlan(slot_at=slot, posts=posts_in_week_of(agency, slot)))

    before = previous_slot(agency, slots[0] - timedelta(seconds=1)) if slots else now
    previous_cases = SlotPlan(before, posts_in_week_of(agency, before)).case_ids
    fresh = backlog(agency)
    posted = _last_posted(agency)
    planned_ids = {pa.appeal_id for plan in plans for p in plan.posts for pa in p.appeals}
    again = sorted(
        (a for a in open_appeals(agency) if a.id in posted and a.id not in planned_ids),
        key=lambda a: posted[a.id],
    )
    used: set[int] = set()
    for plan in plans:
        if not plan.filled:
            plan.suggestion = suggest(
                [*fresh, *again], agency.appeals_per_post, avoid_cases=previous_cases, used=used
            )
            used |= {a.id for a in plan.suggestion}
        previous_cases = plan.case_ids or {a.case_id for a in plan.suggestion}
    return plans


def suggest(
    candidates: Sequence[Appeal], count: int, *, avoid_cases: set[int], used: set[int]
) -> list[Appeal]:
    """The first ``count`` candidates (already in order) not used yet and not of a
    case posted the week before."""
    chosen: list[Appeal] = []
    for appeal in candidates:
        if len(chosen) >= count:
            break
        if appeal.id in used or appeal.case_id in avoid_cases:
            continue
        chosen.append(appeal)
    return chosen


def empty_slot_ahead(agency: Agency, now: datetime) -> datetime | None:
    """The next slot, when it is less than a day away and no post will go out in it
    (the coordinators are warned on the calendar and by mail)."""
    (slot,) = next_slots(agency, now, 1)
    if slot - now > EMPTY_SLOT_WARNING:
        return None
    if SlotPlan(slot, posts_in_week_of(agency, slot)).filled:
        return None
    return slot
