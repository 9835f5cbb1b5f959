"""Outcomes: what an agency's appeals led to, for its staff and for its council.

Per appeal, the funnel published → page views → tips (by channel) → actionable leads
→ solved, the time from publishing to the first tip and to the first lead; and per
month, the cases solved with the help of tips. Nothing here identifies a tipster:
tips are counted, never listed, and page views are daily totals per appeal.

Page views are counted without storing anything about the visitor. With Redis
configured (``TATTLETALE_REDIS_URL``) a view is one HINCRBY on the day's hash, and a
periodic job adds the totals to ``appeal_daily_views`` every minute: a viral appeal
costs the database one write a minute, not one per view. Without Redis it is one
upsert (``views = views + 1``) in the request's transaction.

Tips and page views per appeal are added up every few minutes into
``appeal_totals`` (:func:`refresh_totals`): counting a million tips on every visit to
the page is what the benchmark measured too slow. The page says when they were
last added up.

When a tip became a lead: :func:`mark_lead` records it as it happens (for the triage
code to call); a periodic pass also records, at the time it runs, every actionable
tip not yet recorded, so a lead is never missed whoever set the status.

Per weekly post (:func:`post_outcomes`): what a post's appeals led to in the week
after it went out (page views, tips by channel, leads), and whether their cases were
solved.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Date, Integer, and_, func, insert, literal, select, union_all
from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db
from portal.models import (
    Appeal,
    AppealDailyViews,
    AppealTotals,
    Case,
    CaseStatus,
    CaseStatusChange,
    Tip,
    TipLead,
    TipStatus,
)
from portal.models.base import UTCDateTime, utcnow
from portal.services.appeals import CHANNEL_LABELS
from portal.services.errors import ValidationFailed

VIEWS_KEY = "views"
# A day's hash outlives the day by this much, for a flush that was late.
VIEWS_TTL_S = 3 * 86400


# -- page views ---------------------------------------------------------------------------


def _redis() -> Any | None:
    settings = current_app.config["TATTLETALE"]
    if not settings.redis_url:
        return None
    client = current_app.extensions.get("tattletale.outcomes_redis")
    if client is None:
        import redis

        client = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
        current_app.extensions["tattletale.outcomes_redis"] = client
    return client


def _prefix() -> str:
    return f"{current_app.config['TATTLETALE'].rate_limit_key_prefix}:{VIEWS_KEY}"


def _upsert_views(rows: dict[tuple[int, date], int]) -> None:
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for (appeal_id, day), views in rows.items():
        statement = insert_(AppealDailyViews).values(appeal_id=appeal_id, day=day, views=views)
        db.session.execute(
            statement.on_conflict_do_update(
                index_elements=["appeal_id", "day"],
                set_={"views": AppealDailyViews.views + statement.excluded.views},
            )
        )


def count_page_view(appeal_id: int, now: datetime | None = None) -> None:
    """One showing of the appeal's public page, added to today's total (UTC). Only
    the appeal and the day are written: no address, no time of day, no cookie."""
    day = (now or utcnow()).date()
    client = _redis()
    if client is not None:
        key = f"{_prefix()}:{day.isoformat()}"
        try:
            pipe = client.pipeline(transaction=False)
            pipe.hincrby(key, str(appeal_id), 1)
            pipe.expire(key, VIEWS_TTL_S)
            pipe.execute()
            return
        except Exception:  # noqa: BLE001 - a counter must never break the public page
            current_app.logger.warning("page view counter unavailable; counted in the database")
    _upsert_views({(appeal_id, day): 1})


def flush_page_views() -> int:
    """Move the totals counted in Redis into the database. Each day's hash is renamed
    first (atomic), so views counted meanwhile go to a fresh hash; a hash whose flush
    failed keeps its ``:flushing:`` name and is taken by the next run. Commits."""
    client = _redis()
    if client is None:
        return 0
    prefix = _prefix()
    moved = 0
    for raw in list(client.scan_iter(match=f"{prefix}:*", count=500)):
        key = raw.decode() if isinstance(raw, bytes) else raw
        rest = key.removeprefix(prefix + ":")
        day_text = rest.split(":", 1)[0]
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            continue
        if ":flushing:" in rest:
            taken = key
        else:
            taken = f"{key}:flushing:{secrets.token_hex(4)}"
            # Another flush may have taken it since the scan.
            if not client.exists(key):
                continue
            client.rename(key, taken)
        counts = client.hgetall(taken)
        rows = {(int(appeal_id), day): int(views) for appeal_id, views in counts.items()}
        existing = set(
            db.session.scalars(select(Appeal.id).where(Appeal.id.in_([a for a, _ in rows])))
        )
        _upsert_views({k: v for k, v in rows.items() if k[0] in existing})
        db.session.commit()
        client.delete(taken)
        moved += sum(rows.values())
    return moved


# -- leads ------------------------------------------------------------------------------


def mark_lead(tip: Tip, now: datetime | None = None) -> None:
    """Record that ``tip`` became an actionable lead now (once; later calls keep the
    first time)."""
    dialect = db.session.get_bind().dialect.name
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(
        insert_(TipLead)
        .values(
            tip_id=tip.id,
            agency_id=tip.agency_id,
            appeal_id=tip.appeal_id,
            marked_at=now or utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["tip_id"])
    )


def record_new_leads(now: datetime | None = None) -> int:
    """Every actionable tip without a lead row gets one, at ``now``. Commits."""
    recorded = select(TipLead.tip_id)
    pending = select(
        Tip.id, Tip.agency_id, Tip.appeal_id, literal(now or utcnow(), type_=UTCDateTime())
    )
    statement = insert(TipLead).from_select(
        ["tip_id", "agency_id", "appeal_id", "marked_at"],
        pending.where(Tip.status == TipStatus.ACTIONABLE.value, Tip.id.not_in(recorded)),
    )
    recorded_now = len(db.session.execute(statement.returning(TipLead.tip_id)).all())
    db.session.commit()
    return recorded_now


# -- the funnel ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Appeals published in [start, end); ``label`` names it on pages and files."""

    label: str
    start: datetime | None = None
    end: datetime | None = None


def quarter(value: str | None, today: date | None = None) -> Period:
    """``"2026-Q4"`` as a period; empty: the current quarter; ``"all"``: every appeal."""
    value = (value or "").strip()
    if value == "all":
        return Period("all appeals")
    if not value:
        today = today or utcnow().date()
        value = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    try:
        year_text, q_text = value.upper().split("-Q")
        year, number = int(year_text), int(q_text)
        if not (1 <= number <= 4 and 2000 <= year <= 2100):
            raise ValueError
    except ValueError:
        raise ValidationFailed(
            "Give the quarter as YEAR-Qn, e.g. 2026-Q4, or all.", field="quarter"
        ) from None
    start = datetime(year, 3 * number - 2, 1, tzinfo=UTC)
    end = datetime(year + (number == 4), 1 if number == 4 else 3 * number + 1, 1, tzinfo=UTC)
    return Period(f"{year}-Q{number}", start, end)


@dataclass
class AppealOutcome:
    appeal_id: str
    title: str
    case_number: str
    published_at: datetime | None
    page_views: int = 0
    tips_by_channel: dict[str, int] = field(default_factory=dict)
    leads: int = 0
    solved: bool = False
    solved_with_tips: bool = False
    first_tip_at: datetime | None = None
    first_lead_at: datetime | None = None

    @property
    def tips(self) -> int:
        return sum(self.tips_by_channel.values())

    def hours_to(self, moment: datetime | None) -> float | None:
        if moment is None or self.published_at is None:
            return None
        return round(max(0.0, (moment - self.published_at).total_seconds()) / 3600, 1)

    @property
    def hours_to_first_tip(self) -> float | None:
        return self.hours_to(self.first_tip_at)

    @property
    def hours_to_first_lead(self) -> float | None:
        return self.hours_to(self.first_lead_at)


@dataclass
class Outcomes:
    period: Period
    appeals: list[AppealOutcome]
    # "2026-11" -> (cases solved, of which with tips)
    solved_by_month: dict[str, tuple[int, int]]

    @property
    def totals(self) -> dict[str, int]:
        return {
            "appeals": len(self.appeals),
            "page_views": sum(a.page_views for a in self.appeals),
            "tips": sum(a.tips for a in self.appeals),
            "leads": sum(a.leads for a in self.appeals),
            "solved": sum(a.solved for a in self.appeals),
            "solved_with_tips": sum(a.solved_with_tips for a in self.appeals),
        }

    @property
    def tips_by_channel(self) -> dict[str, int]:
        total: dict[str, int] = defaultdict(int)
        for appeal in self.appeals:
            for channel, count in appeal.tips_by_channel.items():
                total[channel] += count
        return dict(sorted(total.items(), key=lambda item: -item[1]))


def channel_label(channel: str) -> str:
    return CHANNEL_LABELS.get(channel, "The site itself")


def agency_outcomes(agency_id: int, period: Period) -> Outcomes:
    """The funnel of every appeal the agency published in the period (counted up to
    now), and the cases it solved per month in the period (or the last 12 months)."""
    appeal_query = (
        select(
            Appeal.id, Appeal.public_id, Appeal.title, Appeal.published_at, Case.number, Case.status
        )
        .join(Case, Case.id == Appeal.case_id)
        .where(Appeal.agency_id == agency_id, Appeal.published_at.is_not(None))
        .order_by(Appeal.published_at.desc(), Appeal.id.desc())
    )
    if period.start is not None:
        appeal_query = appeal_query.where(Appeal.published_at >= period.start)
    if period.end is not None:
        appeal_query = appeal_query.where(Appeal.published_at < period.end)
    rows = db.session.execute(appeal_query).all()
    by_id: dict[int, AppealOutcome] = {}
    for appeal_id, public_id, title, published_at, number, status in rows:
        by_id[appeal_id] = AppealOutcome(
            appeal_id=public_id,
            title=title,
            case_number=number,
            published_at=published_at,
            solved=status == CaseStatus.SOLVED.value,
        )
    if by_id:
        _add_counts(agency_id, by_id, period)
    return Outcomes(period, list(by_id.values()), _solved_by_month(agency_id, period))


def refresh_totals(agency_id: int | None = None, now: datetime | None = None) -> int:
    """Add up each appeal's tips per channel, first tip and page views into
    ``appeal_totals`` (every agency's, or one's). Run by a periodic job; commits.
    Returns the number of appeals refreshed."""
    now = now or utcnow()
    agencies = (
        [agency_id]
        if agency_id is not None
        else list(db.session.scalars(select(Appeal.agency_id).distinct()))
    )
    refreshed = 0
    for agency in agencies:
        totals: dict[int, dict[str, Any]] = {
            appeal_id: {"page_views": 0, "tips_by_channel": {}, "first_tip_at": None}
            for appeal_id in db.session.scalars(select(Appeal.id).where(Appeal.agency_id == agency))
        }
        # One pass over the covering index (agency, appeal, channel, created_at).
        tip_counts = (
            select(Tip.appeal_id, Tip.channel, func.count(), func.min(Tip.created_at))
            .where(Tip.agency_id == agency, Tip.appeal_id.is_not(None))
            .group_by(Tip.appeal_id, Tip.channel)
        )
        for appeal_id, channel, count, first in db.session.execute(tip_counts):
            row = totals.get(appeal_id)
            if row is None:
                continue
            row["tips_by_channel"][channel] = count
            if row["first_tip_at"] is None or first < row["first_tip_at"]:
                row["first_tip_at"] = first
        views = (
            select(AppealDailyViews.appeal_id, func.sum(AppealDailyViews.views))
            .join(Appeal, Appeal.id == AppealDailyViews.appeal_id)
            .where(Appeal.agency_id == agency)
            .group_by(AppealDailyViews.appeal_id)
        )
        for appeal_id, total in db.session.execute(views):
            if appeal_id in totals:
                totals[appeal_id]["page_views"] = int(total or 0)
        dialect = db.session.get_bind().dialect.name
        insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
        for appeal_id, row in totals.items():
            statement = insert_(AppealTotals).values(
                appeal_id=appeal_id, agency_id=agency, refreshed_at=now, **row
            )
            db.session.execute(
                statement.on_conflict_do_update(
                    index_elements=["appeal_id"],
                    set_={
                        "page_views": statement.excluded.page_views,
                        "tips_by_channel": statement.excluded.tips_by_channel,
                        "first_tip_at": statement.excluded.first_tip_at,
                        "refreshed_at": statement.excluded.refreshed_at,
                    },
                )
            )
        db.session.commit()
        refreshed += len(totals)
    return refreshed


def _add_counts(agency_id: int, by_id: dict[int, AppealOutcome], period: Period) -> None:
    # Tips and page views from the periodic totals (refresh_totals); leads and solving
    # are few rows, read as they are.
    totals = select(
        AppealTotals.appeal_id,
        AppealTotals.page_views,
        AppealTotals.tips_by_channel,
        AppealTotals.first_tip_at,
    ).where(AppealTotals.agency_id == agency_id)
    for appeal_id, page_views, tips_by_channel, first_tip_at in db.session.execute(totals):
        outcome = by_id.get(appeal_id)
        if outcome is not None:
            outcome.page_views = page_views
            outcome.tips_by_channel = dict(tips_by_channel or {})
            outcome.first_tip_at = first_tip_at
    leads = (
        select(TipLead.appeal_id, func.count(), func.min(TipLead.marked_at))
        .where(TipLead.agency_id == agency_id, TipLead.appeal_id.is_not(None))
        .group_by(TipLead.appeal_id)
    )
    for appeal_id, count, first in db.session.execute(leads):
        if appeal_id in by_id:
            by_id[appeal_id].leads = count
            by_id[appeal_id].first_lead_at = first
    # The latest solving of each solved case says whether tips led to it.
    solved = db.session.execute(
        select(Appeal.id, CaseStatusChange.tips_led, CaseStatusChange.changed_at)
        .join(CaseStatusChange, CaseStatusChange.case_id == Appeal.case_id)
        .join(Case, Case.id == Appeal.case_id)
        .where(
            Appeal.agency_id == agency_id,
            Case.status == CaseStatus.SOLVED.value,
            CaseStatusChange.to_status == CaseStatus.SOLVED.value,
        )
        .order_by(CaseStatusChange.changed_at)
    )
    for appeal_id, tips_led, _ in solved:
        if appeal_id in by_id:
            by_id[appeal_id].solved_with_tips = bool(tips_led)


def _solved_by_month(agency_id: int, period: Period) -> dict[str, tuple[int, int]]:
    end = period.end or utcnow()
    start = period.start or (end - timedelta(days=365))
    changes = db.session.execute(
        select(CaseStatusChange.case_id, CaseStatusChange.changed_at, CaseStatusChange.tips_led)
        .where(
            CaseStatusChange.agency_id == agency_id,
            CaseStatusChange.to_status == CaseStatus.SOLVED.value,
            CaseStatusChange.changed_at >= start,
            CaseStatusChange.changed_at < end,
        )
        .order_by(CaseStatusChange.changed_at)
    )
    # A case solved, reopened and solved again in one month counts once, as last solved.
    last: dict[tuple[str, int], bool] = {}
    for case_id, changed_at, tips_led in changes:
        last[(changed_at.strftime("%Y-%m"), case_id)] = bool(tips_led)
    months: dict[str, tuple[int, int]] = {}
    cursor = date(start.year, start.month, 1)
    while cursor < end.date():
        months[cursor.strftime("%Y-%m")] = (0, 0)
        cursor = date(cursor.year + (cursor.month == 12), cursor.month % 12 + 1, 1)
    for (month, _), with_tips in last.items():
        solved, helped = months.get(month, (0, 0))
        months[month] = (solved + 1, helped + int(with_tips))
    return months


def chart_data(outcomes: Outcomes) -> dict[str, Any]:
    """What the charts draw (portal/static/js/outcomes.js): plain numbers and labels."""
    totals = outcomes.totals
    channels = outcomes.tips_by_channel
    return {
        "funnel": {
            "labels": ["Appeals published", "Page views", "Tips", "Actionable leads", "Solved"],
            "values": [
                totals["appeals"],
                totals["page_views"],
                totals["tips"],
                totals["leads"],
                totals["solved"],
            ],
        },
        "channels": {
            "labels": [channel_label(c) for c in channels],
            "values": list(channels.values()),
        },
        "months": {
            "labels": list(outcomes.solved_by_month),
            "solved": [s for s, _ in outcomes.solved_by_month.values()],
            "with_tips": [t for _, t in outcomes.solved_by_month.values()],
        },
    }


# -- per weekly post -------------------------------------------------------------------

#: What a post is credited with: what happened to its appeals in the week after it went
#: out (the next week's post takes over from there).
POST_WINDOW = timedelta(days=7)


@dataclass
class PostOutcome:
    """What one weekly post led to: its appeals' page views, tips (by channel) and
    leads in the week after it was first sent, and whether their cases were solved."""

    post_id: str
    sent_at: datetime
    appeals: list[str]
    networks: list[str]
    page_views: int = 0
    tips_by_channel: dict[str, int] = field(default_factory=dict)
    leads: int = 0
    solved: int = 0
    first_tip_at: datetime | None = None
    first_lead_at: datetime | None = None

    @property
    def tips(self) -> int:
        return sum(self.tips_by_channel.values())

    def _hours(self, moment: datetime | None) -> float | None:
        if moment is None:
            return None
        return round(max(0.0, (moment - self.sent_at).total_seconds()) / 3600, 1)

    @property
    def hours_to_first_tip(self) -> float | None:
        return self._hours(self.first_tip_at)

    @property
    def hours_to_first_lead(self) -> float | None:
        return self._hours(self.first_lead_at)


def post_outcomes(agency_id: int, period: Period) -> list[PostOutcome]:
    """Every post of the agency first sent in the period, newest first, with what its
    appeals led to in the :data:`POST_WINDOW` after. Six statements however many posts:
    each post's window is a row of a common table expression the counts join."""
    # Publishing builds on the services, not the other way round: imported here.
    from portal.publishing.models import Channel, Delivery, Post, PostAppeal

    sent = func.min(Delivery.sent_at)
    query = (
        select(Post.id, Post.public_id, sent)
        .join(Delivery, Delivery.post_id == Post.id)
        .where(Post.agency_id == agency_id, Delivery.sent_at.is_not(None))
        .group_by(Post.id, Post.public_id)
        .order_by(sent.desc(), Post.id.desc())
    )
    if period.start is not None:
        query = query.having(sent >= period.start)
    if period.end is not None:
        query = query.having(sent < period.end)
    outcomes: dict[int, PostOutcome] = {}
    for post_id, public_id, sent_at in db.session.execute(query).all():
        sent_at = sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=UTC)
        outcomes[post_id] = PostOutcome(post_id=public_id, sent_at=sent_at, appeals=[], networks=[])
    if not outcomes:
        return []

    solved_cases: dict[int, set[int]] = defaultdict(set)
    for post_id, title, case_id, status in db.session.execute(
        select(PostAppeal.post_id, Appeal.title, Case.id, Case.status)
        .join(Appeal, Appeal.id == PostAppeal.appeal_id)
        .join(Case, Case.id == Appeal.case_id)
        .where(PostAppeal.post_id.in_(outcomes))
        .order_by(PostAppeal.post_id, PostAppeal.position)
    ):
        outcomes[post_id].appeals.append(title)
        if status == CaseStatus.SOLVED.value:
            solved_cases[post_id].add(case_id)
    for post_id, network in db.session.execute(
        select(Delivery.post_id, Channel.network)
        .join(Channel, Channel.id == Delivery.channel_id)
        .where(Delivery.post_id.in_(outcomes), Delivery.sent_at.is_not(None))
        .distinct()
    ):
        outcomes[post_id].networks.append(network)

    windows = _post_windows(outcomes)
    in_window = (
        Tip.appeal_id == PostAppeal.appeal_id,
        Tip.agency_id == agency_id,
        Tip.created_at >= windows.c.start,
        Tip.created_at < windows.c.until,
    )
    posts_appeals = select(windows.c.post_id).join(
        PostAppeal, PostAppeal.post_id == windows.c.post_id
    )
    for post_id, channel, count, first in db.session.execute(
        posts_appeals.add_columns(Tip.channel, func.count(), func.min(Tip.created_at))
        .join(Tip, and_(*in_window))
        .group_by(windows.c.post_id, Tip.channel)
    ):
        outcome = outcomes[post_id]
        outcome.tips_by_channel[channel] = count
        if outcome.first_tip_at is None or first < outcome.first_tip_at:
            outcome.first_tip_at = first
    for post_id, leads, first_lead in db.session.execute(
        posts_appeals.add_columns(func.count(), func.min(TipLead.marked_at))
        .join(Tip, and_(*in_window))
        .join(TipLead, TipLead.tip_id == Tip.id)
        .group_by(windows.c.post_id)
    ):
        outcomes[post_id].leads, outcomes[post_id].first_lead_at = int(leads), first_lead
    for post_id, views in db.session.execute(
        posts_appeals.add_columns(func.sum(AppealDailyViews.views))
        .join(
            AppealDailyViews,
            and_(
                AppealDailyViews.appeal_id == PostAppeal.appeal_id,
                AppealDailyViews.day >= windows.c.first_day,
                AppealDailyViews.day < windows.c.end_day,
            ),
        )
        .group_by(windows.c.post_id)
    ):
        outcomes[post_id].page_views = int(views or 0)
    for post_id, outcome in outcomes.items():
        outcome.networks.sort()
        outcome.solved = len(solved_cases[post_id])
    return list(outcomes.values())


def _post_windows(outcomes: dict[int, PostOutcome]) -> Any:
    """One row per post: its id, the moments its window starts and ends, and the days
    of page views it covers (literal rows: the same SQL on SQLite and PostgreSQL)."""
    rows = []
    for post_id, outcome in outcomes.items():
        until = outcome.sent_at + POST_WINDOW
        rows.append(
            select(
                literal(post_id, type_=Integer()).label("post_id"),
                literal(outcome.sent_at, type_=UTCDateTime()).label("start"),
                literal(until, type_=UTCDateTime()).label("until"),
                literal(outcome.sent_at.date(), type_=Date()).label("first_day"),
                literal(until.date(), type_=Date()).label("end_day"),
            )
        )
    return (rows[0] if len(rows) == 1 else union_all(*rows)).cte("post_windows")
