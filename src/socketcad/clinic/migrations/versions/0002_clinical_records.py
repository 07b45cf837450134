"""Evaluations, fabrications, fittings, deliveries and follow-ups: facts at a time, never changed.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)
TABLES = ("evaluations", "fabrications", "fittings", "deliveries", "followups")


def _common() -> list[sa.Column]:
    return [sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
            sa.Column("created_by", sa.String(64), nullable=False),
            sa.Column("created_at", WHEN, nullable=False)]


def _revision() -> sa.Column:
    return sa.Column("revision_id", sa.Integer, sa.ForeignKey("revisions.id"), nullable=False)


def upgrade() -> None:
    op.create_table("evaluations", *_common(),
                    sa.Column("k_level", sa.String(2), nullable=False),
                    sa.Column("form", sa.JSON, nullable=False))
    op.create_table("fabrications", *_common(), _revision(),
                    sa.Column("stage", sa.String(16), nullable=False),
                    sa.Column("material", sa.String(64), nullable=False),
                    sa.Column("lab", sa.String(128), nullable=False),
                    sa.Column("note", sa.String(1000), nullable=False))
    op.create_table("fittings", *_common(), _revision(),
                    sa.Column("comfort", sa.Integer, nullable=False),
                    sa.Column("feedback", sa.JSON, nullable=False),
                    sa.Column("gait", sa.String(2000), nullable=False),
                    sa.Column("adjustments", sa.JSON, nullable=False),
                    sa.Column("child_revision_id", sa.Integer, sa.ForeignKey("revisions.id"), nullable=True))
    op.create_table("deliveries", *_common(), _revision(),
                    sa.Column("checklist", sa.JSON, nullable=False),
                    sa.Column("note", sa.String(1000), nullable=False))
    op.create_table("followups", *_common(),
                    sa.Column("scan_id", sa.Integer, sa.ForeignKey("scans.id"), nullable=False),
                    sa.Column("baseline_scan_id", sa.Integer, sa.ForeignKey("scans.id"), nullable=False),
                    sa.Column("socks_ply", sa.Integer, nullable=False),
                    sa.Column("volume_change_pct", sa.Float, nullable=False),
                    sa.Column("advice", sa.String(32), nullable=False),
                    sa.Column("result", sa.JSON, nullable=False))
    for table in TABLES:
        _refuse_update(table)


def _refuse_update(table: str) -> None:
    """As 0001's trigger (a migration is frozen in time, so it keeps its own copy rather than importing)."""
    name = f"{table}_no_update"
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END")
    else:  # PostgreSQL
        op.execute(f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN "
                   f"RAISE EXCEPTION '{table} are append-only'; END $$ LANGUAGE plpgsql")
        op.execute(f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
