"""What the staff clip pages and their status JSON show, built from the models.

URLs are made here, in the web layer; services never know about routes. The status
document itself is shared with the API (:mod:`portal.http.presenters`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import url_for

from portal.http import presenters as shared
from portal.http.presenters import POSTER
from portal.models import Clip, ClipVersion, VersionStatus


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


def clip_status(clip: Clip, proxy_url: str | None) -> dict[str, Any]:
    """The clip's status document with the staff pages' media URLs."""
    return shared.clip_status(clip, proxy_url, media_url=rendition_url)
