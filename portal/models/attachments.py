"""Photos and videos attached to tips, from the moment their bytes arrive.

An attachment is a *draft* (no tip yet: the form was refused, or the page uploaded it
ahead of sending) until a tip or an answer takes it; then it is processed by a job
into a stripped derivative. Its original is kept for staff as evidence; a refused
file's bytes are not kept at all. Nothing here identifies the sender: no file name,
no client type, no address; storage keys are public ids.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, PublicIdMixin, UTCDateTime, utcnow

if TYPE_CHECKING:
    from portal.models.tips import Tip


class AttachmentStatus(enum.StrEnum):
    RECEIVING = "receiving"  # bytes arriving by a resumable upload (tus); not yet a draft
    DRAFT = "draft"  # bytes staged, no tip yet
    QUEUED = "queued"  # part of a tip, waiting for its job
    READY = "ready"  # derivative stored
    REFUSED = "refused"  # not a photo or video we accept; bytes dropped
    FAILED = "failed"  # the job gave up: staff may retry


#: States whose bytes wait on the staging disk (counted against the pending quota; a
#: file still arriving counts with the length it declared).
PENDING_STATUSES = (
    AttachmentStatus.RECEIVING.value,
    AttachmentStatus.DRAFT.value,
    AttachmentStatus.QUEUED.value,
)


class TipAttachment(PublicIdMixin, Base):
    __tablename__ = "tip_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    tip_id: Mapped[int | None] = mapped_column(
        ForeignKey("tips.id", ondelete="CASCADE"), index=True
    )
    # The answer it came with; none for files sent with the tip itself.
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("tip_messages.id", ondelete="SET NULL")
    )
    # SHA-256 of the draft's secret (carried by the form): which drafts a sending form
    # may take. Cleared once taken, so a replayed form takes nothing.
    draft_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(
        String(16), default=AttachmentStatus.DRAFT.value, index=True
    )
    # What the bytes are (sniffed): jpeg, png, heic, mp4, mov; "" when refused as unknown.
    format: Mapped[str] = mapped_column(String(8), default="")
    kind: Mapped[str] = mapped_column(String(8), default="")  # image | video
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    # A file sent resumably (tus), as portal/services/receiving.py writes it: the
    # bytes received, the store's staging state at that offset (for S3: the multipart
    # upload, its parts and incomplete part, where the bytes stay until the job takes
    # them), the SHA-256 state of those bytes, and the lease of the request writing.
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    staging: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sha256_state: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    writer_token: Mapped[str] = mapped_column(String(32), default="")
    writer_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    original_key: Mapped[str] = mapped_column(String(300), default="")
    derivative_key: Mapped[str] = mapped_column(String(300), default="")
    derivative_type: Mapped[str] = mapped_column(String(64), default="")
    derivative_size: Mapped[int] = mapped_column(BigInteger, default=0)
    derivative_sha256: Mapped[str] = mapped_column(String(64), default="")
    width: Mapped[int] = mapped_column(Integer, default=0)
    height: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[float | None] = mapped_column(Float)
    # Refused: why, in words the tipster is shown. Failed: the job's error, for staff.
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    tip: Mapped[Tip | None] = relationship(back_populates="attachments")

    @property
    def is_pending(self) -> bool:
        return self.status in PENDING_STATUSES
