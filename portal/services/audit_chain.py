"""The audit log's hash chain: each entry carries a hash of the one before it.

The database triggers stop the app from rewriting the log, but not someone with
the database owner's rights (a DBA, an attacker with the credentials, a restored
backup that was edited). The chain makes such a change visible: an entry whose
content was edited no longer matches its ``entry_hash``, and an entry that was
removed breaks the link from the entry after it. ``flask --app wsgi audit verify``
walks the whole chain and names the first broken entry.

What the chain cannot show on its own is the removal of the newest entries: the
chain that is left is still whole. Exporting the head hash now and then
(``audit verify`` prints it) to somewhere the database's owner cannot write closes
that gap.

Appends are serialized so the chain never forks: the hash of a new entry needs the
hash of the newest one, and two transactions reading the same newest entry would
both link to it. See :func:`_lock_chain`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state

from portal.models import AuditEvent
from portal.models.base import utcnow

GENESIS_HASH = "0" * 64
# Any constant shared by every process of the app; names the chain's advisory lock.
_ADVISORY_LOCK_KEY = 0x7474_6175_6469_7400  # b"ttaudit\0"
_VERIFY_BATCH = 1000


def _timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with microseconds: the same text on every database."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_entry(entry: AuditEvent) -> bytes:
    """The bytes an entry's hash is taken over: every recorded field and prev_hash,
    as JSON with sorted keys and fixed separators, so a value read back from either
    database serializes exactly as it did when it was written."""
    fields: dict[str, Any] = {
        "v": 1,
        "occurred_at": _timestamp(entry.occurred_at),
        "agency_id": entry.agency_id,
        "actor_id": entry.actor_id,
        "actor_label": entry.actor_label,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "outcome": entry.outcome,
        "client_addr": entry.client_addr,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_digest(entry: AuditEvent) -> str:
    return hashlib.sha256(canonical_entry(entry)).hexdigest()


def _lock_chain(connection: Connection) -> None:
    """Hold the right to append until this transaction ends.

    PostgreSQL: a transaction-level advisory lock. A second transaction that wants
    to append waits here until the first commits or rolls back, and only then
    reads the newest hash, which is by then the first transaction's last entry.
    Its ids come from the sequence after that wait, so id order is chain order.

    SQLite: writers are serialized by the database lock, but the Python driver
    starts its transaction lazily, at the first INSERT/UPDATE/DELETE. Reading the
    newest hash before any write in this transaction would happen outside the
    write lock, and two connections could read the same newest hash and fork the
    chain. So when no write has happened yet we take the write lock now with
    ``BEGIN IMMEDIATE``; when one has, this transaction already holds the write
    lock (SQLite takes it for the first write statement and keeps it until the
    end), and in WAL mode its snapshot cannot be older than the last commit.
    """
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    elif dialect == "sqlite":
        raw = connection.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"no append lock for the audit chain on {dialect}")


def _newest_hash(connection: Connection) -> str:
    newest = connection.execute(
        select(AuditEvent.entry_hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar()
    return newest or GENESIS_HASH


@event.listens_for(Session, "before_flush")
def _chain_new_entries(session: Session, flush_context: Any, instances: Any) -> None:
    """Link the entries this flush inserts, in the order they will get their ids.

    Runs for every flush of every session, so an entry added by any code path
    (record_event, a test, a future bulk import) is chained; entries recorded in
    bulk within one transaction are chained one after the other.
    """
    pending = [obj for obj in session.new if isinstance(obj, AuditEvent)]
    if not pending:
        return
    # The unit of work inserts rows of one table in the order they were added.
    pending.sort(key=lambda obj: instance_state(obj).insert_order or 0)
    connection = session.connection()
    _lock_chain(connection)
    previous = _newest_hash(connection)
    for entry in pending:
        # Column defaults apply at INSERT, after this hook: set them now so the
        # hash covers the values that will be stored.
        if entry.occurred_at is None:
            entry.occurred_at = utcnow()
        if entry.object_type is None:
            entry.object_type = ""
        if entry.object_id is None:
            entry.object_id = ""
        if entry.details is None:
            entry.details = {}
        entry.prev_hash = previous
        entry.entry_hash = entry_digest(entry)
        previous = entry.entry_hash


@dataclass(frozen=True)
class ChainReport:
    entries: int
    head: str
    broken_at: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def _walk(session: Session) -> Iterator[AuditEvent]:
    """Every entry in id order, a batch at a time (keyset, so memory stays flat)."""
    last_id = 0
    while True:
        batch = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.id > last_id)
            .order_by(AuditEvent.id)
            .limit(_VERIFY_BATCH)
            .execution_options(populate_existing=True)
        ).all()
        if not batch:
            return
        yield from batch
        last_id = batch[-1].id
        session.expunge_all()


def verify_chain(engine: Engine) -> ChainReport:
    """Check every link and every entry's own hash; stop at the first fault.

    Reads through a session of its own, which it clears after each batch.
    """
    with Session(engine) as session:
        return _verify(session)


def _verify(session: Session) -> ChainReport:
    expected_prev = GENESIS_HASH
    count = 0
    for entry in _walk(session):
        if entry.prev_hash != expected_prev:
            reason = (
                "it does not follow the entry before it "
                "(an entry before it was removed, inserted or changed)"
                if count
                else "the first entry does not start the chain (earlier entries were removed)"
            )
            return ChainReport(count, expected_prev, entry.id, reason)
        if entry_digest(entry) != entry.entry_hash:
            return ChainReport(
                count, expected_prev, entry.id, "its content does not match its hash (changed)"
            )
        expected_prev = entry.entry_hash
        count += 1
    return ChainReport(count, expected_prev)
