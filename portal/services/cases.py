"""Cases: creating them and finding the ones a user may see."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, or_, select

from portal.extensions import db
from portal.models import Agency, Case, CaseAssignment, CaseStatus, Role, User
from portal.models.base import utcnow
from portal.services.audit import record_event
from portal.services.authz import AGENCY_WIDE_ROLES, Permission, can
from portal.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


def create_case(
    agency: Agency,
    *,
    number: str,
    title: str,
    created_by: User,
    offense: str = "",
    occurred_at: datetime | None = None,
    location_address: str = "",
    public_summary: str = "",
    internal_notes: str = "",
) -> Case:
    if not can(created_by, Permission.CASE_CREATE):
        raise PermissionDenied("You may not create cases.")
    number = number.strip()
    title = title.strip()
    if not number:
        raise ValidationFailed("A case needs a case number.", field="number")
    if not title:
        raise ValidationFailed("A case needs a title.", field="title")
    exists = db.session.scalar(
        select(Case.id).where(Case.agency_id == agency.id, Case.number == number)
    )
    if exists is not None:
        raise Conflict(f"Case number {number} already exists.", field="number")
    case = Case(
        agency=agency,
        number=number,
        title=title,
        offense=offense.strip(),
        occurred_at=occurred_at,
        location_address=location_address.strip(),
        public_summary=public_summary.strip(),
        internal_notes=internal_notes.strip(),
        status=CaseStatus.OPEN.value,
        created_by=created_by,
    )
    db.session.add(case)
    db.session.flush()
    record_event("case.create", actor=created_by, object_type="case", object_id=case.public_id)
    return case


def assign_detective(case: Case, detective: User, *, actor: User | None) -> None:
    if Role.DETECTIVE not in detective.roles:
        raise ValidationFailed(f"{detective.email} is not a detective.", field="detective")
    if any(a.user_id == detective.id for a in case.assignments):
        return
    case.assignments.append(CaseAssignment(user=detective, assigned_at=utcnow()))
    record_event(
        "case.assign",
        actor=actor,
        object_type="case",
        object_id=case.public_id,
        details={"detective": detective.public_id},
    )


def visible_cases_query(user: User) -> Select[tuple[Case]]:
    """Cases of the user's agency that the user may see, newest first."""
    query = select(Case).where(Case.agency_id == user.agency_id)
    if not user.roles & AGENCY_WIDE_ROLES:
        assigned = select(CaseAssignment.case_id).where(CaseAssignment.user_id == user.id)
        query = query.where(or_(Case.created_by_id == user.id, Case.id.in_(assigned)))
    return query.order_by(Case.created_at.desc(), Case.id.desc())


def get_case_for(user: User, public_id: str) -> Case:
    """The case, if it exists and the user may see it. Otherwise ``NotFound``, never a
    403, so ids of other agencies' cases cannot be probed."""
    case = db.session.scalar(select(Case).where(Case.public_id == public_id))
    if case is None or not can(user, Permission.CASE_VIEW, case):
        raise NotFound("No such case.")
    return case
