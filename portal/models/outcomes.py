"""What an agency can show for its appeals: how a case's life went (its status
changes, and which tips solved it), how many people looked at each appeal, and when
a tip first became an actionable lead.

Nothing here is about a visitor or a tipster: page views are daily totals per
appeal, and a lead is a tip's id and a time.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, UTCDateTime, utcnow
from portal.models.cases import Case
from portal.models.tips import Tip
from portal.models.users import User


class CaseStatusChange(Base):
    """One step of a case's life: from which status to which, who, when and why."""

    __tablename__ = "case_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # Solving only: whether tips led to it (None for the other changes).
    tips_led: Mapped[bool | None] = mapped_column(Boolean)

    case: Mapped[Case] = relationship()
    changed_by: Mapped[User | None] = relationship()
    solving_tips: Mapped[list[SolvingTip]] = relationship(
        back_populates="change", cascade="all, delete-orphan", lazy="selectin"
    )


class SolvingTip(Base):
    """A tip of the case that led to solving it."""

    __tablename__ = "case_solving_tips"
    __table_args__ = (UniqueConstraint("change_id", "tip_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(
        ForeignKey("case_status_changes.id", ondelete="CASCADE"), index=True
    )
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id", ondelete="CASCADE"), index=True)

    change: Mapped[CaseStatusChange] = relationship(back_populates="solving_tips")


class AppealDailyViews(Base):
    """How many times an appeal's page was shown on one day (UTC). A total, never a
    visitor: the row holds nothing but the appeal, the day and the number."""

    __tablename__ = "appeal_daily_views"

    appeal_id: Mapped[int] = mapped_column(
        ForeignKey("appeals.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    views: Mapped[int] = mapped_column(Integer, default=0)


class TipLead(Base):
    """When a tip first became an actionable lead (it stays a lead that was once
    found, whatever its status later)."""

    __tablename__ = "tip_leads"

    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id", ondelete="CASCADE"), primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("appeals.id"), index=True)
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# The outcomes page counts an agency's tips per appeal and channel, with the first
# one's time: this index answers it from the index alone (no table rows read), kept
# here rather than on the tips model because only the outcomes read it.
Index(
    "ix_tips_outcomes",
    Tip.__table__.c.agency_id,
    Tip.__table__.c.appeal_id,
    Tip.__table__.c.channel,
    Tip.__table__.c.created_at,
)
