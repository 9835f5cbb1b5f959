"""Replies under the agency's posts, filed as tips: where each is on the network,
and where the next fetch of a delivery's replies starts.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 10:40:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    # In place, not a batch copy: messages, attachments and replies hold foreign keys
    # to tips, and public_replies to deliveries.
    op.add_column(
        "tips", sa.Column("origin", sa.String(length=16), server_default="form", nullable=False)
    )
    op.create_index(
        "ix_tips_agency_origin_created", "tips", ["agency_id", "origin", "created_at", "id"]
    )
    op.add_column("deliveries", sa.Column("replies_cursor", sa.JSON(), nullable=True))
    op.add_column(
        "deliveries", sa.Column("replies_next_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "deliveries", sa.Column("replies_polled_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "deliveries",
        sa.Column("replies_problem", sa.Text(), server_default="", nullable=False),
    )
    op.add_column(
        "deliveries",
        sa.Column("replies_runs", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_index("ix_deliveries_replies_next_at", "deliveries", ["replies_next_at"])
    op.create_table(
        "public_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("remote_id", sa.String(length=500), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("edited_text", sa.Text(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pending_action", sa.String(length=16), nullable=False),
        sa.Column("action_problem", sa.Text(), nullable=False),
        sa.Column("answered_url", sa.String(length=2000), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"]),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"]),
        sa.ForeignKeyConstraint(["tip_id"], ["tips.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_id", "remote_id"),
        sa.UniqueConstraint("tip_id"),
    )
    with op.batch_alter_table("public_replies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_public_replies_checked_at"), ["checked_at"])
        batch_op.create_index(batch_op.f("ix_public_replies_delivery_id"), ["delivery_id"])
        batch_op.create_index(batch_op.f("ix_public_replies_public_id"), ["public_id"], unique=True)


def downgrade():
    op.drop_table("public_replies")
    op.drop_index("ix_deliveries_replies_next_at", table_name="deliveries")
    for column in (
        "replies_runs",
        "replies_problem",
        "replies_polled_at",
        "replies_next_at",
        "replies_cursor",
    ):
        op.drop_column("deliveries", column)
    op.drop_index("ix_tips_agency_origin_created", table_name="tips")
    op.drop_column("tips", "origin")
