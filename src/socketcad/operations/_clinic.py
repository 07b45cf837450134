"""The clinic's records over time (steps 1-7): cases, evaluations, scans, design revisions, fabrication,
fittings, delivery, follow-ups, interface analyses, diffs, archives. Every write takes the store and the acting
user explicitly and is audited under that user's name."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

from pydantic import Field, model_validator

from socketcad.biomech.interface import InterfaceSummary
from socketcad.clinic.analyses import StoredAnalysis
from socketcad.clinic.cases import CaseHistory, CaseRow, PeakRow, history, list_cases
from socketcad.clinic.diff import RevisionChanges
from socketcad.clinic.followup import FollowUpComparison
from socketcad.clinic.store import Store
from socketcad.errors import InputError
from socketcad.geometry import io
from socketcad.operations._common import Direction, Progress, Request, Result, Source, check_output, readable, silent
from socketcad.operations._design import PlanInput, SpecFields, plan_of
from socketcad.settings import Settings

__all__ = [
    "AddScanRequest", "AnalyseRevisionRequest", "CaseExported", "CaseImported", "CaseList", "CaseOpened",
    "DeliverRequest", "DeliverySaved", "DesignRequest", "DiffRequest", "EvaluateRequest", "EvaluationSaved",
    "FabricateRequest", "FabricationSaved", "FitRequest", "FittingSaved", "FollowUpRequest", "FollowUpSaved",
    "NewCaseRequest", "Rebuilt", "RevisionAnalysed", "RevisionDiff", "RevisionSaved", "ScanKept", "StoredAnalysis",
    "add_scan", "analyse_revision", "case_history", "cases", "deliver", "diff", "evaluate", "export_case", "fabricate",
    "fit", "follow_up", "import_case", "new_case", "open_store", "rebuild", "save_design", "stored_analysis",
]


def open_store(settings: Settings, data_folder: Path | None = None, database_url: str | None = None) -> Store:
    """The clinic store: ``data_folder`` / ``database_url`` if given, else the settings'."""
    return Store(data_folder or settings.data_folder, database_url or settings.database_url)


class NewCaseRequest(Request):
    reference: str  # the clinic's identifier for this patient's limb (no names)
    level: str  # transtibial or transfemoral
    side: str  # left or right


class CaseOpened(Result):
    reference: str
    level: str
    side: str


def new_case(store: Store, request: NewCaseRequest, actor: str, clinic_id: int | None = None) -> CaseOpened:
    """Open a case (of clinic ``clinic_id``: its users see it)."""
    from socketcad.clinic.cases import new_case as open_case

    case = open_case(store, request.reference, request.level, request.side, clinic_id=clinic_id, actor=actor)
    return CaseOpened(reference=case.reference, level=case.level, side=case.side)


class CaseList(Result):
    cases: list[CaseRow]


def cases(store: Store, clinic_id: int | None = None, search: str = "") -> CaseList:
    """Every case (of clinic ``clinic_id`` if given; whose reference contains ``search``), with how many scans
    and revisions it has."""
    return CaseList(cases=list_cases(store, clinic_id, search))


def case_history(store: Store, reference: str) -> CaseHistory:
    """A case's scans, design revisions (a tree: each names its parent), records and audit trail."""
    return history(store, reference)


class AddScanRequest(Request):
    reference: str
    source: Source  # the scan or scanned cast
    method: str = "scan"  # scan, cast or tape
    units: Optional[str] = None  # detected if None
    anterior: Optional[Direction] = None  # file coordinates: a scan without bones needs it for a design


class ScanKept(Result):
    id: int
    reference: str
    file_hash: str
    units: str


def add_scan(store: Store, request: AddScanRequest, actor: str, progress: Progress = silent) -> ScanKept:
    """Keep a scan of the case's limb (checked: it reads as a limb of the case's level and side)."""
    from socketcad.clinic.cases import add_scan as keep

    progress("reading the scan")
    with readable(request.source) as path:
        scan = keep(store, request.reference, path, request.method, request.units, request.anterior, actor=actor)
    return ScanKept(id=scan.id, reference=request.reference, file_hash=scan.file_hash, units=scan.units)


class EvaluateRequest(Request):
    reference: str
    form_file: Optional[Path] = None  # the evaluation as YAML/JSON (fields of clinic.records.EvaluationForm)
    fields: dict[str, Any] = {}  # fields over the form file's


class EvaluationSaved(Result):
    id: int
    reference: str
    k_level: str
    sensitive_areas: list[str]


def evaluate(store: Store, request: EvaluateRequest, actor: str) -> EvaluationSaved:
    """Record an evaluation (step 1). The newest one's sensitive areas are relieved by the design templates."""
    from socketcad.clinic.records import evaluate as record

    fields = (io.read_mapping_file(request.form_file, "evaluation", "k_level: K3, history: ...")
              if request.form_file is not None else {})
    fields.update(request.fields)
    if "k_level" not in fields:
        raise InputError("evaluation: give the K-level (`k_level` K0-K4)")
    saved = record(store, request.reference, fields, actor=actor)
    return EvaluationSaved(id=saved.id, reference=request.reference, k_level=saved.k_level,
                           sensitive_areas=list(saved.form["sensitive_areas"]))


class DesignRequest(Request):
    reference: str
    template: Optional[str] = None  # its plan for this limb is what is saved
    plan: Optional[PlanInput] = None  # or a plan [with a parent and neither: the parent's plan]
    spec_file: Optional[Path] = None
    spec: SpecFields = SpecFields()
    scan: Optional[int] = None  # scan id [the case's newest]
    parent: Optional[int] = None  # the revision this one changes
    note: str = ""

    @model_validator(mode="after")
    def _one_start(self):
        if self.template is not None and self.plan is not None:
            raise ValueError("give one of `template` or `plan`, not both")
        if self.template is None and self.plan is None and self.parent is None:
            raise ValueError("give one of `template` or `plan` (or a `parent` whose plan is kept)")
        return self


class RevisionSaved(Result):
    id: int
    reference: str
    parent: Optional[int]
    socket_hash: str
    note: str


def save_design(store: Store, request: DesignRequest, actor: str, progress: Progress = silent) -> RevisionSaved:
    """Build and save a design revision of a case (immutable once saved; changes make child revisions)."""
    from socketcad.clinic.cases import design as save

    plan = request.template if request.template is not None else plan_of(request.plan)  # None: the parent's
    progress("building the socket")
    revision = save(store, request.reference, plan, request.spec.merged(request.spec_file, request.template),
                    request.scan, request.parent, request.note, actor=actor)
    return RevisionSaved(id=revision.id, reference=request.reference, parent=revision.parent_id,
                         socket_hash=revision.socket_hash, note=revision.note)


class Rebuilt(Result):
    revision: int
    stored_hash: str
    rebuilt_hash: str
    identical: bool  # False: the code that builds it changed since
    written: list[str]


def rebuild(store: Store, revision_id: int, output: Path | None = None, progress: Progress = silent) -> Rebuilt:
    """Build a stored revision again from its records and compare it with the stored socket, byte for byte."""
    from socketcad.clinic.cases import rebuild as build_again
    from socketcad.clinic.files import sha256

    if output is not None:
        check_output(output, ("stl",))
    progress("building the socket")
    revision, stl = build_again(store, revision_id)
    if output is not None:
        io.write_atomic(output, lambda tmp: tmp.write_bytes(stl))
    digest = sha256(stl)
    return Rebuilt(revision=revision_id, stored_hash=revision.socket_hash, rebuilt_hash=digest,
                   identical=digest == revision.socket_hash, written=[str(output)] if output else [])


class AnalyseRevisionRequest(Request):
    reference: str
    revision: int  # revision id (see `case show`), of this case
    body_mass_kg: Optional[float] = Field(None, allow_inf_nan=False)  # kg, for the load cases; required (no record has it)
    k_level: Optional[Union[int, str]] = None  # K0-K4 [the newest evaluation's]
    quick: bool = False  # the preview: donning and standing on a coarse mesh, seconds instead of a minute
    mesh_cache: Optional[Path] = None  # folder of kept tissue meshes; None: mesh anew


class RevisionAnalysed(Result):
    """An interface analysis kept with a revision: its record, the per load case peaks (kPa) and the summary."""

    id: int
    reference: str
    revision: int
    quick: bool
    body_mass_kg: float
    k_level: str
    maps_hash: str  # the per skin vertex maps (interface-maps.npz) in the file store
    peaks: list[PeakRow]
    summary: InterfaceSummary


def analyse_revision(store: Store, request: AnalyseRevisionRequest, actor: str,
                     progress: Progress = silent) -> RevisionAnalysed:
    """Predict the interface pressure and shear of a revision's socket on its limb, and keep the result with
    the revision (step 5: before the test socket is made, or to compare revisions)."""
    from socketcad.clinic.analyses import analyse_revision as analyse
    from socketcad.clinic.cases import peaks_of

    record = analyse(store, request.reference, request.revision, request.body_mass_kg, request.k_level,
                     request.quick, request.mesh_cache, progress, actor=actor)
    summary = InterfaceSummary.model_validate(record.summary)
    return RevisionAnalysed(id=record.id, reference=request.reference, revision=record.revision_id,
                            quick=record.quick, body_mass_kg=record.body_mass_kg, k_level=record.k_level,
                            maps_hash=record.maps_hash, peaks=peaks_of(summary), summary=summary)


def stored_analysis(store: Store, reference: str, revision: int) -> StoredAnalysis:
    """The newest analysis kept with a revision of the case (its summary, and its maps when asked for);
    InputError if the revision has none."""
    from socketcad.clinic.analyses import latest_analysis
    from socketcad.clinic.cases import find_case, revision_of

    with store.transaction() as db:
        revision_of(db, find_case(db, reference), revision)
        found = latest_analysis(db, store.files, revision)
    if found is None:
        # Library messages name no command (test_messages): the command line and the web say how to analyse.
        raise InputError(f"case {reference!r} revision {revision} has no analysis: analyse the revision first")
    return found


class FabricateRequest(Request):
    reference: str
    revision: int
    stage: str  # test (check socket) or definitive
    material: str  # wall material id from the catalogue
    lab: str  # the lab that made it
    note: str = ""


class FabricationSaved(Result):
    id: int
    reference: str
    revision: int
    stage: str
    material: str
    lab: str


def fabricate(store: Store, request: FabricateRequest, actor: str) -> FabricationSaved:
    """Record a socket made from a revision (steps 4 and 6)."""
    from socketcad.clinic.records import fabricate as record

    made = record(store, request.reference, request.revision, request.stage, request.material, request.lab,
                  request.note, actor=actor)
    return FabricationSaved(id=made.id, reference=request.reference, revision=request.revision, stage=made.stage,
                            material=made.material, lab=made.lab)


class FitRequest(Request):
    reference: str
    revision: int
    comfort: int  # socket comfort score 0-10 (10 most comfortable)
    feedback: dict[str, str] = {}  # area (a landmark, brim or general) -> what was noted
    gait: str = ""
    adjustments: list[str] = []  # 'relieve LANDMARK MM', 'push LANDMARK MM', 'reduce proximal|distal|all PCT'


class FittingSaved(Result):
    id: int
    revision: int
    comfort: int
    child: Optional[RevisionSaved]  # the revision the adjustments made, if any


def fit(store: Store, request: FitRequest, actor: str, progress: Progress = silent) -> FittingSaved:
    """Record a fitting (step 5); its adjustments become the plan of a child revision, built and saved with it."""
    from socketcad.clinic.fitting import fit as record

    progress("building the adjusted socket" if request.adjustments else "recording")
    fitting, child = record(store, request.reference, request.revision, request.comfort, dict(request.feedback),
                            request.gait, list(request.adjustments), actor=actor)
    saved = None if child is None else RevisionSaved(id=child.id, reference=request.reference, parent=child.parent_id,
                                                     socket_hash=child.socket_hash, note=child.note)
    return FittingSaved(id=fitting.id, revision=request.revision, comfort=fitting.comfort, child=saved)


class DeliverRequest(Request):
    reference: str
    revision: int
    taught: list[str] = []  # checklist items gone through: don_doff, socks_liners, skin_inspection, care
    note: str = ""


class DeliverySaved(Result):
    id: int
    revision: int
    checklist: dict[str, bool]
    warnings: list[str]


def deliver(store: Store, request: DeliverRequest, actor: str) -> DeliverySaved:
    """Record the delivery of a socket and the education given (step 7)."""
    from socketcad.clinic.records import deliver as record

    delivery, warnings = record(store, request.reference, request.revision, list(request.taught), request.note,
                                actor=actor)
    return DeliverySaved(id=delivery.id, revision=request.revision, checklist=dict(delivery.checklist),
                         warnings=list(warnings))


class FollowUpRequest(Request):
    reference: str
    source: Source  # the follow-up scan
    socks_ply: int = Field(0, ge=0, le=15)  # sock ply worn now
    baseline: Optional[int] = None  # scan id to compare with [the delivered revision's scan]
    units: Optional[str] = None


class FollowUpSaved(FollowUpComparison):
    """A follow-up kept: its record, and the comparison with its baseline (volume, regions, circumferences,
    sock advice)."""

    id: int
    reference: str
    scan: int
    baseline_scan: int


def follow_up(store: Store, request: FollowUpRequest, actor: str, progress: Progress = silent) -> FollowUpSaved:
    """Compare a follow-up scan with the baseline: volume, regional and circumference changes, sock advice."""
    from socketcad.clinic.records import follow_up as record

    progress("registering the scans and comparing")
    with readable(request.source) as path:
        saved = record(store, request.reference, path, request.socks_ply, request.baseline, request.units,
                       actor=actor)
    return FollowUpSaved(id=saved.id, reference=request.reference, scan=saved.scan_id,
                         baseline_scan=saved.baseline_scan_id, **saved.result)


class DiffRequest(Request):
    reference: str
    first: int  # revision A
    second: int  # revision B
    map_file: Optional[Path] = None  # A's rectified model coloured by B's deviation (PLY)


class RevisionDiff(RevisionChanges):
    """What changed from revision A to B (the plan, the spec, the rectified model: mm, + more room in B), and
    the map written."""

    written: list[str]


def diff(store: Store, request: DiffRequest, progress: Progress = silent) -> RevisionDiff:
    """What changed from revision A to B: plan, spec and a deviation map of the rectified model."""
    import trimesh

    from socketcad.clinic.diff import deviation_colours, diff_revisions

    if request.map_file is not None:
        check_output(request.map_file, ("ply",))
    progress("rectifying both")
    summary, deviation, surface = diff_revisions(store, request.reference, request.first, request.second)
    if request.map_file is not None:
        coloured = trimesh.Trimesh(surface.vertices, surface.faces, vertex_colors=deviation_colours(deviation),
                                   process=False)
        io.write_atomic(request.map_file, lambda tmp: coloured.export(tmp, file_type="ply"))
    return RevisionDiff(**dict(summary), written=[str(request.map_file)] if request.map_file else [])


class CaseExported(Result):
    reference: str
    revisions: int
    files: int
    written: list[str]


def export_case(store: Store, reference: str, output: Path, actor: str) -> CaseExported:
    """Write the whole case (records and files) as one archive, for a fabrication lab or another clinic."""
    from socketcad.clinic.archive import export_case as export

    check_output(output, ("zip",))
    manifest = export(store, reference, output, actor=actor)
    return CaseExported(reference=reference, revisions=len(manifest["revisions"]), files=len(manifest["files"]),
                        written=[str(output)])


class CaseImported(Result):
    reference: str
    archive: str


def import_case(store: Store, archive: Path, actor: str) -> CaseImported:
    """Add a case from an archive (checked whole first: a damaged archive changes nothing)."""
    from socketcad.clinic.archive import import_case as add

    case = add(store, archive, actor=actor)
    return CaseImported(reference=case.reference, archive=str(archive))

