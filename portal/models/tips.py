"""Tips from the public, and the conversation with the tipster.

A tip records what the tipster chose to tell, and nothing about them they did not:
no address, no user agent, no referrer. Contact details they give are encrypted at
rest. The receipt's passphrase is stored only as a keyed hash.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.agencies import Agency
from portal.models.appeals import Appeal
from portal.models.base import Base, PublicIdMixin, UTCDateTime, utcnow
from portal.models.cases import Case
from portal.models.encrypted import EncryptedText
from portal.models.users import User

if TYPE_CHECKING:
    from portal.models.attachments import TipAttachment


class TipStatus(enum.StrEnum):
    NEW = "new"
    REVIEWING = "reviewing"
    ACTIONABLE = "actionable"
    NO_VALUE = "no_value"
    DUPLICATE = "duplicate"
    CLOSED = "closed"


class Tip(PublicIdMixin, Base):
    __tablename__ = "tips"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Random, not sequential: a tip number tells nobody how many tips there are.
    number: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("appeals.id"), index=True)
    # Which kind of link the tipster came from (?via=...): counted, never tracked.
    channel: Mapped[str] = mapped_column(String(16), default="web", index=True)
    body: Mapped[str] = mapped_column(Text)
    seen_when: Mapped[str] = mapped_column(String(200), default="")
    contact_name: Mapped[str | None] = mapped_column(EncryptedText("tip.contact_name"))
    contact_phone: Mapped[str | None] = mapped_column(EncryptedText("tip.contact_phone"))
    contact_email: Mapped[str | None] = mapped_column(EncryptedText("tip.contact_email"))
    # The tipster asked for an e-mail when a reply waits (never its content).
    notify_by_email: Mapped[bool] = mapped_column(Boolean, default=False)
    # HMAC-SHA-256 of the receipt passphrase under TATTLETALE_RECEIPT_KEY.
    receipt_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=TipStatus.NEW.value, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    last_tipster_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_staff_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    agency: Mapped[Agency] = relationship()
    case: Mapped[Case | None] = relationship()
    appeal: Mapped[Appeal | None] = relationship()
    messages: Mapped[list[TipMessage]] = relationship(
        back_populates="tip", order_by="TipMessage.id", lazy="selectin"
    )
    attachments: Mapped[list[TipAttachment]] = relationship(
        back_populates="tip", order_by="TipAttachment.id", lazy="selectin"
    )

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
