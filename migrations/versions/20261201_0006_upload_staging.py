"""Uploads staged on the shared store: the staging state, the resumable SHA-256
state, the writing request's lease and the writing machine.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:10:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD/DROP COLUMN, not a batch copy: SQLite recreating ``uploads`` would
    # trip the foreign keys of the clips that point at it.
    op.add_column(
        "uploads", sa.Column("machine_id", sa.String(length=64), nullable=False, server_default="")
    )
    op.add_column("uploads", sa.Column("staging", sa.JSON(), nullable=False, server_default="{}"))
    op.add_column(
        "uploads",
        sa.Column("sha256_state", sa.LargeBinary(), nullable=False, server_default=sa.text("''")),
    )
    op.add_column(
        "uploads",
        sa.Column("writer_token", sa.String(length=32), nullable=False, server_default=""),
    )
    op.add_column("uploads", sa.Column("writer_until", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    for name in ("writer_until", "writer_token", "sha256_state", "staging", "machine_id"):
        op.drop_column("uploads", name)
