"""Posts: the appeals that go out in one slot, to the agency's channels.

A post is created as a draft (its appeals, its time, one delivery per channel, the
portal's own always among them), scheduled once preflight accepted every channel's
caption and rendition (``portal.publishing.preflight``), and published by the engine
(:mod:`.deliveries`) when its time comes, or at once with :func:`post_now`.

The hooks at the end are called by the appeal and case services: a solved case's
posts get their "SOLVED" update, a withdrawn appeal's posts are taken down.

Services flush; the request (or job) that called them commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from portal.extensions import db
from portal.jobs.registry import enqueue
from portal.models import Agency, Appeal, AppealStatus, Case, User
from portal.models.base import utcnow
from portal.publishing.channels.portal import NETWORK as PORTAL_NETWORK
from portal.publishing.models import (
    Channel,
    ChannelStatus,
    Delivery,
    DeliveryStatus,
    Post,
    PostAppeal,
    PostStatus,
)
from portal.publishing.services.deliveries import (
    REMOVE_JOB,
    SOLVED_JOB,
    SYSTEM,
    UNKNOWN_KEY,
    WAITING,
    enqueue_delivery,
    finish_post,
)
from portal.services.audit import record_event
from portal.services.authz import Permission, can
from portal.services.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from portal.services.text import clean_text

PORTAL_CHANNEL_NAME = "Appeal pages and Atom feed"
MAX_APPEALS_PER_POST = 10


class PreflightRefused(DomainError):
    """Preflight found what must change before the post can be scheduled."""

    status = 422

    def __init__(self, problems: list[str]) -> None:
        super().__init__("This post cannot be scheduled: " + " ".join(problems), field="post")
        self.problems = problems


def _require(actor: User, agency_id: int) -> None:
    if not can(actor, Permission.POST_MANAGE) or actor.agency_id != agency_id:
        raise PermissionDenied("You may not manage this agency's posts.")


def _audit(post: Post, actor: User | None, action: str, **details: object) -> None:
    record_event(
        action,
        agency_id=post.agency_id,
        actor=actor,
        actor_label=None if actor else SYSTEM,
        object_type="post",
        object_id=post.public_id,
        details=dict(details),
    )


def portal_channel(agency: Agency) -> Channel:
    """The agency's always-on channel (its appeal pages and Atom feed), made on first use."""
    row = db.session.scalar(
        select(Channel).where(Channel.agency_id == agency.id, Channel.network == PORTAL_NETWORK)
    )
    if row is None:
        row = Channel(agency_id=agency.id, network=PORTAL_NETWORK, name=PORTAL_CHANNEL_NAME)
        db.session.add(row)
        db.session.flush()
    return row


def get_post_for(actor: User, public_id: str) -> Post:
    """A post of the actor's agency; another agency's is not found, not forbidden."""
    post = db.session.scalar(select(Post).where(Post.public_id == public_id))
    if post is None or post.agency_id != actor.agency_id:
        raise NotFound("No such post.")
    _require(actor, post.agency_id)
    return post


def _appeals_of(agency: Agency, appeal_ids: Sequence[str]) -> list[Appeal]:
    ids = list(dict.fromkeys(appeal_ids))
    if not ids:
        raise ValidationFailed("A post carries at least one appeal.", field="appeals")
    limit = min(MAX_APPEALS_PER_POST, max(1, agency.appeals_per_post))
    if len(ids) > limit:
        raise ValidationFailed(f"A post carries at most {limit} appeals.", field="appeals")
    found = {
        appeal.public_id: appeal
        for appeal in db.session.scalars(
            select(Appeal).where(Appeal.public_id.in_(ids), Appeal.agency_id == agency.id)
        )
    }
    # One answer for another agency's appeal and for none at all.
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationFailed(f"No appeal {missing[0]} in this agency.", field="appeals")
    unpublished = [found[i] for i in ids if found[i].status != AppealStatus.PUBLISHED.value]
    if unpublished:
        raise ValidationFailed(
            f"Only published appeals can be posted; {unpublished[0].title!r} is not.",
            field="appeals",
        )
    return [found[i] for i in ids]


def _channels_of(agency: Agency, channel_ids: Sequence[str]) -> list[Channel]:
    ids = list(dict.fromkeys(channel_ids))
    rows = {
        row.public_id: row
        for row in db.session.scalars(
            select(Channel).where(Channel.public_id.in_(ids), Channel.agency_id == agency.id)
        )
    }
    missing = [i for i in ids if i not in rows]
    if missing:
        raise ValidationFailed(f"No channel {missing[0]} in this agency.", field="channels")
    off = [rows[i] for i in ids if rows[i].status != ChannelStatus.CONNECTED.value]
    if off:
        raise ValidationFailed(
            f"The channel {off[0].name} is {off[0].status.replace('_', ' ')}.", field="channels"
        )
    chosen = [rows[i] for i in ids]
    portal = portal_channel(agency)
    if portal not in chosen:
        chosen.insert(0, portal)
    return chosen


def _check_slot(slot_at: datetime, now: datetime) -> None:
    if slot_at.tzinfo is None:
        raise ValidationFailed("Give the time with its time zone.", field="slot_at")
    if slot_at < now - timedelta(seconds=60):
        raise ValidationFailed("That time has passed; choose a later one.", field="slot_at")


def create_post(
    agency: Agency,
    actor: User,
    appeals: Sequence[str],
    slot_at: datetime,
    channels: Sequence[str],
    *,
    now: datetime | None = None,
) -> Post:
    """A draft post of ``appeals`` (public ids, in caption order) at ``slot_at`` to
    ``channels`` (public ids; the portal's own channel is always added)."""
    _require(actor, agency.id)
    now = now or utcnow()
    _check_slot(slot_at, now)
    chosen_appeals = _appeals_of(agency, appeals)
    chosen_channels = _channels_of(agency, channels)
    post = Post(
        agency_id=agency.id,
        slot_at=slot_at,
        status=PostStatus.DRAFT.value,
        created_by_id=actor.id,
    )
    post.appeals = [
        PostAppeal(appeal=appeal, position=index) for index, appeal in enumerate(chosen_appeals)
    ]
    post.deliveries = [
        Delivery(channel=channel, status=DeliveryStatus.QUEUED.value, next_attempt_at=slot_at)
        for channel in chosen_channels
    ]
    db.session.add(post)
    db.session.flush()
    _audit(
        post,
        actor,
        "post.create",
        slot_at=slot_at.isoformat(),
        appeals=[a.public_id for a in chosen_appeals],
        channels=[c.public_id for c in chosen_channels],
    )
    return post


def _prepare(post: Post) -> None:
    """Fix each delivery's caption and rendition through preflight, or refuse with
    every problem of every channel at once."""
    # Imported here: preflight imports the limits and captions, which need the app.
    from portal.publishing.preflight import PreflightFailed, daily_cap_problem, prepare_delivery

    agency = db.session.get(Agency, post.agency_id)
    assert agency is not None
    appeals = [item.appeal for item in post.appeals]
    problems: list[str] = []
    for delivery in post.deliveries:
        network = delivery.channel.network
        try:
            prepared = prepare_delivery(network, appeals, agency)
        except PreflightFailed as exc:
            problems.extend(f"{delivery.channel.name}: {p}" for p in exc.problems)
            continue
        delivery.text = prepared.text
        delivery.rendition_id = prepared.rendition_id
        # A post that would pass the account's daily cap is refused now, not by the
        # network at the slot.
        capped = daily_cap_problem(delivery.channel, post.slot_at, post_id=post.id)
        if capped:
            problems.append(f"{delivery.channel.name}: {capped}")
    if problems:
        raise PreflightRefused(problems)


def _check_still_publishable(post: Post) -> None:
    gone = [i.appeal for i in post.appeals if i.appeal.status != AppealStatus.PUBLISHED.value]
    if gone:
        raise Conflict(f"The appeal {gone[0].title!r} is no longer published.", field="appeals")


def schedule_post(post: Post, actor: User, *, now: datetime | None = None) -> Post:
    """Pass preflight and wait for the slot. Only a draft can be scheduled."""
    _require(actor, post.agency_id)
    now = now or utcnow()
    if post.status != PostStatus.DRAFT.value:
        raise Conflict(f"This post is {post.status}; only a draft can be scheduled.")
    _check_slot(post.slot_at, now)
    _check_still_publishable(post)
    _prepare(post)
    moved = db.session.execute(
        update(Post)
        .where(Post.id == post.id, Post.status == PostStatus.DRAFT.value)
        .values(status=PostStatus.SCHEDULED.value, status_reason="", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Someone changed this post meanwhile; look again.")
    for delivery in post.deliveries:
        delivery.next_attempt_at = post.slot_at
    db.session.flush()
    db.session.refresh(post, ["status"])
    _audit(post, actor, "post.schedule", slot_at=post.slot_at.isoformat())
    return post


def reschedule_post(
    post: Post, actor: User, slot_at: datetime, *, now: datetime | None = None
) -> Post:
    """Move a draft or scheduled post to another time."""
    _require(actor, post.agency_id)
    now = now or utcnow()
    if post.status not in (PostStatus.DRAFT.value, PostStatus.SCHEDULED.value):
        raise Conflict(f"This post is {post.status}; its time can no longer change.")
    _check_slot(slot_at, now)
    moved = db.session.execute(
        update(Post)
        .where(Post.id == post.id, Post.status == post.status)
        .values(slot_at=slot_at, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Someone changed this post meanwhile; look again.")
    for delivery in post.deliveries:
        if delivery.status in WAITING:
            delivery.next_attempt_at = slot_at
    db.session.flush()
    db.session.refresh(post, ["slot_at"])
    _audit(post, actor, "post.reschedule", slot_at=slot_at.isoformat())
    return post


def post_now(post: Post, actor: User, *, now: datetime | None = None) -> Post:
    """Send a draft or scheduled post at once (a draft passes preflight first)."""
    _require(actor, post.agency_id)
    now = now or utcnow()
    if post.status == PostStatus.DRAFT.value:
        post.slot_at = now
        schedule_post(post, actor, now=now)
    elif post.status != PostStatus.SCHEDULED.value:
        raise Conflict(f"This post is {post.status} already.")
    _check_still_publishable(post)
    moved = db.session.execute(
        update(Post)
        .where(Post.id == post.id, Post.status == PostStatus.SCHEDULED.value)
        .values(status=PostStatus.PUBLISHING.value, slot_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Someone changed this post meanwhile; look again.")
    db.session.refresh(post, ["status", "slot_at"])
    for delivery in post.deliveries:
        if delivery.status in WAITING:
            delivery.next_attempt_at = now
            db.session.flush()
            enqueue_delivery(delivery)
    _audit(post, actor, "post.now")
    return post


def _cancel_waiting(post_id: int, reason: str) -> int:
    return db.session.execute(
        update(Delivery)
        .where(Delivery.post_id == post_id, Delivery.status.in_(WAITING))
        .values(status=DeliveryStatus.CANCELLED.value, reason=reason, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]


def _end_post(post: Post, reason: str) -> None:
    """After its waiting deliveries were cancelled: a post nothing of which went out is
    cancelled; one partly out is done once the rest ended."""
    sent_any = db.session.scalar(
        select(Delivery.id).where(
            Delivery.post_id == post.id,
            Delivery.status.in_(
                [
                    DeliveryStatus.SENT.value,
                    DeliveryStatus.SENDING.value,
                    DeliveryStatus.REMOVED.value,
                ]
            ),
        )
    )
    if sent_any is None:
        db.session.execute(
            update(Post)
            .where(Post.id == post.id, Post.status != PostStatus.CANCELLED.value)
            .values(status=PostStatus.CANCELLED.value, status_reason=reason, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    else:
        finish_post(post.id)
    db.session.flush()
    db.session.expire(post)


def cancel_post(post: Post, actor: User) -> Post:
    """Stop what has not gone out yet (a delivery under way finishes; a sent one stays:
    taking it down is withdrawing the appeal)."""
    _require(actor, post.agency_id)
    if post.status in (PostStatus.DONE.value, PostStatus.CANCELLED.value):
        raise Conflict(f"This post is {post.status}; there is nothing left to cancel.")
    reason = f"Cancelled by {actor.display_name or actor.email}."
    cancelled = _cancel_waiting(post.id, reason)
    _end_post(post, reason)
    _audit(post, actor, "post.cancel", deliveries=cancelled)
    return post


# -- a person's decisions on a delivery that stopped ----------------------------------------


def _stopped(delivery: Delivery, actor: User) -> Post:
    post = db.session.get(Post, delivery.post_id)
    assert post is not None
    _require(actor, post.agency_id)
    if delivery.status not in (DeliveryStatus.FAILED.value, DeliveryStatus.NEEDS_ATTENTION.value):
        raise Conflict(f"This delivery is {delivery.status.replace('_', ' ')}; nothing to decide.")
    return post


def retry_delivery(delivery: Delivery, actor: User, *, now: datetime | None = None) -> Delivery:
    """Send a failed delivery again (after a reconnect, say), or one whose outcome was
    unknown once the person looked and found it is not on the network. Its channel
    must be connected. One more attempt: the engine's attempt count goes on."""
    post = _stopped(delivery, actor)
    now = now or utcnow()
    if delivery.channel.status != ChannelStatus.CONNECTED.value:
        raise Conflict(f"Connect {delivery.channel.name} again first.", field="channel")
    if any(i.appeal.status != AppealStatus.PUBLISHED.value for i in post.appeals):
        raise Conflict("An appeal of this post is no longer published.")
    moved = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id, Delivery.status == delivery.status)
        .values(
            status=DeliveryStatus.RETRYING.value,
            next_attempt_at=now,
            # Needing attention, the person looked: it is not there, so the next
            # attempt publishes. Failed with an outcome still unknown, it looks first.
            state=(
                {k: v for k, v in (delivery.state or {}).items() if k != UNKNOWN_KEY}
                if delivery.status == DeliveryStatus.NEEDS_ATTENTION.value
                else dict(delivery.state or {})
            ),
            reason="",
            claim_token="",
        )
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Someone changed this delivery meanwhile; look again.")
    db.session.execute(
        update(Post)
        .where(Post.id == post.id, Post.status == PostStatus.DONE.value)
        .values(status=PostStatus.PUBLISHING.value, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    db.session.refresh(delivery)
    enqueue_delivery(delivery, by_person=f"{actor.public_id}:{int(now.timestamp())}")
    _audit(post, actor, "delivery.retry", delivery=delivery.public_id)
    return delivery


#: The longest caption a person may write (every network's limit is far below).
CAPTION_MAX_CHARS = 70000


def edit_caption(delivery: Delivery, actor: User, text: str) -> Delivery:
    """Replace the caption a scheduled post sends to one channel by what a person
    wrote, counted as the network counts it (portal/publishing/preflight.py
    ``caption_problems``) and refused when it would not be taken. Only before anything
    was sent: once the slot came and the post is publishing, its captions are fixed."""
    from portal.publishing.preflight import caption_problems

    post = db.session.get(Post, delivery.post_id)
    assert post is not None
    _require(actor, post.agency_id)
    text = clean_text(text, field="text", max_length=CAPTION_MAX_CHARS, multiline=True)
    network = delivery.channel.network
    if network == PORTAL_NETWORK:
        # Its pages and feed show the appeal itself; the caption is never shown.
        raise Conflict("The portal's own pages show the appeal itself: there is no caption.")
    _, problems = caption_problems(network, text)
    if problems:
        message = "; ".join(problems)
        raise ValidationFailed(message[0].upper() + message[1:] + ".", field="text")
    scheduled = select(Post.id).where(
        Post.id == delivery.post_id, Post.status == PostStatus.SCHEDULED.value
    )
    before = delivery.text
    moved = db.session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery.id,
            Delivery.status == DeliveryStatus.QUEUED.value,
            Delivery.post_id.in_(scheduled),
        )
        .values(text=text, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            "Only a scheduled post's captions can change, before it is sent; look again."
        )
    db.session.flush()
    db.session.refresh(delivery)
    _audit(
        post,
        actor,
        "post.caption",
        delivery=delivery.public_id,
        network=network,
        before=before,
        after=text,
    )
    return delivery


def mark_delivery_sent(delivery: Delivery, actor: User, url: str) -> Delivery:
    """The person found the post on the network (an unknown outcome that did land):
    record where, so it is never sent again and its updates reach it."""
    post = _stopped(delivery, actor)
    url = clean_text(url, field="url", max_length=2000, required=True)
    if not url.startswith("https://"):
        raise ValidationFailed("Give the post's https:// address.", field="url")
    moved = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id, Delivery.status == delivery.status)
        .values(
            status=DeliveryStatus.SENT.value,
            remote_url=url,
            sent_at=utcnow(),
            reason=f"Marked sent by {actor.display_name or actor.email}.",
            claim_token="",
        )
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Someone changed this delivery meanwhile; look again.")
    db.session.flush()
    db.session.refresh(delivery)
    _audit(post, actor, "delivery.marked_sent", delivery=delivery.public_id, url=url)
    return delivery


# -- hooks of the case and appeal services ---------------------------------------------------


def mark_case_solved(case: Case) -> int:
    """The case was solved: every live post of its appeal gets the "SOLVED" update,
    one job per delivery (queued once, by its key). Returns how many were queued."""
    appeal_ids = select(Appeal.id).where(Appeal.case_id == case.id)
    deliveries = db.session.scalars(
        select(Delivery)
        .join(PostAppeal, PostAppeal.post_id == Delivery.post_id)
        .where(
            PostAppeal.appeal_id.in_(appeal_ids),
            Delivery.status == DeliveryStatus.SENT.value,
            Delivery.solved_at.is_(None),
        )
    ).all()
    for delivery in deliveries:
        enqueue(SOLVED_JOB, unique_key=f"{SOLVED_JOB}:{delivery.id}", delivery_id=delivery.id)
    # What has not gone out yet never will: the public is not asked about a solved case.
    waiting = db.session.scalars(
        select(Post)
        .join(PostAppeal)
        .where(
            PostAppeal.appeal_id.in_(appeal_ids),
            Post.status.in_(
                [PostStatus.DRAFT.value, PostStatus.SCHEDULED.value, PostStatus.PUBLISHING.value]
            ),
        )
    ).all()
    reason = f"Case {case.number} was solved."
    for post in waiting:
        if _cancel_waiting(post.id, reason):
            _audit(post, None, "post.case_solved", case=case.public_id)
        _end_post(post, reason)
    return len(deliveries)


def take_down_appeal(appeal: Appeal, reason: str) -> int:
    """The appeal left the site (withdrawn, or an approval revoked): what waits to go
    out is cancelled, what went out is deleted where the network allows it. Returns
    how many deliveries were touched."""
    reason = f"The appeal was taken down: {reason}"[:2000]
    touched = 0
    posts = db.session.scalars(
        select(Post).join(PostAppeal).where(PostAppeal.appeal_id == appeal.id)
    ).all()
    for post in posts:
        if post.status in (PostStatus.CANCELLED.value,):
            continue
        touched += _cancel_waiting(post.id, reason)
        sent = db.session.scalars(
            select(Delivery.id).where(
                Delivery.post_id == post.id, Delivery.status == DeliveryStatus.SENT.value
            )
        ).all()
        for delivery_id in sent:
            enqueue(REMOVE_JOB, unique_key=f"{REMOVE_JOB}:{delivery_id}", delivery_id=delivery_id)
        touched += len(sent)
        if post.status in (PostStatus.DRAFT.value, PostStatus.SCHEDULED.value):
            db.session.execute(
                update(Post)
                .where(Post.id == post.id, Post.status == post.status)
                .values(status=PostStatus.CANCELLED.value, status_reason=reason)
                .execution_options(synchronize_session=False)
            )
        else:
            finish_post(post.id)
        _audit(post, None, "post.take_down", appeal=appeal.public_id, reason=reason)
    db.session.flush()
    return touched


def remove_expired_posts(now: datetime | None = None) -> int:
    """The agencies' retention: sent posts older than ``remove_posts_after_days`` are
    taken down from the networks that allow it. Enqueues; flushes."""
    now = now or utcnow()
    count = 0
    for agency in db.session.scalars(select(Agency).where(Agency.remove_posts_after_days > 0)):
        cutoff = now - timedelta(days=agency.remove_posts_after_days)
        rows = db.session.scalars(
            select(Delivery)
            .join(Post, Post.id == Delivery.post_id)
            .join(Channel, Channel.id == Delivery.channel_id)
            .where(
                Post.agency_id == agency.id,
                Delivery.status == DeliveryStatus.SENT.value,
                Delivery.sent_at <= cutoff,
                Channel.network != PORTAL_NETWORK,
            )
        ).all()
        for delivery in rows:
            from portal.publishing.channels.registry import adapter_class

            try:
                if not adapter_class(delivery.channel.network).can_delete:
                    continue
            except KeyError:
                continue
            enqueue(REMOVE_JOB, unique_key=f"{REMOVE_JOB}:{delivery.id}", delivery_id=delivery.id)
            count += 1
    db.session.flush()
    return count


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostPage:
    posts: list[Post]
    total: int


def list_posts(
    actor: User, *, status: str | None = None, limit: int = 50, offset: int = 0
) -> PostPage:
    _require(actor, actor.agency_id)
    query = select(Post).where(Post.agency_id == actor.agency_id)
    if status:
        query = query.where(Post.status == status)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(
        query.order_by(Post.slot_at.desc(), Post.id.desc()).limit(limit).offset(offset)
    )
    return PostPage(posts=list(rows), total=total)


def upcoming_posts(actor: User, *, now: datetime | None = None, weeks: int = 8) -> list[Post]:
    """The schedule: what goes out from now on, and what is going out now."""
    _require(actor, actor.agency_id)
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(Post)
            .where(
                Post.agency_id == actor.agency_id,
                Post.status.in_(
                    [
                        PostStatus.DRAFT.value,
                        PostStatus.SCHEDULED.value,
                        PostStatus.PUBLISHING.value,
                    ]
                ),
                Post.slot_at <= now + timedelta(weeks=weeks),
            )
            .order_by(Post.slot_at, Post.id)
        )
    )


def list_channels(actor: User) -> list[Channel]:
    _require(actor, actor.agency_id)
    return list(
        db.session.scalars(
            select(Channel).where(Channel.agency_id == actor.agency_id).order_by(Channel.name)
        )
    )
