"""Triage of a tip: status, priority, assignee, tags, a link to another case, merging
into another tip as its duplicate, internal notes; one at a time or in bulk.

Two detectives may change one tip at once. Every change names the version of the tip
it was made against; the version is raised by a conditional UPDATE (``WHERE version =
:seen``), so of two changes against one version the second finds no row, is refused
with the tip as it now is, and writes nothing. Nothing is overwritten silently.

Every change is in the audit log, with what it was and what it became; the tip's
history is read back from there. Notes and tags are for the agency's staff and are
never shown to the tipster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from portal.extensions import db
from portal.models import AuditEvent, Case, Tip, TipNote, TipPriority, TipStatus, TipTag, User
from portal.models.base import utcnow
from portal.services.audit import record_event
from portal.services.authz import Permission, can
from portal.services.errors import Conflict, PermissionDenied, ValidationFailed
from portal.services.outcomes import mark_lead
from portal.services.text import clean_text
from portal.services.tips import may_handle, normalize_number

PRIORITIES = {priority.name.lower(): priority.value for priority in TipPriority}
PRIORITY_NAMES = {value: name for name, value in PRIORITIES.items()}
MAX_TAGS = 10
MAX_TAG_CHARS = 40
MAX_NOTE_CHARS = 5_000
# Longer chains than this are not followed looking for a cycle; none is made by hand.
MAX_MERGE_CHAIN = 100


def priority_name(tip: Tip) -> str:
    return PRIORITY_NAMES.get(tip.priority, "normal")


def tag_names(tip: Tip) -> list[str]:
    return list(
        db.session.scalars(select(TipTag.name).where(TipTag.tip_id == tip.id).order_by(TipTag.name))
    )


def notes_of(tip: Tip) -> list[TipNote]:
    return list(
        db.session.scalars(select(TipNote).where(TipNote.tip_id == tip.id).order_by(TipNote.id))
    )


def tip_snapshot(tip: Tip) -> dict[str, Any]:
    """The triage fields as a person reads them (what a refused change is shown)."""
    return {
        "version": tip.version,
        "status": tip.status,
        "priority": priority_name(tip),
        "assignee": tip.assignee.display_name if tip.assignee else "",
        "tags": tag_names(tip),
        "linked_case": tip.linked_case.number if tip.linked_case else "",
        "duplicate_of": tip.duplicate_of.number if tip.duplicate_of else "",
    }


class StaleTip(Conflict):
    """The tip changed since the version a change was made against."""

    def __init__(self, tip: Tip) -> None:
        self.current = tip_snapshot(tip)
        super().__init__(
            "Someone else changed this tip while you were working on it, and nothing of "
            f"yours was saved. It is now at version {tip.version}: status "
            f"{self.current['status']}, priority {self.current['priority']}, assigned to "
            f"{self.current['assignee'] or 'nobody'}. Check it and make your change again.",
            field="version",
        )


@dataclass(frozen=True)
class TriageChange:
    """What to change; None leaves a field as it is. For the assignee, the linked
    case and the duplicate, "" clears it."""

    status: str | None = None
    priority: str | None = None
    assignee: str | None = None  # a user's public id
    tags: list[str] | None = None
    linked_case: str | None = None  # a case's public id
    duplicate_of: str | None = None  # a tip's number or public id


def clean_tags(values: list[str]) -> list[str]:
    tags: list[str] = []
    for value in values:
        tag = clean_text(value, field="tags", max_length=MAX_TAG_CHARS, label="Tag")
        tag = re.sub(r"\s+", " ", tag).strip().lower()
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ValidationFailed(f"A tip takes at most {MAX_TAGS} tags.", field="tags")
    return sorted(tags)


def _find_tip(reference: str, agency_id: int) -> Tip | None:
    reference = reference.strip()
    number = normalize_number(reference)
    condition = Tip.number == number if number else Tip.public_id == reference
    return db.session.scalar(select(Tip).where(condition, Tip.agency_id == agency_id))


def _merge_target(tip: Tip, user: User, reference: str) -> Tip:
    target = _find_tip(reference, tip.agency_id)
    if target is None or not may_handle(user, target):
        raise ValidationFailed("No such tip to merge into.", field="duplicate_of")
    if target.id == tip.id:
        raise ValidationFailed("A tip cannot be a duplicate of itself.", field="duplicate_of")
    seen = {target.id}
    step = target
    for _ in range(MAX_MERGE_CHAIN):
        if step.duplicate_of_id is None:
            return target
        if step.duplicate_of_id == tip.id:
            raise ValidationFailed(
                f"Tip {target.number} is already merged into this one (directly or through "
                "others): merging this one into it would make a cycle.",
                field="duplicate_of",
            )
        if step.duplicate_of_id in seen:
            break
        seen.add(step.duplicate_of_id)
        nxt = db.session.get(Tip, step.duplicate_of_id)
        if nxt is None:
            return target
        step = nxt
    raise ValidationFailed("That tip's chain of merges is too long.", field="duplicate_of")


def _planned(tip: Tip, user: User, change: TriageChange) -> dict[str, tuple[Any, Any, Any]]:
    """{field: (old shown, new shown, new stored)} for what would change; validates
    everything before anything is written."""
    plan: dict[str, tuple[Any, Any, Any]] = {}
    if change.priority is not None:
        if change.priority not in PRIORITIES:
            raise ValidationFailed(f"Unknown priority {change.priority!r}.", field="priority")
        if PRIORITIES[change.priority] != tip.priority:
            plan["priority"] = (priority_name(tip), change.priority, PRIORITIES[change.priority])
    if change.assignee is not None:
        assignee: User | None = None
        if change.assignee:
            assignee = db.session.scalar(
                select(User).where(
                    User.public_id == change.assignee, User.agency_id == tip.agency_id
                )
            )
            if assignee is None or assignee.is_disabled or not may_handle(assignee, tip):
                raise ValidationFailed(
                    "Assign the tip to a detective of its case.", field="assignee"
                )
        if (assignee.id if assignee else None) != tip.assignee_id:
            old = tip.assignee.public_id if tip.assignee else ""
            plan["assignee"] = (old, assignee.public_id if assignee else "", assignee)
    if change.tags is not None:
        tags = clean_tags(change.tags)
        if tags != tag_names(tip):
            plan["tags"] = (tag_names(tip), tags, tags)
    if change.linked_case is not None:
        linked: Case | None = None
        if change.linked_case:
            linked = db.session.scalar(
                select(Case).where(
                    Case.public_id == change.linked_case, Case.agency_id == tip.agency_id
                )
            )
            if linked is None or not can(user, Permission.CASE_VIEW, linked):
                raise ValidationFailed("No such case to link.", field="linked_case")
            if linked.id == tip.case_id:
                raise ValidationFailed("That is the tip's own case.", field="linked_case")
        if (linked.id if linked else None) != tip.linked_case_id:
            old = tip.linked_case.public_id if tip.linked_case else ""
            plan["linked_case"] = (old, linked.public_id if linked else "", linked)
    status = change.status
    if status is not None and status not in {s.value for s in TipStatus}:
        raise ValidationFailed(f"Unknown status {status!r}.", field="status")
    if change.duplicate_of:
        target = _merge_target(tip, user, change.duplicate_of)
        if target.id != tip.duplicate_of_id:
            old = tip.duplicate_of.public_id if tip.duplicate_of else ""
            plan["duplicate_of"] = (old, target.public_id, target)
        status = TipStatus.DUPLICATE.value
    elif tip.duplicate_of_id is not None and (
        change.duplicate_of == "" or (status is not None and status != TipStatus.DUPLICATE)
    ):
        plan["duplicate_of"] = (tip.duplicate_of.public_id, "", None)  # type: ignore[union-attr]
    if status == TipStatus.DUPLICATE and "duplicate_of" not in plan and tip.duplicate_of_id is None:
        raise ValidationFailed(
            "A duplicate is merged into the tip it repeats: give that tip.", field="duplicate_of"
        )
    if status is not None and status != tip.status:
        plan["status"] = (tip.status, status, status)
    return plan


def _claim_version(tip: Tip, seen_version: int) -> None:
    """Raise the version from ``seen_version``, or refuse: the one write that decides
    which of two concurrent changes wins (the row stays locked until commit)."""
    if tip.version != seen_version:
        raise StaleTip(tip)
    claimed = db.session.execute(
        update(Tip)
        .where(Tip.id == tip.id, Tip.version == seen_version)
        .values(version=seen_version + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        db.session.refresh(tip)
        raise StaleTip(tip)
    set_committed_value(tip, "version", seen_version + 1)


def update_tip(tip: Tip, user: User, change: TriageChange, *, version: int) -> list[str]:
    """Apply ``change`` made against ``version``; the names of the fields changed.
    ``StaleTip`` (409) if the tip has changed since; nothing is written then."""
    if not may_handle(user, tip):
        raise PermissionDenied("You may not triage this tip.")
    plan = _planned(tip, user, change)
    if not plan:
        if tip.version != version:
            raise StaleTip(tip)
        return []
    _claim_version(tip, version)
    for name, (_old, _new, stored) in plan.items():
        if name == "tags":
            db.session.query(TipTag).filter(TipTag.tip_id == tip.id).delete()
            db.session.add_all(TipTag(tip_id=tip.id, name=tag) for tag in stored)
        elif name == "assignee":
            tip.assignee = stored
        elif name == "linked_case":
            tip.linked_case = stored
        elif name == "duplicate_of":
            tip.duplicate_of = stored
        else:
            setattr(tip, name, stored)
    db.session.flush()
    if plan.get("status", (None, None, None))[2] == TipStatus.ACTIONABLE.value:
        # The moment it became a lead, for the outcomes' time to first lead (the
        # periodic pass only catches what this misses, minutes late).
        mark_lead(tip)
    record_event(
        "tip.merge" if plan.get("duplicate_of", (None, ""))[1] else "tip.triage",
        agency_id=tip.agency_id,
        actor=user,
        object_type="tip",
        object_id=tip.public_id,
        details={
            "version": tip.version,
            "changes": {name: [old, new] for name, (old, new, _s) in plan.items()},
        },
    )
    return sorted(plan)


def add_note(tip: Tip, user: User, body: str) -> TipNote:
    """An internal note: for the agency's staff, never for the tipster. Notes are
    only added, so two at once both stand: no version is needed."""
    if not may_handle(user, tip):
        raise PermissionDenied("You may not add notes to this tip.")
    body = clean_text(
        body,
        field="note",
        max_length=MAX_NOTE_CHARS,
        multiline=True,
        required=True,
        label="Note",
    )
    note = TipNote(tip_id=tip.id, author_id=user.id, body=body, created_at=utcnow())
    db.session.add(note)
    db.session.flush()
    record_event(
        "tip.note",
        agency_id=tip.agency_id,
        actor=user,
        object_type="tip",
        object_id=tip.public_id,
        details={"length": len(body)},
    )
    return note


@dataclass
class BulkResult:
    changed: list[str] = field(default_factory=list)  # tip numbers
    unchanged: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # not found or not the user's
    invalid: dict[str, str] = field(default_factory=dict)  # number -> why


BULK_FIELDS = ("status", "priority", "assignee")
MAX_BULK = 100


def bulk_update(user: User, selection: list[tuple[str, int]], change: TriageChange) -> BulkResult:
    """Apply one change of status, priority or assignee to each selected tip, given
    as (public id, version seen). Each tip is checked on its own: authorization, its
    version, the change's validity; one refusal does not stop the others."""
    if change.tags is not None or change.linked_case is not None or change.duplicate_of:
        raise ValidationFailed("Bulk changes are of status, priority or assignee.")
    if change.status == TipStatus.DUPLICATE:
        raise ValidationFailed(
            "Merge duplicates one at a time, naming the tip each repeats.", field="status"
        )
    if not selection:
        raise ValidationFailed("Select at least one tip.", field="tips")
    if len(selection) > MAX_BULK:
        raise ValidationFailed(f"Select at most {MAX_BULK} tips at once.", field="tips")
    result = BulkResult()
    for public_id, version in selection:
        tip = db.session.scalar(select(Tip).where(Tip.public_id == public_id))
        if tip is None or not may_handle(user, tip):
            result.refused.append(public_id)
            continue
        try:
            changed = update_tip(tip, user, change, version=version)
        except StaleTip:
            result.stale.append(tip.number)
        except ValidationFailed as exc:
            result.invalid[tip.number] = exc.message
        else:
            (result.changed if changed else result.unchanged).append(tip.number)
    return result


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    action: str
    details: dict[str, Any]


def tip_history(tip: Tip) -> list[HistoryEntry]:
    """What was done to the tip, oldest first, from the audit log."""
    events = db.session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.object_type == "tip",
            AuditEvent.object_id == tip.public_id,
            AuditEvent.agency_id == tip.agency_id,
        )
        .order_by(AuditEvent.id)
    )
    return [
        HistoryEntry(at=e.occurred_at, actor=e.actor_label, action=e.action, details=e.details)
        for e in events
    ]
