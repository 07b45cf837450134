"""Interface analyses of design revisions: summary, load inputs and the maps file's hash; never changed.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "analyses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("revision_id", sa.Integer, sa.ForeignKey("revisions.id"), nullable=False, index=True),
        sa.Column("quick", sa.Boolean, nullable=False),
        sa.Column("body_mass_kg", sa.Float, nullable=False),
        sa.Column("k_level", sa.String(2), nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("maps_hash", sa.String(64), nullable=False),
    )
    _refuse_update("analyses")


def _refuse_update(table: str) -> None:
    """As 0002's trigger (a migration is frozen in time, so it keeps its own copy rather than importing)."""
    name = f"{table}_no_update"
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END")
    else:  # PostgreSQL
        op.execute(f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN "
                   f"RAISE EXCEPTION '{table} are append-only'; END $$ LANGUAGE plpgsql")
        op.execute(f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS analyses_no_update() CASCADE")
    op.drop_table("analyses")
