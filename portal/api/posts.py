"""API operations on posts of appeals, the schedule, and the connected channels: the
same services as the staff pages (portal/publishing/services/posts.py)."""

from __future__ import annotations

from typing import Any

from flask import Response, g, url_for

from portal.api import bp
from portal.api.authz import api_requires
from portal.api.docs import json_body, problems
from portal.api.schemas import (
    ChannelListSchema,
    PostCreateSchema,
    PostListSchema,
    PostPatchSchema,
    PostQuerySchema,
    PostSchema,
    ScheduleSchema,
)
from portal.extensions import db
from portal.models import Agency
from portal.publishing.models import Channel, Delivery, Post
from portal.publishing.services.posts import (
    cancel_post,
    create_post,
    edit_caption,
    get_post_for,
    list_channels,
    list_posts,
    post_now,
    reschedule_post,
    schedule_post,
    upcoming_posts,
)
from portal.services.authz import Permission
from portal.services.errors import DomainError, ValidationFailed

Body = Any


def _delivery(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.public_id,
        "channel": delivery.channel.public_id,
        "channel_name": delivery.channel.name,
        "network": delivery.channel.network,
        "status": delivery.status,
        "step": delivery.step,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "reason": delivery.reason,
        "text": delivery.text,
        "url": delivery.remote_url,
        "sent_at": delivery.sent_at,
        "solved_at": delivery.solved_at,
        "removed_at": delivery.removed_at,
    }


def _post(post: Post) -> dict[str, Any]:
    db.session.refresh(post)
    return {
        "id": post.public_id,
        "status": post.status,
        "status_reason": post.status_reason,
        "slot_at": post.slot_at,
        "appeals": [item.appeal.public_id for item in post.appeals],
        "deliveries": [_delivery(d) for d in sorted(post.deliveries, key=lambda d: d.channel.name)],
    }


def _channel(channel: Channel) -> dict[str, Any]:
    return {
        "id": channel.public_id,
        "network": channel.network,
        "name": channel.name,
        "status": channel.status,
        "status_reason": channel.status_reason,
    }


@bp.route("/posts", methods=["GET"])
@bp.doc(operationId="listPosts")
@api_requires(Permission.POST_MANAGE)
@bp.arguments(PostQuerySchema, location="query")
@bp.response(200, PostListSchema, description="The agency's posts, latest slot first.")
@problems(422)
def get_posts(query: dict[str, Any]):
    """The agency's posts with each channel's delivery."""
    page = list_posts(
        g.api_user, status=query.get("status"), limit=query["limit"], offset=query["offset"]
    )
    return {"posts": [_post(p) for p in page.posts], "total": page.total}


@bp.route("/posts", methods=["POST"])
@bp.doc(operationId="createPost")
@api_requires(Permission.POST_MANAGE)
@json_body(PostCreateSchema)
@bp.response(
    201, PostSchema, description="Created.", headers={"Location": {"schema": {"type": "string"}}}
)
@problems(400, 409, 422)
def post_posts(read: Body):
    """Create a post of published appeals; scheduled through preflight unless
    ``schedule`` is false, sent at once with ``now``."""
    fields = read()
    agency = db.session.get(Agency, g.api_user.agency_id)
    assert agency is not None
    post = create_post(agency, g.api_user, fields["appeals"], fields["slot_at"], fields["channels"])
    if fields["now"]:
        post_now(post, g.api_user)
    elif fields["schedule"]:
        schedule_post(post, g.api_user)
    db.session.commit()
    location = url_for("api.get_post", post_id=post.public_id)
    return _post(post), 201, {"Location": location}


@bp.route("/posts/<id:post_id>", methods=["GET"])
@bp.doc(operationId="getPost")
@api_requires(Permission.POST_MANAGE)
@bp.response(200, PostSchema)
@problems(404)
def get_post(post_id: str):
    """A post with each channel's delivery: queued, sending (with its step), sent
    with its link, failed with the reason, retrying at a time."""
    return _post(get_post_for(g.api_user, post_id))


@bp.route("/posts/<id:post_id>", methods=["PATCH"])
@bp.doc(operationId="updatePost")
@api_requires(Permission.POST_MANAGE)
@json_body(PostPatchSchema)
@bp.response(200, PostSchema)
@problems(400, 404, 409, 422)
def patch_post(read: Body, post_id: str):
    """Move a post that has not gone out, schedule it, rewrite its captions per
    channel while it is scheduled, or send it now."""
    post = get_post_for(g.api_user, post_id)
    fields = read()
    try:
        if "slot_at" in fields:
            reschedule_post(post, g.api_user, fields["slot_at"])
        if fields.get("action") == "schedule":
            schedule_post(post, g.api_user)
        for index, caption in enumerate(fields.get("captions", [])):
            _edit_caption(post, index, caption["channel"], caption["text"])
        if fields.get("action") == "now":
            post_now(post, g.api_user)
    except DomainError:
        # All or nothing: a caption refused after another was saved saves neither.
        db.session.rollback()
        raise
    db.session.commit()
    return _post(post)


def _edit_caption(post: Post, index: int, channel_id: str, text: str) -> None:
    """The staff page's caption edit (``edit_caption``: the network's count, the
    post's state, the audit record), on the post's delivery to that channel; a
    refusal names the item of ``captions`` it is about."""
    delivery = next((d for d in post.deliveries if d.channel.public_id == channel_id), None)
    if delivery is None:
        raise ValidationFailed(
            "This post is not sent to that channel.", field=f"captions.{index}.channel"
        )
    try:
        edit_caption(delivery, g.api_user, text)
    except DomainError as exc:
        if exc.field is None:
            raise
        exc.field = f"captions.{index}.{exc.field}"
        raise


@bp.route("/posts/<id:post_id>", methods=["DELETE"])
@bp.doc(operationId="cancelPost")
@api_requires(Permission.POST_MANAGE)
@bp.response(204, description="What had not gone out is cancelled.")
@problems(404, 409)
def delete_post(post_id: str):
    """Cancel what of the post has not gone out (taking down what went out is
    withdrawing the appeal)."""
    cancel_post(get_post_for(g.api_user, post_id), g.api_user)
    db.session.commit()
    return Response(status=204)


@bp.route("/schedule", methods=["GET"])
@bp.doc(operationId="getSchedule")
@api_requires(Permission.POST_MANAGE)
@bp.response(200, ScheduleSchema, description="The coming eight weeks, earliest first.")
def get_schedule():
    """Posts planned, scheduled or going out now."""
    return {"posts": [_post(p) for p in upcoming_posts(g.api_user)]}


@bp.route("/channels", methods=["GET"])
@bp.doc(operationId="listChannels")
@api_requires(Permission.POST_MANAGE)
@bp.response(200, ChannelListSchema)
def get_channels():
    """The agency's channels and whether each is connected; never their credentials."""
    return {"channels": [_channel(c) for c in list_channels(g.api_user)]}
