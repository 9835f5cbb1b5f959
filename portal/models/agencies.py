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

    def __repr__(self) -> str:
        return f"<Agency {self.slug}>"
