"""Publishing: channels, posts of appeals in the weekly slot, deliveries per channel,
and the agency's slot settings.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 04:11:25.739048

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("connected_by_id", sa.Integer(), nullable=True),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_channels_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["connected_by_id"], ["users.id"], name=op.f("fk_channels_connected_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint(
            "agency_id", "network", "name", name=op.f("uq_channels_agency_id_network_name")
        ),
    )
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_channels_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_channels_public_id"), ["public_id"], unique=True)

    op.create_table(
        "posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("slot_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_posts_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_posts_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
    )
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_posts_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_posts_public_id"), ["public_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_posts_slot_at"), ["slot_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_posts_status"), ["status"], unique=False)

    op.create_table(
        "post_appeals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appeal_id"], ["appeals.id"], name=op.f("fk_post_appeals_appeal_id_appeals")
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_post_appeals_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_appeals")),
        sa.UniqueConstraint("post_id", "appeal_id", name=op.f("uq_post_appeals_post_id_appeal_id")),
    )
    with op.batch_alter_table("post_appeals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_post_appeals_appeal_id"), ["appeal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_post_appeals_post_id"), ["post_id"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("rendition_id", sa.Integer(), nullable=True),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("remote_id", sa.String(length=500), nullable=False),
        sa.Column("remote_url", sa.String(length=2000), nullable=False),
        sa.Column("remote_extra", sa.JSON(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("solved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_deliveries_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_deliveries_post_id_posts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["rendition_id"], ["renditions.id"], name=op.f("fk_deliveries_rendition_id_renditions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("post_id", "channel_id", name=op.f("uq_deliveries_post_id_channel_id")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_channel_id"), ["channel_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_post_id"), ["post_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_public_id"), ["public_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_deliveries_status"), ["status"], unique=False)

    # Plain ADD COLUMN, not a batch copy: agencies is referenced by most tables.
    op.add_column(
        "agencies", sa.Column("slot_weekday", sa.Integer(), server_default="2", nullable=False)
    )
    op.add_column(
        "agencies", sa.Column("slot_minute", sa.Integer(), server_default="600", nullable=False)
    )
    op.add_column(
        "agencies", sa.Column("appeals_per_post", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column(
        "agencies",
        sa.Column("remove_posts_after_days", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade():
    for column in ("remove_posts_after_days", "appeals_per_post", "slot_minute", "slot_weekday"):
        op.drop_column("agencies", column)

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_status"))
        batch_op.drop_index(batch_op.f("ix_deliveries_public_id"))
        batch_op.drop_index(batch_op.f("ix_deliveries_post_id"))
        batch_op.drop_index(batch_op.f("ix_deliveries_channel_id"))

    op.drop_table("deliveries")
    with op.batch_alter_table("post_appeals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_post_appeals_post_id"))
        batch_op.drop_index(batch_op.f("ix_post_appeals_appeal_id"))

    op.drop_table("post_appeals")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_posts_status"))
        batch_op.drop_index(batch_op.f("ix_posts_slot_at"))
        batch_op.drop_index(batch_op.f("ix_posts_public_id"))
        batch_op.drop_index(batch_op.f("ix_posts_agency_id"))

    op.drop_table("posts")
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_channels_public_id"))
        batch_op.drop_index(batch_op.f("ix_channels_agency_id"))

    op.drop_table("channels")
