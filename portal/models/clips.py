"""Footage: resumable uploads, clips (the untouched originals), their edited versions,
the renditions each version produced, and release approvals.

Evidence rules: a clip's original is stored once and never changed; every edit is a
new :class:`ClipVersion` recording its plan, the ffmpeg command and the hashes of
what it made; an :class:`Approval` is bound to those hashes.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, PublicIdMixin, UTCDateTime, utcnow
from portal.models.cases import Case
from portal.models.jobs import Job
from portal.models.users import User


class UploadStatus(enum.StrEnum):
    RECEIVING = "receiving"
    COMPLETE = "complete"
    ATTACHED = "attached"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Upload(PublicIdMixin, Base):
    """A tus 1.0 upload in progress. The bytes are staged on the evidence store (a
    partial file inside the local store, or an S3 multipart upload), named after the
    public id, never after the client's file name. Everything a request needs to
    continue the upload is in this row, so any web machine can take any request."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    # Bytes known to be on disk (fsynced). Up to ``offset`` they are in the page cache,
    # which a machine crash loses: after a reboot (another ``boot_id``) the upload
    # falls back to this offset and the client re-sends the rest.
    durable_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    boot_id: Mapped[str] = mapped_column(String(64), default="")
    # The machine that wrote the last bytes (/etc/machine-id): another machine's
    # writes reached the shared filesystem's server when its file was closed, so only
    # a restart of the writing machine itself can have lost them.
    machine_id: Mapped[str] = mapped_column(String(64), default="")
    # The staging's own state (for S3: the multipart upload id, its parts, the
    # incomplete part's object), at ``offset``.
    staging: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # SHA-256 of the first ``offset`` bytes, mid-computation (OpenSSL's SHA256_CTX):
    # the next request, on whichever machine, continues it. Empty: re-hash.
    sha256_state: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    # The request writing to the upload (a lease: one writer at a time across every
    # machine, renewed while it receives, free again when it ends or lapses).
    writer_token: Mapped[str] = mapped_column(String(32), default="")
    writer_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the client called the file: shown to staff, never used as a path or key.
    filename: Mapped[str] = mapped_column(String(255), default="")
    client_content_type: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16), default=UploadStatus.RECEIVING.value)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    created_by: Mapped[User] = relationship()
    case: Mapped[Case | None] = relationship()


class ClipStatus(enum.StrEnum):
    INGESTING = "ingesting"  # stored original being probed and moved into storage
    READY = "ready"
    REJECTED = "rejected"  # the pipeline refused the file; the reason says why
    FAILED = "failed"  # ingest failed for a reason of ours; can be retried
    DELETED = "deleted"  # removed from storage by an admin; the record stays


class Clip(PublicIdMixin, Base):
    __tablename__ = "clips"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=ClipStatus.INGESTING.value)
    rejection_reason: Mapped[str] = mapped_column(Text, default="")
    original_filename: Mapped[str] = mapped_column(String(255), default="")
    # Where the original sits while it is ingested (the finished upload's file).
    staging_path: Mapped[str] = mapped_column(String(500), default="")
    original_key: Mapped[str] = mapped_column(String(500), default="")
    original_size: Mapped[int] = mapped_column(BigInteger, default=0)
    # Computed while the bytes were received, before anything else touched them.
    original_sha256: Mapped[str] = mapped_column(String(64), default="")
    probe: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    duration_s: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    frame_rate: Mapped[float | None] = mapped_column(Float)
    proxy_key: Mapped[str] = mapped_column(String(500), default="")
    proxy_sha256: Mapped[str] = mapped_column(String(64), default="")
    upload_id: Mapped[int | None] = mapped_column(ForeignKey("uploads.id"))

    case: Mapped[Case] = relationship()
    uploaded_by: Mapped[User] = relationship(foreign_keys=[uploaded_by_id])
    deleted_by: Mapped[User | None] = relationship(foreign_keys="Clip.deleted_by_id")
    upload: Mapped[Upload | None] = relationship()
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    deletion_reason: Mapped[str] = mapped_column(Text, default="")

    # Every job run on this clip, oldest first: the job row names its subject, so a
    # new kind of job needs no column here.
    jobs: Mapped[list[Job]] = relationship(
        primaryjoin="and_(Job.subject_type == 'clip', foreign(Job.subject_id) == Clip.id)",
        viewonly=True,
        order_by="Job.id",
    )
    versions: Mapped[list[ClipVersion]] = relationship(
        back_populates="clip", order_by="ClipVersion.number", lazy="selectin"
    )

    def latest_job(self, name: str) -> Job | None:
        return next((j for j in reversed(self.jobs) if j.name == name), None)

    @property
    def ingest_job(self) -> Job | None:
        return self.latest_job("clips.ingest")

    @property
    def proxy_job(self) -> Job | None:
        return self.latest_job("clips.proxy")


class VersionStatus(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class ClipVersion(PublicIdMixin, Base):
    """One edit of a clip: the plan, who made it, and (once rendered) what it produced."""

    __tablename__ = "clip_versions"
    __table_args__ = (UniqueConstraint("clip_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=VersionStatus.QUEUED.value)
    error: Mapped[str] = mapped_column(Text, default="")
    # The hash of the original this version was made from (evidence chain).
    source_sha256: Mapped[str] = mapped_column(String(64), default="")
    ffmpeg_command: Mapped[list[str]] = mapped_column(JSON, default=list)
    ffmpeg_version: Mapped[str] = mapped_column(String(200), default="")
    manifest_key: Mapped[str] = mapped_column(String(500), default="")
    manifest_sha256: Mapped[str] = mapped_column(String(64), default="")
    rendered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The claim token of the render job that holds this version. Only that run may
    # record outputs, so two renders never both write one version.
    render_token: Mapped[str] = mapped_column(String(32), default="")

    clip: Mapped[Clip] = relationship(back_populates="versions")
    created_by: Mapped[User] = relationship()
    jobs: Mapped[list[Job]] = relationship(
        primaryjoin=(
            "and_(Job.subject_type == 'clip_version', foreign(Job.subject_id) == ClipVersion.id)"
        ),
        viewonly=True,
        order_by="Job.id",
    )
    renditions: Mapped[list[Rendition]] = relationship(
        back_populates="version", order_by="Rendition.id", lazy="selectin"
    )
    approvals: Mapped[list[Approval]] = relationship(
        back_populates="version", order_by="Approval.id", lazy="selectin"
    )

    @property
    def job(self) -> Job | None:
        """The latest render of this version."""
        return self.jobs[-1] if self.jobs else None

    @property
    def active_approval(self) -> Approval | None:
        for approval in self.approvals:
            if approval.revoked_at is None:
                return approval
        return None


class Rendition(Base):
    """A file one version produced: a web MP4, a social cut, the poster, the sprite."""

    __tablename__ = "renditions"
    __table_args__ = (UniqueConstraint("version_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("clip_versions.id"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(32))
    storage_key: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(Float)

    version: Mapped[ClipVersion] = relationship(back_populates="renditions")


class Approval(Base):
    """A supervisor's release of one version, bound to the hashes of its renditions."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("clip_versions.id"), index=True)
    approved_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    checklist: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # SHA-256 over the sorted "name:sha256" lines of the version's renditions.
    renditions_digest: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoke_reason: Mapped[str] = mapped_column(Text, default="")

    version: Mapped[ClipVersion] = relationship(back_populates="approvals")
    approved_by: Mapped[User] = relationship(foreign_keys=[approved_by_id])
    revoked_by: Mapped[User | None] = relationship(foreign_keys=[revoked_by_id])


class ProposalKind(enum.StrEnum):
    FACES = "faces"  # a face detector over the whole clip
    FOLLOW = "follow"  # a tracker following a box the officer drew


class ProposalStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"


class RedactionProposal(PublicIdMixin, Base):
    """Regions a detector or tracker proposes for a clip, for a person to review.

    Nothing is covered by a proposal: the studio shows its tracks, the officer accepts,
    corrects or rejects each, and what was accepted is saved as plan data of a new
    version (with the proposer named in each region's ``source`` and its parameters in
    the version's manifest). ``tracks`` are plan regions (source pixels, source times).
    """

    __tablename__ = "redaction_proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=ProposalStatus.QUEUED.value)
    # What the officer asked for: for a follow, the box drawn ({t, x, y, w, h}) and
    # where to stop; empty for faces.
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What proposed them (name, version, model digest, threshold, sampling).
    detector: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tracks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    scores: Mapped[list[float]] = mapped_column(JSON, default=list)
    frames: Mapped[int] = mapped_column(Integer, default=0)
    # Said to the officer: why it failed, where a follow stopped, "no face was found".
    message: Mapped[str] = mapped_column(Text, default="")

    clip: Mapped[Clip] = relationship()
    requested_by: Mapped[User] = relationship()
    jobs: Mapped[list[Job]] = relationship(
        primaryjoin=(
            "and_(Job.subject_type == 'proposal', foreign(Job.subject_id) == RedactionProposal.id)"
        ),
        viewonly=True,
        order_by="Job.id",
    )

    @property
    def job(self) -> Job | None:
        return self.jobs[-1] if self.jobs else None
