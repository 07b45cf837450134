"""Database records of a case (SQLAlchemy 2). Lengths mm; times UTC.

A case is one patient's limb: its scans, and the design revisions made from them. A revision is
immutable once saved (scan, plan, spec, parent): a change makes a child revision, so the revisions of a
case form a tree. The audit trail is append-only. Files (scans, sockets) live in the file store under
their SHA-256; the records hold the hashes.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Case(Base):
    """One patient's limb. ``reference``: the clinic's own identifier (no name or birth date kept here)."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    level: Mapped[str] = mapped_column(String(16))  # transtibial, transfemoral
    side: Mapped[str] = mapped_column(String(8))  # left, right
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    scans: Mapped[list[Scan]] = relationship(back_populates="case", order_by="Scan.id")
    revisions: Mapped[list[Revision]] = relationship(back_populates="case", order_by="Revision.id")


class Scan(Base):
    """A captured shape: the file (by hash), how it was captured and how to read it."""

    __tablename__ = "scans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    file_hash: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))  # as given: its suffix names the format
    method: Mapped[str] = mapped_column(String(8))  # scan, cast, tape
    units: Mapped[str | None] = mapped_column(String(8), nullable=True)  # None: detected
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    case: Mapped[Case] = relationship(back_populates="scans")


class Revision(Base):
    """A socket design: scan + plan + spec -> socket (STL, by hash). Immutable; ``parent_id``: the
    revision it was changed from."""

    __tablename__ = "revisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("revisions.id"), nullable=True)
    plan: Mapped[dict] = mapped_column(JSON)
    spec: Mapped[dict] = mapped_column(JSON)
    socket_hash: Mapped[str] = mapped_column(String(64))
    sheet_hash: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(1000), default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    case: Mapped[Case] = relationship(back_populates="revisions")
    scan: Mapped[Scan] = relationship()


class AuditEvent(Base):
    """Who did what, when: one row per change, never updated or deleted (the database refuses too)."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


@event.listens_for(Revision, "before_update")
@event.listens_for(AuditEvent, "before_update")
def _immutable(mapper, connection, target) -> None:
    raise ValueError(f"{type(target).__name__} {target.id} is immutable once saved")
