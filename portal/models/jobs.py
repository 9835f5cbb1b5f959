"""Background jobs. The row is the truth; a runner (threads or Celery) only delivers."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, PublicIdMixin, UTCDateTime, utcnow


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(PublicIdMixin, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_run_after", "status", "run_after"),
        # "The latest job of this clip": one generic reference, no foreign key per job type.
        Index("ix_jobs_subject", "subject_type", "subject_id", "name"),
        # A unique index rather than a constraint: SQLite can add one without copying
        # the table. NULL keys (most jobs) never collide.
        Index("uq_jobs_unique_key", "unique_key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # Ids only, never objects: a job reads the current state when it runs.
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(64), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    error: Mapped[str] = mapped_column(Text, default="")
    run_after: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker: Mapped[str] = mapped_column(String(128), default="")
    # A new random token per claim. Every write of a run (progress, heartbeat, outcome,
    # retry) matches it, so a worker whose run was taken from it writes nothing.
    claim_token: Mapped[str] = mapped_column(String(32), default="")
    # What the job works on, e.g. ("clip", 12): found without a column per job type.
    subject_type: Mapped[str] = mapped_column(String(32), default="")
    subject_id: Mapped[int | None] = mapped_column(Integer)
    # At most one row per key (e.g. "periodic:uploads.expire:2026-12-01T20:00:00Z").
    unique_key: Mapped[str | None] = mapped_column(String(200))
    # When the current run of transient failures (outage, throttling) began.
    transient_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    transient_failures: Mapped[int] = mapped_column(Integer, default=0)
