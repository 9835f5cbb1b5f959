"""Deliveries: the claim token of the attempt under way, and where the "SOLVED"
update landed.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 04:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("claim_token", sa.String(length=64), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("solved_url", sa.String(length=2000), server_default="", nullable=False)
        )


def downgrade():
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("solved_url")
        batch_op.drop_column("claim_token")
