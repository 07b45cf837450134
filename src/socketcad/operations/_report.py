"""Reports: a design's from its files, a case revision's from the store; one self-contained HTML page and
its PDF, both or neither."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from socketcad.biomech.interface import read_analysis
from socketcad.design.fabrication import check_built_for, output_paths, read_sheet
from socketcad.design.pipeline import prepared_limb
from socketcad.design.rectify import rectify as apply_plan
from socketcad.design.templates import TemplateInputs, template_plan
from socketcad.errors import InputError
from socketcad.geometry import io
from socketcad.clinic.store import Store
from socketcad.operations._common import Capture, Progress, Request, Result, Source, check_output, load, silent
from socketcad.operations._design import PlanInput, plan_of, rectified

__all__ = ["CaseReportRequest", "DesignReportRequest", "ReportWritten", "report_case", "report_design"]


class DesignReportRequest(Request):
    source: Source  # the limb the socket was built for
    capture: Capture = Capture()
    socket: Path  # the socket STL a build wrote, its -sheet.json beside it
    template: Optional[str] = None  # the template it was rectified with (its plan for this limb is shown)
    plan: Optional[PlanInput] = None  # or the plan
    analysis: Optional[Path] = None  # the folder `analyze` wrote (interface-summary.json, interface-maps.npz)
    evaluation: Optional[Path] = None  # an evaluation form (YAML/JSON, as `case evaluate` takes)
    reference: str = ""  # the case's reference shown on every page (no names) [the socket file's name]
    output: Path  # the HTML page; the PDF is written beside it (same name, .pdf)
    pdf: bool = True


class ReportWritten(Result):
    """The report's files, its figures and PDF pages, and how long it took (s)."""

    html: str
    pdf: Optional[str]
    pages: int
    figures: int
    seconds: float


def report_paths(output: Path, pdf: bool) -> tuple[Path, Path | None]:
    """(HTML, PDF or None) paths of a report written to ``output`` (.html), checked before any work."""
    if check_output(output, ("html",), "report") != "html":
        raise InputError(f"{output}: a report is written as .html (its PDF beside it)")
    return output, output.with_suffix(".pdf") if pdf else None


def report_design(request: DesignReportRequest, progress: Progress = silent) -> ReportWritten:
    """The report of one design from its files: evaluation, capture, rectification, socket sheet, wall
    strength, interface pressure and shear, with their pictures."""
    from socketcad.clinic.records import evaluation_form
    from socketcad.report.document import write_report
    from socketcad.report.reports import Design, design_report

    started = time.perf_counter()
    html_path, pdf_path = report_paths(request.output, request.pdf)
    if request.template is not None and request.plan is not None:
        raise InputError("give at most one of `template` or `plan`")
    sheet_path = output_paths(request.socket)["sheet"] if request.socket.suffix.lower() == ".stl" else None
    if sheet_path is None or not sheet_path.exists():
        raise InputError(f"{request.socket}: give the socket .stl a build wrote, with its -sheet.json beside it")
    sheet = read_sheet(sheet_path)
    analysis = read_analysis(request.analysis) if request.analysis is not None else None
    plan = plan_of(request.plan)
    limb = prepared_limb(load(request.source, request.capture, progress), plan)
    evaluation = None
    if request.evaluation is not None:
        data = io.read_mapping_file(request.evaluation, "evaluation", "k_level: K3, sensitive_areas: [...]")
        evaluation = evaluation_form(data, limb.level)
    if not request.capture.force:
        check_built_for(sheet, limb, str(request.socket))
    if analysis is not None and analysis[1].vertices != len(limb.skin.vertices):
        raise InputError(f"{request.analysis}: its maps have {analysis[1].vertices} values and the limb's skin "
                         f"{len(limb.skin.vertices)} vertices: give the analysis of this limb")
    if request.template is not None:
        plan = template_plan(request.template, limb, TemplateInputs(
            liner_thickness_mm=sheet.liner.thickness_mm,
            sensitive_areas=tuple(evaluation.sensitive_areas) if evaluation is not None else ()))
    progress("rectifying")
    rectification = apply_plan(limb, plan) if plan is not None else None
    design = Design(limb, rectification, rectified(rectification, []) if rectification is not None else None,
                    io.read_mesh(request.socket), sheet, analysis)
    progress("drawing the pictures")
    document = design_report(design, request.reference or request.socket.stem, evaluation)
    progress("writing the report")
    written = write_report(document, html_path, pdf_path)
    return ReportWritten(html=str(written.html), pdf=None if written.pdf is None else str(written.pdf),
                         pages=written.pages, figures=len(document.figures),
                         seconds=round(time.perf_counter() - started, 1))


class CaseReportRequest(Request):
    reference: str  # the case
    revision: Optional[int] = None  # the revision reported [the case's newest]; it must have an analysis
    output: Path  # the HTML page; the PDF is written beside it (same name, .pdf)
    pdf: bool = True


def report_case(store: Store, request: CaseReportRequest, progress: Progress = silent) -> ReportWritten:
    """The report of one revision of a case: its evaluation, capture, rectification, socket, wall, interface
    analysis (stored: `case analyze`), fitting history, revision tree and follow-ups."""
    from socketcad.anatomy.landmarks import locate_landmarks
    from socketcad.clinic.cases import history
    from socketcad.clinic.reporting import change_map, followup_material, revision_material
    from socketcad.operations._clinic import stored_analysis
    from socketcad.report.document import write_report
    from socketcad.report.plots import VolumePoint
    from socketcad.report.reports import CaseFollowUps, Design, case_report as case_document

    started = time.perf_counter()
    html_path, pdf_path = report_paths(request.output, request.pdf)
    progress("reading the case")
    material = revision_material(store, request.reference, request.revision)
    stored = stored_analysis(store, request.reference, material.revision)  # refused here when there is none
    limb = prepared_limb(material.limb, material.plan)
    if stored.maps.vertices != len(limb.skin.vertices):
        raise InputError(f"case {request.reference!r} revision {material.revision}: its stored analysis does not fit "
                         "the revision's limb; analyse the revision again")
    rectification = apply_plan(limb, material.plan)
    design = Design(limb, rectification, rectified(rectification, []), material.socket, material.sheet,
                    (stored.summary, stored.maps))
    visits = followup_material(store, request.reference)
    points = tuple((VolumePoint(v.date, v.comparison.volume_change_pct, v.comparison.socks_ply_worn, v.comparison.advice),
                    v.comparison) for v in visits)
    change = None
    if visits:
        newest = visits[-1]
        baseline = locate_landmarks(newest.baseline)
        change = (baseline, change_map(baseline, newest.later, newest.comparison), newest.date)
    progress("drawing the pictures")
    document = case_document(history(store, request.reference), material.revision, design, material.evaluation,
                             CaseFollowUps(points, change))
    progress("writing the report")
    written = write_report(document, html_path, pdf_path)
    return ReportWritten(html=str(written.html), pdf=None if written.pdf is None else str(written.pdf),
                         pages=written.pages, figures=len(document.figures),
                         seconds=round(time.perf_counter() - started, 1))
