"""Caption templates, kept as data: one per agency and network, edited by admins.

A row with ``network = ""`` is the agency's template for every network without one of
its own; with no row at all the defaults in portal/publishing/captions.py apply.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, TimestampMixin


class CaptionTemplate(TimestampMixin, Base):
    __tablename__ = "caption_templates"
    __table_args__ = (UniqueConstraint("agency_id", "network"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    network: Mapped[str] = mapped_column(String(32), default="")
    # Written once per appeal the post carries (fields: case_number, title, summary,
    # when, where, tip_url), then the closing once (hashtags).
    item: Mapped[str] = mapped_column(Text)
    closing: Mapped[str] = mapped_column(Text)
    hashtags: Mapped[str] = mapped_column(String(300))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
