"""The tip queue: whose tips, each filter and order, keyset pages, search over tips
and their messages (on SQLite's FTS5 and PostgreSQL's tsvector alike), overdue tips,
read markers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import Agency, Case, Role, Tip, TipAttachment, User
from portal.models.attachments import AttachmentStatus
from portal.services.cases import create_case
from portal.services.errors import PermissionDenied, ValidationFailed
from portal.services.tip_queue import (
    TipQuery,
    list_queue,
    mark_read,
    new_tips_since,
    unread_among,
)
from portal.services.tips import TipInput, add_staff_message, add_tipster_message, submit_tip
from portal.services.triage import TriageChange, update_tip

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def new_tip(agency: Agency, case: Case | None, body: str, minutes: int, via: str = "") -> Tip:
    tip, _ = submit_tip(TipInput(body=body, via=via), agency=agency)
    tip.case_id = case.id if case is not None else None
    tip.created_at = tip.awaiting_since = T0 + timedelta(minutes=minutes)
    db.session.commit()
    return tip


def numbers(user: User, query: TipQuery, **kwargs) -> list[str]:  # type: ignore[no-untyped-def]
    return [tip.number for tip in list_queue(user, query, **kwargs).tips]


@pytest.fixture
def world(
    app: Flask, agency: Agency, other_agency: Agency, users: dict[Role, User], case: Case, make_user
):  # type: ignore[no-untyped-def]
    other_case = create_case(
        agency, number="24-0050", title="Other", created_by=users[Role.OFFICER]
    )
    tips = {
        "case_old": new_tip(agency, case, "A red van parked at the corner", 0),
        "case_new": new_tip(agency, case, "Saw the man with the blue hat", 10, via="facebook"),
        "general": new_tip(agency, None, "Drugs sold at the park", 5),
        "other_case": new_tip(agency, other_case, "Red bicycle stolen", 20),
        "foreign": new_tip(other_agency, None, "Red van in Shelbyville", 30),
    }
    return tips


def test_queue_holds_the_tips_each_user_may_handle(world, users, make_user, other_agency) -> None:  # type: ignore[no-untyped-def]
    t = {name: tip.number for name, tip in world.items()}
    # Written out by hand: newest first.
    assert numbers(users[Role.DETECTIVE], TipQuery()) == [
        t["case_new"],
        t["general"],
        t["case_old"],
    ]
    assert numbers(users[Role.SUPERVISOR], TipQuery()) == [
        t["other_case"],
        t["case_new"],
        t["general"],
        t["case_old"],
    ]
    assert numbers(make_user(Role.DETECTIVE), TipQuery()) == [t["general"]]
    assert numbers(make_user(Role.SUPERVISOR, agency_=other_agency), TipQuery()) == [t["foreign"]]
    for role in (Role.OFFICER, Role.COORDINATOR, Role.ADMIN):
        with pytest.raises(PermissionDenied):
            list_queue(users[role], TipQuery())


def test_queue_filters_and_orders(world, users, case) -> None:  # type: ignore[no-untyped-def]
    supervisor, detective = users[Role.SUPERVISOR], users[Role.DETECTIVE]
    t = {name: tip.number for name, tip in world.items()}
    assert numbers(supervisor, TipQuery(case=case.public_id)) == [t["case_new"], t["case_old"]]
    assert numbers(supervisor, TipQuery(channel="facebook")) == [t["case_new"]]
    assert numbers(supervisor, TipQuery(sort="oldest")) == [
        t["case_old"],
        t["general"],
        t["case_new"],
        t["other_case"],
    ]
    update_tip(
        world["general"], supervisor, TriageChange(priority="urgent", status="reviewing"), version=1
    )
    update_tip(
        world["case_old"],
        supervisor,
        TriageChange(priority="high", assignee=detective.public_id),
        version=1,
    )
    db.session.commit()
    assert numbers(supervisor, TipQuery(sort="priority")) == [
        t["general"],
        t["case_old"],
        t["other_case"],
        t["case_new"],
    ]
    assert numbers(supervisor, TipQuery(status="reviewing")) == [t["general"]]
    assert numbers(detective, TipQuery(assignee="me")) == [t["case_old"]]
    assert numbers(supervisor, TipQuery(assignee=detective.public_id)) == [t["case_old"]]
    assert numbers(supervisor, TipQuery(assignee="none")) == [
        t["other_case"],
        t["case_new"],
        t["general"],
    ]
    # Answered tips leave "unanswered" and "waiting"; a tipster's reply brings one back.
    add_staff_message(world["case_old"], detective, "Which corner?")
    add_staff_message(world["case_new"], detective, "What colour was his coat?")
    db.session.commit()
    assert numbers(supervisor, TipQuery(unanswered=True)) == [t["other_case"], t["general"]]
    add_tipster_message(world["case_old"], "Elm and 5th.")
    db.session.commit()
    assert numbers(supervisor, TipQuery(sort="waiting")) == [
        t["general"],
        t["other_case"],
        t["case_old"],
    ]
    for bad in (
        TipQuery(status="open"),
        TipQuery(channel="myspace"),
        TipQuery(sort="random"),
        TipQuery(case="nope"),
    ):
        with pytest.raises(ValidationFailed):
            list_queue(supervisor, bad)


def test_overdue_follows_the_agency_target(world, users, agency) -> None:  # type: ignore[no-untyped-def]
    supervisor = users[Role.SUPERVISOR]
    t = {name: tip.number for name, tip in world.items()}
    assert agency.first_response_hours == 24  # the default
    # 24 h after case_old came, case_old alone is past the target.
    now = T0 + timedelta(hours=24, minutes=1)
    assert numbers(supervisor, TipQuery(overdue=True), now=now) == [t["case_old"]]
    agency.first_response_hours = 1
    db.session.commit()
    assert numbers(supervisor, TipQuery(overdue=True), now=now) == [
        t["other_case"],
        t["case_new"],
        t["general"],
        t["case_old"],
    ]
    add_staff_message(world["general"], supervisor, "Thank you: which park?")
    db.session.commit()
    assert t["general"] not in numbers(supervisor, TipQuery(overdue=True), now=now)


def test_keyset_pages_cover_every_tip_once_in_each_order(app: Flask, agency, case, users) -> None:  # type: ignore[no-untyped-def]
    supervisor = users[Role.SUPERVISOR]
    tips = [new_tip(agency, case, f"tip {i}", i // 3) for i in range(23)]  # ties in time
    for i, tip in enumerate(tips):
        tip.priority = i % 4
    db.session.commit()
    for sort in ("newest", "oldest", "priority", "waiting"):
        seen: list[str] = []
        cursor = None
        while True:
            page = list_queue(supervisor, TipQuery(sort=sort), after=cursor, limit=5)
            seen += [tip.number for tip in page.tips]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(t.number for t in tips), sort
        assert len(seen) == len(set(seen)) == 23, sort
    newest = [tip.number for tip in sorted(tips, key=lambda t: (t.created_at, t.id), reverse=True)]
    assert numbers(supervisor, TipQuery(), limit=23) == newest
    with pytest.raises(ValidationFailed):
        list_queue(supervisor, TipQuery(), after="not-a-tip")


def test_search_finds_words_in_the_tip_and_its_messages(world, users) -> None:  # type: ignore[no-untyped-def]
    supervisor = users[Role.SUPERVISOR]
    t = {name: tip.number for name, tip in world.items()}
    assert numbers(supervisor, TipQuery(q="red")) == [t["other_case"], t["case_old"]]
    assert numbers(supervisor, TipQuery(q="RED van")) == [t["case_old"]]  # every word, any case
    assert numbers(supervisor, TipQuery(q="elm")) == []
    add_tipster_message(world["case_new"], "It was on Elm Street, by the bakery.")
    add_staff_message(world["general"], supervisor, "Was the bakery open?")
    db.session.commit()
    assert numbers(supervisor, TipQuery(q="elm")) == [t["case_new"]]
    assert numbers(supervisor, TipQuery(q="bakery")) == [t["case_new"], t["general"]]
    # Words from two places of one tip: its text and a message.
    assert numbers(supervisor, TipQuery(q="blue elm")) == [t["case_new"]]
    # Query syntax of either database is only text.
    for q in ('red" OR "drugs', "red & !van", "NEAR(red van)", "red:*"):
        assert set(numbers(supervisor, TipQuery(q=q))) <= {t["other_case"], t["case_old"]}, q
    # No word at all is no search.
    assert numbers(supervisor, TipQuery(q="' \" --")) == numbers(supervisor, TipQuery())
    # Other agencies' tips are never found.
    assert t["foreign"] not in numbers(supervisor, TipQuery(q="shelbyville"))


def test_unread_markers_are_per_user_and_return_with_a_reply(world, users) -> None:  # type: ignore[no-untyped-def]
    detective, supervisor = users[Role.DETECTIVE], users[Role.SUPERVISOR]
    tip = world["case_new"]
    assert tip.id in unread_among(detective, [tip])
    mark_read(detective, tip)
    mark_read(detective, tip)  # a second visit updates the marker
    db.session.commit()
    assert unread_among(detective, [tip]) == frozenset()
    assert tip.id in unread_among(supervisor, [tip])
    add_tipster_message(tip, "One more thing.")
    db.session.commit()
    assert tip.id in unread_among(detective, [tip])


def test_new_tips_since_a_moment(world, users, agency, case) -> None:  # type: ignore[no-untyped-def]
    detective = users[Role.DETECTIVE]
    since = world["case_new"].created_at
    assert new_tips_since(detective, TipQuery(), since) == []
    fresh = new_tip(agency, case, "Just now", 60)
    assert [t.number for t in new_tips_since(detective, TipQuery(), since)] == [fresh.number]
    assert new_tips_since(detective, TipQuery(channel="facebook"), since) == []


def test_search_answers_alike_for_few_and_many_matches(world, users, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Past FEW_MATCHES the search is a subquery instead of a list of ids: the
    answers must not differ. A threshold of 1 sends these searches that way."""
    from portal.services import tip_queue

    supervisor = users[Role.SUPERVISOR]
    queries = [TipQuery(q="red"), TipQuery(q="red van"), TipQuery(q="park", sort="oldest")]
    few = [numbers(supervisor, q) for q in queries]
    monkeypatch.setattr(tip_queue, "FEW_MATCHES", 1)
    assert [numbers(supervisor, q) for q in queries] == few
    assert few[0] == [world["other_case"].number, world["case_old"].number]


def test_queue_filter_with_attachments_keeps_tips_with_something_to_look_at(world, users) -> None:  # type: ignore[no-untyped-def]
    supervisor = users[Role.SUPERVISOR]
    t = {name: tip.number for name, tip in world.items()}

    def attach(tip: Tip, status: AttachmentStatus) -> None:
        db.session.add(
            TipAttachment(
                agency_id=tip.agency_id, tip_id=tip.id, status=status.value, kind="image", size=10
            )
        )

    assert numbers(supervisor, TipQuery(attachments=True)) == []
    attach(world["case_old"], AttachmentStatus.READY)
    attach(world["general"], AttachmentStatus.QUEUED)  # the detective sees it coming
    attach(world["other_case"], AttachmentStatus.REFUSED)  # nothing was kept
    attach(world["foreign"], AttachmentStatus.READY)  # another agency's
    db.session.commit()
    assert numbers(supervisor, TipQuery(attachments=True)) == [t["general"], t["case_old"]]
    # One tip with several files is listed once.
    attach(world["case_old"], AttachmentStatus.FAILED)
    db.session.commit()
    assert numbers(supervisor, TipQuery(attachments=True)) == [t["general"], t["case_old"]]
    assert TipQuery(attachments=True).as_args() == {"attachments": "1"}
