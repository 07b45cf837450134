"""What the clinic does to a case, as functions over a Store: open a case, add a scan, save a design
revision (rebuilt from its records on demand), read the history. Every change writes an audit event in
the same transaction. Bad input raises InputError and changes nothing."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import CaptureOptions, Limb, load_limb
from socketcad.anatomy.samples import sample_path
from socketcad.biomech.interface import InterfaceSummary
from socketcad.clinic.files import sha256
from socketcad.clinic.models import Analysis, AuditEvent, Case, LandmarkMove, Revision, Scan
from socketcad.clinic.store import Store
from socketcad.design.plan import RectificationPlan, plan_from_dict
from socketcad.design.fabrication import FabricationSheet, fabrication_sheet
from socketcad.design.pipeline import complete_spec, design_socket, prepared_limb, template_inputs
from socketcad.design.socket import SocketSpec, spec_from_dict
from socketcad.design.templates import template_plan
from socketcad.errors import InputError, printable
from socketcad.geometry import io

LEVELS = ("transtibial", "transfemoral")
SIDES = ("left", "right")
METHODS = ("scan", "cast", "tape")


def check_case(reference: object, level: object, side: object) -> str:
    """The case's reference as kept (stripped); InputError unless it is 1-64 printable characters (no
    control characters: it is shown on terminals), the level one of LEVELS and the side one of SIDES."""
    if not isinstance(reference, str) or not 1 <= len(reference.strip()) <= 64 or not reference.strip().isprintable():
        raise InputError("a case reference is 1-64 printable characters (the clinic's own identifier, not a name)")
    if not isinstance(level, str) or level not in LEVELS:
        raise InputError(f"level {printable(repr(level))[:40]} is not one of: {', '.join(LEVELS)}")
    if not isinstance(side, str) or side not in SIDES:
        raise InputError(f"side {printable(repr(side))[:40]} is not one of: {', '.join(SIDES)}")
    return reference.strip()


def new_case(store: Store, reference: str, level: str, side: str, clinic_id: int | None = None, *,
             actor: str) -> Case:
    """Open a case for one limb of a patient known by the clinic's ``reference`` (of clinic ``clinic_id``)."""
    reference = check_case(reference, level, side)
    try:
        with store.transaction() as db:
            case = Case(reference=reference, level=level, side=side, clinic_id=clinic_id)
            db.add(case)
            db.flush()
            audit(db, "case.new", case.id, {"reference": reference, "level": level, "side": side}, actor)
    except IntegrityError:
        raise InputError(f"case {reference!r} exists already: use it, or give another reference") from None
    return case


def find_case(db: Session, reference: str) -> Case:
    case = db.scalar(select(Case).where(Case.reference == reference))
    if case is None:
        raise InputError(f"no case {reference!r}: list the cases to find its reference")
    return case


def list_cases(store: Store, clinic_id: int | None = None, search: str = "") -> list[CaseRow]:
    """Every case (of clinic ``clinic_id`` if given; whose reference contains ``search``, any case): reference,
    level, side, and how many scans and revisions it has."""
    query = select(Case).order_by(Case.id)
    if clinic_id is not None:
        query = query.where(Case.clinic_id == clinic_id)
    if search:
        query = query.where(Case.reference.icontains(search, autoescape=True))
    with store.transaction() as db:
        return [CaseRow(reference=c.reference, level=c.level, side=c.side, scans=len(c.scans),
                        revisions=len(c.revisions)) for c in db.scalars(query)]


def add_scan(store: Store, reference: str, path: Path, method: str = "scan", units: str | None = None,
             anterior: tuple[float, float, float] | None = None, *, actor: str) -> Scan:
    """Keep a captured shape of the case's limb. It must read as a limb of the case's level and side.
    ``anterior`` (file coordinates) is kept with it: a scan without bones needs it to be designed on."""
    if method not in METHODS:
        raise InputError(f"capture method {method!r} is not one of: {', '.join(METHODS)}")
    path = sample_path(path)
    data = io.read_bytes(path)
    with store.transaction() as db:
        case = find_case(db, reference)
    limb = read_limb(data, path.name, units, anterior, case=case)  # outside the write lock: it takes seconds
    with store.transaction() as db:
        return keep_scan(db, store, find_case(db, reference), data, path.name, method, limb, anterior, actor=actor)


def keep_scan(db: Session, store: Store, case: Case, data: bytes, filename: str, method: str, limb: Limb,
              anterior: tuple[float, float, float] | None = None, *, actor: str) -> Scan:
    """Store a scan file read as ``limb`` and add its record and audit event to ``db``'s transaction."""
    digest = store.files.put(data)
    # the units as read (given or detected) and the anterior given are kept: a rebuild reads the file the same way
    scan = Scan(case_id=case.id, file_hash=digest, filename=filename, method=method, units=limb.units.unit,
                anterior=None if anterior is None else [float(v) for v in anterior])
    db.add(scan)
    db.flush()
    audit(db, "scan.add", case.id, {"scan": scan.id, "file_hash": digest, "method": method, "filename": filename,
                                    "units": limb.units.how}, actor)
    return scan


@dataclass(frozen=True)
class Built:
    socket_stl: bytes
    sheet: FabricationSheet


def design(store: Store, reference: str, plan: RectificationPlan | dict | str | None, spec: SocketSpec | dict,
           scan_id: int | None = None, parent_id: int | None = None, note: str = "",
           also: Callable[[Session, Revision], None] | None = None, *, actor: str) -> Revision:
    """Build and save a design revision of the case: its scan (default: the newest), plan (or a template's
    name: its plan for this limb is what is saved; None: the parent's plan, a change of the spec only) and spec
    (its K-level, when not given, the newest evaluation's). The socket is stored first, then the
    revision's record: a crash between leaves no record. ``also(db, revision)`` adds records that must be
    saved with the revision, in its transaction (a fitting that asked for it)."""
    check_length(note, 1000, "the note")
    with store.transaction() as db:
        case = find_case(db, reference)
        if isinstance(spec, dict) and "k_level" not in spec and case.evaluations:  # the evaluated mobility grade
            spec = {**spec, "k_level": int(case.evaluations[-1].k_level[1])}
        spec = spec if isinstance(spec, SocketSpec) else complete_spec(spec, case.level)
        if parent_id is not None:
            parent = revision_of(db, case, parent_id)
            plan = parent.plan if plan is None else plan
        if plan is None:
            raise InputError("give the revision's plan or template, or its parent (whose plan it keeps)")
        scan = scan_of(db, case, scan_id)
        scan_bytes = store.files.get(scan.file_hash)
        scan_facts = facts_of(scan)
        placed = placed_landmarks(db, scan)
        level, side = case.level, case.side
        sensitive = tuple(case.evaluations[-1].form["sensitive_areas"]) if case.evaluations else ()
    if isinstance(plan, str):  # the template relieves the sensitive areas of the newest evaluation
        limb = locate_landmarks(read_limb(scan_bytes, *scan_facts, level=level, side=side), dict(placed) or None)
        plan = template_plan(plan, limb, template_inputs(spec, sensitive))
    plan = with_placed_landmarks(plan if isinstance(plan, RectificationPlan) else plan_from_dict(plan), placed)
    built = build(scan_bytes, *scan_facts, level, side, plan, spec)
    socket_hash = store.files.put(built.socket_stl)
    sheet_hash = store.files.put(json.dumps(built.sheet.model_dump(mode="json", exclude_none=True), indent=2,
                                            sort_keys=True).encode())
    with store.transaction() as db:
        case = find_case(db, reference)
        revision = Revision(case_id=case.id, scan_id=scan.id, parent_id=parent_id, plan=plan.model_dump(mode="json"),
                            spec=spec.model_dump(mode="json"), socket_hash=socket_hash, sheet_hash=sheet_hash,
                            note=note, created_by=actor)
        db.add(revision)
        db.flush()
        audit(db, "revision.save", case.id, {"revision": revision.id, "parent": parent_id, "scan": scan.id,
                                             "socket_hash": socket_hash}, actor)
        if also is not None:
            also(db, revision)
    return revision


def rebuild(store: Store, revision_id: int) -> tuple[Revision, bytes]:
    """The socket of a stored revision built again from its records; compare its hash with the stored one."""
    with store.transaction() as db:
        revision = db.get(Revision, revision_id)
        if revision is None:
            raise InputError(f"no revision {revision_id}: show the case to find its revisions")
        scan, case = revision.scan, revision.case
        facts = (store.files.get(scan.file_hash), *facts_of(scan), case.level, case.side)
    built = build(*facts, plan_from_dict(revision.plan, f"revision {revision_id} plan"),
                   spec_from_dict(revision.spec, f"revision {revision_id} spec"))
    return revision, built.socket_stl


def placed_landmarks(db: Session, scan: Scan) -> dict[str, tuple[float, float, float]]:
    """The landmarks placed by hand on ``scan``: name -> (x, y, z) limb frame mm, the newest of each name."""
    moves = db.scalars(select(LandmarkMove).where(LandmarkMove.scan_id == scan.id).order_by(LandmarkMove.id))
    return {move.name: tuple(move.point_mm) for move in moves}


def with_placed_landmarks(plan: RectificationPlan, placed: dict[str, tuple[float, float, float]]) -> RectificationPlan:
    """``plan`` keeping the landmarks placed by hand on its scan; the plan's own placements win."""
    if not placed:
        return plan
    return plan_from_dict({**plan.model_dump(mode="json"), "landmarks": {**placed, **plan.landmarks}})


class CaseRow(BaseModel):
    reference: str
    level: str
    side: str
    scans: int
    revisions: int


class ScanRow(BaseModel):
    id: int
    file_hash: str
    filename: str
    method: str
    units: str
    created_at: str


class RevisionRow(BaseModel):
    id: int
    parent: int | None
    scan: int
    template: str | None
    socket_type: str
    liner: str
    k_level: int
    socket_hash: str
    note: str
    by: str
    created_at: str


class EvaluationRow(BaseModel):
    id: int
    k_level: str
    sensitive_areas: list[str]
    by: str
    created_at: str


class FabricationRow(BaseModel):
    id: int
    revision: int
    stage: str
    material: str
    lab: str
    by: str
    created_at: str


class FittingRow(BaseModel):
    id: int
    revision: int
    comfort: int
    feedback: dict[str, str]
    gait: str
    adjustments: list[dict]
    child_revision: int | None
    by: str
    created_at: str


class DeliveryRow(BaseModel):
    id: int
    revision: int
    checklist: dict[str, bool]
    by: str
    created_at: str


class FollowUpRow(BaseModel):
    id: int
    scan: int
    baseline_scan: int
    socks_ply: int
    volume_change_pct: float
    advice: str
    by: str
    created_at: str


class PeakRow(BaseModel):
    """One load case of an analysis (kPa): the nodal peak (what the tolerance flags use), the sensel peak (the
    figure to compare with measured pressures), the mean over the skin in contact, the peak shear."""

    case: str
    peak_pressure_kpa: float
    sensel_peak_kpa: float
    mean_pressure_kpa: float
    peak_shear_kpa: float


def peaks_of(summary: InterfaceSummary) -> list[PeakRow]:
    """The peaks of each load case of an analysis, in the order they ran."""
    return [PeakRow(case=name, peak_pressure_kpa=case.peak_pressure_kpa, sensel_peak_kpa=case.sensel_peak_kpa,
                    mean_pressure_kpa=case.mean_pressure_kpa, peak_shear_kpa=case.peak_shear_kpa)
            for name, case in summary.cases.items()]


class AnalysisRow(BaseModel):
    id: int
    revision: int
    quick: bool  # the preview: donning and standing on a coarse mesh
    body_mass_kg: float
    k_level: str
    peaks: list[PeakRow]
    maps_hash: str
    by: str
    created_at: str


class AuditRow(BaseModel):
    at: str
    actor: str
    action: str
    detail: dict


class CaseHistory(BaseModel):
    """A case's scans, revisions (each names its parent: a tree), clinical records, interface analyses and audit
    trail (UTC times)."""

    reference: str
    level: str
    side: str
    created_at: str
    scans: list[ScanRow]
    revisions: list[RevisionRow]
    evaluations: list[EvaluationRow]
    fabrications: list[FabricationRow]
    fittings: list[FittingRow]
    deliveries: list[DeliveryRow]
    followups: list[FollowUpRow]
    analyses: list[AnalysisRow]  # interface analyses of the revisions, oldest first
    audit: list[AuditRow]


def history(store: Store, reference: str) -> CaseHistory:
    """The case's scans, revisions (with parents), clinical records, analyses and audit trail."""
    with store.transaction() as db:
        case = find_case(db, reference)
        events = db.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.id))
        return CaseHistory(
            reference=case.reference, level=case.level, side=case.side, created_at=utc(case.created_at),
            scans=[ScanRow(id=s.id, file_hash=s.file_hash, filename=s.filename, method=s.method, units=s.units,
                           created_at=utc(s.created_at)) for s in case.scans],
            revisions=[RevisionRow(id=r.id, parent=r.parent_id, scan=r.scan_id, template=r.plan.get("name"),
                                   socket_type=r.spec["socket_type"], liner=r.spec["liner"], k_level=r.spec["k_level"],
                                   socket_hash=r.socket_hash, note=r.note, by=r.created_by, created_at=utc(r.created_at))
                       for r in case.revisions],
            evaluations=[EvaluationRow(id=e.id, k_level=e.k_level, sensitive_areas=e.form["sensitive_areas"],
                                       by=e.created_by, created_at=utc(e.created_at)) for e in case.evaluations],
            fabrications=[FabricationRow(id=f.id, revision=f.revision_id, stage=f.stage, material=f.material, lab=f.lab,
                                         by=f.created_by, created_at=utc(f.created_at)) for f in case.fabrications],
            fittings=[FittingRow(id=f.id, revision=f.revision_id, comfort=f.comfort, feedback=f.feedback, gait=f.gait,
                                 adjustments=f.adjustments, child_revision=f.child_revision_id, by=f.created_by,
                                 created_at=utc(f.created_at)) for f in case.fittings],
            deliveries=[DeliveryRow(id=d.id, revision=d.revision_id, checklist=d.checklist, by=d.created_by,
                                    created_at=utc(d.created_at)) for d in case.deliveries],
            followups=[FollowUpRow(id=f.id, scan=f.scan_id, baseline_scan=f.baseline_scan_id, socks_ply=f.socks_ply,
                                   volume_change_pct=f.volume_change_pct, advice=f.advice, by=f.created_by,
                                   created_at=utc(f.created_at)) for f in case.followups],
            analyses=[AnalysisRow(id=a.id, revision=a.revision_id, quick=a.quick, body_mass_kg=a.body_mass_kg,
                                  k_level=a.k_level, peaks=peaks_of(InterfaceSummary.model_validate(a.summary)),
                                  maps_hash=a.maps_hash, by=a.created_by, created_at=utc(a.created_at))
                      for a in case.analyses],
            audit=[AuditRow(at=utc(e.at), actor=e.actor, action=e.action, detail=e.detail) for e in events],
        )


def check_store(store: Store) -> list[str]:
    """What is inconsistent between the records and the file store (empty: nothing): a record naming a
    file that is missing or whose content does not match its hash, a stored file not named by its hash."""
    problems = []
    with store.transaction() as db:
        named = [("scan", s.id, s.file_hash) for s in db.scalars(select(Scan))]
        for r in db.scalars(select(Revision)):
            named += [("revision", r.id, r.socket_hash), ("revision", r.id, r.sheet_hash)]
        named += [("analysis", a.id, a.maps_hash) for a in db.scalars(select(Analysis))]
    for kind, number, digest in named:
        try:
            store.files.get(digest)
        except InputError as exc:
            problems.append(f"{kind} {number}: {exc}")
    for path in store.files.root.glob("*/*"):
        if not path.name.startswith(".incoming-") and sha256(path.read_bytes()) != path.name:
            problems.append(f"{path}: content does not match its name")
    return problems


def check_length(text: str, limit: int, what: str) -> None:
    """Free text fits its column (PostgreSQL would refuse it with a traceback, SQLite keep it silently)."""
    if len(text) > limit:
        raise InputError(f"{what}: {len(text)} characters; keep it within {limit}")


def utc(moment: datetime) -> str:
    """ISO time in UTC (SQLite hands back naive times; they were stored as UTC)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


def audit(db: Session, action: str, case_id: int | None, detail: dict, actor: str) -> None:
    db.add(AuditEvent(actor=actor, action=action, case_id=case_id, detail=detail))


def scan_of(db: Session, case: Case, scan_id: int | None) -> Scan:
    if scan_id is None:
        if not case.scans:
            raise InputError(f"case {case.reference!r} has no scan yet: add a scan of the limb first")
        return case.scans[-1]
    scan = db.get(Scan, scan_id)
    if scan is None or scan.case_id != case.id:
        raise InputError(f"scan {scan_id} is not a scan of case {case.reference!r}")
    return scan


def revision_of(db: Session, case: Case, revision_id: int) -> Revision:
    revision = db.get(Revision, revision_id)
    if revision is None or revision.case_id != case.id:
        raise InputError(f"revision {revision_id} is not a revision of case {case.reference!r}")
    return revision


def facts_of(scan: Scan) -> tuple[str, str | None, tuple[float, float, float] | None]:
    """How a stored scan is read: its filename (the suffix names the format), units and anterior."""
    return scan.filename, scan.units, None if scan.anterior is None else tuple(scan.anterior)


def read_limb(data: bytes, filename: str, units: str | None, anterior: tuple[float, float, float] | None = None,
              case: Case | None = None, level: str | None = None, side: str | None = None) -> Limb:
    """The limb in a scan file's bytes (its name's suffix gives the format), read with ``anterior`` (file
    coordinates) if given. Checked against a ``case``: its level, and its side where the shape tells one."""
    if case is not None:
        level = case.level
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(filename).name
        path.write_bytes(data)
        limb = load_limb(path, CaptureOptions(units=units, level=level, side=side, anterior=anterior))
    if case is not None and limb.side in SIDES and limb.side != case.side:
        raise InputError(f"{filename}: reads as a {limb.side} limb, and case {case.reference!r} is the {case.side} "
                         "side: is it this patient's limb?")
    return limb


def build(scan_bytes: bytes, filename: str, units: str | None, anterior: tuple[float, float, float] | None,
          level: str, side: str, plan: RectificationPlan, spec: SocketSpec) -> Built:
    """Scan -> limb -> rectified model -> socket: a pure function of the records."""
    limb = prepared_limb(read_limb(scan_bytes, filename, units, anterior, level=level, side=side), plan)
    socket = design_socket(limb, spec, plan).socket
    return Built(_stl_bytes(socket.solid), fabrication_sheet(socket))


def _stl_bytes(mesh) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "socket.stl"
        io.write_mesh(mesh, path)
        return path.read_bytes()
