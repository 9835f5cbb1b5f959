"""The public site's generation: one row, one number, raised by every commit that
changes what a public page shows, so web processes may keep rendered pages until it
moves.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 15:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        "public_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_public_state")),
    )
    op.bulk_insert(table, [{"id": 1, "generation": 0}])


def downgrade():
    op.drop_table("public_state")
