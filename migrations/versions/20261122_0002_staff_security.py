"""Staff security: the audit log's hash chain, TOTP and recovery codes, the sign-in
throttle, API token scopes and the agency's MFA requirement.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 00:45:00

"""

import hashlib
import json
from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64


def _drop_append_only_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_change ON audit_events")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")


def _create_append_only_triggers(dialect: str) -> None:
    # As in 0001. On SQLite a batch operation that copies the table drops its
    # triggers, so they are dropped first and put back last, around every change.
    if dialect == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
            )


def _timestamp(value):
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _chain_existing_entries(bind) -> None:
    """Hash the entries written before this revision, in id order.

    A copy of portal.services.audit_chain.canonical_entry (version 1) as it was
    when this revision was written: a migration must not change meaning when the
    app's code does later. tests/portal/test_audit_chain.py checks they agree.
    """
    events = sa.table(
        "audit_events",
        sa.column("id", sa.Integer),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("agency_id", sa.Integer),
        sa.column("actor_id", sa.Integer),
        sa.column("actor_label", sa.String),
        sa.column("action", sa.String),
        sa.column("object_type", sa.String),
        sa.column("object_id", sa.String),
        sa.column("outcome", sa.String),
        sa.column("client_addr", sa.String),
        sa.column("details", sa.JSON),
        sa.column("prev_hash", sa.String),
        sa.column("entry_hash", sa.String),
    )
    previous = GENESIS_HASH
    rows = bind.execute(sa.select(events).order_by(events.c.id)).mappings().all()
    for row in rows:
        fields = {
            "v": 1,
            "occurred_at": _timestamp(row["occurred_at"]),
            "agency_id": row["agency_id"],
            "actor_id": row["actor_id"],
            "actor_label": row["actor_label"],
            "action": row["action"],
            "object_type": row["object_type"],
            "object_id": row["object_id"],
            "outcome": row["outcome"],
            "client_addr": row["client_addr"],
            "details": row["details"],
            "prev_hash": previous,
        }
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        bind.execute(
            events.update()
            .where(events.c.id == row["id"])
            .values(prev_hash=previous, entry_hash=digest)
        )
        previous = digest


def _scope_existing_tokens(bind) -> None:
    """Tokens made before scopes existed keep acting with the roles their user holds."""
    tokens = sa.table(
        "api_tokens",
        sa.column("id", sa.Integer),
        sa.column("user_id", sa.Integer),
        sa.column("scopes", sa.JSON),
    )
    roles = sa.table("user_roles", sa.column("user_id", sa.Integer), sa.column("role", sa.String))
    held: dict[int, list[str]] = {}
    for user_id, role in bind.execute(sa.select(roles.c.user_id, roles.c.role)):
        held.setdefault(user_id, []).append(role)
    for token_id, user_id in bind.execute(sa.select(tokens.c.id, tokens.c.user_id)).all():
        bind.execute(
            tokens.update()
            .where(tokens.c.id == token_id)
            .values(scopes=sorted(held.get(user_id, [])))
        )


def upgrade():
    bind = op.get_bind()
    dialect = bind.dialect.name

    _drop_append_only_triggers(dialect)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("entry_hash", sa.String(length=64), nullable=True))
    _chain_existing_entries(bind)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("entry_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_events_prev_hash"), ["prev_hash"])
    _create_append_only_triggers(dialect)

    # Plain ALTER TABLE ... ADD COLUMN, never a batch copy: other tables refer to
    # these two, and SQLite refuses to drop (for the copy) a referenced table that
    # has rows while foreign keys are enforced.
    op.add_column(
        "agencies",
        sa.Column("require_mfa", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("users", sa.Column("totp_secret", sa.Text(), nullable=True))
    op.add_column("users", sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("totp_last_step", sa.Integer(), nullable=True))

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scopes", sa.JSON(), nullable=True))
    _scope_existing_tokens(bind)
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.alter_column("scopes", existing_type=sa.JSON(), nullable=False)

    op.create_table(
        "mfa_recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mfa_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mfa_recovery_codes")),
        sa.UniqueConstraint(
            "user_id", "code_hash", name=op.f("uq_mfa_recovery_codes_user_id_code_hash")
        ),
    )
    with op.batch_alter_table("mfa_recovery_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mfa_recovery_codes_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "sign_in_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=254), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_throttles")),
        sa.UniqueConstraint("scope", "key", name=op.f("uq_sign_in_throttles_scope_key")),
    )


def downgrade():
    bind = op.get_bind()
    dialect = bind.dialect.name

    op.drop_table("sign_in_throttles")
    with op.batch_alter_table("mfa_recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mfa_recovery_codes_user_id"))
    op.drop_table("mfa_recovery_codes")

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("scopes")

    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch copy: see upgrade.
    op.drop_column("users", "totp_last_step")
    op.drop_column("users", "totp_enabled_at")
    op.drop_column("users", "totp_secret")
    op.drop_column("agencies", "require_mfa")

    _drop_append_only_triggers(dialect)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_prev_hash"), type_="unique")
        batch_op.drop_column("entry_hash")
        batch_op.drop_column("prev_hash")
    _create_append_only_triggers(dialect)
