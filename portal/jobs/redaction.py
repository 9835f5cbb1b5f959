"""The job that proposes redaction regions: faces found by the detector, or a box
followed by the tracker, on the clip's editing proxy.

Whatever it raises, the proposal ends ready or failed with a sentence for the officer,
who can always draw regions by hand instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from media_pipeline.errors import Cancelled, TimedOut
from media_pipeline.faces import (
    DetectorUnavailable,
    Proposal,
    ProxyUnreadable,
    follow_box,
    suggest_faces,
)
from media_pipeline.plan import Keyframe
from portal.extensions import db
from portal.jobs.errors import PermanentJobError
from portal.jobs.registry import JobContext, job
from portal.models import Job, ProposalKind, ProposalStatus, RedactionProposal
from portal.models.base import utcnow
from portal.services.clips import media_info_of
from portal.services.storage import local_copy

#: Seconds between progress writes (each is a database write; the run's own heartbeat
#: thread beats regardless).
REPORT_EVERY_S = 1.0
NO_FACE = (
    "No face was found in this clip. Look through it yourself before release: a face "
    "turned away, small or in the dark can be missed."
)


def _fail_proposal(row: Job, reason: str) -> None:
    proposal = db.session.get(RedactionProposal, row.subject_id)
    if proposal is None or proposal.status == ProposalStatus.READY.value:
        return
    what = "Finding faces" if proposal.kind == ProposalKind.FACES.value else "Following the box"
    proposal.status = ProposalStatus.FAILED.value
    proposal.finished_at = utcnow()
    proposal.message = f"{what} failed: {reason[:500]}. You can still draw regions by hand."


def _reporter(ctx: JobContext, stage: str) -> Callable[[float], None]:
    last = [0.0]

    def report(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] >= REPORT_EVERY_S or fraction >= 1.0:
            last[0] = now
            ctx.report(fraction * 0.98, stage)

    return report


def _message(proposal: RedactionProposal, result: Proposal) -> str:
    if proposal.kind == ProposalKind.FACES.value:
        if not result.tracks:
            return NO_FACE
        n = len(result.tracks)
        return f"{n} face{'s' if n != 1 else ''} found. Nothing is blurred until you accept it."
    if result.stopped:
        return (
            f"The tracker {result.stopped}: the track ends there. Drag its keyframes to "
            "correct it, or follow again from a later frame."
        )
    return "Followed to the end. Drag its keyframes to correct it."


@job(
    "clips.propose", subject=("proposal", "proposal_id"), max_attempts=2, on_failure=_fail_proposal
)
def propose_regions(ctx: JobContext, proposal_id: int) -> None:
    """Run the detector or the tracker over the proxy and store what it proposes."""
    proposal = db.session.get(RedactionProposal, proposal_id)
    if proposal is None:
        raise PermanentJobError(f"proposal {proposal_id} does not exist")
    if proposal.status in (ProposalStatus.READY.value, ProposalStatus.FAILED.value):
        return
    clip = proposal.clip
    if not clip.proxy_key or clip.deleted_at is not None:
        raise PermanentJobError("the clip's editing copy is gone")
    proposal.status = ProposalStatus.RUNNING.value
    db.session.commit()
    info = media_info_of(clip)
    size = (info.video.display_width, info.video.display_height)
    try:
        with local_copy(clip.proxy_key) as path:
            if proposal.kind == ProposalKind.FACES.value:
                result = suggest_faces(
                    path,
                    source_size=size,
                    duration_s=info.duration_s,
                    progress=_reporter(ctx, "finding faces"),
                )
            else:
                r = proposal.request
                result = follow_box(
                    path,
                    source_size=size,
                    duration_s=info.duration_s,
                    box=Keyframe(float(r["t"]), int(r["x"]), int(r["y"]), int(r["w"]), int(r["h"])),
                    end_s=r.get("end"),
                    progress=_reporter(ctx, "following the box"),
                )
    except (DetectorUnavailable, ProxyUnreadable) as exc:
        raise PermanentJobError(exc.reason) from None
    except Cancelled:
        raise PermanentJobError("it was cancelled") from None
    except TimedOut:
        raise PermanentJobError("it took longer than twice the clip's length") from None
    proposal.tracks = [track.to_dict() for track in result.tracks]
    proposal.scores = list(result.scores)
    proposal.detector = result.detector.to_dict()
    proposal.frames = result.frames
    proposal.message = _message(proposal, result)
    proposal.status = ProposalStatus.READY.value
    proposal.finished_at = utcnow()
    db.session.flush()
    ctx.confirm()
    db.session.commit()
