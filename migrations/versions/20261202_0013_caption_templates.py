"""Caption templates per agency and network (publishing's captions kept as data).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 04:20:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "caption_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=32), nullable=False),
        sa.Column("item", sa.Text(), nullable=False),
        sa.Column("closing", sa.Text(), nullable=False),
        sa.Column("hashtags", sa.String(length=300), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_caption_templates_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["users.id"], name=op.f("fk_caption_templates_updated_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caption_templates")),
        sa.UniqueConstraint(
            "agency_id", "network", name=op.f("uq_caption_templates_agency_id_network")
        ),
    )
    with op.batch_alter_table("caption_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_caption_templates_agency_id"), ["agency_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("caption_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_caption_templates_agency_id"))
    op.drop_table("caption_templates")
