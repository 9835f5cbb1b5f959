"""Photos and videos attached to tips (drafts, processing state, derivatives).

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01 23:20:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "tip_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("draft_hash", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("original_key", sa.String(length=300), nullable=False),
        sa.Column("derivative_key", sa.String(length=300), nullable=False),
        sa.Column("derivative_type", sa.String(length=64), nullable=False),
        sa.Column("derivative_size", sa.BigInteger(), nullable=False),
        sa.Column("derivative_sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_tip_attachments_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["tip_messages.id"],
            name=op.f("fk_tip_attachments_message_id_tip_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tips.id"], name=op.f("fk_tip_attachments_tip_id_tips"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tip_attachments")),
    )
    with op.batch_alter_table("tip_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tip_attachments_agency_id"), ["agency_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_tip_attachments_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_tip_attachments_draft_hash"), ["draft_hash"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_tip_attachments_public_id"), ["public_id"], unique=True
        )
        batch_op.create_index(batch_op.f("ix_tip_attachments_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_tip_attachments_tip_id"), ["tip_id"], unique=False)


def downgrade():
    with op.batch_alter_table("tip_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tip_attachments_tip_id"))
        batch_op.drop_index(batch_op.f("ix_tip_attachments_status"))
        batch_op.drop_index(batch_op.f("ix_tip_attachments_public_id"))
        batch_op.drop_index(batch_op.f("ix_tip_attachments_draft_hash"))
        batch_op.drop_index(batch_op.f("ix_tip_attachments_created_at"))
        batch_op.drop_index(batch_op.f("ix_tip_attachments_agency_id"))
    op.drop_table("tip_attachments")
