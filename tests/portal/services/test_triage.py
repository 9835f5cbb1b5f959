"""Triage of one tip and of a selection: what changes, what is refused, what the
audit log keeps, and two detectives changing one tip at once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.extensions import db
from portal.models import Agency, AuditEvent, Case, Role, Tip, TipLead, TipNote, TipTag, User
from portal.models.base import utcnow
from portal.services.cases import assign_detective, create_case
from portal.services.errors import PermissionDenied, ValidationFailed
from portal.services.tips import TipInput, submit_tip
from portal.services.triage import (
    StaleTip,
    TriageChange,
    add_note,
    bulk_update,
    tip_history,
    update_tip,
)


def new_tip(agency: Agency, case: Case | None, body: str = "The red van again.") -> Tip:
    tip, _ = submit_tip(TipInput(body=body), agency=agency)
    tip.case_id = case.id if case is not None else None
    db.session.commit()
    return tip


def test_update_tip_changes_fields_raises_version_and_audits(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case
) -> None:
    detective = users[Role.DETECTIVE]
    tip = new_tip(agency, case)
    changed = update_tip(
        tip,
        detective,
        TriageChange(
            status="actionable",
            priority="urgent",
            assignee=detective.public_id,
            tags=["Plate seen", " vehicle ", "plate  SEEN"],
        ),
        version=1,
    )
    db.session.commit()
    assert changed == ["assignee", "priority", "status", "tags"]
    db.session.refresh(tip)
    assert (tip.status, tip.priority, tip.assignee_id, tip.version) == (
        "actionable",
        3,
        detective.id,
        2,
    )
    assert db.session.scalars(sa.select(TipTag.name).order_by(TipTag.name)).all() == [
        "plate seen",
        "vehicle",
    ]
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "tip.triage")).one()
    assert event.agency_id == agency.id and event.actor_id == detective.id
    assert event.details["changes"]["status"] == ["new", "actionable"]
    assert event.details["changes"]["priority"] == ["normal", "urgent"]
    assert [entry.action for entry in tip_history(tip)] == ["tip.triage"]
    # The same change again changes nothing and leaves the version alone.
    assert update_tip(tip, detective, TriageChange(status="actionable"), version=2) == []
    assert tip.version == 2


def test_a_tip_made_actionable_is_a_lead_from_that_moment_once(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case
) -> None:
    detective = users[Role.DETECTIVE]
    tip = new_tip(agency, case)
    update_tip(tip, detective, TriageChange(status="reviewing"), version=1)
    db.session.commit()
    assert db.session.scalars(sa.select(TipLead)).all() == []
    before = utcnow()
    update_tip(tip, detective, TriageChange(status="actionable"), version=2)
    db.session.commit()
    lead = db.session.scalars(sa.select(TipLead)).one()
    assert lead.tip_id == tip.id and lead.appeal_id == tip.appeal_id
    assert before <= lead.marked_at <= utcnow()
    # Back to reviewing and actionable again: the first moment stands.
    update_tip(tip, detective, TriageChange(status="reviewing"), version=3)
    update_tip(tip, detective, TriageChange(status="actionable"), version=4)
    db.session.commit()
    assert db.session.scalars(sa.select(TipLead.marked_at)).all() == [lead.marked_at]


def test_second_change_against_the_same_version_is_refused_and_writes_nothing(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case, make_user
) -> None:  # type: ignore[no-untyped-def]
    first, second = users[Role.DETECTIVE], make_user(Role.DETECTIVE)
    assign_detective(case, second, actor=None)
    tip = new_tip(agency, case)
    db.session.commit()
    update_tip(tip, first, TriageChange(status="reviewing"), version=1)
    db.session.commit()
    # The second detective's page was drawn at version 1, too.
    with pytest.raises(StaleTip) as refused:
        update_tip(tip, second, TriageChange(status="closed", priority="low"), version=1)
    assert refused.value.status == 409
    assert refused.value.current["status"] == "reviewing"
    assert "reviewing" in refused.value.message
    db.session.rollback()
    db.session.refresh(tip)
    assert (tip.status, tip.priority, tip.version) == ("reviewing", 1, 2)


def test_conditional_update_refuses_when_the_row_moved_under_a_loaded_tip(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case
) -> None:
    """The object in memory still says version 1, but another transaction already
    raised it: the conditional UPDATE finds no row, and nothing is written."""
    tip = new_tip(agency, case)
    assert tip.version == 1
    with db.engine.begin() as other:
        other.execute(sa.update(Tip).where(Tip.id == tip.id).values(version=2, status="closed"))
    with pytest.raises(StaleTip):
        update_tip(tip, users[Role.DETECTIVE], TriageChange(priority="high"), version=1)
    db.session.rollback()
    assert db.session.scalar(sa.select(Tip.priority).where(Tip.id == tip.id)) == 1


def test_merge_refuses_itself_and_cycles(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case
) -> None:
    detective = users[Role.DETECTIVE]
    a, b, c = (new_tip(agency, case, f"tip {n}") for n in "abc")
    with pytest.raises(ValidationFailed, match="itself"):
        update_tip(a, detective, TriageChange(duplicate_of=a.number), version=1)
    update_tip(b, detective, TriageChange(duplicate_of=a.number), version=1)
    update_tip(c, detective, TriageChange(duplicate_of=b.public_id), version=1)
    db.session.commit()
    assert (b.status, b.duplicate_of_id, c.duplicate_of_id) == ("duplicate", a.id, b.id)
    # a into c: c -> b -> a, a cycle.
    with pytest.raises(ValidationFailed, match="cycle"):
        update_tip(a, detective, TriageChange(duplicate_of=c.number), version=1)
    # "duplicate" only through a merge; another status undoes the merge.
    with pytest.raises(ValidationFailed, match="merged into"):
        update_tip(a, detective, TriageChange(status="duplicate"), version=1)
    update_tip(b, detective, TriageChange(status="reviewing"), version=b.version)
    assert (b.status, b.duplicate_of_id) == ("reviewing", None)
    assert (
        db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "tip.merge")) == 2
    )


def test_merge_target_of_another_case_or_agency_is_no_such_tip(
    app: Flask, agency: Agency, other_agency: Agency, users: dict[Role, User], case: Case
) -> None:
    detective = users[Role.DETECTIVE]
    tip = new_tip(agency, case)
    not_his_case = create_case(
        agency, number="24-0099", title="Other", created_by=users[Role.OFFICER]
    )
    elsewhere = new_tip(agency, not_his_case)
    foreign = new_tip(other_agency, None)
    for target in (elsewhere, foreign):
        with pytest.raises(ValidationFailed, match="No such tip"):
            update_tip(tip, detective, TriageChange(duplicate_of=target.number), version=1)


def test_assignee_must_handle_the_tip_and_links_stay_in_the_agency(
    app: Flask,
    agency: Agency,
    other_agency: Agency,
    users: dict[Role, User],
    case: Case,
    make_user,
) -> None:  # type: ignore[no-untyped-def]
    detective = users[Role.DETECTIVE]
    tip = new_tip(agency, case)
    outsider = make_user(Role.DETECTIVE)  # not on the case
    for who in (outsider, users[Role.OFFICER], make_user(Role.DETECTIVE, agency_=other_agency)):
        with pytest.raises(ValidationFailed, match="detective of its case"):
            update_tip(tip, detective, TriageChange(assignee=who.public_id), version=1)
    # A supervisor oversees every case: assignable.
    update_tip(tip, detective, TriageChange(assignee=users[Role.SUPERVISOR].public_id), version=1)
    foreign_case = create_case(
        other_agency,
        number="S-1",
        title="Theirs",
        created_by=make_user(Role.OFFICER, agency_=other_agency),
    )
    with pytest.raises(ValidationFailed, match="No such case"):
        update_tip(tip, detective, TriageChange(linked_case=foreign_case.public_id), version=2)
    with pytest.raises(ValidationFailed, match="own case"):
        update_tip(tip, detective, TriageChange(linked_case=case.public_id), version=2)
    mine = create_case(agency, number="24-0002", title="Mine too", created_by=detective)
    update_tip(tip, detective, TriageChange(linked_case=mine.public_id), version=2)
    assert tip.linked_case_id == mine.id
    with pytest.raises(PermissionDenied):
        update_tip(tip, outsider, TriageChange(status="closed"), version=3)


def test_notes_are_added_audited_and_text_is_checked(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case
) -> None:
    tip = new_tip(agency, case)
    add_note(tip, users[Role.DETECTIVE], "Called the shop.\n<b>not bold</b>")
    with pytest.raises(ValidationFailed):
        add_note(tip, users[Role.DETECTIVE], "bell \x07")
    with pytest.raises(ValidationFailed):
        add_note(tip, users[Role.DETECTIVE], "   ")
    db.session.commit()
    assert db.session.scalars(sa.select(TipNote.body)).all() == [
        "Called the shop.\n<b>not bold</b>"
    ]
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "tip.note")).one()
    assert "shop" not in str(event.details)  # the audit log keeps the length, not the text


def test_bulk_checks_each_tip_on_its_own(
    app: Flask, agency: Agency, users: dict[Role, User], case: Case
) -> None:
    detective = users[Role.DETECTIVE]
    mine, moved = new_tip(agency, case, "one"), new_tip(agency, case, "two")
    not_mine = new_tip(
        agency,
        create_case(agency, number="24-0003", title="x", created_by=users[Role.OFFICER]),
        "three",
    )
    update_tip(moved, users[Role.SUPERVISOR], TriageChange(priority="high"), version=1)
    db.session.commit()
    result = bulk_update(
        detective,
        [(mine.public_id, 1), (moved.public_id, 1), (not_mine.public_id, 1), ("nope", 1)],
        TriageChange(status="reviewing", priority="low"),
    )
    db.session.commit()
    assert result.changed == [mine.number]
    assert result.stale == [moved.number]
    assert result.refused == [not_mine.public_id, "nope"]
    assert [(t.status, t.priority) for t in (mine, moved, not_mine)] == [
        ("reviewing", 0),
        ("new", 2),
        ("new", 1),
    ]
    with pytest.raises(ValidationFailed):
        bulk_update(detective, [(mine.public_id, 2)], TriageChange(status="duplicate"))
    with pytest.raises(ValidationFailed):
        bulk_update(detective, [], TriageChange(status="closed"))
