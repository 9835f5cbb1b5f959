"""Appeals with the social cuts a render makes, as rows (no media is fetched)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from portal.extensions import db
from portal.models import (
    Agency,
    Appeal,
    AppealClip,
    AppealStatus,
    Approval,
    CaseStatus,
    Clip,
    ClipVersion,
    Rendition,
    User,
)
from portal.models.base import utcnow
from portal.services.cases import create_case
from portal.services.clips import renditions_digest

MB = 1024 * 1024

#: What the default profiles make of a 1920x1080 landscape source: (name, w, h, MB).
LANDSCAPE_CUTS: tuple[tuple[str, int, int, float], ...] = (
    ("web_1080", 1920, 1080, 40.0),
    ("web_720", 1280, 720, 20.0),
    ("web_480", 854, 480, 8.0),
    ("square", 1080, 1080, 25.0),
    ("vertical", 1080, 1920, 30.0),
)


def rendition_rows(
    number: str, position: int, duration_s: float, cuts: Sequence[tuple[str, int, int, float]]
) -> list[Rendition]:
    rows = [
        Rendition(
            name=name,
            role="video",
            storage_key=f"{number}/{position}/{name}.mp4",
            content_type="video/mp4",
            size=int(megabytes * MB),
            sha256=f"{position:x}{index:x}".ljust(64, "0"),
            width=width,
            height=height,
            duration_s=duration_s,
        )
        for index, (name, width, height, megabytes) in enumerate(cuts)
    ]
    rows.append(
        Rendition(
            name="poster",
            role="poster",
            storage_key=f"{number}/{position}/poster.jpg",
            content_type="image/jpeg",
            size=1000,
            sha256="f" * 64,
            width=1920,
            height=1080,
        )
    )
    return rows


def social_appeal(
    agency: Agency,
    owner: User,
    approver: User,
    *,
    number: str,
    title: str = "Robbery at the corner shop",
    summary: str = "A man took the till and ran towards the station.",
    place: str = "742 Evergreen Terrace",
    occurred_at: datetime | None = None,
    durations: Sequence[float] = (45.0,),
    cuts: Sequence[tuple[str, int, int, float]] = LANDSCAPE_CUTS,
    frame_rate: float = 30.0,
    published_days_ago: float = 0,
    solved: bool = False,
    status: AppealStatus = AppealStatus.PUBLISHED,
) -> Appeal:
    """A published appeal with one approved version per entry of ``durations``."""
    case = create_case(agency, number=number, title=title, created_by=owner, location_address=place)
    case.occurred_at = occurred_at
    if solved:
        case.status = CaseStatus.SOLVED.value
    shown = []
    for position, duration in enumerate(durations):
        clip = Clip(
            case=case,
            uploaded_by=owner,
            status="ready",
            original_key=f"{number}/{position}/original",
            frame_rate=frame_rate,
            duration_s=duration,
        )
        version = ClipVersion(clip=clip, number=1, plan={}, created_by=owner, status="ready")
        version.renditions = rendition_rows(number, position, duration, cuts)
        db.session.add_all([clip, version])
        db.session.flush()
        db.session.add(
            Approval(
                version=version,
                approved_by=approver,
                renditions_digest=renditions_digest(version.renditions),
            )
        )
        shown.append(AppealClip(version=version, position=position))
    appeal = Appeal(
        agency_id=agency.id,
        case=case,
        title=title,
        summary=summary,
        created_by=owner,
        status=status.value,
        published_at=utcnow() - timedelta(days=published_days_ago),
    )
    appeal.clips = shown
    db.session.add(appeal)
    db.session.commit()
    return appeal


def rendition_named(appeal: Appeal, name: str, clip: int = 0) -> Rendition:
    return next(r for r in appeal.clips[clip].version.renditions if r.name == name)
