"""The anterior direction a scan is read with, for scans without bones (file coordinates; null: found).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scans", sa.Column("anterior", sa.JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("scans", "anterior")
