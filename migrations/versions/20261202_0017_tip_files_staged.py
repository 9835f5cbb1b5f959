"""Tip files staged on the shared store: the received offset, the staging state, the
resumable SHA-256 state and the writing request's lease (no writing machine: nothing
is kept of where a tipster's bytes arrived).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 18:20:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD/DROP COLUMN, as in 0006: no batch copy of a table others point at.
    op.add_column(
        "tip_attachments",
        sa.Column("offset", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column(
        "tip_attachments", sa.Column("staging", sa.JSON(), nullable=False, server_default="{}")
    )
    op.add_column(
        "tip_attachments",
        sa.Column("sha256_state", sa.LargeBinary(), nullable=False, server_default=sa.text("''")),
    )
    op.add_column(
        "tip_attachments",
        sa.Column("writer_token", sa.String(length=32), nullable=False, server_default=""),
    )
    op.add_column(
        "tip_attachments", sa.Column("writer_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade():
    for name in ("writer_until", "writer_token", "sha256_state", "staging", "offset"):
        op.drop_column("tip_attachments", name)
