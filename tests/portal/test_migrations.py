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
from portal.services.tip_search import SEARCH_TABLES


def _not_search_index(name: str | None, type_: str, parent_names: object) -> bool:
    """The search index has no portable type and is not in the models (see
    portal/services/tip_search.py); everything else must match."""
    return not (type_ == "table" and name in SEARCH_TABLES)


def test_migrations_match_models(app: Flask) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": _not_search_index}
        )
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


def test_migrations_go_down_and_up_with_data(app: Flask, case) -> None:  # type: ignore[no-untyped-def]
    # Rows referencing agencies and users: SQLite's table copies must not trip on them.
    db.session.commit()
    db.session.close()
    script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
    head = script.get_current_head()
    for revision in script.walk_revisions():
        if revision.down_revision is None:
            continue
        downgrade(revision=revision.down_revision)
        upgrade(revision=head)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(sa.table("cases"))) == 1
