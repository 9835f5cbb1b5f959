"""Publishing's tables: connected channels, posts in the weekly slot, and deliveries.

A *post* is what goes out in one slot: one or more published appeals, at a time. A
*delivery* is that post on one channel, the unit of "exactly once": one row per post
and channel (a unique constraint), claimed by a fenced job, carrying every id the
network returned so that a retry resumes where the last attempt stopped.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.agencies import Agency
from portal.models.appeals import Appeal
from portal.models.base import Base, PublicIdMixin, TimestampMixin, UTCDateTime
from portal.models.encrypted import EncryptedText
from portal.models.users import User


class ChannelStatus(enum.StrEnum):
    CONNECTED = "connected"
    NEEDS_RECONNECT = "needs_reconnect"  # the network refused its credentials
    DISCONNECTED = "disconnected"  # switched off by an admin


class Channel(PublicIdMixin, TimestampMixin, Base):
    """One network account of an agency (a Page, a Mastodon account, a webhook)."""

    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("agency_id", "network", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    network: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    # Non-secret settings: base URL, account, page or user id.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Secrets (tokens, app password, webhook key) as a JSON object, encrypted at rest.
    credentials: Mapped[str] = mapped_column(EncryptedText("channel.credentials"), default="{}")
    status: Mapped[str] = mapped_column(String(24), default=ChannelStatus.CONNECTED.value)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    connected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    agency: Mapped[Agency] = relationship()
    connected_by: Mapped[User | None] = relationship()


class PostStatus(enum.StrEnum):
    DRAFT = "draft"  # being prepared; preflight not passed
    SCHEDULED = "scheduled"  # passed preflight; goes out at slot_at
    PUBLISHING = "publishing"  # due: its deliveries are under way
    DONE = "done"  # every delivery ended (sent, or failed with a reason)
    CANCELLED = "cancelled"


class Post(PublicIdMixin, TimestampMixin, Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    # When it goes out (UTC); the weekly slot's local time converted when planned.
    slot_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(16), default=PostStatus.DRAFT.value, index=True)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    agency: Mapped[Agency] = relationship()
    created_by: Mapped[User] = relationship()
    appeals: Mapped[list[PostAppeal]] = relationship(
        back_populates="post",
        order_by="PostAppeal.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="post", cascade="all, delete-orphan", lazy="selectin"
    )


class PostAppeal(Base):
    """One appeal a post carries, in the order the caption lists them."""

    __tablename__ = "post_appeals"
    __table_args__ = (UniqueConstraint("post_id", "appeal_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    post: Mapped[Post] = relationship(back_populates="appeals")
    appeal: Mapped[Appeal] = relationship(lazy="joined")


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for the slot
    SENDING = "sending"  # an attempt is under way (``step`` says where)
    RETRYING = "retrying"  # a transient failure; next attempt at ``next_attempt_at``
    SENT = "sent"  # on the network: ``remote_id``, ``remote_url``
    FAILED = "failed"  # refused for good: ``reason``
    NEEDS_ATTENTION = "needs_attention"  # outcome unknown and the network cannot tell
    CANCELLED = "cancelled"
    REMOVED = "removed"  # taken down from the network after it was sent


class Delivery(PublicIdMixin, TimestampMixin, Base):
    """A post on one channel: the unit that goes out exactly once."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("post_id", "channel_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.QUEUED.value, index=True)
    # The caption exactly as the preview showed it, and the rendition chosen by
    # preflight (its storage key and hash), fixed when the post was scheduled.
    text: Mapped[str] = mapped_column(Text, default="")
    rendition_id: Mapped[int | None] = mapped_column(ForeignKey("renditions.id"))
    # The claim of the attempt under way: the running job's token. Every write of that
    # attempt matches it, so a worker whose run was taken from it writes nothing.
    claim_token: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # Progress of the current attempt, and what each step stored (see channels.base).
    step: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text, default="")
    remote_id: Mapped[str] = mapped_column(String(500), default="")
    remote_url: Mapped[str] = mapped_column(String(2000), default="")
    remote_extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The "SOLVED — thank you" update and the takedown, once each.
    solved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Where the "SOLVED" update landed (the edited post, or the reply under it).
    solved_url: Mapped[str] = mapped_column(String(2000), default="", server_default="")
    # The replies under it (services/replies.py): where the next fetch starts (the
    # adapter's cursor), when it is due, what the last one found wrong, and how many
    # fetches were queued (each has a job key of its own).
    replies_cursor: Mapped[Any] = mapped_column(JSON, nullable=True)
    replies_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    replies_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replies_problem: Mapped[str] = mapped_column(Text, default="", server_default="")
    replies_runs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    post: Mapped[Post] = relationship(back_populates="deliveries")
    channel: Mapped[Channel] = relationship(lazy="joined")


class ReplyState(enum.StrEnum):
    LIVE = "live"  # on the network as it was filed
    EDITED = "edited"  # its author changed it after it was filed (the tip keeps the first)
    REMOVED = "removed"  # gone from the network, not by the agency
    HIDDEN = "hidden"  # hidden by the agency
    DELETED = "deleted"  # deleted by the agency


class ReplyAction(enum.StrEnum):
    HIDE = "hide"
    DELETE = "delete"
    ANSWER = "answer"


class PublicReply(PublicIdMixin, TimestampMixin, Base):
    """A comment or reply under a delivered post, filed as a tip (one each).

    The tip holds what was said when it was filed (its body) and the author's public
    handle (its contact name, encrypted like every contact); this row holds where it
    is on the network and what became of it there.
    """

    __tablename__ = "public_replies"
    # Deduplicated by the network's id: a reply is filed once however often it is seen.
    __table_args__ = (UniqueConstraint("channel_id", "remote_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id", ondelete="CASCADE"), unique=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    remote_id: Mapped[str] = mapped_column(String(500))
    url: Mapped[str] = mapped_column(String(2000), default="")
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16), default=ReplyState.LIVE.value)
    # What it says now, when its author changed it after it was filed.
    edited_text: Mapped[str] = mapped_column(Text, default="")
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When it was last looked up on the network (edited? removed?).
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # A detective's request (hide, delete, answer) under way, and what came of it.
    pending_action: Mapped[str] = mapped_column(String(16), default="")
    action_problem: Mapped[str] = mapped_column(Text, default="")
    answered_url: Mapped[str] = mapped_column(String(2000), default="")
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    delivery: Mapped[Delivery] = relationship()
    channel: Mapped[Channel] = relationship(lazy="joined")
