"""Evidence integrity: re-hash what is stored against what was recorded; delete
evidence only as an admin, with a reason, after the retention period."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from media_pipeline import ObjectNotFound, hash_stream
from portal.extensions import db
from portal.models import Case, Clip, ClipStatus, Outcome, User
from portal.models.base import utcnow
from portal.services.audit import record_event
from portal.services.authz import Permission, can
from portal.services.errors import Conflict, PermissionDenied, ValidationFailed
from portal.services.storage import get_store
from portal.services.text import clean_text


@dataclass(frozen=True)
class Check:
    clip: str
    key: str
    expected: str
    actual: str | None  # None: the object is missing

    @property
    def ok(self) -> bool:
        return self.actual == self.expected

    @property
    def problem(self) -> str:
        if self.actual is None:
            return "missing"
        return "" if self.ok else "hash mismatch"


def _recorded_objects(clip: Clip) -> Iterator[tuple[str, str]]:
    """(key, sha256) of everything stored for a clip, as recorded at the time."""
    if clip.original_key and clip.original_sha256:
        yield clip.original_key, clip.original_sha256
    if clip.proxy_key and clip.proxy_sha256:
        yield clip.proxy_key, clip.proxy_sha256
    for version in clip.versions:
        if version.manifest_key:
            yield version.manifest_key, version.manifest_sha256
        for rendition in version.renditions:
            yield rendition.storage_key, rendition.sha256


def verify_evidence(case: Case | None = None) -> Iterator[Check]:
    """Stream every recorded object of ``case`` (or of all cases) through SHA-256 and
    compare. Each object is read once, in chunks; nothing is loaded whole."""
    store = get_store()
    query = select(Clip).where(Clip.status != ClipStatus.DELETED.value).order_by(Clip.id)
    if case is not None:
        query = query.where(Clip.case_id == case.id)
    for clip in db.session.scalars(query):
        for key, expected in _recorded_objects(clip):
            try:
                with store.open(key) as stream:
                    actual, _ = hash_stream(stream)
            except ObjectNotFound:
                actual = None
            yield Check(clip.public_id, key, expected, actual)


def record_verification(case: Case | None, checked: int, problems: list[Check]) -> None:
    record_event(
        "evidence.verify",
        agency_id=case.agency_id if case else None,
        object_type="case" if case else "store",
        object_id=case.public_id if case else "",
        outcome=Outcome.SUCCESS if not problems else Outcome.FAILURE,
        details={
            "checked": checked,
            "problems": [{"key": p.key, "problem": p.problem} for p in problems[:100]],
        },
    )
    db.session.flush()


#: The longest reason kept with a deleted clip (longer is refused, never cut).
MAX_DELETION_REASON_LENGTH = 2000


def delete_clip(clip: Clip, actor: User, reason: str) -> None:
    """Remove a clip's stored objects. The row stays, with its hashes, who deleted it
    and why: the record of what existed outlives the footage."""
    if not can(actor, Permission.EVIDENCE_DELETE, clip.case):
        raise PermissionDenied("Only an administrator may delete evidence.")
    reason = clean_text(
        reason, field="reason", max_length=MAX_DELETION_REASON_LENGTH, multiline=True
    )
    if len(reason) < 10:
        raise ValidationFailed("Give the reason for deleting this evidence.", field="reason")
    if clip.status == ClipStatus.DELETED.value:
        raise Conflict("This clip is already deleted.")
    retention = timedelta(days=current_app.config["TATTLETALE"].evidence_retention_days)
    if utcnow() - clip.created_at < retention:
        keep_until = (clip.created_at + retention).date().isoformat()
        raise Conflict(f"The retention period keeps this evidence until {keep_until}.")
    if any(v.active_approval is not None for v in clip.versions):
        raise Conflict("A version of this clip is approved for release; revoke it first.")
    store = get_store()
    keys = [key for key, _ in _recorded_objects(clip)]
    for key in keys:
        store.delete(key)
    clip.status = ClipStatus.DELETED.value
    clip.deleted_at = utcnow()
    clip.deleted_by = actor
    clip.deletion_reason = reason
    record_event(
        "evidence.delete",
        agency_id=clip.case.agency_id,
        actor=actor,
        object_type="clip",
        object_id=clip.public_id,
        details={
            "reason": clip.deletion_reason,
            "objects": len(keys),
            "original_sha256": clip.original_sha256,
        },
    )
    db.session.flush()
