"""Appeals: writing a case's public face, publishing it on the site, taking it down.

Nothing of an appeal is public until it is published, and it can only be published
while every version it shows holds a supervisor's approval that still matches the
stored renditions' hashes. Revoking an approval withdraws every appeal showing that
version. The public reads go through :func:`get_public_appeal` and
:func:`get_public_rendition`, which check all of this again at read time, so a row
changed behind the service's back still cannot leak footage.

Services flush; the request (or job) that called them commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import joinedload, selectinload

from portal.extensions import db
from portal.models import (
    Agency,
    Appeal,
    AppealClip,
    AppealStatus,
    Case,
    CaseStatus,
    Clip,
    ClipStatus,
    ClipVersion,
    Rendition,
    User,
    VersionStatus,
)
from portal.models.appeals import DEFAULT_QUESTION
from portal.models.base import utcnow
from portal.services.audit import record_event
from portal.services.authz import Permission, can
from portal.services.cases import check_case_access
from portal.services.clips import approval_is_intact
from portal.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from portal.services.public_media import copy_path, schedule_public_media_sync, sync_copies
from portal.services.text import clean_text

# What the public may fetch of a published version: the web renditions and the
# poster. Never the original, the proxy, the sprite sheet or the social cuts (those
# go to the networks, not to anyone with a URL).
PUBLIC_VIDEO_PREFIX = "web_"
PUBLIC_IMAGE_NAMES = frozenset({"poster"})
MAX_CLIPS_PER_APPEAL = 6

# The channels a shared link may name (?via=...), so tips can be counted per channel
# without tracking anyone. Anything else counts as the site itself.
CHANNELS: dict[str, str] = {
    "facebook": "Facebook",
    "instagram": "Instagram",
    "x": "X",
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "webhook": "A connected system (webhook)",
    "tiktok": "TikTok",
    "youtube": "YouTube",
    "nextdoor": "Nextdoor",
    "qr": "QR code (posters, flyers)",
    "email": "E-mail",
    "sms": "Text message",
    "news": "News media",
    "feed": "The site's Atom feed",
}


# Tips that were public comments or replies under the agency's posts, per network
# (portal/publishing/services/replies.py). Counted like the links' channels, but
# never taken from a link: a ?via= cannot make a tip pose as a comment.
REPLY_CHANNELS: dict[str, str] = {
    "reply:facebook": "Facebook comments",
    "reply:instagram": "Instagram comments",
    "reply:x": "X replies",
    "reply:mastodon": "Mastodon replies",
    "reply:bluesky": "Bluesky replies",
}
CHANNEL_LABELS: dict[str, str] = {**CHANNELS, **REPLY_CHANNELS}


def tip_source(channel: str) -> str:
    """Where one tip came from, for its row and page: the network of a public comment
    (shown beside a "public comment" badge), the link's channel, or the site itself."""
    if channel.startswith("reply:"):
        return CHANNELS.get(channel.removeprefix("reply:"), channel)
    return CHANNEL_LABELS.get(channel, "The site itself")


def channel_of(value: str | None) -> str:
    value = (value or "").strip().lower()
    return value if value in CHANNELS else "web"


def reply_channel(network: str) -> str:
    """The tip channel of a comment under a post on ``network``."""
    channel = f"reply:{network}"
    return channel if channel in REPLY_CHANNELS else "web"


def appeal_of(case: Case) -> Appeal | None:
    return db.session.scalar(select(Appeal).where(Appeal.case_id == case.id))


def get_appeal_for(
    user: User, public_id: str, permission: Permission = Permission.APPEAL_PUBLISH
) -> Appeal:
    """The appeal, if the user may see its case (NotFound otherwise, as for cases: ids
    are not probed) and do ``permission`` with it (PermissionDenied)."""
    appeal = db.session.scalar(select(Appeal).where(Appeal.public_id == public_id))
    check_case_access(user, appeal.case if appeal is not None else None, permission, "appeal")
    assert appeal is not None
    return appeal


def publishable_versions(case: Case) -> list[ClipVersion]:
    """The versions of a case that an appeal may show: rendered, approved, intact."""
    versions = db.session.scalars(
        select(ClipVersion)
        .join(Clip)
        .where(
            Clip.case_id == case.id,
            Clip.status == ClipStatus.READY.value,
            ClipVersion.status == VersionStatus.READY.value,
        )
        .order_by(Clip.created_at, Clip.id, ClipVersion.number)
    )
    return [v for v in versions if approval_is_intact(v)]


def _require_manage(user: User, case: Case) -> None:
    if not can(user, Permission.APPEAL_PUBLISH, case):
        raise PermissionDenied("Only a coordinator or a supervisor may manage this appeal.")


def save_appeal(
    case: Case,
    user: User,
    *,
    title: str,
    summary: str,
    question: str,
    version_ids: Sequence[str],
) -> Appeal:
    """Create or change the case's appeal. A published appeal stays published only if
    what it now shows may be published."""
    _require_manage(user, case)
    title = clean_text(title, field="title", max_length=200, required=True)
    summary = clean_text(summary, field="summary", max_length=4000, multiline=True)
    question = clean_text(question, field="question", max_length=200) or DEFAULT_QUESTION
    allowed = {v.public_id: v for v in publishable_versions(case)}
    wanted = list(dict.fromkeys(version_ids))
    if not wanted:
        raise ValidationFailed("Choose at least one approved clip version.", field="versions")
    if len(wanted) > MAX_CLIPS_PER_APPEAL:
        raise ValidationFailed(
            f"An appeal shows at most {MAX_CLIPS_PER_APPEAL} clips.", field="versions"
        )
    unknown = [public_id for public_id in wanted if public_id not in allowed]
    if unknown:
        raise ValidationFailed(
            "Only approved versions of this case's clips can be shown.", field="versions"
        )
    appeal = appeal_of(case)
    created = appeal is None
    if appeal is None:
        appeal = Appeal(agency_id=case.agency_id, case=case, created_by=user, title=title)
        db.session.add(appeal)
    appeal.title, appeal.summary, appeal.question = title, summary, question
    appeal.clips = [
        AppealClip(version=allowed[public_id], position=position)
        for position, public_id in enumerate(wanted)
    ]
    db.session.flush()
    if appeal.is_published:
        schedule_public_media_sync(appeal)  # what it shows changed: copy the new clips
    record_event(
        "appeal.create" if created else "appeal.edit",
        agency_id=appeal.agency_id,
        actor=user,
        object_type="appeal",
        object_id=appeal.public_id,
        details={"case": case.public_id, "versions": wanted},
    )
    return appeal


def _check_publishable(appeal: Appeal) -> dict[str, str]:
    if not appeal.clips:
        raise Conflict("The appeal shows no clip yet.")
    digests: dict[str, str] = {}
    for item in appeal.clips:
        version = item.version
        if not approval_is_intact(version):
            raise Conflict(
                f"Version {version.number} of a clip is no longer approved as it is stored; "
                "a supervisor must approve it again."
            )
        approval = version.active_approval
        assert approval is not None
        digests[version.public_id] = approval.renditions_digest
    return digests


def publish_appeal(appeal: Appeal, user: User) -> Appeal:
    _require_manage(user, appeal.case)
    if appeal.is_published:
        raise Conflict("This appeal is already published.")
    digests = _check_publishable(appeal)
    appeal.status = AppealStatus.PUBLISHED.value
    appeal.published_at = utcnow()
    appeal.published_by = user
    appeal.withdrawn_at = None
    appeal.withdraw_reason = ""
    db.session.flush()
    schedule_public_media_sync(appeal)
    record_event(
        "appeal.publish",
        agency_id=appeal.agency_id,
        actor=user,
        object_type="appeal",
        object_id=appeal.public_id,
        details={"case": appeal.case.public_id, "renditions_digests": digests},
    )
    return appeal


def withdraw_appeal(appeal: Appeal, user: User | None, reason: str) -> Appeal:
    """Take the appeal off the site. ``user`` None: withdrawn by the system (an
    approval was revoked)."""
    if user is not None:
        _require_manage(user, appeal.case)
    if not appeal.is_published:
        raise Conflict("This appeal is not published.")
    reason = clean_text(reason, field="reason", max_length=2000, multiline=True, required=True)
    appeal.status = AppealStatus.WITHDRAWN.value
    appeal.withdrawn_at = utcnow()
    appeal.withdrawn_by = user
    appeal.withdraw_reason = reason
    db.session.flush()
    schedule_public_media_sync(appeal)
    _take_down_posts(appeal, reason)
    record_event(
        "appeal.withdraw",
        agency_id=appeal.agency_id,
        actor=user,
        actor_label=None if user else "system",
        object_type="appeal",
        object_id=appeal.public_id,
        details={"reason": reason},
    )
    return appeal


def withdraw_appeals_showing(version: ClipVersion, user: User, reason: str) -> list[Appeal]:
    """Called when a version's approval is revoked: nothing unapproved stays public."""
    appeals = db.session.scalars(
        select(Appeal)
        .join(AppealClip)
        .where(AppealClip.version_id == version.id, Appeal.status == AppealStatus.PUBLISHED.value)
    ).all()
    for appeal in appeals:
        # The supervisor's revocation is the authority here, whatever appeal rights
        # they hold: recorded as theirs, without the manage check.
        appeal.status = AppealStatus.WITHDRAWN.value
        appeal.withdrawn_at = utcnow()
        appeal.withdrawn_by = user
        appeal.withdraw_reason = f"The approval of a clip was revoked: {reason}"[:2000]
        record_event(
            "appeal.withdraw",
            agency_id=appeal.agency_id,
            actor=user,
            object_type="appeal",
            object_id=appeal.public_id,
            details={"reason": appeal.withdraw_reason, "version": version.public_id},
        )
        schedule_public_media_sync(appeal)
        _take_down_posts(appeal, appeal.withdraw_reason)
    db.session.flush()
    return list(appeals)


def _take_down_posts(appeal: Appeal, reason: str) -> None:
    """Off the site means off the networks too: what waits is cancelled, what went out
    is deleted where the network allows it (jobs, after commit)."""
    # Imported here: publishing's services import this module's neighbours.
    from portal.publishing.services.posts import take_down_appeal

    take_down_appeal(appeal, reason)


# -- the public side -------------------------------------------------------------------


@dataclass(frozen=True)
class PublicClip:
    version: ClipVersion
    videos: list[Rendition]  # web renditions, largest first
    poster: Rendition | None
    # Copied to the public media origin (TATTLETALE_PUBLIC_MEDIA_URL) and playable there.
    copied: bool = False

    @property
    def duration_s(self) -> float | None:
        return next((r.duration_s for r in self.videos if r.duration_s), None)


def public_clips(appeal: Appeal) -> list[PublicClip]:
    """What the public sees of an appeal: only versions whose approval still matches
    their stored renditions, and of those only the public renditions."""
    clips = []
    for item in appeal.clips:
        version = item.version
        if version.status != VersionStatus.READY.value or not approval_is_intact(version):
            continue
        videos = sorted(
            (
                r
                for r in version.renditions
                if r.role == "video" and r.name.startswith(PUBLIC_VIDEO_PREFIX)
            ),
            key=lambda r: r.height or 0,
            reverse=True,
        )
        poster = next((r for r in version.renditions if r.name in PUBLIC_IMAGE_NAMES), None)
        if videos:
            clips.append(
                PublicClip(version=version, videos=videos, poster=poster, copied=item.public_copy)
            )
    return clips


def sync_public_media(appeal_id: int) -> None:
    """Copy a published appeal's public renditions to the public media prefix, or
    remove them all once it is not published (the job appeals.public_media)."""
    appeal = db.session.get(Appeal, appeal_id)
    if appeal is None:
        return
    clips = public_clips(appeal) if appeal.is_published else []
    wanted = {
        copy_path(appeal.public_id, rendition): rendition
        for clip in clips
        for rendition in [*clip.videos, *([clip.poster] if clip.poster else [])]
    }
    # Copies only leave with what no longer shows them: a withdrawn appeal (whose page
    # is gone) or a clip taken out of it (whose row went with it). So the flags can
    # follow the copies in one transaction.
    sync_copies(appeal.public_id, wanted)
    copied = {clip.version.id for clip in clips}
    for item in appeal.clips:
        item.public_copy = item.version_id in copied
    db.session.flush()


def _published() -> Select[tuple[Appeal]]:
    # Every public page and media request starts here, so it loads what the public
    # side reads in two round trips (the appeals; their clips with each version's
    # renditions and approvals joined) and nothing else: the case's assignments (and
    # their users' roles), which the models load eagerly for staff pages, are left
    # out. Measured on the tip form: 8 queries per tip before, 4 after.
    return (
        select(Appeal)
        .join(Appeal.case)
        .join(Appeal.agency)
        .options(
            joinedload(Appeal.case).lazyload(Case.assignments),
            joinedload(Appeal.agency),
            selectinload(Appeal.clips)
            .joinedload(AppealClip.version)
            .options(joinedload(ClipVersion.renditions), joinedload(ClipVersion.approvals)),
        )
        .where(Appeal.status == AppealStatus.PUBLISHED.value)
    )


def week_start(now: datetime) -> datetime:
    """The start (Tuesday 00:00 UTC) of the current #TattletaleTuesday week."""
    days_since_tuesday = (now.weekday() - 1) % 7
    start = now - timedelta(days=days_since_tuesday)
    return start.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class PublicListing:
    this_week: list[Appeal]
    open: list[Appeal]
    solved: list[Appeal]

    @property
    def empty(self) -> bool:
        return not (self.this_week or self.open or self.solved)


def list_public_appeals(
    *, agency: Agency | None = None, query: str = "", limit: int = 60
) -> PublicListing:
    """The site's listing: this week's appeals first, then every other open one, then
    solved ones. ``query`` searches the place and the offence (and the title)."""
    statement = _published()
    if agency is not None:
        statement = statement.where(Appeal.agency_id == agency.id)
    query = clean_text(query, field="q", max_length=100)
    if query:
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(
            or_(
                Case.location_address.ilike(pattern, escape="\\"),
                Case.offense.ilike(pattern, escape="\\"),
                Appeal.title.ilike(pattern, escape="\\"),
            )
        )
    appeals = db.session.scalars(
        statement.where(Case.status != CaseStatus.CLOSED.value)
        .order_by(Appeal.published_at.desc(), Appeal.id.desc())
        .limit(limit)
    ).all()
    start = week_start(utcnow())
    this_week, open_, solved = [], [], []
    for appeal in appeals:
        if appeal.case.status == CaseStatus.SOLVED.value:
            solved.append(appeal)
        elif appeal.published_at is not None and appeal.published_at >= start:
            this_week.append(appeal)
        else:
            open_.append(appeal)
    return PublicListing(this_week=this_week, open=open_, solved=solved)


def get_public_agency(slug: str) -> Agency:
    agency = db.session.scalar(select(Agency).where(Agency.slug == slug))
    if agency is None:
        raise NotFound(_("There is no agency at this address."))
    return agency


def get_public_appeal_and_clips(public_id: str) -> tuple[Appeal, list[PublicClip]]:
    """A published appeal with what it may show, or NotFound: the same answer for a
    draft, a withdrawn appeal, one with nothing left to show and an id that never
    existed. The clips come back with it: they are checked once per request."""
    appeal = db.session.scalar(_published().where(Appeal.public_id == public_id))
    clips = public_clips(appeal) if appeal is not None else []
    if appeal is None or not clips:
        raise NotFound(_("There is no appeal at this address."))
    return appeal, clips


def get_public_appeal(public_id: str) -> Appeal:
    return get_public_appeal_and_clips(public_id)[0]


def get_public_rendition(appeal_id: str, version_id: str, name: str) -> Rendition:
    _appeal, clips = get_public_appeal_and_clips(appeal_id)
    for clip in clips:
        if clip.version.public_id != version_id:
            continue
        for rendition in [*clip.videos, *([clip.poster] if clip.poster else [])]:
            if rendition.name == name:
                return rendition
    raise NotFound(_("There is no appeal at this address."))
