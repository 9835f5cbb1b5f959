"""Appeals (a case's public face and the approved versions it shows), tips from the
public and their conversations.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:21:53.898674

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "appeals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("question", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by_id", sa.Integer(), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by_id", sa.Integer(), nullable=True),
        sa.Column("withdraw_reason", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_appeals_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_appeals_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_appeals_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["published_by_id"], ["users.id"], name=op.f("fk_appeals_published_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["withdrawn_by_id"], ["users.id"], name=op.f("fk_appeals_withdrawn_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeals")),
        sa.UniqueConstraint("case_id", name=op.f("uq_appeals_case_id")),
    )
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appeals_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_appeals_public_id"), ["public_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_appeals_published_at"), ["published_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_appeals_status"), ["status"], unique=False)

    op.create_table(
        "tips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("appeal_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("seen_when", sa.String(length=200), nullable=False),
        sa.Column("contact_name", sa.Text(), nullable=True),
        sa.Column("contact_phone", sa.Text(), nullable=True),
        sa.Column("contact_email", sa.Text(), nullable=True),
        sa.Column("notify_by_email", sa.Boolean(), nullable=False),
        sa.Column("receipt_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_tipster_message_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_staff_message_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_tips_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["appeal_id"], ["appeals.id"], name=op.f("fk_tips_appeal_id_appeals")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_tips_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tips")),
    )
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tips_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tips_appeal_id"), ["appeal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tips_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tips_channel"), ["channel"], unique=False)
        batch_op.create_index(batch_op.f("ix_tips_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tips_number"), ["number"], unique=True)
        batch_op.create_index(batch_op.f("ix_tips_public_id"), ["public_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_tips_status"), ["status"], unique=False)

    op.create_table(
        "tip_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=16), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_user_id"], ["users.id"], name=op.f("fk_tip_messages_author_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tips.id"], name=op.f("fk_tip_messages_tip_id_tips"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tip_messages")),
    )
    with op.batch_alter_table("tip_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tip_messages_tip_id"), ["tip_id"], unique=False)

    op.create_table(
        "appeal_clips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appeal_id"],
            ["appeals.id"],
            name=op.f("fk_appeal_clips_appeal_id_appeals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["clip_versions.id"],
            name=op.f("fk_appeal_clips_version_id_clip_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeal_clips")),
        sa.UniqueConstraint(
            "appeal_id", "version_id", name=op.f("uq_appeal_clips_appeal_id_version_id")
        ),
    )
    with op.batch_alter_table("appeal_clips", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appeal_clips_appeal_id"), ["appeal_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_appeal_clips_version_id"), ["version_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("appeal_clips", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appeal_clips_version_id"))
        batch_op.drop_index(batch_op.f("ix_appeal_clips_appeal_id"))

    op.drop_table("appeal_clips")
    with op.batch_alter_table("tip_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tip_messages_tip_id"))

    op.drop_table("tip_messages")
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tips_status"))
        batch_op.drop_index(batch_op.f("ix_tips_public_id"))
        batch_op.drop_index(batch_op.f("ix_tips_number"))
        batch_op.drop_index(batch_op.f("ix_tips_created_at"))
        batch_op.drop_index(batch_op.f("ix_tips_channel"))
        batch_op.drop_index(batch_op.f("ix_tips_case_id"))
        batch_op.drop_index(batch_op.f("ix_tips_appeal_id"))
        batch_op.drop_index(batch_op.f("ix_tips_agency_id"))

    op.drop_table("tips")
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appeals_status"))
        batch_op.drop_index(batch_op.f("ix_appeals_published_at"))
        batch_op.drop_index(batch_op.f("ix_appeals_public_id"))
        batch_op.drop_index(batch_op.f("ix_appeals_agency_id"))

    op.drop_table("appeals")
