"""The language a tip was sent in, for the mails to its tipster.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 04:40:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    # Tips sent before there was a choice were sent from the English site. In place,
    # not a batch copy: tip messages and attachments hold foreign keys to tips.
    op.add_column(
        "tips", sa.Column("language", sa.String(length=16), server_default="en", nullable=False)
    )


def downgrade():
    op.drop_column("tips", "language")
