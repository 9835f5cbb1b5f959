"""The schema only changes by migration, and the migrations match the models."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import downgrade, upgrade

from portal.extensions import db
from portal.models import AuditEvent, Base


def test_migrations_match_models(app: Flask) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_migrations_every_revision_goes_down_and_up(app: Flask) -> None:
    script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
    revisions = list(script.walk_revisions())
    assert revisions, "no migrations found"
    downgrade(revision="base")
    assert sa.inspect(db.engine).get_table_names() == ["alembic_version"]
    for revision in reversed(revisions):
        upgrade(revision=revision.revision)
    assert "audit_events" in sa.inspect(db.engine).get_table_names()


def test_audit_events_refuse_update_and_delete(app: Flask) -> None:
    db.session.add(AuditEvent(actor_label="system", action="test", outcome="success", details={}))
    db.session.commit()
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        db.session.execute(sa.update(AuditEvent).values(action="rewritten"))
    db.session.rollback()
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        db.session.execute(sa.delete(AuditEvent))
    db.session.rollback()
    assert db.session.scalar(sa.select(AuditEvent.action)) == "test"
