"""A case's life: its status changes only along the allowed transitions, each one
recorded with who, when and why, and audited.

    from \\ to   open  solved  closed  reopened
    open          -     yes     yes      -
    solved        -      -       -      yes
    closed        -      -       -      yes
    reopened      -     yes     yes      -

A case is opened once, when it is created; a solved or closed case that is worked on
again is *reopened* (not "open" again), so its history says it came back. Solving
records whether tips led to it and which ones (tips of that case only).

Two people changing one case at once: the change is a conditional UPDATE on the
status it was seen in, so the second is told the case moved, and nothing is
overwritten. Services flush; the request commits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from portal.extensions import db
from portal.models import Case, CaseStatus, CaseStatusChange, SolvingTip, Tip, User
from portal.models.base import utcnow
from portal.services.audit import record_event
from portal.services.authz import Permission, can
from portal.services.errors import Conflict, PermissionDenied, ValidationFailed
from portal.services.text import clean_text

OPEN, SOLVED, CLOSED, REOPENED = (
    CaseStatus.OPEN.value,
    CaseStatus.SOLVED.value,
    CaseStatus.CLOSED.value,
    CaseStatus.REOPENED.value,
)

TRANSITIONS: dict[str, frozenset[str]] = {
    OPEN: frozenset({SOLVED, CLOSED}),
    SOLVED: frozenset({REOPENED}),
    CLOSED: frozenset({REOPENED}),
    REOPENED: frozenset({SOLVED, CLOSED}),
}
MAX_REASON_CHARS = 2000
MAX_SOLVING_TIPS = 100

# What the buttons say, for pages and messages.
ACTION_NAMES = {SOLVED: "Solve", CLOSED: "Close", REOPENED: "Reopen"}


def next_statuses(case: Case) -> list[str]:
    """The statuses the case may move to now, in a stable order."""
    allowed = TRANSITIONS.get(case.status, frozenset())
    return [s for s in (SOLVED, CLOSED, REOPENED) if s in allowed]


def may_change_status(user: User, case: Case) -> bool:
    return can(user, Permission.CASE_EDIT, case)


@dataclass(frozen=True)
class Solution:
    """What solving says about the tips: whether they led to it, and which."""

    tips_led: bool
    tip_ids: tuple[str, ...] = ()


def _solving_tips(case: Case, solution: Solution) -> list[Tip]:
    ids = list(dict.fromkeys(solution.tip_ids))
    if not solution.tips_led:
        if ids:
            raise ValidationFailed(
                "Tips are named only when tips led to solving the case.", field="tips"
            )
        return []
    if not ids:
        raise ValidationFailed("Name the tips that led to solving the case.", field="tips")
    if len(ids) > MAX_SOLVING_TIPS:
        raise ValidationFailed(f"At most {MAX_SOLVING_TIPS} tips.", field="tips")
    tips = list(
        db.session.scalars(select(Tip).where(Tip.public_id.in_(ids), Tip.case_id == case.id))
    )
    if len(tips) != len(ids):
        # One answer for a tip of another case and for no tip at all: the form is
        # not a way to learn which ids exist elsewhere.
        raise ValidationFailed("Only tips of this case can have solved it.", field="tips")
    return tips


def change_case_status(
    case: Case,
    user: User,
    to_status: str,
    *,
    reason: str,
    solution: Solution | None = None,
    seen_status: str | None = None,
) -> CaseStatusChange:
    """Move the case to ``to_status`` if the table allows it from where it is.

    ``seen_status`` is the status the user saw when they decided (the form carries
    it): if the case moved since, :class:`Conflict`, never a silent overwrite.
    Solving needs ``solution``; the other changes must not carry one.
    """
    if not may_change_status(user, case):
        raise PermissionDenied("You may not change this case's status.")
    if to_status not in TRANSITIONS:
        raise ValidationFailed(f"Unknown status {to_status!r}.", field="status")
    reason = clean_text(
        reason,
        field="reason",
        max_length=MAX_REASON_CHARS,
        multiline=True,
        required=True,
        label="Why",
    )
    from_status = case.status
    if seen_status is not None and seen_status != from_status:
        raise Conflict(
            f"Someone changed this case to {from_status} meanwhile; look again before changing it.",
            field="status",
        )
    if to_status not in TRANSITIONS.get(from_status, frozenset()):
        allowed = ", ".join(next_statuses(case)) or "nothing"
        raise Conflict(
            f"A {from_status} case cannot become {to_status} (it may become: {allowed}).",
            field="status",
        )
    if to_status == SOLVED:
        if solution is None:
            raise ValidationFailed("Say whether tips led to solving the case.", field="tips_led")
        tips = _solving_tips(case, solution)
    elif solution is not None:
        raise ValidationFailed("Only solving says which tips led to it.", field="tips")
    else:
        tips = []
    # The row changes only if nobody moved it since it was read (another request,
    # another worker): the loser is told, the winner's change stands.
    moved = db.session.execute(
        update(Case)
        .where(Case.id == case.id, Case.status == from_status)
        .values(status=to_status, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            "Someone changed this case's status meanwhile; look again before changing it.",
            field="status",
        )
    db.session.refresh(case, ["status", "updated_at"])
    change = CaseStatusChange(
        agency_id=case.agency_id,
        case_id=case.id,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        changed_by_id=user.id,
        changed_at=utcnow(),
        tips_led=solution.tips_led if solution is not None else None,
        solving_tips=[SolvingTip(tip_id=tip.id) for tip in tips],
    )
    db.session.add(change)
    db.session.flush()
    details: dict[str, object] = {"from": from_status, "to": to_status}
    if solution is not None:
        details |= {"tips_led": solution.tips_led, "tips": sorted(t.public_id for t in tips)}
    record_event(
        "case.status",
        agency_id=case.agency_id,
        actor=user,
        object_type="case",
        object_id=case.public_id,
        details=details,
    )
    if to_status == SOLVED:
        # Its posts on the networks say so ("SOLVED — thank you"): jobs, after commit.
        from portal.publishing.services.posts import mark_case_solved

        mark_case_solved(case)
    return change


def solve_case(
    case: Case, user: User, *, reason: str, solution: Solution, seen_status: str | None = None
) -> CaseStatusChange:
    return change_case_status(
        case, user, SOLVED, reason=reason, solution=solution, seen_status=seen_status
    )


def status_history(case: Case) -> list[CaseStatusChange]:
    """The case's status changes, oldest first."""
    return list(
        db.session.scalars(
            select(CaseStatusChange)
            .where(CaseStatusChange.case_id == case.id)
            .order_by(CaseStatusChange.changed_at, CaseStatusChange.id)
        )
    )


def solving_tip_numbers(change: CaseStatusChange) -> list[str]:
    ids = [s.tip_id for s in change.solving_tips]
    if not ids:
        return []
    return list(db.session.scalars(select(Tip.number).where(Tip.id.in_(ids)).order_by(Tip.number)))


def case_tip_choices(case: Case, limit: int = 200) -> list[Tip]:
    """The tips a solving form offers: the case's, actionable leads first, then newest."""
    return list(
        db.session.scalars(
            select(Tip)
            .where(Tip.case_id == case.id)
            .order_by((Tip.status == "actionable").desc(), Tip.created_at.desc(), Tip.id.desc())
            .limit(limit)
        )
    )
