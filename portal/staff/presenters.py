"""What the clip pages and the status JSON show, built from the models.

URLs are made here, in the web layer; services never know about routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import url_for

from portal.models import Clip, ClipVersion, Job, VersionStatus

POSTER = "poster"


def rendition_url(version: ClipVersion, name: str) -> str:
    return url_for("staff.rendition_media", version_id=version.public_id, name=name)


def approve_url(version: ClipVersion) -> str:
    return url_for("staff.approve_version", version_id=version.public_id)


def revoke_url(version: ClipVersion) -> str:
    return url_for("staff.revoke_approval", version_id=version.public_id)


def latest_ready_version(clip: Clip) -> ClipVersion | None:
    ready = [v for v in clip.versions if v.status == VersionStatus.READY.value]
    return ready[-1] if ready else None


@dataclass(frozen=True)
class ClipCard:
    id: str
    filename: str
    status: str
    rejection_reason: str
    duration_s: float | None
    width: int | None
    height: int | None
    poster_url: str | None
    url: str
    created_at: datetime
    uploaded_by: str
    version_count: int
    approved: bool


def clip_card(clip: Clip) -> ClipCard:
    latest = latest_ready_version(clip)
    has_poster = latest is not None and any(r.name == POSTER for r in latest.renditions)
    return ClipCard(
        id=clip.public_id,
        filename=clip.original_filename or "untitled clip",
        status=clip.status,
        rejection_reason=clip.rejection_reason,
        duration_s=clip.duration_s,
        width=clip.width,
        height=clip.height,
        poster_url=rendition_url(latest, POSTER) if has_poster and latest else None,
        url=url_for("staff.clip_detail", clip_id=clip.public_id),
        created_at=clip.created_at,
        uploaded_by=clip.uploaded_by.display_name,
        version_count=len(clip.versions),
        approved=any(v.active_approval is not None for v in clip.versions),
    )


def _job(kind: str, job: Job | None, version: int | None = None) -> dict[str, Any] | None:
    if job is None:
        return None
    return {
        "kind": kind,
        "version": version,
        "status": job.status,
        "progress": round(job.progress, 4),
        "stage": job.stage,
        "error": job.error.splitlines()[0] if job.error else "",
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
    }


def version_status(version: ClipVersion, media_url=rendition_url) -> dict[str, Any]:
    names = {r.name for r in version.renditions}
    return {
        "id": version.public_id,
        "number": version.number,
        "status": version.status,
        "error": version.error,
        "approved": version.active_approval is not None,
        "created_at": version.created_at.isoformat(),
        "created_by": version.created_by.display_name,
        "plan": version.plan,
        "poster_url": media_url(version, POSTER) if POSTER in names else None,
        "renditions": [
            {
                "name": r.name,
                "role": r.role,
                "url": media_url(version, r.name),
                "width": r.width,
                "height": r.height,
                "size": r.size,
                "sha256": r.sha256,
                "content_type": r.content_type,
            }
            for r in version.renditions
        ],
    }


def clip_status(clip: Clip, proxy_url: str | None, media_url=rendition_url) -> dict[str, Any]:
    jobs = [
        _job("ingest", clip.ingest_job),
        _job("proxy", clip.proxy_job),
        *(_job("render", v.job, v.number) for v in clip.versions),
    ]
    return {
        "clip": {
            "id": clip.public_id,
            "status": clip.status,
            "rejection_reason": clip.rejection_reason,
            "filename": clip.original_filename,
            "sha256": clip.original_sha256,
            "size": clip.original_size,
            "duration_s": clip.duration_s,
            "width": clip.width,
            "height": clip.height,
            "frame_rate": clip.frame_rate,
            "proxy_url": proxy_url,
        },
        "jobs": [j for j in jobs if j is not None],
        "versions": [version_status(v, media_url) for v in clip.versions],
    }
