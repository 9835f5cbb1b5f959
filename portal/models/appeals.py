"""Appeals: a case's public face.

An appeal gathers approved clip versions of one case with the text the public reads.
Publishing it on the portal is one act; scheduling it into the weekly slot and posting
it to social networks (their own tables) refer to the appeal and happen on their own
timelines, before or after it is on the site.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.agencies import Agency
from portal.models.base import Base, PublicIdMixin, TimestampMixin, UTCDateTime
from portal.models.cases import Case
from portal.models.clips import ClipVersion
from portal.models.users import User

DEFAULT_QUESTION = "Do you recognize this person?"


class AppealStatus(enum.StrEnum):
    DRAFT = "draft"  # being written; nothing of it is public
    PUBLISHED = "published"  # on the public site
    WITHDRAWN = "withdrawn"  # taken down (by hand, or because an approval was revoked)


class Appeal(PublicIdMixin, TimestampMixin, Base):
    __tablename__ = "appeals"
    # One public face per case: its clips are gathered in it.
    __table_args__ = (UniqueConstraint("case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    question: Mapped[str] = mapped_column(String(200), default=DEFAULT_QUESTION)
    status: Mapped[str] = mapped_column(String(16), default=AppealStatus.DRAFT.value, index=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdraw_reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    agency: Mapped[Agency] = relationship()
    case: Mapped[Case] = relationship()
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    published_by: Mapped[User | None] = relationship(foreign_keys=[published_by_id])
    withdrawn_by: Mapped[User | None] = relationship(foreign_keys=[withdrawn_by_id])
    clips: Mapped[list[AppealClip]] = relationship(
        back_populates="appeal",
        order_by="AppealClip.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )

    @property
    def is_published(self) -> bool:
        return self.status == AppealStatus.PUBLISHED.value


class AppealClip(Base):
    """One approved version shown by an appeal, in the order the public sees them."""

    __tablename__ = "appeal_clips"
    __table_args__ = (UniqueConstraint("appeal_id", "version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("clip_versions.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Its public renditions are copied to the public media origin
    # (TATTLETALE_PUBLIC_MEDIA_URL): the page may play them from there.
    public_copy: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    appeal: Mapped[Appeal] = relationship(back_populates="clips")
    version: Mapped[ClipVersion] = relationship(lazy="joined")


class PublicState(Base):
    """One row: the generation of what the public site shows. Every commit that
    changes an appeal, a clip it shows (its version, renditions, approvals), a case or
    an agency adds one (portal/services/public_cache.py), so a page a web process has
    kept is used only while nothing it shows has changed."""

    __tablename__ = "public_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
