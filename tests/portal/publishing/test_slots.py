"""The weekly slot across daylight-saving changes, the backlog and its suggestion.

Expected instants are written out by hand from the 2026 transitions: New York goes to
EDT on Sunday 8 March and back to EST on Sunday 1 November; Berlin to CEST on Sunday
29 March."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask

from portal.extensions import db
from portal.models import Agency, Appeal, AppealStatus, Role, User
from portal.publishing.models import Post, PostAppeal, PostStatus
from portal.publishing.slots import backlog, empty_slot_ahead, next_slots, plan_slots
from tests.portal.publishing.plan_helpers import social_appeal


def _agency(zone: str, weekday: int = 2, minute: int = 600) -> Agency:
    return Agency(name="A", slug="a", timezone=zone, slot_weekday=weekday, slot_minute=minute)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_next_slots_tuesday_ten_stays_ten_across_march_in_new_york() -> None:
    agency = _agency("America/New_York")
    assert next_slots(agency, utc(2026, 3, 1), 3) == [
        utc(2026, 3, 3, 15),  # 10:00 EST
        utc(2026, 3, 10, 14),  # 10:00 EDT
        utc(2026, 3, 17, 14),
    ]


def test_next_slots_tuesday_ten_stays_ten_across_november_in_new_york() -> None:
    agency = _agency("America/New_York")
    assert next_slots(agency, utc(2026, 10, 20, 15), 2) == [
        utc(2026, 10, 27, 14),  # 10:00 EDT
        utc(2026, 11, 3, 15),  # 10:00 EST
    ]


def test_next_slots_berlin_spring() -> None:
    agency = _agency("Europe/Berlin")
    assert next_slots(agency, utc(2026, 3, 20), 2) == [
        utc(2026, 3, 24, 9),  # 10:00 CET
        utc(2026, 3, 31, 8),  # 10:00 CEST
    ]


def test_next_slots_is_strictly_after() -> None:
    agency = _agency("America/New_York")
    assert next_slots(agency, utc(2026, 3, 10, 14), 1) == [utc(2026, 3, 17, 14)]
    assert next_slots(agency, utc(2026, 3, 10, 13, 59), 1) == [utc(2026, 3, 10, 14)]


def test_next_slots_local_date_behind_utc() -> None:
    # Wednesday 03:00 UTC is still Tuesday 23:00 in New York, past that day's slot.
    agency = _agency("America/New_York")
    assert next_slots(agency, utc(2026, 3, 11, 3), 1) == [utc(2026, 3, 17, 14)]
    # Tuesday 00:00 local slot, asked at Monday 23:59 local (Tuesday 03:59 UTC).
    midnight = _agency("America/New_York", minute=0)
    assert next_slots(midnight, utc(2026, 3, 17, 3, 59), 1) == [utc(2026, 3, 17, 4)]


def test_next_slots_nonexistent_local_time_goes_out_after_the_jump() -> None:
    # Sunday 02:30 does not exist on 8 March 2026 in New York: 03:30 EDT = 07:30 UTC.
    agency = _agency("America/New_York", weekday=7, minute=150)
    assert next_slots(agency, utc(2026, 3, 2), 2) == [
        utc(2026, 3, 8, 7, 30),
        utc(2026, 3, 15, 6, 30),
    ]


def test_next_slots_repeated_local_time_goes_out_once_at_the_first() -> None:
    # Sunday 01:30 happens twice on 1 November 2026: 05:30 UTC (EDT) and 06:30 UTC (EST).
    agency = _agency("America/New_York", weekday=7, minute=90)
    assert next_slots(agency, utc(2026, 10, 31), 2) == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 8, 6, 30),
    ]


def test_next_slots_unknown_zone_falls_back_to_utc() -> None:
    agency = _agency("Mars/Olympus_Mons")
    assert next_slots(agency, utc(2026, 3, 1), 1) == [utc(2026, 3, 3, 10)]


# -- backlog and suggestion ------------------------------------------------------------


def _appeal(
    agency: Agency, users: dict[Role, User], number: str, occurred: datetime, **kw: Any
) -> Appeal:
    return social_appeal(
        agency,
        users[Role.OFFICER],
        users[Role.SUPERVISOR],
        number=number,
        occurred_at=occurred,
        **kw,
    )


def _post(
    agency: Agency, user: User, slot_at: datetime, appeals: list[Appeal], status: PostStatus
) -> Post:
    post = Post(agency_id=agency.id, slot_at=slot_at, status=status.value, created_by_id=user.id)
    post.appeals = [PostAppeal(appeal_id=a.id, position=i) for i, a in enumerate(appeals)]
    db.session.add(post)
    db.session.commit()
    return post


def test_backlog_oldest_open_case_first_without_posted_drafts_or_solved(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    newer = _appeal(agency, users, "B", utc(2025, 6, 1))
    older = _appeal(agency, users, "A", utc(2025, 1, 1))
    _appeal(agency, users, "C", utc(2024, 1, 1), solved=True)
    _appeal(agency, users, "D", utc(2024, 1, 1), status=AppealStatus.DRAFT)
    posted = _appeal(agency, users, "E", utc(2023, 1, 1))
    cancelled = _appeal(agency, users, "F", utc(2024, 6, 1))
    user = users[Role.COORDINATOR]
    _post(agency, user, utc(2026, 3, 3, 10), [posted], PostStatus.SCHEDULED)
    _post(agency, user, utc(2026, 3, 3, 10), [cancelled], PostStatus.CANCELLED)
    assert [a.case.number for a in backlog(agency)] == ["F", "A", "B"]
    assert older in backlog(agency) and newer in backlog(agency)


def test_plan_slots_suggests_each_appeal_once_in_order(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    agency.timezone = "UTC"
    _appeal(agency, users, "A", utc(2025, 1, 1))
    _appeal(agency, users, "B", utc(2025, 2, 1))
    plans = plan_slots(agency, utc(2026, 3, 1), 3)
    assert [p.slot_at for p in plans] == [
        utc(2026, 3, 3, 10),
        utc(2026, 3, 10, 10),
        utc(2026, 3, 17, 10),
    ]
    assert [[a.case.number for a in p.suggestion] for p in plans] == [["A"], ["B"], []]


def test_plan_slots_planned_slot_is_filled_and_not_suggested(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    agency.timezone = "UTC"
    a = _appeal(agency, users, "A", utc(2025, 1, 1))
    _appeal(agency, users, "B", utc(2025, 2, 1))
    _post(agency, users[Role.COORDINATOR], utc(2026, 3, 3, 10), [a], PostStatus.SCHEDULED)
    plans = plan_slots(agency, utc(2026, 3, 1), 2)
    assert plans[0].filled and plans[0].suggestion == []
    assert [pa.appeal.case.number for pa in plans[0].posts[0].appeals] == ["A"]
    assert [x.case.number for x in plans[1].suggestion] == ["B"]


def test_plan_slots_never_the_same_case_two_weeks_running(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    agency.timezone = "UTC"
    # Nothing new to post; C went out last Tuesday. It may come round again, but not
    # this week: this week gets no suggestion, the week after gets C.
    c = _appeal(agency, users, "C", utc(2025, 1, 1))
    _post(agency, users[Role.COORDINATOR], utc(2026, 2, 24, 10), [c], PostStatus.DONE)
    plans = plan_slots(agency, utc(2026, 3, 1), 2)
    assert [[x.case.number for x in p.suggestion] for p in plans] == [[], ["C"]]


def test_plan_slots_draft_post_leaves_the_slot_empty(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    agency.timezone = "UTC"
    a = _appeal(agency, users, "A", utc(2025, 1, 1))
    _post(agency, users[Role.COORDINATOR], utc(2026, 3, 3, 10), [a], PostStatus.DRAFT)
    (plan,) = plan_slots(agency, utc(2026, 3, 1), 1)
    assert not plan.filled
    assert len(plan.posts) == 1


def test_empty_slot_ahead_only_within_a_day_and_when_nothing_will_go_out(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    agency.timezone = "America/New_York"
    db.session.commit()
    slot = utc(2026, 3, 10, 14)
    assert empty_slot_ahead(agency, slot - timedelta(hours=25)) is None
    assert empty_slot_ahead(agency, slot - timedelta(hours=23)) == slot
    a = _appeal(agency, users, "A", utc(2025, 1, 1))
    draft = _post(agency, users[Role.COORDINATOR], slot, [a], PostStatus.DRAFT)
    assert empty_slot_ahead(agency, slot - timedelta(hours=23)) == slot
    draft.status = PostStatus.SCHEDULED.value
    db.session.commit()
    assert empty_slot_ahead(agency, slot - timedelta(hours=23)) is None


def test_plan_slots_a_post_counts_for_one_slot_across_the_clock_change(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    # 3 March 15:00 UTC and 10 March 14:00 UTC are 7 days less an hour apart: the
    # post of the first slot must not also fill the second.
    agency.timezone = "America/New_York"
    a = _appeal(agency, users, "A", utc(2025, 1, 1))
    _appeal(agency, users, "B", utc(2025, 2, 1))
    _post(agency, users[Role.COORDINATOR], utc(2026, 3, 3, 15), [a], PostStatus.SCHEDULED)
    first, second = plan_slots(agency, utc(2026, 3, 1), 2)
    assert first.filled and len(first.posts) == 1
    assert not second.filled and second.posts == []
    assert [x.case.number for x in second.suggestion] == ["B"]
