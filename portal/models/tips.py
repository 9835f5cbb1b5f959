"""Tips from the public, and the conversation with the tipster.

A tip records what the tipster chose to tell, and nothing about them they did not:
no address, no user agent, no referrer. Contact details they give are encrypted at
rest. The receipt's passphrase is stored only as a keyed hash.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.agencies import Agency
from portal.models.appeals import Appeal
from portal.models.base import Base, PublicIdMixin, UTCDateTime, utcnow
from portal.models.cases import Case
from portal.models.encrypted import EncryptedText
from portal.models.users import User

if TYPE_CHECKING:
    from portal.models.attachments import TipAttachment
    from portal.publishing.models import PublicReply


class TipStatus(enum.StrEnum):
    NEW = "new"
    REVIEWING = "reviewing"
    ACTIONABLE = "actionable"
    NO_VALUE = "no_value"
    DUPLICATE = "duplicate"
    CLOSED = "closed"


class TipOrigin(enum.StrEnum):
    """How a tip reached the agency: through the tip form, or as a public comment or
    reply under one of the agency's posts on a network (portal/publishing/replies)."""

    FORM = "form"
    COMMENT = "comment"


class TipPriority(enum.IntEnum):
    """Stored as a number so that "priority" sorts in the database."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    URGENT = 3


class Tip(PublicIdMixin, Base):
    __tablename__ = "tips"
    # The queue's orders, each a keyset (sort value, id) within the agency or a case,
    # so that a page deep in a million tips costs what the first one does.
    __table_args__ = (
        Index("ix_tips_agency_created", "agency_id", "created_at", "id"),
        Index("ix_tips_agency_status_created", "agency_id", "status", "created_at", "id"),
        Index("ix_tips_agency_priority_created", "agency_id", "priority", "created_at", "id"),
        Index("ix_tips_agency_awaiting", "agency_id", "awaiting_since", "id"),
        Index("ix_tips_case_created", "case_id", "created_at", "id"),
        Index("ix_tips_assignee_created", "assignee_id", "created_at", "id"),
        Index("ix_tips_agency_origin_created", "agency_id", "origin", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Random, not sequential: a tip number tells nobody how many tips there are.
    number: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("appeals.id"), index=True)
    # Which kind of link the tipster came from (?via=...): counted, never tracked.
    # A public comment's is "reply:<network>" (portal/services/appeals.py, CHANNELS).
    channel: Mapped[str] = mapped_column(String(16), default="web", index=True)
    origin: Mapped[str] = mapped_column(
        String(16), default=TipOrigin.FORM.value, server_default=TipOrigin.FORM.value
    )
    body: Mapped[str] = mapped_column(Text)
    seen_when: Mapped[str] = mapped_column(String(200), default="")
    contact_name: Mapped[str | None] = mapped_column(EncryptedText("tip.contact_name"))
    contact_phone: Mapped[str | None] = mapped_column(EncryptedText("tip.contact_phone"))
    contact_email: Mapped[str | None] = mapped_column(EncryptedText("tip.contact_email"))
    # The tipster asked for an e-mail when a reply waits (never its content).
    notify_by_email: Mapped[bool] = mapped_column(Boolean, default=False)
    # The language of the page the tip was sent from (TATTLETALE_LANGUAGES): the
    # mail telling the tipster that a reply waits is written in it.
    language: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    # HMAC-SHA-256 of the receipt passphrase under TATTLETALE_RECEIPT_KEY.
    receipt_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=TipStatus.NEW.value, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    last_tipster_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_staff_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Since when the tipster has been waiting for staff: the tip's arrival, or their
    # reply after the last staff message; None once staff have answered.
    awaiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=utcnow)
    # Triage (portal/services/triage.py). ``version`` grows with every triage change:
    # a change made against an older version is refused, never silently applied.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    priority: Mapped[int] = mapped_column(
        SmallInteger, default=TipPriority.NORMAL.value, server_default="1"
    )
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Merged into another tip as its duplicate.
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("tips.id"))
    # Another case of the agency this tip bears on (the tip stays with its own case).
    linked_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))

    agency: Mapped[Agency] = relationship()
    case: Mapped[Case | None] = relationship(foreign_keys=[case_id])
    linked_case: Mapped[Case | None] = relationship(foreign_keys=[linked_case_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    duplicate_of: Mapped[Tip | None] = relationship(remote_side=[id])
    appeal: Mapped[Appeal | None] = relationship()
    messages: Mapped[list[TipMessage]] = relationship(
        back_populates="tip", order_by="TipMessage.id", lazy="selectin"
    )
    attachments: Mapped[list[TipAttachment]] = relationship(
        back_populates="tip", order_by="TipAttachment.id", lazy="selectin"
    )
    # Where a public comment is on the network (origin "comment"); None for the rest.
    public_reply: Mapped[PublicReply | None] = relationship(
        "PublicReply", uselist=False, viewonly=True, lazy="selectin"
    )

    @property
    def is_comment(self) -> bool:
        return self.origin == TipOrigin.COMMENT.value

    @property
    def is_anonymous(self) -> bool:
        return not (self.contact_name or self.contact_phone or self.contact_email)


class MessageAuthor(enum.StrEnum):
    TIPSTER = "tipster"
    STAFF = "staff"


class TipMessage(Base):
    """One message of a tip's conversation: a detective's question, a tipster's answer."""

    __tablename__ = "tip_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(16))
    # Staff only; a tipster's message has no author row (nobody to point at).
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    tip: Mapped[Tip] = relationship(back_populates="messages")
    author_user: Mapped[User | None] = relationship()
