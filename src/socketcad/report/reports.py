"""The two reports: a design's (limb, plan, socket, sheet, analysis: from files) and a case's (the same for
one revision, with the evaluation, the fitting history, the revision tree and the follow-ups, from the store).
Each is a document.Report; document.write_report writes it as HTML and PDF."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np
import trimesh

from socketcad import __version__
from socketcad.anatomy.limb import Limb
from socketcad.biomech.interface import InterfaceMaps, InterfaceSummary
from socketcad.design.fabrication import FabricationSheet
from socketcad.design.rectify import Rectification
from socketcad.report import pictures, sections
from socketcad.report.document import Report, Section
from socketcad.report.plots import VolumePoint

if TYPE_CHECKING:
    from socketcad.clinic.cases import CaseHistory
    from socketcad.clinic.followup import FollowUpComparison
    from socketcad.clinic.records import EvaluationForm
    from socketcad.operations._design import Rectified

__all__ = ["CaseFollowUps", "Design", "case_report", "design_report"]


@dataclass(frozen=True)
class Design:
    """One design and its results: the limb as captured (landmarks located), its rectification (None: the
    socket was built on the limb as it is) with its typed summary, the socket solid and sheet, and the
    interface analysis (None: not analysed)."""

    limb: Limb
    rectification: Rectification | None
    rectified: Rectified | None
    solid: trimesh.Trimesh
    sheet: FabricationSheet
    analysis: tuple[InterfaceSummary, InterfaceMaps] | None


@dataclass(frozen=True)
class CaseFollowUps:
    """A case's follow-ups in time order (each a trend point and its comparison), and the newest one's
    change map: (baseline limb, change (n,) mm on its skin, NaN where not compared, its date)."""

    points: tuple[tuple[VolumePoint, FollowUpComparison], ...]
    change: tuple[Limb, np.ndarray, str] | None


def _design_sections(design: Design) -> list[Section]:
    found = [sections.capture_section(design.limb)]
    if design.rectification is not None and design.rectified is not None:
        found.append(sections.rectification_section(design.rectification, design.rectified))
    else:
        found.append(Section("Rectification", ("The socket was built on the limb as captured: no plan.",)))
    found += [sections.socket_section(design.solid, design.sheet, design.limb.side),
              sections.strength_section(design.sheet)]
    if design.analysis is None:
        found.append(Section("Dynamic fitting: interface pressure and shear",
                             ("Not analysed: an interface analysis of this socket on this limb gives its pressure "
                              "and shear.",)))
    else:
        found.append(sections.interface_section(design.limb, *design.analysis))
    return found


def _facts(design: Design) -> tuple[tuple[str, str], ...]:
    sheet = design.sheet
    peaks = "not analysed"
    if design.analysis is not None:
        summary = design.analysis[0]
        peaks = ", ".join(f"{pictures.CASE_TITLES.get(n, n)} {c.peak_pressure_kpa:.0f} kPa"
                          for n, c in summary.cases.items() if n != "donning")
        peaks += " (quick preview: reads low)" if summary.quick else ""
    return (("limb", f"{design.limb.level}, {design.limb.side}"),
            ("socket", f"{sheet.socket_type.upper()} {sheet.stage} socket, {sheet.material.name}, "
                       f"{sheet.liner.name}, {sheet.closure.name}"),
            ("peak pressures", peaks),
            ("made", f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by socketcad {__version__}"))


def design_report(design: Design, reference: str, evaluation: EvaluationForm | None = None) -> Report:
    """The report of one design: evaluation (if given), capture, rectification, socket, wall, interface."""
    return Report(title="Socket design report", reference=reference,
                  subtitle="Prepared for the prosthetist and the fabrication lab; no patient names are held.",
                  sections=(sections.evaluation_section(evaluation), *_design_sections(design)), facts=_facts(design))


def case_report(history: CaseHistory, revision: int, design: Design, evaluation: EvaluationForm | None,
                followups: CaseFollowUps) -> Report:
    """The report of one revision of a case: the design report with the case's evaluation, fitting history,
    revision tree and follow-ups."""
    evaluated = f"Recorded {history.evaluations[-1].created_at[:10]} by {history.evaluations[-1].by}." \
        if history.evaluations else ""
    body = (sections.evaluation_section(evaluation, evaluated), *_design_sections(design),
            sections.history_section(history, revision),
            sections.followup_section(followups.points, followups.change))
    facts = (("case", f"{history.reference}, opened {history.created_at[:10]}"), ("revision", str(revision)),
             *_facts(design))
    return Report(title="Socket case report", reference=history.reference,
                  subtitle=f"Revision {revision} of case {history.reference}; no patient names are held.",
                  sections=body, facts=facts)
