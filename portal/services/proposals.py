"""Redaction proposals: an officer asks for the faces in a clip to be found, or for a
box drawn on one frame to be followed; a job proposes tracks; the studio shows them
and nothing is covered until the officer accepted them into a saved version.

Who may ask and see is who may edit the clip (membership of its case, whatever other
roles the user holds). A proposal is looked at in the studio and then forgotten: what
counts as evidence is the version saved from it, whose plan names the proposer in each
region's ``source`` and whose manifest records the detector's parameters.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select

from media_pipeline.plan import MIN_BOX_PX
from portal.extensions import db
from portal.jobs.registry import enqueue
from portal.models import (
    Clip,
    ClipStatus,
    ProposalKind,
    ProposalStatus,
    RedactionProposal,
    User,
)
from portal.services.audit import record_event
from portal.services.authz import Permission
from portal.services.cases import check_case_access
from portal.services.clips import media_info_of
from portal.services.errors import Conflict, ValidationFailed

#: Follows queued or running at once on one clip: enough for an officer working
#: through a scene, not a queue one page can fill.
MAX_ACTIVE_FOLLOWS = 3
ACTIVE = (ProposalStatus.QUEUED.value, ProposalStatus.RUNNING.value)


def get_proposal_for(user: User, public_id: str) -> RedactionProposal:
    proposal = db.session.scalar(
        select(RedactionProposal).where(RedactionProposal.public_id == public_id)
    )
    check_case_access(
        user, proposal.clip.case if proposal else None, Permission.CLIP_EDIT, "proposal"
    )
    assert proposal is not None
    return proposal


def _ready_for_proposals(clip: Clip) -> None:
    if clip.status != ClipStatus.READY.value or clip.deleted_at is not None:
        raise Conflict("The clip is not ready for editing.")
    if not clip.proxy_key:
        raise Conflict(
            "The editing copy of this clip is still being made. Try again when the studio opens."
        )


def _active(clip: Clip, kind: ProposalKind) -> list[RedactionProposal]:
    return list(
        db.session.scalars(
            select(RedactionProposal)
            .where(
                RedactionProposal.clip_id == clip.id,
                RedactionProposal.kind == kind.value,
                RedactionProposal.status.in_(ACTIVE),
            )
            .order_by(RedactionProposal.id)
        )
    )


def _start(
    clip: Clip, user: User, kind: ProposalKind, request: dict[str, Any]
) -> RedactionProposal:
    proposal = RedactionProposal(
        clip=clip, kind=kind.value, requested_by=user, request=request, status="queued"
    )
    db.session.add(proposal)
    db.session.flush()
    enqueue("clips.propose", proposal_id=proposal.id)
    record_event(
        "evidence.proposal_requested",
        agency_id=clip.case.agency_id,
        actor=user,
        object_type="clip",
        object_id=clip.public_id,
        details={"proposal": proposal.public_id, "kind": kind.value, "request": request},
    )
    db.session.commit()
    return proposal


def request_faces(clip: Clip, user: User) -> RedactionProposal:
    """Start finding the faces in ``clip``; a search already under way is returned
    instead of a second one."""
    check_case_access(user, clip.case, Permission.CLIP_EDIT, "clip")
    _ready_for_proposals(clip)
    running = _active(clip, ProposalKind.FACES)
    if running:
        return running[0]
    return _start(clip, user, ProposalKind.FACES, {})


def _box_number(data: dict[str, Any], name: str) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationFailed("must be a number", field=f"box.{name}")
    return float(value)


def follow_request(clip: Clip, data: Any) -> dict[str, Any]:
    """The box to follow, checked against the clip: a time inside it and a box of at
    least :data:`MIN_BOX_PX` inside the picture, in source pixels."""
    if not isinstance(data, dict):
        raise ValidationFailed("Send the box to follow: t, x, y, w and h.", field="box")
    unknown = set(data) - {"t", "x", "y", "w", "h", "end"}
    if unknown:
        raise ValidationFailed(f"unknown field {sorted(unknown)[0]}", field="box")
    info = media_info_of(clip)
    width, height = info.video.display_width, info.video.display_height
    t = _box_number(data, "t")
    if not 0 <= t < info.duration_s:
        raise ValidationFailed(
            f"must be within the clip (0 to {info.duration_s:g} s)", field="box.t"
        )
    values = {}
    for name in ("x", "y", "w", "h"):
        number = _box_number(data, name)
        if number != int(number):
            raise ValidationFailed("must be a whole number of pixels", field=f"box.{name}")
        values[name] = int(number)
    for name in ("x", "y"):
        if values[name] < 0:
            raise ValidationFailed("must be 0 or more", field=f"box.{name}")
    for name in ("w", "h"):
        if values[name] < MIN_BOX_PX:
            raise ValidationFailed(f"must be at least {MIN_BOX_PX} pixels", field=f"box.{name}")
    if values["x"] + values["w"] > width:
        raise ValidationFailed(f"the box goes past the right edge ({width} px)", field="box.w")
    if values["y"] + values["h"] > height:
        raise ValidationFailed(f"the box goes past the bottom edge ({height} px)", field="box.h")
    request: dict[str, Any] = {"t": round(t, 3), **values}
    if data.get("end") is not None:
        end = _box_number(data, "end")
        if not t < end <= info.duration_s + 1e-3:
            raise ValidationFailed("must be after the box's time, within the clip", field="box.end")
        request["end"] = round(end, 3)
    return request


def request_follow(clip: Clip, user: User, data: Any) -> RedactionProposal:
    """Start following the box the officer drew."""
    check_case_access(user, clip.case, Permission.CLIP_EDIT, "clip")
    _ready_for_proposals(clip)
    request = follow_request(clip, data)
    if len(_active(clip, ProposalKind.FOLLOW)) >= MAX_ACTIVE_FOLLOWS:
        raise Conflict(
            f"{MAX_ACTIVE_FOLLOWS} boxes are being followed already. Wait for one to finish."
        )
    return _start(clip, user, ProposalKind.FOLLOW, request)


def latest_faces(clip: Clip) -> RedactionProposal | None:
    return db.session.scalar(
        select(RedactionProposal)
        .where(
            RedactionProposal.clip_id == clip.id,
            RedactionProposal.kind == ProposalKind.FACES.value,
        )
        .order_by(RedactionProposal.id.desc())
        .limit(1)
    )


def proposal_json(proposal: RedactionProposal) -> dict[str, Any]:
    """What the studio shows: the state, the job's progress, the tracks when ready,
    and what to tell the officer."""
    job = proposal.job
    return {
        "id": proposal.public_id,
        "kind": proposal.kind,
        "status": proposal.status,
        "progress": round(job.progress, 3) if job is not None else 0.0,
        "stage": job.stage if job is not None else "",
        "request": proposal.request,
        "detector": proposal.detector,
        "tracks": proposal.tracks if proposal.status == ProposalStatus.READY.value else [],
        "scores": proposal.scores if proposal.status == ProposalStatus.READY.value else [],
        "frames": proposal.frames,
        "message": proposal.message,
    }
