"""Spent proof-of-work challenges (single use without Redis).

Revision ID: 0006_spent_challenges
Revises: 0005
Create Date: 2026-12-01 23:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006_spent_challenges"
down_revision = "0005"
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


def downgrade():
    with op.batch_alter_table("spent_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spent_challenges_expires_at"))
    op.drop_table("spent_challenges")
