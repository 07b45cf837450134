"""What a viewer shows of a case: surfaces with one value per vertex (deviation mm, pressure kPa, change mm), the
landmarks, sections, a live rectification preview, the component proposal with its reasons, and the stored files
to download. Arrays travel as base64 of little-endian float32/uint32, the form a browser's typed arrays read."""

from __future__ import annotations

import base64
import json
import re
import tempfile
from pathlib import Path
from typing import Annotated, Literal, Optional

import numpy as np
from pydantic import Field, model_validator

from socketcad.clinic.diff import RevisionChanges
from socketcad.clinic.store import Store
from socketcad.errors import InputError
from socketcad.operations._common import Request, Result
from socketcad.operations._design import PlanInput, Rectified, plan_of, rectified

__all__ = ["AnalysisView", "DiffView", "Download", "FollowUpView", "diff_view", "followup_view", "LandmarkPoint", "LandmarkMoved", "MoveLandmarkRequest", "Preview",
           "PreviewRequest", "ProposalView", "ProposeRequest", "RegionRow", "Scale", "ScanView", "SectionView",
           "SocketView", "Surface", "analysis_view", "download", "download_name", "move_landmark", "preview", "propose", "scan_view",
           "section", "socket_view", "surface_of"]

Finite = Annotated[float, Field(allow_inf_nan=False)]
DOWNLOADS = {"socket.stl": "model/stl", "socket.3mf": "model/3mf", "sheet.json": "application/json"}


class Scale(Result):
    """How values map to colours: ``low``..``high`` in ``unit``; viridis (a magnitude) or diverging (signed)."""

    low: float
    high: float
    unit: str
    colours: Literal["viridis", "diverging"]
    label: str


class Surface(Result):
    """A triangle surface, limb frame mm: positions float32 (n, 3), faces uint32 (m, 3), values float32 (n,) in
    the scale's unit (NaN: no value), base64 little-endian."""

    vertex_count: int
    face_count: int
    positions_b64: str
    faces_b64: str
    values_b64: Optional[str] = None
    scale: Optional[Scale] = None


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def surface_of(mesh, values: np.ndarray | None = None, scale: Scale | None = None) -> Surface:
    """A trimesh (and one value per vertex) as a viewer's Surface."""
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    return Surface(vertex_count=len(vertices), face_count=len(faces), positions_b64=_b64(vertices, "<f4"),
                   faces_b64=_b64(faces, "<u4"), values_b64=None if values is None else _b64(values, "<f4"),
                   scale=scale)


def _signed_scale(values: np.ndarray, unit: str, label: str) -> Scale:
    finite = values[np.isfinite(values)]
    reach = float(np.abs(finite).max()) if finite.size else 1.0
    return Scale(low=-max(reach, 0.1), high=max(reach, 0.1), unit=unit, colours="diverging", label=label)


class LandmarkPoint(Result):
    name: str
    point_mm: tuple[float, float, float]  # limb frame
    how: str
    placed: bool  # by hand (a LandmarkMove), not located


class ScanView(Result):
    """A case's scan in the limb frame: its skin (no values), landmarks, and what the frame is."""

    scan: int
    level: str
    side: str
    units: str
    length_mm: float  # distal end (z = 0) to the highest skin point
    surface: Surface
    landmarks: list[LandmarkPoint]
    notes: list[str]


def _landmarks(limb, placed: dict) -> list[LandmarkPoint]:
    return [LandmarkPoint(name=name, point_mm=tuple(float(v) for v in mark.point_mm), how=mark.how,
                          placed=name in placed) for name, mark in limb.landmarks.items()]


def scan_view(store: Store, reference: str, scan: int | None = None) -> ScanView:
    """The case's scan (default: its newest) with its landmarks, as the viewer shows it."""
    from socketcad.clinic.landmarks import scan_limb

    read = scan_limb(store, reference, scan)
    limb = read.limb
    return ScanView(scan=read.scan_id, level=limb.level, side=limb.side, units=limb.units.unit,
                    length_mm=float(limb.skin.vertices[:, 2].max()), surface=surface_of(limb.skin),
                    landmarks=_landmarks(limb, read.placed), notes=list(limb.notes))


class MoveLandmarkRequest(Request):
    reference: str
    scan: int
    name: str
    point_mm: tuple[Finite, Finite, Finite]  # limb frame; snapped to the skin


class LandmarkMoved(Result):
    id: int
    scan: int
    name: str
    point_mm: tuple[float, float, float]  # where it was placed, on the skin
    landmarks: list[LandmarkPoint]  # all of the scan's now


def move_landmark(store: Store, request: MoveLandmarkRequest, actor: str) -> LandmarkMoved:
    """Place a landmark of a case's scan by hand (kept as a record; a design of the scan keeps it in its plan)."""
    from socketcad.clinic.landmarks import move_landmark as place, scan_limb

    move, _ = place(store, request.reference, request.scan, request.name, request.point_mm, actor=actor)
    read = scan_limb(store, request.reference, request.scan)
    return LandmarkMoved(id=move.id, scan=request.scan, name=move.name, point_mm=tuple(move.point_mm),
                         landmarks=_landmarks(read.limb, read.placed))


class SectionView(Result):
    """The skin's section at ``level_mm`` above the distal end (mm, mm2)."""

    scan: int
    level_mm: float
    circumference_mm: float
    area_mm2: float
    ap_width_mm: float
    ml_width_mm: float


def section(store: Store, reference: str, scan: int | None, level_mm: float) -> SectionView:
    """The circumference and widths of the case's scan at a height (the tape measure's reading)."""
    from socketcad.clinic.landmarks import scan_limb
    from socketcad.geometry.measure import profile

    read = scan_limb(store, reference, scan)
    top = float(read.limb.skin.vertices[:, 2].max())
    if not 0.0 < level_mm < top:
        raise InputError(f"level_mm: {level_mm:g} is outside the limb (0-{top:.0f} mm above the distal end)")
    cut = profile(read.limb.skin, np.array([level_mm]))[0]
    return SectionView(scan=read.scan_id, level_mm=level_mm, circumference_mm=float(cut.circumference_mm),
                       area_mm2=float(cut.area_mm2), ap_width_mm=float(cut.ap_width_mm),
                       ml_width_mm=float(cut.ml_width_mm))


class PreviewRequest(Request):
    reference: str
    scan: Optional[int] = None  # [the case's newest]
    template: Optional[str] = None  # start: the template's plan for this limb (the evaluation's sensitive areas relieved)
    plan: Optional[PlanInput] = None  # or the plan as edited
    liner: Optional[str] = None  # the liner the template's reduction allows for [the template's default]

    @model_validator(mode="after")
    def _one_start(self):
        if (self.template is None) == (self.plan is None):
            raise ValueError("give one of `template` or `plan`")
        return self


class Preview(Result):
    """A rectification of the case's scan, not saved: the plan (the template's, or as given, with the scan's
    placed landmarks), the rectification's summary (volumes, deviation range, the effect of each modification),
    and the rectified skin coloured by deviation (mm, + outwards, a relief)."""

    scan: int
    plan: dict
    rectified: Rectified
    surface: Surface


def preview(store: Store, request: PreviewRequest) -> Preview:
    """Rectify the case's scan by a template or an edited plan, without saving (the editor's live preview)."""
    from socketcad.clinic.cases import find_case, with_placed_landmarks
    from socketcad.clinic.landmarks import scan_limb
    from socketcad.design.components import load_catalogue
    from socketcad.design.pipeline import prepared_limb
    from socketcad.design.rectify import rectify as apply_plan
    from socketcad.design.templates import TemplateInputs, template_plan

    read = scan_limb(store, request.reference, request.scan)
    limb = read.limb
    if request.template is not None:
        with store.transaction() as db:
            case = find_case(db, request.reference)
            sensitive = tuple(case.evaluations[-1].form["sensitive_areas"]) if case.evaluations else ()
        liner = {"liner_thickness_mm": load_catalogue().liner(request.liner).thickness_mm} if request.liner else {}
        plan = template_plan(request.template, limb, TemplateInputs(sensitive_areas=sensitive, **liner))
    else:
        plan = plan_of(request.plan)
    plan = with_placed_landmarks(plan, read.placed)
    if plan.landmarks != read.placed:  # the plan's own placements: locate them (the kept limb has the scan's)
        limb = prepared_limb(limb, plan)
    result = apply_plan(limb, plan)
    deviation = np.asarray(result.deviation_mm)
    return Preview(scan=read.scan_id, plan=plan.as_dict(), rectified=rectified(result, []),
                   surface=surface_of(result.skin, deviation, _signed_scale(deviation, "mm", "deviation (+ relief)")))


class ProposeRequest(Request):
    reference: str
    scan: Optional[int] = None
    skin_condition: Literal["intact", "fragile", "scarred", "grafted", "adherent_scar"] = "intact"
    volume_stability: Literal["stable", "fluctuating", "maturing"] = "stable"
    hand_dexterity: Literal["good", "limited"] = "good"
    k_level: Optional[str] = None  # [the newest evaluation's]


class ProposalView(Result):
    """The liner, closure and adapter the selection rules propose, with the reason of each rule that applied."""

    liner: str
    closure: str
    adapter: str
    k_level: int
    residual_length_mm: float
    reasons: list[str]


def propose(store: Store, request: ProposeRequest) -> ProposalView:
    """The components the selection rules propose for the case (its level, K-level, residual length)."""
    from socketcad.clinic.cases import find_case
    from socketcad.clinic.landmarks import scan_limb
    from socketcad.design.components import SelectionInputs, k_level_number, propose_system

    with store.transaction() as db:
        case = find_case(db, request.reference)
        grade = request.k_level or (case.evaluations[-1].k_level if case.evaluations else None)
    if grade is None:
        raise InputError("k_level: give the K-level (K0-K4), or record an evaluation first")
    limb = scan_limb(store, request.reference, request.scan).limb
    length = float(limb.skin.vertices[:, 2].max())
    number = k_level_number(grade)
    proposal = propose_system(SelectionInputs(level=limb.level, k_level=number, residual_length_mm=length,
                                              skin_condition=request.skin_condition,
                                              volume_stability=request.volume_stability,
                                              hand_dexterity=request.hand_dexterity))
    return ProposalView(liner=proposal.liner.id, closure=proposal.closure.id, adapter=proposal.adapter.id,
                        k_level=number, residual_length_mm=length, reasons=list(proposal.reasons))


class SocketView(Result):
    """A revision's socket as stored (limb frame, mm), its spec (what a change of it starts from) and its
    fabrication sheet."""

    revision: int
    surface: Surface
    spec: dict
    sheet: dict
    downloads: list[str]


def socket_view(store: Store, reference: str, revision: int) -> SocketView:
    from socketcad.clinic.analyses import stored_socket
    from socketcad.clinic.cases import find_case, revision_of

    with store.transaction() as db:
        stored = revision_of(db, find_case(db, reference), revision)
        spec, socket_hash, sheet_hash = dict(stored.spec), stored.socket_hash, stored.sheet_hash
    socket, sheet = stored_socket(store.files.get(socket_hash), store.files.get(sheet_hash))  # no scan to read
    return SocketView(revision=revision, surface=surface_of(socket), spec=spec,
                      sheet=sheet.model_dump(mode="json", exclude_none=True), downloads=list(DOWNLOADS))


class RegionRow(Result):
    region: str
    kind: str
    tolerance_kpa: float
    peak_kpa: float
    sensel_peak_kpa: float
    over_tolerance: bool
    point_mm: tuple[float, float, float]  # its peak vertex, limb frame


class AnalysisView(Result):
    """A revision's newest analysis, one load case: the limb's skin coloured by pressure or shear (kPa), the
    tolerance regions (over-tolerance ones flagged), the load cases there are, and what is validated."""

    analysis: int
    revision: int
    quick: bool
    load_case: str
    load_cases: list[str]
    map: str
    peak_kpa: float
    peak_point_mm: tuple[float, float, float]
    surface: Surface
    regions: list[RegionRow]
    validated: list[str]
    estimates: list[str]


def analysis_view(store: Store, reference: str, revision: int, load_case: str | None = None,
                  kind: Literal["pressure", "shear"] = "pressure") -> AnalysisView:
    """The heat map of one load case of a revision's newest analysis (default: its first loaded case, the first
    after donning)."""
    from socketcad.operations._clinic import stored_analysis

    found = stored_analysis(store, reference, revision)
    cases = list(found.summary.cases)
    loaded = [name for name, case in found.summary.cases.items() if case.regions is not None]  # not donning
    name = load_case or (loaded or cases)[0]
    if name not in cases:
        raise InputError(f"load_case {name!r}: this analysis has {', '.join(cases)}")
    maps = found.maps
    values = np.asarray((maps.pressure_kpa if kind == "pressure" else maps.shear_kpa)[name], dtype=float)
    skin = _revision_skin(store, reference, revision)
    if len(skin.vertices) != len(values):
        raise InputError(f"case {reference!r} revision {revision}: its analysis maps do not match its scan")
    case = found.summary.cases[name]
    peak = int(np.nanargmax(values))
    regions = []
    for index, region in enumerate(case.regions or []):
        inside = np.flatnonzero(maps.region_label == index)
        at = int(inside[np.argmax(values[inside])]) if inside.size else peak
        regions.append(RegionRow(region=region.region, kind=region.kind, tolerance_kpa=region.tolerance_kpa,
                                 peak_kpa=region.peak_kpa, sensel_peak_kpa=region.sensel_peak_kpa,
                                 over_tolerance=region.over_tolerance,
                                 point_mm=tuple(float(v) for v in skin.vertices[at])))
    scale = Scale(low=0.0, high=max(float(np.nanmax(values)), 1.0), unit="kPa", colours="viridis",
                  label=f"{kind} ({name})")
    return AnalysisView(analysis=found.id, revision=revision, quick=found.quick, load_case=name, load_cases=cases,
                        map=kind, peak_kpa=float(values[peak]), peak_point_mm=tuple(float(v) for v in skin.vertices[peak]),
                        surface=surface_of(skin, values, scale), regions=regions,
                        validated=found.summary.validated, estimates=found.summary.estimates)


def _revision_skin(store: Store, reference: str, revision: int):
    """The skin a revision was designed on, as its analysis maps it: its scan as read (kept in memory by
    clinic.landmarks; the placed landmarks move no vertex), without reading its socket."""
    from socketcad.clinic.cases import find_case, revision_of
    from socketcad.clinic.landmarks import scan_limb

    with store.transaction() as db:
        scan_id = revision_of(db, find_case(db, reference), revision).scan_id
    return scan_limb(store, reference, scan_id).limb.skin


def download_name(reference: str, revision: int, name: str) -> str:
    """The file name a download of a revision's file is offered under: ASCII only (it goes into an HTTP header
    and onto a file system), the reference's other characters as '_'."""
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', reference)}-r{revision}-{name}"


class Download(Result):
    filename: str
    media_type: str
    data: bytes


def download(store: Store, reference: str, revision: int, name: str) -> Download:
    """A stored file of a revision: its socket (STL as built, or 3MF written from it) or its fabrication sheet."""
    from socketcad.clinic.cases import find_case, revision_of
    from socketcad.geometry import io

    if name not in DOWNLOADS:
        raise InputError(f"file {name!r}: one of {', '.join(DOWNLOADS)}")
    with store.transaction() as db:
        stored = revision_of(db, find_case(db, reference), revision)
        socket_hash, sheet_hash = stored.socket_hash, stored.sheet_hash
    data = store.files.get(sheet_hash if name == "sheet.json" else socket_hash)
    if name == "socket.3mf":
        with tempfile.TemporaryDirectory() as folder:
            stl, out = Path(folder) / "socket.stl", Path(folder) / "socket.3mf"
            stl.write_bytes(data)
            sheet = json.loads(store.files.get(sheet_hash))
            io.write_mesh(io.read_mesh(stl), out, metadata={"socketcad:revision": str(revision),
                                                            "socketcad:socket_type": str(sheet.get("socket_type", ""))})
            data = out.read_bytes()
    return Download(filename=download_name(reference, revision, name), media_type=DOWNLOADS[name], data=data)


class DiffView(Result):
    """What changed from revision A to B (plan and spec lines, deviation by region), and A's rectified model
    coloured by B's deviation from it (mm, + where B gives the limb more room)."""

    changes: RevisionChanges
    surface: Surface


def diff_view(store: Store, reference: str, first: int, second: int) -> DiffView:
    from socketcad.clinic.diff import diff_revisions

    changes, deviation, skin = diff_revisions(store, reference, first, second)
    return DiffView(changes=changes, surface=surface_of(skin, deviation, _signed_scale(
        deviation, "mm", f"revision {second} - revision {first} (+ more room)")))


class FollowUpView(Result):
    """The newest follow-up: its date, volume change (%) and advice, and the baseline skin coloured by the change
    (mm, + the limb grew; no value above the part compared)."""

    date: str
    volume_change_pct: float
    advice: str
    compared_below_mm: float
    surface: Surface


def followup_view(store: Store, reference: str) -> FollowUpView:
    from socketcad.clinic.reporting import change_map, followup_material

    found = followup_material(store, reference)
    if not found:
        raise InputError(f"case {reference!r} has no follow-up yet: compare a later scan first")
    newest = found[-1]
    change = change_map(newest.baseline, newest.later, newest.comparison)
    return FollowUpView(date=newest.date, volume_change_pct=newest.comparison.volume_change_pct,
                        advice=newest.comparison.advice, compared_below_mm=newest.comparison.compared_below_mm,
                        surface=surface_of(newest.baseline.skin, change,
                                           _signed_scale(change, "mm", "change since the baseline (+ grew)")))
