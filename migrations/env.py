"""Alembic environment, run through Flask-Migrate (``flask --app wsgi db ...``)."""

import logging

from alembic import context
from flask import current_app

logger = logging.getLogger("alembic.env")
config = context.config
target_db = current_app.extensions["migrate"].db
target_metadata = target_db.metadata


def _include_name(name, type_, parent_names):
    # The tips' search index is made by migration 0008 and is not in the models (it has
    # no portable type): autogenerate must not drop it.
    from portal.services.tip_search import SEARCH_TABLES

    return not (type_ == "table" and name in SEARCH_TABLES)


def _configure(**kwargs):
    options = {
        "include_name": _include_name,
        # SQLite cannot ALTER most things in place; batch mode copies the table.
        "render_as_batch": True,
        "compare_type": True,
        **current_app.extensions["migrate"].configure_args,
        **kwargs,
    }
    context.configure(target_metadata=target_metadata, **options)


def run_migrations_offline():
    _configure(url=str(target_db.engine.url), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def process_revision_directives(context, revision, directives):
        # `flask db migrate` with no model change writes no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    with target_db.engine.connect() as connection:
        _configure(connection=connection, process_revision_directives=process_revision_directives)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
