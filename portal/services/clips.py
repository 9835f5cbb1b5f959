"""Clips: from a finished upload to stored, probed evidence; edit versions; release
approval. Every action on evidence is written to the audit log."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from sqlalchemy import select

from media_pipeline import (
    AudioStream,
    EditPlan,
    InvalidPlan,
    MediaInfo,
    VideoStream,
    Watermark,
)
from portal.extensions import db
from portal.jobs.registry import enqueue
from portal.models import (
    Approval,
    Case,
    Clip,
    ClipStatus,
    ClipVersion,
    Job,
    JobStatus,
    Rendition,
    Upload,
    UploadStatus,
    User,
    VersionStatus,
)
from portal.models.base import utcnow
from portal.services.agencies import WATERMARK_PREFIX
from portal.services.audit import record_event
from portal.services.authz import Permission, can
from portal.services.cases import check_case_access
from portal.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from portal.services.text import clean_text
from portal.services.uploads import staged_locator

# What a supervisor confirms before a version may be published.
APPROVAL_CHECKLIST = {
    "bystanders_blurred": "Victims and bystanders are blurred",
    "no_juveniles": "No juvenile can be identified",
    "investigation_safe": "Nothing in it compromises the investigation",
}


def get_clip_for(user: User, public_id: str, permission: Permission = Permission.CASE_VIEW) -> Clip:
    clip = db.session.scalar(select(Clip).where(Clip.public_id == public_id))
    check_case_access(user, clip.case if clip else None, permission, "clip")
    assert clip is not None
    return clip


def get_version_for(
    user: User, public_id: str, permission: Permission = Permission.CASE_VIEW
) -> ClipVersion:
    version = db.session.scalar(select(ClipVersion).where(ClipVersion.public_id == public_id))
    check_case_access(user, version.clip.case if version else None, permission, "version")
    assert version is not None
    return version


def list_clips(case: Case) -> list[Clip]:
    return list(
        db.session.scalars(
            select(Clip).where(Clip.case_id == case.id).order_by(Clip.created_at.desc())
        )
    )


def attach_upload(case: Case, upload_public_id: str, user: User) -> Clip:
    """Turn a finished upload into a clip of ``case`` and start ingesting it."""
    if not can(user, Permission.CLIP_UPLOAD, case):
        raise PermissionDenied("You may not add footage to this case.")
    upload = db.session.scalar(select(Upload).where(Upload.public_id == upload_public_id))
    if upload is None or upload.created_by_id != user.id:
        raise NotFound("No such upload.", field="upload_id")
    if upload.status == UploadStatus.ATTACHED.value:
        raise Conflict("This upload is already attached to a clip.", field="upload_id")
    if upload.status != UploadStatus.COMPLETE.value:
        raise Conflict("This upload is not complete yet.", field="upload_id")
    if upload.case_id is not None and upload.case_id != case.id:
        raise Conflict("This upload was started for another case.", field="upload_id")
    upload.status = UploadStatus.ATTACHED.value
    return _new_clip(
        case,
        user,
        upload=upload,
        filename=upload.filename,
        staging_path=staged_locator(upload),
        size=upload.length,
        sha256=upload.sha256,
    )


def _new_clip(
    case: Case,
    user: User,
    *,
    upload: Upload,
    filename: str,
    staging_path: str,
    size: int,
    sha256: str,
) -> Clip:
    clip = Clip(
        case=case,
        upload=upload,
        uploaded_by=user,
        status=ClipStatus.INGESTING.value,
        original_filename=filename,
        staging_path=staging_path,
        original_size=size,
        original_sha256=sha256,
    )
    db.session.add(clip)
    db.session.flush()
    record_event(
        "evidence.upload",
        agency_id=case.agency_id,
        actor=user,
        object_type="clip",
        object_id=clip.public_id,
        details={
            "case": case.public_id,
            "sha256": sha256,
            "size": size,
            "filename": filename,
        },
    )
    enqueue("clips.ingest", clip_id=clip.id)
    db.session.flush()
    return clip


def media_info_of(clip: Clip) -> MediaInfo:
    """The probe result stored with the clip, as the pipeline's type."""
    data = dict(clip.probe)
    if not data:
        raise Conflict("The clip has not been probed yet.")
    data["video"] = VideoStream(**data["video"])
    data["audio"] = AudioStream(**data["audio"]) if data.get("audio") else None
    return MediaInfo(**data)


def plan_from_request(data: Any, *, watermark_path: str | None = None) -> EditPlan:
    """An edit plan from a browser or API client. The client says *whether* to add the
    agency watermark, never *which file*: a path from a client would let it make ffmpeg
    read any file on the server."""
    if not isinstance(data, dict):
        raise ValidationFailed("The plan must be a JSON object.", field="plan")
    data = dict(data)
    wants_watermark = data.pop("watermark", False)
    if not isinstance(wants_watermark, bool):
        raise ValidationFailed("must be true or false", field="watermark")
    try:
        plan = EditPlan.from_dict(data)
    except InvalidPlan as exc:
        raise ValidationFailed(exc.reason, field=exc.field) from None
    if wants_watermark:
        if not watermark_path:
            raise ValidationFailed("This agency has no watermark image.", field="watermark")
        plan = replace(plan, watermark=Watermark(path=watermark_path))
    return plan


def create_version(clip: Clip, plan: EditPlan, user: User) -> ClipVersion:
    """Save an edit as a new version and render it. Earlier versions stay as they are."""
    if not can(user, Permission.CLIP_EDIT, clip.case):
        raise PermissionDenied("You may not edit this clip.")
    if clip.status != ClipStatus.READY.value:
        raise Conflict("The clip is not ready for editing.")
    # The agency logo is a store key, resolved to a file by the render job; the rest
    # of the plan is checked against the clip here.
    checked = plan
    if plan.watermark is not None and plan.watermark.path.startswith(WATERMARK_PREFIX):
        checked = replace(plan, watermark=None)
    try:
        checked.validate_against(media_info_of(clip))
    except InvalidPlan as exc:
        raise ValidationFailed(exc.reason, field=exc.field) from None
    number = (
        db.session.scalar(
            select(ClipVersion.number)
            .where(ClipVersion.clip_id == clip.id)
            .order_by(ClipVersion.number.desc())
            .limit(1)
        )
        or 0
    ) + 1
    version = ClipVersion(
        clip=clip,
        number=number,
        plan=plan.to_dict(),
        created_by=user,
        status=VersionStatus.QUEUED.value,
        source_sha256=clip.original_sha256,
    )
    db.session.add(version)
    db.session.flush()
    record_event(
        "evidence.edit",
        agency_id=clip.case.agency_id,
        actor=user,
        object_type="clip_version",
        object_id=version.public_id,
        details={"clip": clip.public_id, "number": number, "plan": version.plan},
    )
    enqueue("clips.render", version_id=version.id)
    db.session.flush()
    return version


def renditions_digest(renditions: list[Rendition]) -> str:
    lines = sorted(f"{r.name}:{r.sha256}" for r in renditions)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def approve_version(version: ClipVersion, user: User, checklist: dict[str, bool]) -> Approval:
    """A supervisor releases this exact version. Never its author or the uploader of
    the footage: the four-eyes rule."""
    clip = version.clip
    if not can(user, Permission.VERSION_APPROVE, clip.case):
        raise PermissionDenied("Only a supervisor may approve footage for release.")
    if version.created_by_id == user.id or clip.uploaded_by_id == user.id:
        raise PermissionDenied("You cannot approve footage you uploaded or edited yourself.")
    if version.status != VersionStatus.READY.value:
        raise Conflict("This version has not finished rendering.")
    if version.active_approval is not None:
        raise Conflict("This version is already approved.")
    missing = [label for key, label in APPROVAL_CHECKLIST.items() if not checklist.get(key)]
    if missing:
        raise ValidationFailed("Confirm every item: " + "; ".join(missing) + ".", field="checklist")
    approval = Approval(
        version=version,
        approved_by=user,
        checklist={key: True for key in APPROVAL_CHECKLIST},
        renditions_digest=renditions_digest(version.renditions),
    )
    db.session.add(approval)
    db.session.flush()
    record_event(
        "evidence.approve",
        agency_id=version.clip.case.agency_id,
        actor=user,
        object_type="clip_version",
        object_id=version.public_id,
        details={"renditions_digest": approval.renditions_digest},
    )
    db.session.flush()
    return approval


#: The longest reason kept with a revoked approval (longer is refused, never cut).
MAX_REVOKE_REASON_LENGTH = 2000


def revoke_approval(version: ClipVersion, user: User, reason: str) -> Approval:
    if not can(user, Permission.VERSION_APPROVE, version.clip.case):
        raise PermissionDenied("Only a supervisor may revoke an approval.")
    approval = version.active_approval
    if approval is None:
        raise Conflict("This version is not approved.")
    reason = clean_text(reason, field="reason", max_length=MAX_REVOKE_REASON_LENGTH, multiline=True)
    if not reason:
        raise ValidationFailed("Say why the approval is revoked.", field="reason")
    approval.revoked_at = utcnow()
    approval.revoked_by = user
    approval.revoke_reason = reason
    record_event(
        "evidence.approval_revoke",
        agency_id=version.clip.case.agency_id,
        actor=user,
        object_type="clip_version",
        object_id=version.public_id,
        details={"reason": approval.revoke_reason},
    )
    # In the same transaction: no moment where the site shows an unapproved version.
    # (Imported here: appeals build on this module's approval checks.)
    from portal.services.appeals import withdraw_appeals_showing

    withdraw_appeals_showing(version, user, approval.revoke_reason)
    db.session.flush()
    return approval


def approval_is_intact(version: ClipVersion) -> bool:
    """The approval still matches what is stored (nothing re-rendered since)."""
    approval = version.active_approval
    return approval is not None and approval.renditions_digest == renditions_digest(
        version.renditions
    )


def _gave_up(job: Job | None) -> bool:
    """The work's latest job ended without doing it (or there never was one)."""
    return job is None or job.status in (JobStatus.FAILED.value, JobStatus.CANCELLED.value)


def retry_clip(clip: Clip, user: User | None) -> list[Job]:
    """Send the failed work of a clip again: ingest, the proxy, or its failed versions.
    A clip or version counts as failed when it says so, or when the job that was to
    finish it gave up. ``user`` is None for an operator at the command line."""
    if user is not None and not can(user, Permission.CLIP_EDIT, clip.case):
        raise PermissionDenied("You may not retry processing of this clip.")
    jobs = []
    if clip.status == ClipStatus.FAILED.value or (
        clip.status == ClipStatus.INGESTING.value and _gave_up(clip.ingest_job)
    ):
        clip.status = ClipStatus.INGESTING.value
        clip.rejection_reason = ""
        jobs.append(enqueue("clips.ingest", clip_id=clip.id))
    elif clip.status == ClipStatus.READY.value:
        proxy_job = clip.proxy_job
        if not clip.proxy_key and proxy_job is not None and _gave_up(proxy_job):
            jobs.append(enqueue("clips.proxy", clip_id=clip.id))
        for version in clip.versions:
            if version.status == VersionStatus.READY.value:
                continue
            if version.status == VersionStatus.FAILED.value or _gave_up(version.job):
                version.status = VersionStatus.QUEUED.value
                version.error = ""
                version.render_token = ""
                jobs.append(enqueue("clips.render", version_id=version.id))
    if not jobs:
        raise Conflict("Nothing of this clip has failed.")
    record_event(
        "evidence.retry",
        agency_id=clip.case.agency_id,
        actor=user,
        actor_label=None if user is not None else "operator (command line)",
        object_type="clip",
        object_id=clip.public_id,
        details={"jobs": [job.name for job in jobs]},
    )
    db.session.flush()
    return jobs


def record_evidence_access(clip: Clip, user: User, action: str, **details: Any) -> None:
    """evidence.view / evidence.download: who looked at which footage, and when."""
    record_event(
        action,
        agency_id=clip.case.agency_id,
        actor=user,
        object_type="clip",
        object_id=clip.public_id,
        details=details,
    )
    db.session.flush()
