"""Cases, scans, design revisions and the audit trail.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)
# Revisions and audit events are never changed; the database itself refuses (not only the ORM).
APPEND_ONLY = {"revisions": ("UPDATE",), "audit_events": ("UPDATE", "DELETE")}


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("reference", sa.String(64), nullable=False, unique=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "scans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("file_hash", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("units", sa.String(8), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "revisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("scan_id", sa.Integer, sa.ForeignKey("scans.id"), nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("revisions.id"), nullable=True),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("socket_hash", sa.String(64), nullable=False),
        sa.Column("sheet_hash", sa.String(64), nullable=False),
        sa.Column("note", sa.String(1000), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=True, index=True),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    for table, operations in APPEND_ONLY.items():
        for operation in operations:
            _refuse(table, operation)


def _refuse(table: str, operation: str) -> None:
    name = f"{table}_no_{operation.lower()}"
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"CREATE TRIGGER {name} BEFORE {operation} ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END")
    else:  # PostgreSQL
        op.execute(f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN "
                   f"RAISE EXCEPTION '{table} are append-only'; END $$ LANGUAGE plpgsql")
        op.execute(f"CREATE TRIGGER {name} BEFORE {operation} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()")


def downgrade() -> None:
    for table in ("audit_events", "revisions", "scans", "cases"):
        op.drop_table(table)
