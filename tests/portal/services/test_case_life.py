"""The case's life: the transition table written out by hand, who and why recorded,
solving with the case's own tips only, concurrent changes reported."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Agency, AuditEvent, Case, CaseStatusChange, Role, Tip, User
from portal.services.case_life import Solution, change_case_status, solve_case, status_history
from portal.services.cases import create_case, update_case
from portal.services.errors import Conflict, PermissionDenied, ValidationFailed
from portal.services.tips import TipInput, submit_tip

# Every (from, to) pair, and whether the design allows it.
TABLE = """
from      open solved closed reopened
open      .    Y      Y      .
solved    .    .      .      Y
closed    .    .      .      Y
reopened  .    Y      Y      .
"""


def _pairs() -> list[tuple[str, str, bool]]:
    lines = [line.split() for line in TABLE.strip().splitlines()]
    header = lines[0][1:]
    return [
        (row[0], to, mark == "Y")
        for row in lines[1:]
        for to, mark in zip(header, row[1:], strict=True)
    ]


def tip_of(case: Case, body: str = "It was my neighbour.") -> Tip:
    tip, _ = submit_tip(TipInput(body=body), agency=case.agency)
    tip.case_id = case.id
    db.session.flush()
    return tip


@pytest.mark.parametrize(("start", "target", "allowed"), _pairs())
def test_change_case_status_follows_the_table(
    case: Case, users: dict[Role, User], start: str, target: str, allowed: bool
) -> None:
    case.status = start
    db.session.commit()
    detective = users[Role.DETECTIVE]
    solution = Solution(tips_led=False) if target == "solved" else None
    if allowed:
        change = change_case_status(case, detective, target, reason="why", solution=solution)
        assert (change.from_status, change.to_status, case.status) == (start, target, target)
    else:
        with pytest.raises(Conflict):
            change_case_status(case, detective, target, reason="why", solution=solution)
        db.session.rollback()
        assert db.session.get(Case, case.id).status == start


def test_solve_case_records_who_when_why_and_the_tips(case: Case, users: dict[Role, User]) -> None:
    first, second, _unused = tip_of(case), tip_of(case), tip_of(case)
    detective = users[Role.DETECTIVE]
    solve_case(
        case,
        detective,
        reason="Arrested after the tip named him.",
        solution=Solution(tips_led=True, tip_ids=(first.public_id, second.public_id)),
    )
    db.session.commit()
    [change] = status_history(case)
    assert change.changed_by_id == detective.id
    assert change.reason == "Arrested after the tip named him."
    assert change.tips_led is True
    assert {s.tip_id for s in change.solving_tips} == {first.id, second.id}
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "case.status"))
    assert event is not None and event.agency_id == case.agency_id
    assert event.details["tips"] == sorted([first.public_id, second.public_id])
    assert "Arrested" not in str(event.details)  # the reason stays with the case


def test_solve_case_refuses_another_cases_tip(
    case: Case, users: dict[Role, User], agency: Agency
) -> None:
    other = create_case(agency, number="24-0002", title="Other", created_by=users[Role.OFFICER])
    foreign = tip_of(other)
    with pytest.raises(ValidationFailed) as refused:
        solve_case(
            case,
            users[Role.DETECTIVE],
            reason="x",
            solution=Solution(tips_led=True, tip_ids=(foreign.public_id,)),
        )
    assert refused.value.field == "tips"
    with pytest.raises(ValidationFailed, match="Only tips of this case"):
        solve_case(
            case,
            users[Role.DETECTIVE],
            reason="x",
            solution=Solution(tips_led=True, tip_ids=("no-such-tip",)),
        )
    db.session.rollback()
    assert db.session.get(Case, case.id).status == "open"
    assert db.session.scalar(select(CaseStatusChange.id)) is None


@pytest.mark.parametrize(
    ("solution", "field"),
    [
        (None, "tips_led"),
        (Solution(tips_led=True), "tips"),
        (Solution(tips_led=False, tip_ids=("x",)), "tips"),
    ],
)
def test_solve_case_needs_a_consistent_answer_about_tips(
    case: Case, users: dict[Role, User], solution: Solution | None, field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        change_case_status(case, users[Role.DETECTIVE], "solved", reason="x", solution=solution)
    assert refused.value.field == field


def test_change_case_status_needs_a_reason_and_clean_text(
    case: Case, users: dict[Role, User]
) -> None:
    for reason in ("", "   ", "bad\x00text"):
        with pytest.raises(ValidationFailed) as refused:
            change_case_status(case, users[Role.DETECTIVE], "closed", reason=reason)
        assert refused.value.field == "reason"


def test_change_case_status_reports_a_change_made_meanwhile(
    case: Case, users: dict[Role, User]
) -> None:
    change_case_status(case, users[Role.OFFICER], "closed", reason="no leads")
    db.session.commit()
    # The detective's page still showed "open".
    with pytest.raises(Conflict, match="meanwhile"):
        change_case_status(case, users[Role.DETECTIVE], "closed", reason="also", seen_status="open")


def test_change_case_status_refuses_who_may_not_edit_the_case(
    case: Case, users: dict[Role, User], make_user
) -> None:  # type: ignore[no-untyped-def]
    outsider = make_user(Role.DETECTIVE)  # not assigned to the case
    for user in (outsider, users[Role.SUPERVISOR], users[Role.COORDINATOR], users[Role.ADMIN]):
        with pytest.raises(PermissionDenied):
            change_case_status(case, user, "closed", reason="x")


def test_update_case_no_longer_changes_the_status(case: Case, users: dict[Role, User]) -> None:
    with pytest.raises(ValidationFailed) as refused:
        update_case(case, users[Role.OFFICER], {"status": "solved"})
    assert refused.value.field == "status"
    update_case(case, users[Role.OFFICER], {"status": "open", "title": "Renamed"})
    assert case.title == "Renamed" and case.status == "open"
