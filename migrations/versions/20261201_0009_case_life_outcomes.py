"""The case's life (status changes, the tips that solved it), the outcomes (daily
page views per appeal, when tips became leads), and each agency's first-response
target.

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-01 23:20:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    # The agency's first-response target (agencies.first_response_hours) comes with
    # revision 0008.
    op.create_table(
        "case_status_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tips_led", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_case_status_changes_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_status_changes_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["changed_by_id"], ["users.id"], name=op.f("fk_case_status_changes_changed_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_status_changes")),
    )
    with op.batch_alter_table("case_status_changes", schema=None) as batch_op:
        for column in ("agency_id", "case_id", "to_status", "changed_at"):
            batch_op.create_index(
                batch_op.f(f"ix_case_status_changes_{column}"), [column], unique=False
            )

    op.create_table(
        "case_solving_tips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("change_id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["case_status_changes.id"],
            name=op.f("fk_case_solving_tips_change_id_case_status_changes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tip_id"],
            ["tips.id"],
            name=op.f("fk_case_solving_tips_tip_id_tips"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_solving_tips")),
        sa.UniqueConstraint(
            "change_id", "tip_id", name=op.f("uq_case_solving_tips_change_id_tip_id")
        ),
    )
    with op.batch_alter_table("case_solving_tips", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_solving_tips_change_id"), ["change_id"])
        batch_op.create_index(batch_op.f("ix_case_solving_tips_tip_id"), ["tip_id"])

    op.create_table(
        "appeal_daily_views",
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appeal_id"],
            ["appeals.id"],
            name=op.f("fk_appeal_daily_views_appeal_id_appeals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("appeal_id", "day", name=op.f("pk_appeal_daily_views")),
    )

    op.create_table(
        "tip_leads",
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=True),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_tip_leads_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["appeal_id"], ["appeals.id"], name=op.f("fk_tip_leads_appeal_id_appeals")
        ),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tips.id"], name=op.f("fk_tip_leads_tip_id_tips"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tip_id", name=op.f("pk_tip_leads")),
    )
    with op.batch_alter_table("tip_leads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tip_leads_agency_id"), ["agency_id"])
        batch_op.create_index(batch_op.f("ix_tip_leads_appeal_id"), ["appeal_id"])

    op.create_index("ix_tips_outcomes", "tips", ["agency_id", "appeal_id", "channel", "created_at"])


def downgrade():
    op.drop_index("ix_tips_outcomes", table_name="tips")
    op.drop_table("tip_leads")
    op.drop_table("appeal_daily_views")
    op.drop_table("case_solving_tips")
    op.drop_table("case_status_changes")
