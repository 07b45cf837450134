"""The report's sections, one per result, from the typed results the operations return and the geometry
they were computed on: pictures, tables (units in every header) and the validated / estimate statements
each result carries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import trimesh

from socketcad.anatomy.limb import Limb
from socketcad.biomech.interface import InterfaceMaps, InterfaceSummary
from socketcad.clinic.fitting import Adjustment
from socketcad.design.fabrication import FabricationSheet
from socketcad.design.rectify import Rectification
from socketcad.report import pictures
from socketcad.report.document import Section, Table
from socketcad.report.plots import VolumePoint
from socketcad.report.unrolled import SurfaceSampling

if TYPE_CHECKING:  # the operations' results; operations import this package, not the other way round
    from socketcad.clinic.cases import CaseHistory
    from socketcad.clinic.followup import FollowUpComparison
    from socketcad.clinic.records import EvaluationForm
    from socketcad.operations._design import Rectified

__all__ = ["capture_section", "evaluation_section", "followup_section", "history_section", "interface_section",
           "rectification_section", "socket_section", "strength_section"]


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def evaluation_section(form: EvaluationForm | None, recorded: str = "") -> Section:
    """Step 1: the newest evaluation as recorded (no names: the case is known by its reference)."""
    if form is None:
        return Section("Evaluation", ("No evaluation is recorded for this design.",))
    rows = [("K-level", form.k_level), ("mobility grade", form.mobility_grade or "-"),
            ("history", form.history or "-"), ("limb condition", form.limb_condition or "-"),
            ("skin", form.skin or "-"),
            ("sensitive areas", ", ".join(pictures.label(a) for a in form.sensitive_areas) or "none"),
            ("strength (MRC 0-5)", ", ".join(f"{k} {v}" for k, v in form.strength_mrc.items()) or "-"),
            ("range of motion (deg)", ", ".join(f"{k} {v:g}" for k, v in form.range_of_motion_deg.items()) or "-"),
            ("lifestyle", form.lifestyle or "-"), ("goals", form.goals or "-")]
    return Section("Evaluation", (recorded,) if recorded else (), (Table(("item", "recorded"), tuple(rows)),))


def capture_section(limb: Limb) -> Section:
    """Step 2: where the limb came from, how it was read (units, frame, clean-up) and its landmarks."""
    top = float(limb.skin.vertices[:, 2].max())
    facts = (f"Source: {limb.source}. Level {limb.level}, {limb.side} side, {top:.0f} mm long from the distal end; "
             f"units: {limb.units.how}.",
             "Bones: " + (", ".join(limb.bones) if limb.bones else "none in the scan (an analysis fits the "
                                                                    "OpenLimbTT mean bones)") + ".")
    rows = tuple((pictures.label(m.name), f"{m.point_mm[2]:.1f}", m.how) for m in limb.landmarks.values())
    table = Table(("landmark", "height above distal end (mm)", "how it was found"), rows)
    return Section("Shape capture", facts, (table,), tuple(pictures.limb_figures(limb)),
                   notes=tuple(limb.notes))


def rectification_section(rectification: Rectification, summary: Rectified) -> Section:
    """Step 3: the plan's modifications as asked and as the surface took them, volumes, the deviation map."""
    rows = tuple((str(m.index + 1), m.kind, m.label, pictures.label(m.landmark) if m.landmark else "-",
                  _number(m.target_mm), _number(m.centre_deviation_mm), _number(m.core_deviation_min_mm),
                  _number(m.core_deviation_max_mm), _number(m.area_cm2)) for m in summary.modifications)
    table = Table(("#", "kind", "label", "landmark", "asked (mm)", "at centre (mm)", "core min (mm)",
                   "core max (mm)", "area (cm2)"), rows, "deviation + outwards (relief), - inwards (load)")
    said = (f"Plan '{summary.plan}': {len(rows)} modifications. Volume {summary.volume_before_cm3:.0f} cm3 -> "
            f"{summary.volume_after_cm3:.0f} cm3 ({summary.volume_change_pct:+.1f} %); deviation "
            f"{summary.deviation_min_mm:+.1f} to {summary.deviation_max_mm:+.1f} mm.",)
    figures = pictures.deviation_figures(rectification.limb, rectification.skin, rectification.deviation_mm)
    notes = (summary.rectification_validated, *summary.sources, *summary.assumptions)
    return Section("Rectification", said, (table,), tuple(figures), notes=notes)


def socket_section(solid: trimesh.Trimesh, sheet: FabricationSheet, side: str) -> Section:
    """Step 4/6: the fabrication sheet and the socket's pictures."""
    rows = (("socket type", sheet.socket_type.upper()), ("stage", sheet.stage),
            ("material", f"{sheet.material.name} ({sheet.material.id})"),
            ("liner", f"{sheet.liner.name}, {sheet.liner.thickness_mm:g} mm (offset {sheet.liner.offset_mm:g} mm)"),
            ("closure", f"{sheet.closure.name} ({sheet.closure.kind})"),
            ("adapter", f"{sheet.adapter.name}, {len(sheet.adapter.bolt_holes_mm)} bolt holes of "
                        f"{sheet.adapter.bolt_hole_diameter_mm:g} mm"),
            ("wall thickness", f"{sheet.wall_thickness_mm:g} mm"), ("distal floor", f"{sheet.distal_floor_mm:g} mm"),
            ("mass", f"{sheet.mass_g:.0f} g ({sheet.material_volume_cm3:.0f} cm3)"),
            ("size", " x ".join(f"{v:.0f}" for v in sheet.size_mm) + " mm"),
            ("print orientation", sheet.print_orientation),
            ("checks", f"watertight: {'yes' if sheet.checks.watertight else 'NO'}; self-intersecting face pairs: "
                       f"{sheet.checks.self_intersecting_face_pairs}"))
    trim = tuple((pictures.label(p.name), f"{p.angle_deg:+.0f}", pictures.label(p.landmark), f"{p.offset_mm:+.0f}")
                 for p in sheet.trimline)
    openings = tuple((o.name, f"{o.diameter_mm:g}") for o in sheet.openings)
    tables = (Table(("item", "specification"), rows),
              Table(("trimline point", "angle (deg, + lateral)", "landmark", "offset (mm)"), trim),
              Table(("opening", "diameter (mm)"), openings))
    return Section("Socket and fabrication sheet", (), tables, tuple(pictures.socket_figures(solid, sheet, side)),
                   notes=(*sheet.notes, *sheet.validated, *sheet.estimates))


def strength_section(sheet: FabricationSheet) -> Section:
    """Step 6: the wall under ISO 10328 proof loads, if it was checked."""
    strength = sheet.wall_strength
    if strength is None:
        return Section("Wall strength", ("The wall was not checked under ISO 10328 loads: check it (a build's "
                                         "`strength`) before the socket is walked on.",))
    rows = tuple((name, f"{c.force_n:.0f}", f"{c.peak_von_mises_mpa:.1f}", f"{c.max_deflection_mm:.2f}",
                  f"{c.safety_factor:.2f}") for name, c in (("heel strike", strength.heel_strike),
                                                              ("push-off", strength.push_off)))
    table = Table(("ISO 10328 proof load", "force (N)", "peak von Mises (MPa)", "max deflection (mm)",
                   "safety factor"), rows, flagged=frozenset(i for i, c in enumerate(
                       (strength.heel_strike, strength.push_off)) if c.safety_factor < 1.0))
    said = (f"Level {strength.iso_10328_level}; material strength {strength.material_strength_mpa:g} MPa "
            f"({strength.strength_basis}).",)
    return Section("Wall strength", said, (table,), notes=(strength.validated, strength.estimates))


def interface_section(limb: Limb, summary: InterfaceSummary, maps: InterfaceMaps) -> Section:
    """Step 5: pressure and shear per load case and per region against its tolerance, with the maps."""
    cases = tuple((pictures.CASE_TITLES.get(name, name), f"{c.peak_pressure_kpa:.0f}", f"{c.sensel_peak_kpa:.0f}",
                   f"{c.mean_pressure_kpa:.0f}", f"{c.peak_shear_kpa:.0f}", f"{c.contact_force_n:.0f}",
                   "yes" if c.converged else "NO") for name, c in summary.cases.items())
    tables = [Table(("load case", "peak pressure (kPa)", "sensel peak (kPa)", "mean pressure (kPa)",
                     "peak shear (kPa)", "contact force (N)", "converged"), cases)]
    for name, case in summary.cases.items():
        if not case.regions:
            continue
        rows = tuple((pictures.label(r.region), r.kind, f"{r.tolerance_kpa:.0f}", f"{r.peak_kpa:.0f}",
                      f"{r.sensel_peak_kpa:.0f}", f"{r.mean_kpa:.0f}", "OVER" if r.over_tolerance else "within")
                     for r in case.regions)
        flagged = frozenset(i for i, r in enumerate(case.regions) if r.over_tolerance)
        tables.append(Table(("region", "kind", "tolerance (kPa)", "peak (kPa)", "sensel peak (kPa)", "mean (kPa)",
                             "against tolerance"), rows, f"{pictures.CASE_TITLES.get(name, name)}", flagged))
    said = [f"{'Quick preview (coarse mesh, standing only)' if summary.quick else 'Full analysis'}: "
            f"{summary.dofs:,} unknowns, {summary.elements:,} elements; liner {summary.liner_thickness_mm:g} mm; "
            f"sensel {summary.sensel}."]
    if summary.pistoning_mm is not None:
        said.append(f"Pistoning from standing to swing pull-off: {summary.pistoning_mm:.1f} mm.")
    if summary.stance_rotation_deg is not None:
        said.append(f"Rotation about the long axis in stance: {summary.stance_rotation_deg:.1f} degrees.")
    sampling = SurfaceSampling.for_grid(limb.skin, pictures.ANGLE_STEP_DEG, pictures.HEIGHT_STEP_MM)  # shared by the maps
    figures = (pictures.pressure_figures(limb, maps, summary, sampling=sampling)
               + pictures.shear_figures(limb, maps, summary, sampling=sampling))
    return Section("Dynamic fitting: interface pressure and shear", tuple(said), tuple(tables), tuple(figures),
                   notes=(*summary.notes, *summary.validated, *summary.estimates))


def history_section(history: CaseHistory, reported: int) -> Section:
    """The case's revision tree, fittings, fabrications and deliveries."""
    children: dict[int | None, list] = {}
    for revision in history.revisions:
        children.setdefault(revision.parent, []).append(revision)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for r in children.get(parent, []):
            mark = "  <- this report" if r.id == reported else ""
            lines.append(f"{'    ' * depth}revision {r.id}: {r.socket_type.upper()}, {r.template or 'own plan'}, "
                         f"{r.liner}, K{r.k_level} ({r.created_at[:10]}, {r.by}){' - ' + r.note if r.note else ''}{mark}")
            walk(r.id, depth + 1)

    walk(None, 0)
    fittings = tuple((str(f.revision), f.created_at[:10], f"{f.comfort}/10",
                      "; ".join(f"{pictures.label(k)}: {v}" for k, v in f.feedback.items()) or "-",
                      "; ".join(str(Adjustment(**a)) for a in f.adjustments) or "-",
                      str(f.child_revision) if f.child_revision else "-") for f in history.fittings)
    made = tuple((str(f.revision), f.created_at[:10], f.stage, f.material, f.lab) for f in history.fabrications)
    delivered = tuple((str(d.revision), d.created_at[:10],
                       ", ".join(k.replace("_", " ") for k, done in d.checklist.items() if done) or "-",
                       ", ".join(k.replace("_", " ") for k, done in d.checklist.items() if not done) or "none")
                      for d in history.deliveries)
    tables = (Table(("revision", "date", "comfort (0-10)", "feedback", "adjustments", "made revision"), fittings,
                    "fittings"),
              Table(("revision", "date", "stage", "material", "lab"), made, "fabrications"),
              Table(("revision", "date", "taught", "not taught"), delivered, "deliveries"))
    return Section("Fitting history and revision tree", ("\n".join(lines) or "No revision.",), tables)


def followup_section(points: Sequence[tuple[VolumePoint, FollowUpComparison]], change: tuple[Limb, np.ndarray, str] | None
                     ) -> Section:
    """Step 7: each follow-up's changes and advice, the newest one's change map, and the volume trend."""
    if not points:
        return Section("Follow-up", ("No follow-up is recorded yet.",))
    rows = tuple((p.date, f"{c.volume_change_pct:+.1f}", f"{c.mean_radial_change_mm:+.1f}",
                  f"{c.registration_rms_mm:.2f}", str(c.socks_ply_worn), c.advice) for p, c in points)
    table = Table(("date", "volume change (%)", "mean radial change (mm)", "registration RMS (mm)",
                   "socks worn (ply)", "advice"), rows, flagged=frozenset(
                       i for i, (_, c) in enumerate(points) if c.advice == "new socket"))
    newest = points[-1][1]
    said = ("Newest: " + "; ".join(newest.reasons),)
    figures = [pictures.volume_figure([p for p, _ in points])]
    if change is not None:
        figures = pictures.change_figures(*change) + figures
    return Section("Follow-up", said, (table,), tuple(figures),
                   notes=(*newest.notes, *newest.sources, newest.estimate))
