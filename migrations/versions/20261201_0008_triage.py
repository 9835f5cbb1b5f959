"""Triage of tips: status is joined by priority, an assignee, tags, internal notes, a
link to another case, merging as a duplicate and a version for concurrent changes;
per-user read markers; the agency's first-response target; the full-text index
over tips and their messages.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-01 23:00:37.948395

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _sqlite_foreign_keys(enabled: bool) -> None:
    """SQLite's own procedure for rebuilding a table that others reference (as in
    0004): foreign keys off while batch mode copies, drops and renames ``tips`` and
    ``agencies``, checked when back on. The pragma is ignored inside a transaction,
    so the open one is committed first."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    raw = bind.connection.dbapi_connection
    raw.commit()
    raw.execute(f"PRAGMA foreign_keys = {'ON' if enabled else 'OFF'}")
    if enabled:
        broken = raw.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"foreign keys broken by the migration: {broken[:5]}")


def _create_search_index():
    """The search index (portal/services/tip_search.py keeps it current): one document
    per tip, its text and its messages. SQLite: an FTS5 table whose rowid is the tip's
    id. PostgreSQL: a tsvector per tip under a GIN index."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE tip_search ("
            " tip_id integer PRIMARY KEY REFERENCES tips (id) ON DELETE CASCADE,"
            " document tsvector NOT NULL)"
        )
        op.execute("CREATE INDEX ix_tip_search_document ON tip_search USING gin (document)")
        op.execute(
            "INSERT INTO tip_search (tip_id, document)"
            " SELECT t.id, to_tsvector('simple', t.body || ' ' || coalesce("
            "   (SELECT string_agg(m.body, ' ') FROM tip_messages m WHERE m.tip_id = t.id), ''))"
            " FROM tips t"
        )
    else:
        op.execute(
            "CREATE VIRTUAL TABLE tip_search USING fts5("
            "document, tokenize = 'unicode61 remove_diacritics 0')"
        )
        op.execute(
            "INSERT INTO tip_search (rowid, document)"
            " SELECT t.id, t.body || char(10) || coalesce("
            "   (SELECT group_concat(m.body, char(10)) FROM tip_messages m"
            "    WHERE m.tip_id = t.id), '')"
            " FROM tips t"
        )


def upgrade():
    op.create_table(
        "tip_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_tip_notes_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tips.id"], name=op.f("fk_tip_notes_tip_id_tips"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tip_notes")),
    )
    with op.batch_alter_table("tip_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tip_notes_tip_id"), ["tip_id"], unique=False)

    op.create_table(
        "tip_reads",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tips.id"], name=op.f("fk_tip_reads_tip_id_tips"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tip_reads_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "tip_id", name=op.f("pk_tip_reads")),
    )
    with op.batch_alter_table("tip_reads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tip_reads_tip_id"), ["tip_id"], unique=False)

    op.create_table(
        "tip_tags",
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tips.id"], name=op.f("fk_tip_tags_tip_id_tips"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tip_id", "name", name=op.f("pk_tip_tags")),
    )
    _sqlite_foreign_keys(False)
    with op.batch_alter_table("agencies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("first_response_hours", sa.Integer(), server_default="24", nullable=False)
        )

    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.add_column(sa.Column("awaiting_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(
            sa.Column("priority", sa.SmallInteger(), server_default="1", nullable=False)
        )
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("duplicate_of_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("linked_case_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_tips_agency_awaiting", ["agency_id", "awaiting_since", "id"], unique=False
        )
        batch_op.create_index(
            "ix_tips_agency_created", ["agency_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_tips_agency_priority_created",
            ["agency_id", "priority", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_tips_agency_status_created",
            ["agency_id", "status", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_tips_assignee_created", ["assignee_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_tips_case_created", ["case_id", "created_at", "id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_tips_assignee_id_users"), "users", ["assignee_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_tips_linked_case_id_cases"), "cases", ["linked_case_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_tips_duplicate_of_id_tips"), "tips", ["duplicate_of_id"], ["id"]
        )
    _sqlite_foreign_keys(True)
    # Waiting for staff: since it came, when no staff message was sent yet; since the
    # tipster's last word, when that came after the last staff message.
    op.execute(
        "UPDATE tips SET awaiting_since = CASE"
        " WHEN last_staff_message_at IS NULL THEN created_at"
        " WHEN last_tipster_message_at > last_staff_message_at THEN last_tipster_message_at"
        " END"
    )
    _create_search_index()


def downgrade():
    op.execute("DROP TABLE tip_search")
    _sqlite_foreign_keys(False)
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tips_duplicate_of_id_tips"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_tips_linked_case_id_cases"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_tips_assignee_id_users"), type_="foreignkey")
        batch_op.drop_index("ix_tips_case_created")
        batch_op.drop_index("ix_tips_assignee_created")
        batch_op.drop_index("ix_tips_agency_status_created")
        batch_op.drop_index("ix_tips_agency_priority_created")
        batch_op.drop_index("ix_tips_agency_created")
        batch_op.drop_index("ix_tips_agency_awaiting")
        batch_op.drop_column("linked_case_id")
        batch_op.drop_column("duplicate_of_id")
        batch_op.drop_column("assignee_id")
        batch_op.drop_column("priority")
        batch_op.drop_column("version")
        batch_op.drop_column("awaiting_since")

    with op.batch_alter_table("agencies", schema=None) as batch_op:
        batch_op.drop_column("first_response_hours")
    _sqlite_foreign_keys(True)

    op.drop_table("tip_tags")
    with op.batch_alter_table("tip_reads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tip_reads_tip_id"))
    op.drop_table("tip_reads")
    with op.batch_alter_table("tip_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tip_notes_tip_id"))
    op.drop_table("tip_notes")
