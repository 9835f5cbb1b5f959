"""The audit log's hash chain: every entry linked to the one before, and
`audit verify` naming the first entry changed or removed behind the app's back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from portal.extensions import db
from portal.models import ApiToken, AuditEvent, Outcome
from portal.services.audit import record_event
from portal.services.audit_chain import GENESIS_HASH, entry_digest, verify_chain


def record(n: int, prefix: str = "test.event") -> list[int]:
    events = [
        record_event(
            f"{prefix}",
            agency_id=None,
            actor_label=f"actor{i}@springfield.example",
            details={"i": i},
        )
        for i in range(n)
    ]
    db.session.commit()
    return [e.id for e in events]


@contextmanager
def append_only_triggers_bypassed() -> Iterator[sa.Connection]:
    """A connection that may UPDATE and DELETE audit rows, as a DBA could.

    PostgreSQL: replica mode skips the triggers for this transaction only.
    SQLite: the triggers are dropped and put back within the same transaction.
    """
    with db.engine.begin() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
        else:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        yield conn
        if sqlite:
            for verb in ("UPDATE", "DELETE"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} "
                    "ON audit_events BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
                )


def chain() -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_audit_chain_links_every_entry_to_the_one_before(app: Flask) -> None:
    record(1)
    # Several in one transaction, and one added without record_event: all chained.
    for i in range(5):
        record_event("bulk.event", agency_id=None, details={"i": i, "note": "ünïcode ✓"})
    db.session.add(AuditEvent(actor_label="system", action="direct.add", outcome="success"))
    db.session.commit()
    entries = chain()
    assert len(entries) == 7
    assert entries[0].prev_hash == GENESIS_HASH
    for before, entry in zip(entries, entries[1:], strict=False):
        assert entry.prev_hash == before.entry_hash
    for entry in entries:
        assert entry.entry_hash == entry_digest(entry)
        assert len(entry.entry_hash) == 64
    assert verify_chain(db.engine).ok


def test_audit_verify_reports_the_whole_chain(cli: FlaskCliRunner, app: Flask) -> None:
    record(3)
    result = cli.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "ok: 3 entries"
    assert f"head: {chain()[-1].entry_hash}" in result.output


def test_audit_verify_names_an_entry_edited_behind_the_apps_back(
    cli: FlaskCliRunner, app: Flask
) -> None:
    ids = record(5)
    with append_only_triggers_bypassed() as conn:
        conn.execute(
            sa.update(AuditEvent)
            .where(AuditEvent.id == ids[2])
            .values(outcome=Outcome.DENIED.value)
        )
    result = cli.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"broken at entry {ids[2]}: its content does not match its hash (changed)"
    )


def test_audit_verify_finds_an_edit_whose_hash_was_recomputed(
    cli: FlaskCliRunner, app: Flask
) -> None:
    ids = record(5)
    forged = next(e for e in chain() if e.id == ids[1])
    forged.actor_label = "someone-else@springfield.example"
    new_hash = entry_digest(forged)
    db.session.rollback()
    with append_only_triggers_bypassed() as conn:
        conn.execute(
            sa.update(AuditEvent)
            .where(AuditEvent.id == ids[1])
            .values(actor_label="someone-else@springfield.example", entry_hash=new_hash)
        )
    result = cli.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert result.output.startswith(f"broken at entry {ids[2]}: it does not follow")


def test_audit_verify_names_the_entry_after_a_deleted_one(cli: FlaskCliRunner, app: Flask) -> None:
    ids = record(5)
    with append_only_triggers_bypassed() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.id == ids[2]))
    result = cli.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert result.output.startswith(f"broken at entry {ids[3]}: it does not follow")


def test_audit_verify_finds_the_first_entries_deleted(cli: FlaskCliRunner, app: Flask) -> None:
    ids = record(3)
    with append_only_triggers_bypassed() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.id == ids[0]))
    result = cli.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert result.output.startswith(f"broken at entry {ids[1]}: the first entry")


def test_audit_chain_refuses_a_fork_in_the_database(app: Flask) -> None:
    record(2)
    first = chain()[0]
    with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
        # Straight to the table, past the app's append lock: a second successor.
        conn.execute(
            sa.insert(AuditEvent.__table__).values(
                occurred_at=first.occurred_at,
                actor_label="x",
                action="fork",
                object_type="",
                object_id="",
                outcome="success",
                details={},
                prev_hash=first.entry_hash,
                entry_hash="f" * 64,
            )
        )


def test_audit_chain_does_not_fork_under_concurrent_writers(app: Flask) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer(n: int) -> None:
        try:
            with app.app_context():
                start.wait()
                for i in range(8):
                    record_event("concurrent.event", agency_id=None, details={"writer": n, "i": i})
                    record_event("concurrent.pair", agency_id=None, details={"writer": n, "i": i})
                    db.session.commit()
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    report = verify_chain(db.engine)
    assert report.ok, report
    assert report.entries == 4 * 8 * 2


def test_migration_chains_entries_written_before_it_as_the_app_would(app: Flask) -> None:
    """Revision 0002 hashes the log already there with its own copy of the canonical
    form; `audit verify` (the app's copy) must agree with it. Tokens keep the roles
    their user holds."""
    from flask_migrate import downgrade, upgrade

    db.session.remove()
    downgrade(revision="0001")
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO agencies (id, name, slug, timezone, public_id, created_at, "
                "updated_at) VALUES (1, 'A', 'a', 'UTC', 'agency1', :at, :at)"
            ),
            {"at": at},
        )
        conn.execute(
            sa.text(
                "INSERT INTO users (id, agency_id, email, display_name, password_hash, "
                "is_disabled, public_id, created_at, updated_at) VALUES "
                "(1, 1, 'a@a.example', 'A', 'x', false, 'user1', :at, :at)"
            ),
            {"at": at},
        )
        conn.execute(sa.text("INSERT INTO user_roles (user_id, role) VALUES (1, 'detective')"))
        conn.execute(
            sa.text(
                "INSERT INTO api_tokens (user_id, name, token_hash, public_id, created_at, "
                "updated_at) VALUES (1, 'old', :hash, 'token1', :at, :at)"
            ),
            {"at": at, "hash": "a" * 64},
        )
        for n, details in enumerate(['{"k": "\u00fc", "n": 1.5}', "{}", '{"list": [1, 2]}']):
            conn.execute(
                sa.text(
                    "INSERT INTO audit_events (occurred_at, agency_id, actor_id, actor_label, "
                    "action, object_type, object_id, outcome, client_addr, details) VALUES "
                    "(:at, :agency, :actor, 'a@a.example', 'legacy.event', 'user', :obj, "
                    "'success', NULL, :details)"
                ),
                {
                    "at": at,
                    "agency": 1 if n else None,
                    "actor": 1 if n else None,
                    "obj": f"o{n}",
                    "details": details,
                },
            )
    upgrade()
    report = verify_chain(db.engine)
    assert report.ok, report
    assert report.entries == 3
    record(1)  # the app goes on from the migrated head
    assert verify_chain(db.engine).entries == 4
    token = db.session.scalar(select(ApiToken))
    assert token is not None and token.scopes == ["detective"]
