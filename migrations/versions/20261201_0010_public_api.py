"""Spent proof-of-work challenges (single use without Redis), and whether an appeal's
clip has its copy on the public media origin.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 23:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "spent_challenges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spent_challenges")),
        sa.UniqueConstraint("nonce", name=op.f("uq_spent_challenges_nonce")),
    )
    with op.batch_alter_table("spent_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_spent_challenges_expires_at"), ["expires_at"], unique=False
        )
    with op.batch_alter_table("appeal_clips", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("public_copy", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade():
    with op.batch_alter_table("appeal_clips", schema=None) as batch_op:
        batch_op.drop_column("public_copy")
    with op.batch_alter_table("spent_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spent_challenges_expires_at"))
    op.drop_table("spent_challenges")
