"""Database records of a case (SQLAlchemy 2). Lengths mm; times UTC.

A case is one patient's limb: its evaluations, scans, the design revisions made from them, and what
happened to each socket (fabrication, fittings, delivery) and to the limb (follow-ups). A revision is
immutable once saved (scan, plan, spec, parent): a change makes a child revision, so the revisions of a
case form a tree. Clinical records are facts at a time: they are never changed, a correction is a new
record (the database refuses updates). The audit trail is append-only. Files (scans, sockets, analysis maps) live in
the file store under their SHA-256; the records hold the hashes.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, event
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
    # the clinic whose users see the case (the web application); None: made before the store had clinics
    clinic_id: Mapped[int | None] = mapped_column(ForeignKey("clinics.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    scans: Mapped[list[Scan]] = relationship(back_populates="case", order_by="Scan.id")
    revisions: Mapped[list[Revision]] = relationship(back_populates="case", order_by="Revision.id")
    evaluations: Mapped[list[Evaluation]] = relationship(order_by="Evaluation.id")
    fabrications: Mapped[list[Fabrication]] = relationship(order_by="Fabrication.id")
    fittings: Mapped[list[Fitting]] = relationship(order_by="Fitting.id")
    deliveries: Mapped[list[Delivery]] = relationship(order_by="Delivery.id")
    followups: Mapped[list[FollowUp]] = relationship(order_by="FollowUp.id")
    analyses: Mapped[list[Analysis]] = relationship(order_by="Analysis.id")


class Scan(Base):
    """A captured shape: the file (by hash), how it was captured and how to read it."""

    __tablename__ = "scans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    file_hash: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))  # as given: its suffix names the format
    method: Mapped[str] = mapped_column(String(8))  # scan, cast, tape
    units: Mapped[str | None] = mapped_column(String(8), nullable=True)  # None: detected
    # [x, y, z] in file coordinates, as the user gave it; None: found from the file or its bones
    anterior: Mapped[list | None] = mapped_column(JSON, nullable=True)
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


class _Record:
    """Columns every clinical record has: its case, who recorded it and when."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Evaluation(_Record, Base):
    """Step 1: the assessment (socketcad.clinic.records.EvaluationForm's fields, as JSON) and its K-level."""

    __tablename__ = "evaluations"
    k_level: Mapped[str] = mapped_column(String(2))  # K0-K4
    form: Mapped[dict] = mapped_column(JSON)


class Fabrication(_Record, Base):
    """A socket made from a revision: test (check socket) or definitive, material, lab."""

    __tablename__ = "fabrications"
    revision_id: Mapped[int] = mapped_column(ForeignKey("revisions.id"))
    stage: Mapped[str] = mapped_column(String(16))  # test, definitive
    material: Mapped[str] = mapped_column(String(64))
    lab: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(String(1000), default="")


class Fitting(_Record, Base):
    """Step 5: a fitting session of a revision's socket: comfort (socket comfort score 0-10), feedback by
    region, gait notes, and the adjustments asked for, which made ``child_revision_id`` (None: none asked)."""

    __tablename__ = "fittings"
    revision_id: Mapped[int] = mapped_column(ForeignKey("revisions.id"))
    comfort: Mapped[int] = mapped_column(Integer)
    feedback: Mapped[dict] = mapped_column(JSON)  # region -> what the patient/prosthetist noted
    gait: Mapped[str] = mapped_column(String(2000), default="")
    adjustments: Mapped[list] = mapped_column(JSON)  # socketcad.clinic.fitting.Adjustment as dicts
    child_revision_id: Mapped[int | None] = mapped_column(ForeignKey("revisions.id"), nullable=True)


class Delivery(_Record, Base):
    """Step 7: the socket handed over, and the education checklist gone through (item -> done)."""

    __tablename__ = "deliveries"
    revision_id: Mapped[int] = mapped_column(ForeignKey("revisions.id"))
    checklist: Mapped[dict] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(1000), default="")


class FollowUp(_Record, Base):
    """A later scan compared with the baseline scan: volume, regional and circumference changes, advice."""

    __tablename__ = "followups"
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id"))
    baseline_scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id"))
    socks_ply: Mapped[int] = mapped_column(Integer)  # worn at the visit
    volume_change_pct: Mapped[float] = mapped_column(Float)
    advice: Mapped[str] = mapped_column(String(32))  # none, add socks, remove socks, new socket
    result: Mapped[dict] = mapped_column(JSON)  # the full comparison (socketcad.clinic.followup)


class Analysis(_Record, Base):
    """The interface analysis of a revision's socket on its limb (socketcad.biomech.analysis): the load cases'
    body mass (kg) and K-level, whether it was the quick preview, its summary (biomech.interface.InterfaceSummary
    as JSON: kPa, mm, N) and its per skin vertex maps (interface-maps.npz, in the file store by hash). Analysing
    again adds a newer record."""

    __tablename__ = "analyses"
    revision_id: Mapped[int] = mapped_column(ForeignKey("revisions.id"))
    quick: Mapped[bool] = mapped_column(Boolean)
    body_mass_kg: Mapped[float] = mapped_column(Float)
    k_level: Mapped[str] = mapped_column(String(2))  # K0-K4
    summary: Mapped[dict] = mapped_column(JSON)
    maps_hash: Mapped[str] = mapped_column(String(64))


class LandmarkMove(_Record, Base):
    """A landmark placed by hand on a scan (limb frame, mm), over the located one. The newest per name counts;
    a design made from the scan keeps them in its plan (RectificationPlan.landmarks)."""

    __tablename__ = "landmark_moves"
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id"))
    name: Mapped[str] = mapped_column(String(32))
    point_mm: Mapped[list] = mapped_column(JSON)


class Clinic(Base):
    """A clinic: its users see its cases and no other's."""

    __tablename__ = "clinics"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class User(Base):
    """A person who signs in to the web application: a role in one clinic; the password as an argon2 hash."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"))
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # prosthetist, technician, admin
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    clinic: Mapped[Clinic] = relationship()


class WebSession(Base):
    """A signed-in browser: the SHA-256 of its cookie's token (the token itself is never stored), the CSRF token
    its writes must carry, and when it expires."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user: Mapped[User] = relationship()


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
@event.listens_for(Evaluation, "before_update")
@event.listens_for(Fabrication, "before_update")
@event.listens_for(Fitting, "before_update")
@event.listens_for(Delivery, "before_update")
@event.listens_for(FollowUp, "before_update")
@event.listens_for(Analysis, "before_update")
@event.listens_for(LandmarkMove, "before_update")
@event.listens_for(AuditEvent, "before_update")
def _immutable(mapper, connection, target) -> None:
    raise ValueError(f"{type(target).__name__} {target.id} is immutable once saved")
