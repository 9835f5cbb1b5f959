"""Outcomes: page views as daily totals (in the database, or through Redis), the
funnel per appeal with numbers worked out by hand, leads, solved per month, and
nothing that identifies a tipster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import Agency, Appeal, AppealDailyViews, Role, Tip, TipLead, User
from portal.models.base import utcnow
from portal.services.case_life import Solution, solve_case
from portal.services.errors import ValidationFailed
from portal.services.outcomes import (
    Period,
    agency_outcomes,
    count_page_view,
    flush_page_views,
    mark_lead,
    quarter,
    record_new_leads,
    refresh_totals,
)
from portal.services.tips import TipInput, submit_tip
from tests.portal.conftest import listed_appeal

REDIS_URL = os.environ.get("TATTLETALE_TEST_REDIS_URL", "")


@pytest.fixture
def appeals(agency: Agency, users: dict[Role, User]) -> tuple[Appeal, Appeal]:
    owner, approver = users[Role.OFFICER], users[Role.SUPERVISOR]
    first = listed_appeal(
        agency, owner, approver, number="O-1", title="First", published_days_ago=10
    )
    second = listed_appeal(
        agency, owner, approver, number="O-2", title="Second", published_days_ago=2
    )
    return first, second


def tip(appeal: Appeal, via: str, hours_after: float) -> Tip:
    made, _ = submit_tip(TipInput(body="I know him.", via=via), agency=appeal.agency, appeal=appeal)
    assert appeal.published_at is not None
    made.created_at = appeal.published_at + timedelta(hours=hours_after)
    db.session.flush()
    return made


def test_count_page_view_keeps_a_daily_total_only(app: Flask, appeals) -> None:  # type: ignore[no-untyped-def]
    first, _ = appeals
    day = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    for _ in range(3):
        count_page_view(first.id, day)
    count_page_view(first.id, day + timedelta(days=1))
    db.session.commit()
    rows = db.session.execute(
        select(AppealDailyViews.day, AppealDailyViews.views).order_by(AppealDailyViews.day)
    ).all()
    assert [(r.day.isoformat(), r.views) for r in rows] == [("2026-11-30", 3), ("2026-12-01", 1)]
    # The row is the appeal, the day and the number: nothing else to hold a visitor.
    assert set(AppealDailyViews.__table__.c.keys()) == {"appeal_id", "day", "views"}


def test_public_appeal_page_counts_a_view(client: FlaskClient, appeals) -> None:  # type: ignore[no-untyped-def]
    first, _ = appeals
    before = db.session.scalar(select(AppealDailyViews.views)) or 0
    assert client.get(f"/appeals/{first.public_id}").status_code == 200
    assert db.session.scalar(select(AppealDailyViews.views)) == before + 1


@pytest.mark.skipif(not REDIS_URL, reason="TATTLETALE_TEST_REDIS_URL is not set")
def test_page_views_through_redis_reach_the_database_on_flush(app: Flask, appeals) -> None:  # type: ignore[no-untyped-def]
    import redis

    first, second = appeals
    prefix = f"test-outcomes-{os.getpid()}"
    app.config["TATTLETALE"] = replace(
        app.config["TATTLETALE"], redis_url=REDIS_URL, rate_limit_key_prefix=prefix
    )
    client = redis.Redis.from_url(REDIS_URL)
    try:
        day = utcnow()
        for _ in range(5):
            count_page_view(first.id, day)
        count_page_view(second.id, day)
        db.session.commit()
        assert db.session.scalar(select(AppealDailyViews.views)) is None  # not yet
        assert flush_page_views() == 6
        assert flush_page_views() == 0
        count_page_view(first.id, day)
        assert flush_page_views() == 1
        views = dict(
            db.session.execute(select(AppealDailyViews.appeal_id, AppealDailyViews.views)).all()
        )
        assert views == {first.id: 6, second.id: 1}
        assert list(client.scan_iter(match=f"{prefix}:*")) == []
    finally:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)


def test_agency_outcomes_funnel_by_hand(
    app: Flask, appeals, users: dict[Role, User], agency: Agency, other_agency: Agency
) -> None:  # type: ignore[no-untyped-def]
    first, second = appeals
    t1 = tip(first, "facebook", 5)
    tip(first, "facebook", 7)
    t3 = tip(first, "qr", 30)
    tip(second, "", 1)
    foreign = listed_appeal(
        other_agency,
        users[Role.OFFICER],
        users[Role.SUPERVISOR],
        number="X-1",
        title="Theirs",
    )
    tip(foreign, "x", 1)  # another agency's: never counted here
    for _ in range(40):
        count_page_view(first.id)
    count_page_view(second.id)
    assert first.published_at is not None
    mark_lead(t3, first.published_at + timedelta(hours=50))
    mark_lead(t3, first.published_at + timedelta(hours=90))  # the first time stays
    t1.status = "actionable"
    db.session.commit()
    assert record_new_leads(first.published_at + timedelta(hours=60)) == 1  # t1
    assert record_new_leads() == 0
    solve_case(
        first.case,
        users[Role.OFFICER],
        reason="Named by a tipster",
        solution=Solution(tips_led=True, tip_ids=(t3.public_id,)),
    )
    db.session.commit()

    stale = agency_outcomes(agency.id, Period("all"))
    assert stale.totals["tips"] == 0  # not added up yet
    assert refresh_totals() == 3  # every appeal, both agencies
    result = agency_outcomes(agency.id, Period("all"))
    by_title = {a.title: a for a in result.appeals}
    assert set(by_title) == {"First", "Second"}
    one, two = by_title["First"], by_title["Second"]
    assert (one.page_views, one.tips, one.leads) == (40, 3, 2)
    assert one.tips_by_channel == {"facebook": 2, "qr": 1}
    assert (one.hours_to_first_tip, one.hours_to_first_lead) == (5.0, 50.0)
    assert one.solved and one.solved_with_tips
    assert (two.page_views, two.tips, two.leads, two.solved) == (1, 1, 0, False)
    assert two.tips_by_channel == {"web": 1}
    assert two.hours_to_first_lead is None
    assert result.totals == {
        "appeals": 2,
        "page_views": 41,
        "tips": 4,
        "leads": 2,
        "solved": 1,
        "solved_with_tips": 1,
    }
    this_month = utcnow().strftime("%Y-%m")
    assert result.solved_by_month[this_month] == (1, 1)
    assert len(result.solved_by_month) in (12, 13)  # the last twelve months


def test_quarter_parses_and_refuses() -> None:
    q = quarter("2026-Q4")
    assert (q.start, q.end) == (
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert quarter("2026-q1").end == datetime(2026, 4, 1, tzinfo=UTC)
    assert quarter("", today=datetime(2026, 5, 2).date()).label == "2026-Q2"
    assert quarter("all").start is None
    for bad in ("2026-Q5", "2026", "Q4-2026", "1999-Q1", "abc"):
        with pytest.raises(ValidationFailed):
            quarter(bad)


def test_outcomes_period_keeps_appeals_published_in_it(app: Flask, appeals, agency: Agency) -> None:  # type: ignore[no-untyped-def]
    first, second = appeals
    first.published_at = datetime(2026, 9, 30, 23, 0, tzinfo=UTC)
    second.published_at = datetime(2026, 10, 1, 0, 0, tzinfo=UTC)
    db.session.commit()
    assert [a.title for a in agency_outcomes(agency.id, quarter("2026-Q4")).appeals] == ["Second"]
    assert [a.title for a in agency_outcomes(agency.id, quarter("2026-Q3")).appeals] == ["First"]
    assert db.session.scalar(select(TipLead.tip_id)) is None


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)


def test_post_outcomes_credit_each_post_with_its_appeals_week_by_hand(
    app: Flask, appeals, users: dict[Role, User], agency: Agency, other_agency: Agency
) -> None:  # type: ignore[no-untyped-def]
    from portal.publishing.models import Channel, Delivery, Post, PostAppeal
    from portal.services.outcomes import post_outcomes

    first, second = appeals
    coordinator = users[Role.SUPERVISOR]
    assert first.published_at is not None
    # Post A carried both appeals, sent to Facebook and Mastodon a day after the first
    # was published (the Mastodon delivery an hour later); post B carried the second
    # a week after A; a third post was never sent.
    facebook = Channel(agency_id=agency.id, network="facebook", name="Page")
    mastodon = Channel(agency_id=agency.id, network="mastodon", name="Toots")
    sent_a = first.published_at + timedelta(days=1)
    sent_b = sent_a + timedelta(days=7)
    a = Post(agency_id=agency.id, slot_at=sent_a, created_by_id=coordinator.id)
    a.appeals = [PostAppeal(appeal=first, position=0), PostAppeal(appeal=second, position=1)]
    a.deliveries = [
        Delivery(channel=facebook, status="sent", sent_at=sent_a),
        Delivery(channel=mastodon, status="sent", sent_at=sent_a + timedelta(hours=1)),
    ]
    b = Post(agency_id=agency.id, slot_at=sent_b, created_by_id=coordinator.id)
    b.appeals = [PostAppeal(appeal=second, position=0)]
    b.deliveries = [Delivery(channel=facebook, status="sent", sent_at=sent_b)]
    never = Post(agency_id=agency.id, slot_at=sent_b, created_by_id=coordinator.id)
    never.appeals = [PostAppeal(appeal=first, position=0)]
    never.deliveries = [Delivery(channel=facebook, status="failed")]
    db.session.add_all([facebook, mastodon, a, b, never])
    db.session.flush()
    # Tips (hours after the first appeal was published; post A went out at hour 24).
    tip(first, "facebook", 10)  # before any post: nobody's
    lead = tip(first, "facebook", 26)  # A's, a lead at hour 30
    tip(first, "mastodon", 30)  # A's
    comment = tip(first, "", 40)  # A's: a comment under it, filed by the replies engine
    comment.channel, comment.origin = "reply:facebook", "comment"
    tip(first, "qr", 24 + 7 * 24 + 1)  # after A's week, and the first is not in B
    assert second.published_at is not None
    late = tip(second, "facebook", 0)
    late.created_at = sent_b + timedelta(hours=3)  # B's (second, in B's week)
    mark_lead(lead, first.published_at + timedelta(hours=30))
    # Page views: the first appeal on A's first day and on the day before it.
    db.session.add_all(
        [
            AppealDailyViews(appeal_id=first.id, day=sent_a.date(), views=120),
            AppealDailyViews(appeal_id=first.id, day=sent_a.date() - timedelta(days=1), views=7),
            AppealDailyViews(appeal_id=second.id, day=sent_b.date(), views=30),
        ]
    )
    solve_case(
        second.case,
        users[Role.OFFICER],
        reason="Named by a tipster",
        solution=Solution(tips_led=True, tip_ids=(late.public_id,)),
    )
    db.session.commit()

    agency_id = agency.id  # loaded now: not one of the statements counted
    with counted_statements() as statements:
        posts = post_outcomes(agency_id, Period("all"))
    # The posts, their appeals (with their cases), networks, tips, leads, page views:
    # six round trips for the two posts, as for one (below) or for a year of them.
    assert len(statements) == 6
    assert [p.post_id for p in posts] == [b.public_id, a.public_id]  # newest first; never: none
    one_b, one_a = posts
    assert one_a.appeals == ["First", "Second"]
    assert one_a.networks == ["facebook", "mastodon"]
    assert one_a.sent_at == sent_a
    assert one_a.tips_by_channel == {"facebook": 1, "mastodon": 1, "reply:facebook": 1}
    assert (one_a.tips, one_a.leads, one_a.page_views, one_a.solved) == (3, 1, 120, 1)
    assert (one_a.hours_to_first_tip, one_a.hours_to_first_lead) == (2.0, 6.0)
    assert one_b.appeals == ["Second"] and one_b.networks == ["facebook"]
    assert one_b.tips_by_channel == {"facebook": 1}
    assert (one_b.tips, one_b.leads, one_b.page_views, one_b.solved) == (1, 0, 30, 1)
    assert (one_b.hours_to_first_tip, one_b.hours_to_first_lead) == (3.0, None)
    # A period keeps the posts first sent in it; another agency sees none of them.
    with counted_statements() as statements:
        period_a = post_outcomes(agency_id, Period("A", sent_a, sent_b))
    assert [p.post_id for p in period_a] == [a.public_id]
    assert len(statements) == 6
    assert (period_a[0].tips, period_a[0].leads, period_a[0].page_views) == (3, 1, 120)
    assert post_outcomes(other_agency.id, Period("all")) == []
