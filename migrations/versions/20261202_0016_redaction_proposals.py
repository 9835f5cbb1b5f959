"""Redaction proposals: the faces a detector found and the boxes a tracker followed,
for an officer to accept, correct or reject in the studio.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 14:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "redaction_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("detector", sa.JSON(), nullable=False),
        sa.Column("tracks", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.id"]),
        sa.ForeignKeyConstraint(["requested_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_redaction_proposals_clip_id", "redaction_proposals", ["clip_id"], unique=False
    )
    op.create_index(
        "ix_redaction_proposals_public_id", "redaction_proposals", ["public_id"], unique=True
    )


def downgrade():
    op.drop_index("ix_redaction_proposals_public_id", table_name="redaction_proposals")
    op.drop_index("ix_redaction_proposals_clip_id", table_name="redaction_proposals")
    op.drop_table("redaction_proposals")
