"""Clinics, their users and signed-in sessions (the web application); cases belong to a clinic; landmarks placed
by hand on a scan (append-only).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "clinics",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("clinic_id", sa.Integer, sa.ForeignKey("clinics.id"), nullable=False, index=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with its reference inline; batch mode's table copy would drop `cases` under the
        # foreign keys of every record that names a case.
        op.execute("ALTER TABLE cases ADD COLUMN clinic_id INTEGER REFERENCES clinics (id)")
    else:
        op.add_column("cases", sa.Column("clinic_id", sa.Integer, sa.ForeignKey("clinics.id", name="fk_cases_clinic"),
                                         nullable=True))
    op.create_table(
        "landmark_moves",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("scan_id", sa.Integer, sa.ForeignKey("scans.id"), nullable=False, index=True),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("point_mm", sa.JSON, nullable=False),
    )
    _refuse_update("landmark_moves")


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
        op.execute("DROP FUNCTION IF EXISTS landmark_moves_no_update() CASCADE")
    op.drop_table("landmark_moves")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE cases DROP COLUMN clinic_id")  # SQLite 3.35+
    else:
        op.drop_constraint("fk_cases_clinic", "cases", type_="foreignkey")
        op.drop_column("cases", "clinic_id")
    op.drop_table("web_sessions")
    op.drop_table("users")
    op.drop_table("clinics")
