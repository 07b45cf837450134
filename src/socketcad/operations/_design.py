"""Modification and the socket (steps 3, 4, 6): rectify a limb, build a socket, check its wall; the demo."""

from __future__ import annotations

import io as _io
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from pydantic import Field, model_validator

from socketcad.biomech.wall import iso_level, socket_wall_strength
from socketcad.design.components import SelectionInputs, propose_system
from socketcad.design.fabrication import FabricationSheet, WallStrength, fabrication_sheet, output_paths, \
    write_socket_outputs
from socketcad.design.pipeline import Designed, complete_spec, design_socket, prepared_limb
from socketcad.design.plan import RectificationPlan, read_plan, write_plan
from socketcad.design.rectify import Rectification, rectify as apply_plan, region_table
from socketcad.design.socket import SocketSpec
from socketcad.design.templates import template_plan
from socketcad.errors import InputError
from socketcad.geometry import io
from socketcad.report.document import write_report
from socketcad.operations._common import (Capture, LimbInfo, Progress, Request, Result, Source, check_output, limb_info,
                                          load, silent)
from socketcad.operations._capture import Inspection, LandmarkPoints, landmark_overrides, write_profile_csv

__all__ = ["BuildRequest", "DemoRequest", "DemoResult", "ModificationRow", "RectifyRequest", "Rectified",
           "SocketBuilt", "SpecFields", "build", "demo", "rectify", "wall_strength"]

PlanInput = Union[Path, RectificationPlan]
"""A rectification plan: a YAML/JSON file, or the plan itself."""


def plan_of(plan: PlanInput | None) -> RectificationPlan | None:
    """The plan itself: read from its file, or as given."""
    return read_plan(plan) if isinstance(plan, Path) else plan


class RectifyRequest(Request):
    source: Source
    capture: Capture = Capture()
    template: Optional[str] = None  # a socket type's template (see design.socket_types)
    plan: Optional[PlanInput] = None  # or a plan
    liner_thickness_mm: Optional[float] = None  # templates: the TSB reduction [6]
    bar_depth_mm: Optional[float] = None  # templates: the PTB/KBM patellar tendon bar [8]
    sensitive_areas: tuple[str, ...] = ()  # templates: landmarks to relieve
    landmarks: Union[Path, LandmarkPoints, None] = None  # landmark overrides
    output: Path  # the rectified limb (a surface format, mm)
    deviation_csv: Optional[Path] = None  # per-vertex signed deviation map (mm, + outwards)
    save_plan: Optional[Path] = None  # also write the plan used (YAML/JSON)

    @model_validator(mode="after")
    def _one_start(self):
        if (self.template is None) == (self.plan is None):
            raise ValueError("give exactly one of `template` or `plan`")
        if self.plan is not None and (self.liner_thickness_mm is not None or self.bar_depth_mm is not None
                                      or self.sensitive_areas):
            raise ValueError("`liner_thickness_mm`, `bar_depth_mm` and `sensitive_areas` shape a template; "
                             "with a plan, edit the plan instead")
        return self


class ModificationRow(Result):
    """What a modification asked and what the surface did (mm, + outwards; cm2). Pushes and reliefs sit on
    the reduced shape and their depth is measured from it; 'deviation' adds what the reductions took."""

    index: int
    kind: str
    label: str
    landmark: Optional[str] = None
    target_mm: Optional[float] = None
    centre_over_reduced_mm: Optional[float] = None
    core_over_reduced_min_mm: Optional[float] = None
    core_over_reduced_max_mm: Optional[float] = None
    centre_deviation_mm: Optional[float] = None
    reduction_at_centre_mm: Optional[float] = None
    core_deviation_min_mm: Optional[float] = None
    core_deviation_max_mm: Optional[float] = None
    area_cm2: Optional[float] = None
    note: Optional[str] = None


class Rectified(LimbInfo):
    """A rectification: volumes, deviation range and the effect of each modification."""

    plan: str
    volume_before_cm3: float
    volume_after_cm3: float
    volume_change_pct: float
    deviation_min_mm: float
    deviation_max_mm: float
    modifications: list[ModificationRow]
    sources: list[str]
    assumptions: list[str]
    rectification_validated: str
    written: list[str]


def rectify(request: RectifyRequest, progress: Progress = silent) -> Rectified:
    """Modify a limb model by a plan or a socket-type template: pushes, reliefs, reductions, flare, smoothing."""
    from socketcad.design.templates import TemplateInputs

    check_output(request.output, io.MESH_FORMATS)
    for path, allowed in ((request.deviation_csv, ("csv",)), (request.save_plan, io.DATA_FORMATS)):
        if path is not None:
            check_output(path, allowed)
    plan = plan_of(request.plan)
    limb = prepared_limb(load(request.source, request.capture, progress), plan, landmark_overrides(request.landmarks))
    if plan is None:
        given = {"liner_thickness_mm": request.liner_thickness_mm, "bar_depth_mm": request.bar_depth_mm}
        inputs = TemplateInputs(sensitive_areas=request.sensitive_areas,
                                **{k: v for k, v in given.items() if v is not None})
        plan = template_plan(request.template, limb, inputs)
    progress("rectifying")
    result = apply_plan(limb, plan)
    written = [str(p) for p in (request.output, request.deviation_csv, request.save_plan) if p is not None]
    summary = rectified(result, written)  # everything computed before the first file is written
    with io.all_or_none():
        io.write_mesh(result.skin, request.output)
        if request.deviation_csv is not None:
            write_deviation_csv(result, request.deviation_csv)
        if request.save_plan is not None:
            write_plan(plan, request.save_plan)
    return summary


def rectified(result: Rectification, written: list[str]) -> Rectified:
    """The typed summary of a rectification."""
    return Rectified(
        **limb_info(result.limb), plan=result.plan.name, volume_before_cm3=result.volume_before_mm3 / 1000.0,
        volume_after_cm3=result.volume_after_mm3 / 1000.0, volume_change_pct=result.volume_change_pct,
        deviation_min_mm=float(result.deviation_mm.min()), deviation_max_mm=float(result.deviation_mm.max()),
        modifications=[ModificationRow(**row) for row in region_table(result)],
        sources=list(result.plan.sources), assumptions=list(result.plan.assumptions),
        rectification_validated="deviations and volumes are exact for the triangle surfaces; depths, sizes and "
                                "reductions are the plan's (templates: indicative values and assumptions, listed)",
        written=written)


def write_deviation_csv(result: Rectification, path: Path) -> None:
    """Per-vertex deviation map: rectified position and signed deviation (mm, + outwards), atomically."""
    buffer = _io.StringIO()
    buffer.write("vertex,x_mm,y_mm,z_mm,deviation_mm\n")
    rows = np.column_stack([result.skin.vertices, result.deviation_mm])
    np.savetxt(buffer, np.column_stack([np.arange(len(rows)), rows]), delimiter=",",
               fmt=["%d", "%.4f", "%.4f", "%.4f", "%.4f"])
    io.write_atomic(path, lambda tmp: tmp.write_text(buffer.getvalue()))


class SpecFields(Request):
    """Socket spec fields given one by one; each overrides the spec file's."""

    socket_type: Optional[str] = None
    liner: Optional[str] = None
    closure: Optional[str] = None
    adapter: Optional[str] = None  # [the selection rule's for the closure and level]
    material: Optional[str] = None
    stage: Optional[str] = None
    k_level: Optional[Union[int, str]] = None
    wall_thickness_mm: Optional[float] = None
    trim_offsets_mm: dict[str, float] = {}

    def merged(self, spec_file: Path | None, template: str | None = None) -> dict[str, Any]:
        """The spec file's fields with these over them; the socket type, if none is given, the template's."""
        fields = io.read_mapping_file(spec_file, "socket spec", "socket_type: tsb, liner: ...") if spec_file else {}
        given = self.model_dump(exclude_none=True)
        if not given.get("trim_offsets_mm"):
            given.pop("trim_offsets_mm", None)
        fields.update(given)
        if fields.get("socket_type") is None and template is not None:
            fields["socket_type"] = template.lower()
        return fields


class BuildRequest(Request):
    source: Source  # the limb, or a rectified model
    capture: Capture = Capture()
    template: Optional[str] = None  # rectify first with this template (also the socket type)
    plan: Optional[PlanInput] = None  # or with this plan
    spec_file: Optional[Path] = None  # a socket spec (YAML/JSON)
    spec: SpecFields = SpecFields()  # fields over the spec file's
    landmarks: Union[Path, LandmarkPoints, None] = None
    output: Path = Path("socket.stl")  # the socket STL; 3MF, inner-surface AOP and sheet beside it
    strength: bool = False  # also check the wall under ISO 10328 loads (FE, seconds)
    body_mass_kg: float = Field(80.0, allow_inf_nan=False)  # for the strength check

    @model_validator(mode="after")
    def _one_start(self):
        if self.template is not None and self.plan is not None:
            raise ValueError("give at most one of `template` or `plan`")
        return self


class SocketBuilt(FabricationSheet):
    """The fabrication sheet of the socket built, and the files written (by kind: stl, 3mf, aop, sheet)."""

    written: dict[str, str] = {}


def _designed(request: BuildRequest, progress: Progress) -> Designed:
    plan = plan_of(request.plan)
    fields = request.spec.merged(request.spec_file, request.template)
    limb = prepared_limb(load(request.source, request.capture, progress), plan, landmark_overrides(request.landmarks))
    spec = complete_spec(fields, limb.level)
    progress("building the socket")
    return design_socket(limb, spec, plan, request.template)


def build(request: BuildRequest, progress: Progress = silent) -> SocketBuilt:
    """Build a test or definitive socket: liner offset, trimline, wall, distal adapter; STL + 3MF + AOP + sheet."""
    if check_output(request.output, io.MESH_FORMATS) != "stl":
        raise InputError(f"{request.output}: the socket is written as .stl (with .3mf, -inner.aop and -sheet.json "
                         "beside it)")
    for path in output_paths(request.output).values():
        check_output(path, (path.suffix.lstrip("."),))
    if request.strength:
        iso_level(request.body_mass_kg)  # refused before the build, not after it
    socket = _designed(request, progress).socket
    strength = None
    if request.strength:
        progress("checking the wall (FE)")
        strength = socket_wall_strength(socket, request.body_mass_kg)
    sheet = fabrication_sheet(socket, strength)
    paths = write_socket_outputs(socket, request.output, sheet)
    return SocketBuilt(**dict(sheet), written={kind: str(path) for kind, path in paths.items()})


def wall_strength(request: BuildRequest, progress: Progress = silent) -> WallStrength:
    """The wall of the socket ``request`` describes under ISO 10328 proof loads, without writing files."""
    iso_level(request.body_mass_kg)
    socket = _designed(request, progress).socket
    progress("checking the wall (FE)")
    return socket_wall_strength(socket, request.body_mass_kg)


DEMO_TEMPLATE = {"transtibial": "ptb", "transfemoral": "subischial"}


class DemoRequest(Request):
    out: Path = Path("out/demo")  # folder for the outputs
    sample: str = "sample:openlimb-tt-mean"
    mesh_cache: Optional[Path] = None  # folder of kept tissue meshes for the quick analysis (None: mesh anew)
    report: bool = True  # also the quick interface analysis and the design report (HTML and PDF)


class DemoResult(Result):
    inspection: Inspection
    component_reasons: list[str]
    sheet: FabricationSheet
    written: list[str]
    report: Optional[str] = None  # the report's HTML page, when written


def demo(request: DemoRequest, progress: Progress = silent) -> DemoResult:
    """The main job on a sample limb: measures, the level's template, the components the selection rules
    propose for a K3 walker with intact skin and stable volume, a test socket; every output written."""
    from socketcad.anatomy.export import write_limb
    from socketcad.anatomy.measures import measure_limb

    out = request.out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    limb = load(request.sample, Capture(), progress)
    measures = measure_limb(limb)
    inspection = Inspection(**limb_info(limb), **measures.as_dict())
    limb = prepared_limb(limb)
    proposal = propose_system(SelectionInputs(
        level=limb.level, k_level=3, residual_length_mm=float(limb.skin.vertices[:, 2].max()),
        skin_condition="intact", volume_stability="stable", hand_dexterity="good"))
    template = DEMO_TEMPLATE[limb.level]
    spec = SocketSpec(socket_type=template, liner=proposal.liner.id, closure=proposal.closure.id,
                      adapter=proposal.adapter.id, material="petg", stage="test", k_level=3)
    progress("building the socket")
    designed = design_socket(limb, spec, template=template)
    socket, sheet = designed.socket, fabrication_sheet(designed.socket)
    limb_files = [out / f"limb.{fmt}" for fmt in ("stl", "3mf", "aop")]
    report_document = analysis = None
    if request.report:
        analysis, report_document = _demo_report(limb, designed, sheet, request.mesh_cache, progress)
    with io.all_or_none():  # every output, or none
        for path in limb_files:
            write_limb(limb, path, path.suffix[1:])
        write_profile_csv(measures, out / "profile.csv")
        io.write_atomic(out / "measures.json", lambda tmp: tmp.write_text(inspection.model_dump_json(indent=2)))
        paths = write_socket_outputs(socket, out / "socket.stl", sheet)
        written = [*limb_files, out / "profile.csv", out / "measures.json", *paths.values()]
        if report_document is not None:
            written += analysis.save(out / "analysis").values()
            report = write_report(report_document, out / "report.html", out / "report.pdf")
            written += [report.html, report.pdf]
    return DemoResult(inspection=inspection, component_reasons=list(proposal.reasons), sheet=sheet,
                      written=[str(path) for path in written],
                      report=str(out / "report.html") if report_document is not None else None)


def _demo_report(limb, designed: Designed, sheet: FabricationSheet, mesh_cache: Path | None, progress: Progress):
    """The demo socket's quick interface analysis and its design report (not yet written)."""
    from socketcad.biomech.analysis import analyse_socket
    from socketcad.report.reports import Design, design_report

    progress("quick interface analysis")
    analysis = analyse_socket(limb, designed.socket.solid, sheet, 80.0, 3, cache=mesh_cache, step=progress, quick=True)
    progress("drawing the report")
    design = Design(limb, designed.rectification, rectified(designed.rectification, []), designed.socket.solid, sheet,
                    (analysis.summary(), analysis.maps()))
    return analysis, design_report(design, "DEMO-001")
