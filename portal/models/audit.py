"""The append-only audit log.

Rows are only ever inserted: the migration installs database triggers that refuse
UPDATE and DELETE on this table, so not even a bug in the app can rewrite history.
Someone with the database owner's rights can still bypass the triggers, so every
row also carries a hash of itself and of the row before it (a hash chain, see
:mod:`portal.services.audit_chain`): ``flask --app wsgi audit verify`` finds a row
that was changed or removed behind the app's back.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, UTCDateTime, utcnow


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILURE = "failure"


class AuditEvent(Base):
    __tablename__ = "audit_events"
    # Two rows naming the same predecessor would be a fork in the chain: the
    # database refuses it even if the append lock were ever bypassed.
    __table_args__ = (UniqueConstraint("prev_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # Kept as plain values as well as the foreign key: the log must still read
    # correctly after an account is renamed.
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor_label: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    # Staff and API requests only; anonymous public requests never record an address.
    client_addr: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Hex SHA-256: of the previous row's entry_hash (64 zeros for the first row), and
    # of this row's canonical form including prev_hash. Set when the row is flushed.
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
