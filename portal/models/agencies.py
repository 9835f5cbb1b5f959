"""Agencies: the police departments that run appeals on this instance."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, PublicIdMixin, TimestampMixin


class Agency(PublicIdMixin, TimestampMixin, Base):
    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    # IANA zone for the weekly slot and for showing times to staff.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Every staff account must sign in with a second factor. `agencies create` and the
    # demo turn it on in production; TATTLETALE_REQUIRE_MFA overrides it either way.
    require_mfa: Mapped[bool] = mapped_column(Boolean, default=False)
    # The agency logo burned into appeals on request, in the evidence store ("" if none).
    watermark_key: Mapped[str] = mapped_column(String(500), default="")
    # A tip with no staff reply this long after it came is overdue (the queue's
    # filter, the overdue digest).
    first_response_hours: Mapped[int] = mapped_column(Integer, default=24, server_default="24")
    # The weekly #TattletaleTuesday slot, in the agency's own zone: ISO weekday
    # (1 = Monday), minutes after local midnight, and how many appeals one post carries.
    slot_weekday: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    slot_minute: Mapped[int] = mapped_column(Integer, default=600, server_default="600")
    appeals_per_post: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Posts are taken down from networks that allow it this many days after they went
    # out (0: never).
    remove_posts_after_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def __repr__(self) -> str:
        return f"<Agency {self.slug}>"
