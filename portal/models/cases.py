"""Cases: one unsolved crime, with the footage and tips that belong to it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.agencies import Agency
from portal.models.base import Base, PublicIdMixin, TimestampMixin, UTCDateTime
from portal.models.users import User


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    SOLVED = "solved"
    CLOSED = "closed"
    # Solved or closed once, worked on again (see portal/services/case_life.py).
    REOPENED = "reopened"


class Case(PublicIdMixin, TimestampMixin, Base):
    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("agency_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    number: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    offense: Mapped[str] = mapped_column(String(120), default="")
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    location_address: Mapped[str] = mapped_column(String(300), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    # Shown on the public appeal once a clip of the case is published.
    public_summary: Mapped[str] = mapped_column(Text, default="")
    # Never shown publicly.
    internal_notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.OPEN.value, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    agency: Mapped[Agency] = relationship()
    created_by: Mapped[User | None] = relationship()
    assignments: Mapped[list[CaseAssignment]] = relationship(
        back_populates="case", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def detectives(self) -> list[User]:
        return [a.user for a in self.assignments]


class CaseAssignment(Base):
    """A detective assigned to a case: they see its evidence and triage its tips."""

    __tablename__ = "case_assignments"
    __table_args__ = (UniqueConstraint("case_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime())

    case: Mapped[Case] = relationship(back_populates="assignments")
    user: Mapped[User] = relationship(lazy="joined")
