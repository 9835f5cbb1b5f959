"""Cases: creating them and finding the ones a user may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select

from portal.extensions import db
from portal.models import Agency, Case, CaseAssignment, CaseStatus, Role, User, UserRole
from portal.models.base import utcnow
from portal.services.audit import record_event
from portal.services.authz import AGENCY_WIDE_ROLES, Permission, can
from portal.services.dates import check_date_range
from portal.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from portal.services.text import clean_text


@dataclass(frozen=True)
class CaseText:
    """What one text field of a case may hold: the form and the API check the same."""

    label: str
    max_length: int
    multiline: bool = False


CASE_TEXT_FIELDS = {
    "number": CaseText("Case number", 64),
    "title": CaseText("Title", 200),
    "offense": CaseText("Offense", 120),
    "location_address": CaseText("Where", 300),
    "public_summary": CaseText("Public summary", 4000, multiline=True),
    "internal_notes": CaseText("Internal notes", 20000, multiline=True),
}


def clean_case_text(name: str, value: Any) -> str:
    """One case text field, checked and normalised (portal/services/text.py): the
    service does it itself, so no caller (form, API, CLI) can store what a form refuses."""
    rule = CASE_TEXT_FIELDS[name]
    return clean_text(
        value, field=name, max_length=rule.max_length, multiline=rule.multiline, label=rule.label
    )


def _check_occurred_at(value: Any) -> None:
    if value is not None and not (isinstance(value, datetime) and value.tzinfo is not None):
        raise ValidationFailed(
            "When it happened must be a date and time in UTC.", field="occurred_at"
        )
    check_date_range(value, field="occurred_at", label="When it happened")


def create_case(
    agency: Agency,
    *,
    number: str,
    title: str,
    created_by: User,
    offense: str = "",
    occurred_at: datetime | None = None,
    location_address: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    public_summary: str = "",
    internal_notes: str = "",
) -> Case:
    if not can(created_by, Permission.CASE_CREATE):
        raise PermissionDenied("You may not create cases.")
    number = clean_case_text("number", number)
    title = clean_case_text("title", title)
    offense = clean_case_text("offense", offense)
    location_address = clean_case_text("location_address", location_address)
    public_summary = clean_case_text("public_summary", public_summary)
    internal_notes = clean_case_text("internal_notes", internal_notes)
    _check_occurred_at(occurred_at)
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
        offense=offense,
        occurred_at=occurred_at,
        location_address=location_address,
        latitude=latitude,
        longitude=longitude,
        public_summary=public_summary,
        internal_notes=internal_notes,
        status=CaseStatus.OPEN.value,
        created_by=created_by,
    )
    db.session.add(case)
    db.session.flush()
    record_event(
        "case.create",
        agency_id=agency.id,
        actor=created_by,
        object_type="case",
        object_id=case.public_id,
    )
    return case


def assign_detective(case: Case, detective: User, *, actor: User | None) -> None:
    if Role.DETECTIVE not in detective.roles:
        raise ValidationFailed(f"{detective.email} is not a detective.", field="detective")
    if any(a.user_id == detective.id for a in case.assignments):
        return
    case.assignments.append(CaseAssignment(user=detective, assigned_at=utcnow()))
    record_event(
        "case.assign",
        agency_id=case.agency_id,
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


def check_case_access(
    user: User, case: Case | None, permission: Permission, what: str = "case"
) -> None:
    """``NotFound`` unless the user may see the case (never 403, so ids of other cases
    cannot be probed), then ``PermissionDenied`` unless they may do ``permission``."""
    if case is None or not can(user, Permission.CASE_VIEW, case):
        raise NotFound(f"No such {what}.")
    if permission is not Permission.CASE_VIEW and not can(user, permission, case):
        raise PermissionDenied(f"You may not do that with this {what}.")


def get_case_for(user: User, public_id: str, permission: Permission = Permission.CASE_VIEW) -> Case:
    """The case, if it exists and the user may see it and do ``permission`` with it."""
    case = db.session.scalar(select(Case).where(Case.public_id == public_id))
    check_case_access(user, case, permission)
    assert case is not None
    return case


CASE_EDITABLE_FIELDS = (
    "number",
    "title",
    "offense",
    "occurred_at",
    "location_address",
    "latitude",
    "longitude",
    "public_summary",
    "internal_notes",
)


@dataclass(frozen=True)
class CasePage:
    cases: list[Case]
    next_cursor: str | None


def list_cases(
    user: User,
    *,
    status: str | None = None,
    search: str = "",
    after: str | None = None,
    limit: int = 25,
) -> CasePage:
    """One page of the cases the user may see, newest first, by keyset: the cursor is
    the public id of the last case shown, so pages stay stable while cases are added."""
    query = visible_cases_query(user)
    if status:
        if status not in {s.value for s in CaseStatus}:
            raise ValidationFailed(f"Unknown status {status!r}.", field="status")
        query = query.where(Case.status == status)
    search = clean_text(search, field="search", max_length=100, label="Search")
    after = clean_text(after, field="after", max_length=64, label="Page cursor") or None
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                Case.number.ilike(pattern, escape="\\"),
                Case.title.ilike(pattern, escape="\\"),
                Case.offense.ilike(pattern, escape="\\"),
                Case.location_address.ilike(pattern, escape="\\"),
            )
        )
    if after:
        anchor = db.session.execute(
            select(Case.created_at, Case.id).where(
                Case.public_id == after, Case.agency_id == user.agency_id
            )
        ).first()
        if anchor is None:
            raise ValidationFailed("The page cursor is not valid.", field="after")
        query = query.where(
            or_(
                Case.created_at < anchor.created_at,
                and_(Case.created_at == anchor.created_at, Case.id < anchor.id),
            )
        )
    rows = list(db.session.scalars(query.limit(limit + 1)))
    next_cursor = rows[limit - 1].public_id if len(rows) > limit else None
    return CasePage(rows[:limit], next_cursor)


def update_case(case: Case, user: User, changes: dict[str, Any]) -> Case:
    if not can(user, Permission.CASE_EDIT, case):
        raise PermissionDenied("You may not edit this case.")
    if "status" in changes and changes["status"] != case.status:
        # Only along the allowed transitions, with who and why: see case_life.
        raise ValidationFailed(
            "Change the status by solving, closing or reopening the case.", field="status"
        )
    changes = {name: value for name, value in changes.items() if name != "status"}
    unknown = set(changes) - set(CASE_EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown field {sorted(unknown)[0]!r}.", field=sorted(unknown)[0])
    changes = {
        name: clean_case_text(name, value) if name in CASE_TEXT_FIELDS else value
        for name, value in changes.items()
    }
    if "occurred_at" in changes:
        _check_occurred_at(changes["occurred_at"])
    for name in ("number", "title"):
        if name in changes and not changes[name]:
            raise ValidationFailed(f"A case needs a {name}.", field=name)
    if "number" in changes and changes["number"] != case.number:
        taken = db.session.scalar(
            select(Case.id).where(
                Case.agency_id == case.agency_id, Case.number == changes["number"]
            )
        )
        if taken is not None:
            raise Conflict(f"Case number {changes['number']} already exists.", field="number")
    changed = {}
    for name, value in changes.items():
        if getattr(case, name) != value:
            setattr(case, name, value)
            changed[name] = value if name != "internal_notes" else "(changed)"
    if changed:
        record_event(
            "case.update",
            agency_id=case.agency_id,
            actor=user,
            object_type="case",
            object_id=case.public_id,
            details={
                k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in changed.items()
            },
        )
    db.session.flush()
    return case


def agency_detectives(agency_id: int) -> list[User]:
    users = db.session.scalars(
        select(User)
        .join(UserRole)
        .where(User.agency_id == agency_id, UserRole.role == Role.DETECTIVE.value)
        .where(User.is_disabled.is_(False))
        .order_by(User.display_name)
    )
    return list(users)


def set_detectives(case: Case, detective_ids: list[str], *, actor: User) -> None:
    """Make the assigned detectives exactly these (public ids of the agency's detectives)."""
    wanted = {u.public_id: u for u in agency_detectives(case.agency_id)}
    unknown = [pid for pid in detective_ids if pid not in wanted]
    if unknown:
        raise ValidationFailed("Not a detective of this agency.", field="detectives")
    keep = set(detective_ids)
    for assignment in list(case.assignments):
        if assignment.user.public_id not in keep:
            case.assignments.remove(assignment)
            record_event(
                "case.unassign",
                agency_id=case.agency_id,
                actor=actor,
                object_type="case",
                object_id=case.public_id,
                details={"detective": assignment.user.public_id},
            )
    for public_id in detective_ids:
        assign_detective(case, wanted[public_id], actor=actor)
