"""The status document of a clip (its jobs, versions and renditions), shown by the
staff pages' status JSON and by the API alike.

Each audience makes its own media URLs (staff pages and the API serve renditions
from routes of their own), so the caller passes ``media_url``; nothing here knows a
route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portal.models import Clip, ClipVersion, Job

#: The rendition name of a version's still image.
POSTER = "poster"

MediaUrl = Callable[[ClipVersion, str], str]


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


def version_status(version: ClipVersion, *, media_url: MediaUrl) -> dict[str, Any]:
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


def clip_status(clip: Clip, proxy_url: str | None, *, media_url: MediaUrl) -> dict[str, Any]:
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
        "versions": [version_status(v, media_url=media_url) for v in clip.versions],
    }
