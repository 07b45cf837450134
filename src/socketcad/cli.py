"""socketcad command line: a thin shell over the library.

Exit codes: 0 success, 2 bad input (one line on stderr naming the file and the
problem), 1 an internal error (one line; set SOCKETCAD_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import csv
import dataclasses
import io as _io
import json
import math
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape as escape_markup
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from socketcad.anatomy.limb import CaptureOptions, Limb, load_limb
from socketcad.anatomy.measures import LimbMeasures, measure_limb
from socketcad.anatomy.samples import SAMPLES
from socketcad.design.components import parse_k_level
from socketcad.errors import InputError, SocketcadError, printable
from socketcad.geometry import io, measure
from socketcad.geometry.units import UNITS

app = typer.Typer(
    help="socketcad: design custom prosthetic sockets from a residual-limb scan. "
    "Every FILE may also be sample:NAME (see 'socketcad samples').",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[400/450]" and "[3]" are defaults, not markup
)
out = Console()
err = Console(stderr=True)

UnitsOption = typer.Option(None, "--units", help=f"Units of the file ({', '.join(UNITS)}); detected if omitted.")
ReferenceOption = typer.Option(
    None, "--reference-length-mm", help="Intact tibia/femur length for normalised (OpenLimb) shapes [400/450]."
)
SideOption = typer.Option(None, "--side", help="left or right; detected from bones or the file if omitted.")
FlipOption = typer.Option(False, "--flip-side", help="Mirror the limb to the other side.")
AnteriorOption = typer.Option(
    None, "--anterior", help="Anterior direction in file coordinates, as X,Y,Z (e.g. 0,-1,0)."
)
KeepAxisOption = typer.Option(False, "--keep-axis", help="Use the file's +z as the long axis (scanner-aligned).")
LevelOption = typer.Option(None, "--level", help="transtibial or transfemoral; guessed from the bones if omitted.")
ForceOption = typer.Option(False, "--force", help="Go on with a shape outside the human range (wrong units, not a limb).")


def parse_anterior(anterior: Optional[str]) -> tuple[float, float, float] | None:
    """--anterior X,Y,Z as three floats; InputError for a malformed one."""
    if not anterior:
        return None
    try:
        vector = tuple(float(value) for value in anterior.split(","))
    except ValueError:
        vector = ()
    if len(vector) != 3 or not all(math.isfinite(v) for v in vector) or not any(vector):
        raise InputError(f"--anterior '{anterior}' is not a direction: give three finite numbers X,Y,Z, not all 0")
    return vector


def capture_options(units, reference, side, flip, anterior, keep_axis, level, **extra) -> CaptureOptions:
    """CaptureOptions from CLI values; InputError for a malformed --anterior."""
    return CaptureOptions(
        units=units, reference_length_mm=reference, side=side, flip_side=flip,
        anterior=parse_anterior(anterior), keep_axis=keep_axis, level=level, **extra,
    )


@contextmanager
def steps(title: str) -> Iterator:
    """A rich progress display (on a terminal) whose ``step(name)`` marks each stage."""
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=err, transient=True, disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task(title, total=None)
        yield lambda name: progress.update(task, description=f"{title}: {name}")


def load(source: str, options: CaptureOptions) -> Limb:
    with steps(Path(source).name if not source.startswith("sample:") else source) as step:
        return load_limb(source, options, step)


@app.command()
def samples() -> None:
    """List the sample limbs shipped with socketcad (use them as sample:NAME)."""
    table = Table(title="socketcad samples")
    # The name is what users type: never cut it short, let the other columns wrap instead.
    longest = max(len(f"sample:{name}") for name in SAMPLES)
    table.add_column("name", no_wrap=True, min_width=longest)
    table.add_column("level", no_wrap=True, min_width=max(len(s.level) for s in SAMPLES.values()))
    table.add_column("units", no_wrap=True)
    table.add_column("what", overflow="fold")
    table.add_column("licence", overflow="fold")
    for sample in SAMPLES.values():
        table.add_row(f"sample:{sample.name}", sample.level, sample.units, sample.description, sample.licence)
    out.print(table)


@app.command()
def catalogue(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")) -> None:
    """The component catalogue: liners, closures, adapters and wall materials, by the ids options take."""
    from socketcad.design.components import load_catalogue

    parts = load_catalogue()
    if as_json:
        out.print_json(parts.model_dump_json())
        return
    tables = {
        "liners (--liner)": (("id", "name", "kind", "thickness mm", "material"),
                             [(p.id, p.name, p.kind, f"{p.thickness_mm:g}", p.material) for p in parts.liners]),
        "closures (--closure)": (("id", "name", "kind", "liners it takes", "levels"),
                                 [(p.id, p.name, p.kind, ", ".join(p.liner_kinds), ", ".join(p.levels))
                                  for p in parts.closures]),
        "adapters (--adapter)": (("id", "name", "kind", "bolt circle mm", "mass g"),
                                 [(p.id, p.name, p.kind, f"{p.bolt_circle_diameter_mm:g}", f"{p.mass_g:g}")
                                  for p in parts.adapters]),
        "wall materials (--material)": (("id", "name", "E MPa", "strength MPa", "wall mm K0-K4"),
                                        [(p.id, p.name, f"{p.youngs_modulus_mpa:g}", f"{p.strength_mpa:g}",
                                          "/".join(f"{p.thickness_mm_by_k_level[k]:g}" for k in sorted(p.thickness_mm_by_k_level)))
                                         for p in parts.materials]),
    }
    for title, (columns, rows) in tables.items():
        table = Table(title=title)
        for column in columns:
            table.add_column(column, no_wrap=column == "id")  # ids are typed back: never broken
        for row in rows:
            table.add_row(*(escape(str(cell)) for cell in row))
        out.print(table)


@app.command()
def inspect(
    file: str = typer.Argument(..., help="Limb scan: STL, OBJ, PLY, OFF, 3MF, AOP or sample:NAME."),
    step_mm: float = typer.Option(10.0, "--step-mm", help="Profile spacing in mm."),
    start: str = typer.Option("distal", "--from", help="Level the profile steps count from: distal, brim or a file landmark (e.g. MPT)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Also write the profile as CSV here."),
    units: Optional[str] = UnitsOption,
    reference: Optional[float] = ReferenceOption,
    side: Optional[str] = SideOption,
    flip: bool = FlipOption,
    anterior: Optional[str] = AnteriorOption,
    keep_axis: bool = KeepAxisOption,
    level: Optional[str] = LevelOption,
    force: bool = ForceOption,
) -> None:
    """Measure a residual limb: volume (brim capped), area, length and a cross-section profile."""
    if csv_path is not None:
        check_output(csv_path, ("csv",))
    limb = load(file, capture_options(units, reference, side, flip, anterior, keep_axis, level, force=force))
    measures = measure_limb(limb, step_mm, start)
    if csv_path is not None:
        write_profile_csv(measures, csv_path)
    if as_json:
        out.print_json(json.dumps(limb_summary(limb) | measures.as_dict()))
        return
    print_measures(limb, measures)
    if csv_path is not None:
        say(f"profile written to {csv_path}")


@app.command()
def convert(
    source: str = typer.Argument(..., help="Input: STL, OBJ, PLY, OFF, 3MF, AOP or sample:NAME."),
    target: Path = typer.Argument(..., help="Output: .stl, .obj, .ply, .off, .3mf or .aop (millimetres)."),
    keep_pose: bool = typer.Option(False, "--keep-pose", help="Keep the input's position and orientation (default: the anatomical frame)."),
    raw: bool = typer.Option(False, "--raw", help="No clean-up: keep debris, holes and every part as read."),
    remesh_mm: Optional[float] = typer.Option(None, "--remesh-mm", help="Isotropic remesh of the skin to this edge length (mm)."),
    spokes: int = typer.Option(72, "--spokes", help="AOP output: number of spokes."),
    slice_mm: float = typer.Option(2.0, "--slice-mm", help="AOP output: slice spacing in mm."),
    ascii_stl: bool = typer.Option(False, "--ascii", help="STL output: write ASCII instead of binary."),
    units: Optional[str] = UnitsOption,
    reference: Optional[float] = ReferenceOption,
    side: Optional[str] = SideOption,
    flip: bool = FlipOption,
    anterior: Optional[str] = AnteriorOption,
    keep_axis: bool = KeepAxisOption,
    level: Optional[str] = LevelOption,
    force: bool = ForceOption,
) -> None:
    """Convert a limb between formats, in millimetres, cleaned and in the anatomical frame."""
    fmt = check_output(target, io.MESH_FORMATS + ("aop",))
    options = capture_options(
        units, reference, side, flip, anterior, keep_axis, level, clean=not raw, remesh_edge_mm=remesh_mm, force=force,
    )
    limb = load(source, options)
    from socketcad.anatomy.export import write_limb

    write_limb(limb, target, fmt, keep_pose=keep_pose, spokes=spokes, slice_mm=slice_mm, ascii_stl=ascii_stl)
    for note in limb.notes:
        err.print(f"[dim]{escape(note)}[/dim]", soft_wrap=True)
    say(f"wrote {target}")


@app.command()
def tape(
    measures_file: str = typer.Argument(..., help="Tape measures: YAML or JSON (see README), or sample:NAME."),
    output: Path = typer.Option(..., "--output", "-o", help="Limb surface to write: .stl, .obj, .ply, .off or .3mf (millimetres)."),
    ascii_stl: bool = typer.Option(False, "--ascii", help="STL output: write ASCII instead of binary."),
) -> None:
    """Build a smooth limb surface from tape measurements (circumferences, length, AP/ML widths)."""
    from socketcad.anatomy.tape import read_tape, tape_limb

    check_output(output, io.MESH_FORMATS)
    measures = read_tape(measures_file)
    limb = tape_limb(measures, measures_file)
    io.write_mesh(limb.skin, output, ascii_stl=ascii_stl)
    volume_cm3 = measure.enclosed_volume_mm3(limb.skin) / 1000.0
    say(
        f"wrote {output}: {measures.level} limb from {len(measures.circumferences_mm)} circumferences, "
        f"{volume_cm3:,.1f} cm3 (brim capped), {measures.residual_length_mm:g} mm from {measures.reference} "
        f"to the distal end, {measures.distal_shape} end"
    )


@app.command()
def landmarks(
    file: str = typer.Argument(..., help="Limb: STL, OBJ, PLY, OFF, 3MF, AOP or sample:NAME."),
    landmark_file: Optional[Path] = typer.Option(None, "--landmarks", help="YAML/JSON {name: [x, y, z]} (frame, mm) overriding found landmarks."),
    skin_only: bool = typer.Option(False, "--skin-only", help="Find landmarks from the skin shape even when bones are present."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    units: Optional[str] = UnitsOption,
    reference: Optional[float] = ReferenceOption,
    side: Optional[str] = SideOption,
    flip: bool = FlipOption,
    anterior: Optional[str] = AnteriorOption,
    keep_axis: bool = KeepAxisOption,
    level: Optional[str] = LevelOption,
    force: bool = ForceOption,
) -> None:
    """Find the anatomical landmarks of a limb (from bones, else the skin) and say how each was found."""
    limb = load(file, capture_options(units, reference, side, flip, anterior, keep_axis, level, force=force))
    limb = with_landmarks(limb, landmark_file, use_bones=not skin_only)
    rows = [{"name": m.name, "x_mm": float(m.point_mm[0]), "y_mm": float(m.point_mm[1]),
             "z_mm": float(m.point_mm[2]), "how": m.how} for m in limb.landmarks.values()]
    if as_json:
        out.print_json(json.dumps(limb_summary(limb) | {"landmarks": rows}))
        return
    table = Table(title=f"{escape(limb.source)}: landmarks (frame: z up from the distal end, y anterior, x right; mm)")
    for column in ("landmark", "x mm", "y mm", "z mm", "how found"):
        table.add_column(column, justify="right" if column.endswith("mm") else "left", overflow="fold")
    for row in rows:
        table.add_row(row["name"], f"{row['x_mm']:.1f}", f"{row['y_mm']:.1f}", f"{row['z_mm']:.1f}", escape(row["how"]))
    out.print(table)


def with_landmarks(limb: Limb, landmark_file: Optional[Path], use_bones: bool = True) -> Limb:
    from socketcad.anatomy.landmarks import locate_landmarks, read_landmark_file

    overrides = read_landmark_file(landmark_file) if landmark_file is not None else None
    return locate_landmarks(limb, overrides, use_bones=use_bones)


@app.command()
def rectify(
    file: str = typer.Argument(..., help="Limb: STL, OBJ, PLY, OFF, 3MF, AOP or sample:NAME."),
    output: Path = typer.Option(..., "--output", "-o", help="Rectified limb: .stl, .obj, .ply, .off or .3mf (mm)."),
    template: Optional[str] = typer.Option(None, "--template", help="Start from a socket-type template: ptb, tsb, kbm (transtibial); ic, quad, subischial (transfemoral)."),
    plan_file: Optional[Path] = typer.Option(None, "--plan", help="Rectification plan (YAML/JSON); see 'socketcad rectify --save-plan'."),
    report: Optional[Path] = typer.Option(None, "--report", help="Per-vertex signed deviation map (CSV, mm, + outwards)."),
    save_plan: Optional[Path] = typer.Option(None, "--save-plan", help="Also write the plan used (YAML/JSON), to edit and re-run."),
    liner_mm: Optional[float] = typer.Option(None, "--liner-mm", help="Templates: liner thickness (TSB reduction), mm [6]."),
    bar_mm: Optional[float] = typer.Option(None, "--bar-mm", help="Templates: PTB/KBM patellar tendon bar depth, mm [8]."),
    sensitive: Optional[str] = typer.Option(None, "--sensitive", help="Pressure-sensitive landmarks to relieve, comma-separated (e.g. fibular_head,distal_tibia)."),
    landmark_file: Optional[Path] = typer.Option(None, "--landmarks", help="YAML/JSON {name: [x, y, z]} (frame, mm) overriding found landmarks."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    units: Optional[str] = UnitsOption,
    reference: Optional[float] = ReferenceOption,
    side: Optional[str] = SideOption,
    flip: bool = FlipOption,
    anterior: Optional[str] = AnteriorOption,
    keep_axis: bool = KeepAxisOption,
    level: Optional[str] = LevelOption,
    force: bool = ForceOption,
) -> None:
    """Modify a limb model by a plan or a socket-type template: pushes, reliefs, reductions, flare, smoothing."""
    from socketcad.design.plan import read_plan, write_plan
    from socketcad.design.rectify import rectify as apply_plan, with_plan_facts
    from socketcad.design.templates import TemplateInputs, template_plan

    if (template is None) == (plan_file is None):
        raise InputError("give exactly one of --template NAME or --plan FILE")
    if plan_file is not None and (liner_mm is not None or bar_mm is not None or sensitive):
        raise InputError("--liner-mm, --bar-mm and --sensitive shape a template; with --plan, edit the plan instead")
    check_output(output, io.MESH_FORMATS)
    for path, formats in ((report, ("csv",)), (save_plan, io.DATA_FORMATS)):
        if path is not None:
            check_output(path, formats)
    plan = read_plan(plan_file) if plan_file is not None else None
    areas = tuple(name.strip() for name in (sensitive or "").split(",") if name.strip())
    inputs = TemplateInputs(liner_mm if liner_mm is not None else 6.0, areas, bar_mm if bar_mm is not None else 8.0)
    limb = load(file, capture_options(units, reference, side, flip, anterior, keep_axis, level, force=force))
    limb = with_landmarks(with_plan_facts(limb, plan), landmark_file)
    if plan is None:
        plan = template_plan(template, limb, inputs)
    result = apply_plan(limb, plan)
    summary = rectification_summary(result)  # everything computed before the first file is written
    with io.all_or_none():
        io.write_mesh(result.skin, output)
        if report is not None:
            write_deviation_csv(result, report)
        if save_plan is not None:
            write_plan(plan, save_plan)
    print_rectification(result, summary, as_json)
    if not as_json:
        say(f"wrote {output}" + (f", {report}" if report else "") + (f", {save_plan}" if save_plan else ""))


@app.command()
def build(
    file: str = typer.Argument(..., help="Limb or rectified model: STL, OBJ, PLY, OFF, 3MF, AOP or sample:NAME."),
    output: Path = typer.Option(..., "--output", "-o", help="Socket STL; the 3MF, inner-surface AOP and fabrication sheet are written beside it."),
    template: Optional[str] = typer.Option(None, "--template", help="Rectify first with this template (also the socket type): ptb, tsb, kbm; ic, quad, subischial."),
    plan_file: Optional[Path] = typer.Option(None, "--plan", help="Rectify first with this plan (YAML/JSON)."),
    socket_type: Optional[str] = typer.Option(None, "--type", help="Socket type (trimline) if not given by --template: ptb, tsb, kbm, ic, quad, subischial."),
    spec_file: Optional[Path] = typer.Option(None, "--spec", help="Socket spec (YAML/JSON); options below override its fields."),
    liner: Optional[str] = typer.Option(None, "--liner", help="Liner id from the catalogue (see 'socketcad catalogue')."),
    closure: Optional[str] = typer.Option(None, "--closure", help="Closure (suspension) id from the catalogue."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="Distal adapter id [lock_housing_4h for a pin lock, else four_hole_43]."),
    material: Optional[str] = typer.Option(None, "--material", help="Wall material id [petg]."),
    stage: Optional[str] = typer.Option(None, "--stage", help="test or definitive [test]."),
    k_level: Optional[str] = typer.Option(None, "--k-level", help="Mobility grade K0-K4, as K3 or 3 (wall thickness, load level) [3]."),
    wall_mm: Optional[float] = typer.Option(None, "--wall-mm", help="Wall thickness, mm [the material's default for the K-level]."),
    trim: Optional[list[str]] = typer.Option(None, "--trim", help="Trimline offset edit NAME=MM (repeatable), e.g. --trim posterior=-5."),
    strength: bool = typer.Option(False, "--strength", help="Also check the wall under ISO 10328 loads by FE (adds seconds)."),
    body_mass_kg: float = typer.Option(80.0, "--body-mass", help="With --strength: body mass, kg (ISO 10328 level)."),
    landmark_file: Optional[Path] = typer.Option(None, "--landmarks", help="YAML/JSON {name: [x, y, z]} (frame, mm) overriding found landmarks."),
    as_json: bool = typer.Option(False, "--json", help="Print the fabrication sheet as JSON."),
    units: Optional[str] = UnitsOption,
    reference: Optional[float] = ReferenceOption,
    side: Optional[str] = SideOption,
    flip: bool = FlipOption,
    anterior: Optional[str] = AnteriorOption,
    keep_axis: bool = KeepAxisOption,
    level: Optional[str] = LevelOption,
    force: bool = ForceOption,
) -> None:
    """Build a test or definitive socket: liner offset, trimline, wall, distal adapter; STL + 3MF + AOP + sheet."""
    from socketcad.design.fabrication import fabrication_sheet, output_paths, write_socket_outputs
    from socketcad.design.plan import read_plan
    from socketcad.design.rectify import rectify as apply_plan, with_plan_facts
    from socketcad.design.socket import build_socket, spec_from_dict
    from socketcad.design.templates import template_plan

    if template is not None and plan_file is not None:
        raise InputError("give at most one of --template NAME or --plan FILE")
    if check_output(output, io.MESH_FORMATS) != "stl":
        raise InputError(f"{output}: the socket is written as .stl (with .3mf, -inner.aop and -sheet.json beside it)")
    for path in output_paths(output).values():
        check_output(path, (path.suffix.lstrip("."),))
    fields = io.read_mapping_file(spec_file, "socket spec", "socket_type: tsb, liner: ...") if spec_file is not None else {}
    chosen_type = socket_type or fields.get("socket_type") or (template.lower() if template else None)
    given = {"socket_type": chosen_type, "liner": liner, "closure": closure, "adapter": adapter, "material": material,
             "stage": stage, "k_level": k_level, "wall_thickness_mm": wall_mm, "trim_offsets_mm": parse_trims(trim)}
    fields.update({key: value for key, value in given.items() if value not in (None, {})})
    if "adapter" not in fields and "closure" in fields:
        fields["adapter"] = "lock_housing_4h" if "pin_lock" in str(fields["closure"]) else "four_hole_43"
    spec = spec_from_dict(fields, "socket spec")
    if strength:
        from socketcad.biomech.wall import iso_level

        iso_level(body_mass_kg)  # refused before the build, not after it
    plan = read_plan(plan_file) if plan_file is not None else None
    limb = load(file, capture_options(units, reference, side, flip, anterior, keep_axis, level, force=force))
    limb = with_landmarks(with_plan_facts(limb, plan), landmark_file)
    if template is not None:
        plan = template_plan(template, limb, template_inputs_for(spec))
    model = apply_plan(limb, plan).rectified_limb() if plan is not None else limb
    socket = build_socket(model, spec)
    result = wall_strength_summary(socket, body_mass_kg) if strength else None
    sheet = fabrication_sheet(socket, result)
    paths = write_socket_outputs(socket, output, sheet)
    if as_json:
        out.print_json(json.dumps(sheet))
        return
    print_sheet(sheet)
    say("wrote " + ", ".join(str(p) for p in paths.values()))


def parse_trims(trims: Optional[list[str]]) -> dict[str, float]:
    """--trim NAME=MM edits as {name: offset_mm}."""
    offsets = {}
    for item in trims or []:
        name, _, value = item.partition("=")
        try:
            offsets[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"--trim {item}: give NAME=MM, e.g. --trim posterior=-5") from None
    return offsets


def template_inputs_for(spec):
    """Template inputs from a socket spec: the liner's thickness sets the TSB reduction."""
    from socketcad.design.components import load_catalogue
    from socketcad.design.templates import TemplateInputs

    return TemplateInputs(liner_thickness_mm=load_catalogue().liner(spec.liner).thickness_mm)


def wall_strength_summary(socket, body_mass_kg: float) -> dict:
    from socketcad.biomech.wall import socket_wall_strength

    return socket_wall_strength(socket, body_mass_kg)


def print_sheet(sheet: dict) -> None:
    table = Table(title=escape(f"{sheet['socket_type'].upper()} {sheet['stage']} socket: fabrication sheet"), show_header=False)
    table.add_row("material", f"{sheet['material']['name']}: {sheet['material_volume_cm3']:.1f} cm3, {sheet['mass_g']:.0f} g")
    table.add_row("wall / distal floor", f"{sheet['wall_thickness_mm']:g} mm / {sheet['distal_floor_mm']:g} mm")
    table.add_row("liner", escape(f"{sheet['liner']['name']} ({sheet['liner']['offset_mm']:g} mm offset)"))
    table.add_row("closure", escape(sheet["closure"]["name"]))
    table.add_row("adapter", escape(f"{sheet['adapter']['name']}, holes {sheet['adapter']['bolt_holes_mm']} mm"))
    table.add_row("openings", escape(", ".join(f"{o['name']} {o['diameter_mm']:g} mm" for o in sheet["openings"]) or "none"))
    table.add_row("size", " x ".join(f"{v:g}" for v in sheet["size_mm"]) + " mm")
    table.add_row("print", escape(sheet["print_orientation"]))
    table.add_row("checks", f"watertight {sheet['checks']['watertight']}, self-intersecting face pairs "
                            f"{sheet['checks']['self_intersecting_face_pairs']}")
    for note in sheet["notes"]:
        if note.startswith("WARNING"):
            table.add_row("warning", escape(note))
    if "wall_strength" in sheet:
        strength = sheet["wall_strength"]
        table.add_row("wall strength", escape(f"ISO 10328 {strength['iso_10328_level']}, {strength['material_strength_mpa']:g} MPa "
                                              f"({strength['strength_basis']})"))
        for case in ("heel_strike", "push_off"):
            row = strength[case]
            table.add_row(f"  {case.replace('_', ' ')}", f"{row['force_n']:g} N: peak von Mises {row['peak_von_mises_mpa']:g} MPa, "
                          f"deflection {row['max_deflection_mm']:g} mm, safety factor {row['safety_factor']:g}")
        table.add_row("  estimates", escape(strength["estimates"]))
    out.print(table)


def rectification_summary(result) -> dict:
    from socketcad.design.rectify import region_table

    return {
        "plan": result.plan.name,
        "volume_before_cm3": result.volume_before_mm3 / 1000.0,
        "volume_after_cm3": result.volume_after_mm3 / 1000.0,
        "volume_change_pct": result.volume_change_pct,
        "deviation_min_mm": float(result.deviation_mm.min()),
        "deviation_max_mm": float(result.deviation_mm.max()),
        "modifications": region_table(result),
        "sources": result.plan.sources,
        "assumptions": result.plan.assumptions,
        "validated": "deviations and volumes are exact for the triangle surfaces; depths, sizes and "
        "reductions are the plan's (templates: indicative values and assumptions, listed)",
    }


def print_rectification(result, summary: dict, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(limb_summary(result.limb) | summary))
        return
    head = Table(title=escape(f"{result.limb.source}: plan '{result.plan.name}'"), show_header=False)
    head.add_row("volume", f"{summary['volume_before_cm3']:,.1f} -> {summary['volume_after_cm3']:,.1f} cm3 "
                           f"({summary['volume_change_pct']:+.2f} %)")
    head.add_row("deviation", f"{summary['deviation_min_mm']:+.2f} to {summary['deviation_max_mm']:+.2f} mm (+ outwards)")
    for label in ("sources", "assumptions"):
        for text in summary[label]:
            head.add_row(label[:-1], escape(text))
    out.print(head)
    table = Table(title="modifications (mm, + outwards; area cm2): pushes and reliefs sit on the reduced shape "
                        "(the scan after the plan's reductions) and their depth is measured from it; 'from the scan' "
                        "adds what the reductions took there")
    table.add_column("#", justify="right")
    table.add_column("modification", overflow="fold")
    for column in ("target", "from reduced: centre", "core", "from the scan: centre", "core", "area"):
        table.add_column(column, justify="right")
    span = lambda low, high: f"{low:+.1f}..{high:+.1f}" if low is not None else ""  # noqa: E731
    for row in summary["modifications"]:
        local = "centre_deviation_mm" in row
        table.add_row(str(row["index"]), escape(f"{row['kind']}: {row['label']}"),
                      f"{row['target_mm']:+.1f}" if "target_mm" in row else "",
                      f"{row['centre_over_reduced_mm']:+.2f}" if local else "",
                      span(row["core_over_reduced_min_mm"], row["core_over_reduced_max_mm"]) if local else "",
                      f"{row['centre_deviation_mm']:+.2f}" if local else "",
                      span(row["core_deviation_min_mm"], row["core_deviation_max_mm"]) if local else "",
                      f"{row['area_cm2']:.1f}" if "area_cm2" in row else "")
    out.print(table)
    for row in summary["modifications"]:
        if "note" in row:
            say(f"note: {row['note']}")


def write_deviation_csv(result, path: Path) -> None:
    """Per-vertex deviation map: rectified position and signed deviation (mm, + outwards), atomically."""
    buffer = _io.StringIO()
    buffer.write("vertex,x_mm,y_mm,z_mm,deviation_mm\n")
    rows = np.column_stack([result.skin.vertices, result.deviation_mm])
    np.savetxt(buffer, np.column_stack([np.arange(len(rows)), rows]), delimiter=",",
               fmt=["%d", "%.4f", "%.4f", "%.4f", "%.4f"])
    io.write_atomic(path, lambda tmp: tmp.write_text(buffer.getvalue()))


@app.command()
def analyze(
    file: str = typer.Argument(..., help="The limb the socket was built for: a mesh file or sample:NAME (a scan without bones gets the OpenLimbTT mean bones fitted; give --side)."),
    socket_file: Path = typer.Argument(..., help="Socket STL written by 'socketcad build' (its -sheet.json beside it names the liner and closure)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for interface-maps.npz and interface-summary.json."),
    body_mass_kg: float = typer.Option(80.0, "--body-mass", help="Body mass, kg (load cases)."),
    k_level: str = typer.Option("K3", "--k-level", help="Mobility grade K0-K4, as K3 or 3 (heel strike and swing loads)."),
    tolerance_file: Optional[Path] = typer.Option(None, "--tolerances", help="Regional pressure tolerance table (YAML/JSON list) replacing the defaults."),
    edge_mm: float = typer.Option(12.0, "--edge-mm", help="Tissue mesh edge length, mm (smaller: finer and slower; 12: see README)."),
    mesh_cache: Optional[Path] = typer.Option(None, "--mesh-cache", help="Folder of kept tissue meshes (default $SOCKETCAD_CACHE/tissue, else ~/.cache/socketcad/tissue): every analysis of one limb runs on one mesh, so revisions compare."),
    fresh_mesh: bool = typer.Option(False, "--fresh-mesh", help="Mesh the tissue anew and leave the cache alone."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    units: Optional[str] = UnitsOption,
    side: Optional[str] = SideOption,
    anterior: Optional[str] = AnteriorOption,
    level: Optional[str] = LevelOption,
    force: bool = typer.Option(False, "--force", help="Go on with a shape outside the human range, or a socket whose "
                                                      "sheet names another limb."),
) -> None:
    """Predict interface pressure and shear: donning, standing, heel strike, stance rotation, swing pull-off."""
    from socketcad.anatomy.landmarks import locate_landmarks
    from socketcad.biomech.interface import Materials, analyse_interface, cavity_of
    from socketcad.biomech.loads import interface_cases
    from socketcad.biomech.mesh import tissue_mesh
    from socketcad.biomech.tolerance import DEFAULT_TRANSTIBIAL, read_tolerances
    from socketcad.design.components import load_catalogue
    from socketcad.design.fabrication import check_built_for, output_paths

    k_level = parse_k_level(k_level)
    interface_cases(body_mass_kg, k_level)  # refused before any work
    tolerances = read_tolerances(tolerance_file) if tolerance_file is not None else DEFAULT_TRANSTIBIAL
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a folder; give a folder for the maps")
    sheet_path = output_paths(socket_file)["sheet"] if socket_file.suffix.lower() == ".stl" else None
    if sheet_path is None or not sheet_path.exists():
        raise InputError(f"{socket_file}: give the socket .stl written by 'socketcad build', with its -sheet.json beside it")
    sheet = io.read_data_file(sheet_path, "fabrication sheet")
    try:
        liner = load_catalogue().liner(sheet["liner"]["id"])
        closure_kind = sheet["closure"]["kind"]
    except (KeyError, TypeError):
        raise InputError(f"{sheet_path}: not a socketcad fabrication sheet (no liner or closure)") from None
    limb = locate_landmarks(load(file, capture_options(units, None, side, False, anterior, False, level, force=force)))
    unchecked = None if force else check_built_for(sheet, limb, str(socket_file))
    if limb.level != "transtibial":
        raise InputError("interface analysis covers transtibial limbs for now (the tolerance table and bones fit)")
    socket_solid = io.read_mesh(socket_file)
    materials = Materials(liner_youngs_kpa=liner.elastic_modulus_kpa, friction=liner.friction_skin)
    with steps("interface mechanics") as step:
        step("meshing the tissue (fTetWild)")
        tissue = tissue_mesh(limb, edge_mm, cache=None if fresh_mesh else (mesh_cache or cache_folder() / "tissue"))
        result = analyse_interface(limb, cavity_of(socket_solid, limb), liner.thickness_mm, closure_kind, body_mass_kg,
                                   k_level, materials, tissue=tissue, tolerances=tolerances, step=step)
    said = "--force: not checked that the socket was built for this limb" if force else unchecked
    result = dataclasses.replace(result, notes=result.notes + ((said,) if said else ()))
    paths = result.save(output)
    summary = result.summary()
    if as_json:
        out.print_json(json.dumps(summary))
        return
    print_interface(summary)
    say("wrote " + ", ".join(str(p) for p in paths.values()))


def cache_folder() -> Path:
    """socketcad's cache: $SOCKETCAD_CACHE, else $XDG_CACHE_HOME/socketcad, else ~/.cache/socketcad."""
    if os.environ.get("SOCKETCAD_CACHE"):
        return Path(os.environ["SOCKETCAD_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "socketcad"


def print_interface(summary: dict) -> None:
    from socketcad.anatomy.bone_fit import FITTED_NOTE

    table = Table(title="Interface pressure and shear (kPa)")
    for column in ("case", "peak", "sensel peak", "mean", "peak/mean", "peak shear", "over tolerance"):
        table.add_column(column)
    for name, case in summary["cases"].items():
        over = [r["region"] for r in case["regions"] or [] if r["over_tolerance"]]
        ratio = "-" if case["peak_to_mean"] is None else f"{case['peak_to_mean']:g}"
        table.add_row(name, f"{case['peak_pressure_kpa']:g}", f"{case['sensel_peak_kpa']:g}",
                      f"{case['mean_pressure_kpa']:g}", ratio,
                      f"{case['peak_shear_kpa']:g}", escape(", ".join(over) or "-"))
    out.print(table)
    regions = Table(title="Standing and heel strike by region (kPa)")
    for column in ("region", "tolerance", "standing peak", "heel strike peak", "heel strike mean"):
        regions.add_column(column)
    standing = {r["region"]: r for r in summary["cases"]["standing"]["regions"]}
    for row in summary["cases"].get("heel_strike", summary["cases"]["standing"])["regions"]:
        flag = " OVER" if row["over_tolerance"] else ""
        regions.add_row(escape(row["region"]), f"{row['tolerance_kpa']:g}", f"{standing[row['region']]['peak_kpa']:g}",
                        f"{row['peak_kpa']:g}{flag}", f"{row['mean_kpa']:g}")
    out.print(regions)
    say(f"pistoning in swing {summary['pistoning_mm']:g} mm; rotation in stance {summary['stance_rotation_deg']:g} deg")
    for name, case in summary["cases"].items():
        if not case["converged"]:
            say(f"warning: {name} did not converge (force residual {case['residual_ratio']:.1e} of the load after "
                f"{case['newton_iterations']} Newton iterations): treat its numbers as rough")
    say(f"sensel peak: the highest mean over one pressure-mapping sensel ({summary['sensel']}), the figure to "
        "compare with measured pressures; the tolerance flags use the peak")
    say(f"penalty contact stiffness {summary['penalty_stiffness_mpa_per_mm']:g} MPa/mm; {summary['dofs']} dofs")
    for note in summary["notes"]:
        if note.startswith((FITTED_NOTE, "tissue mesh", "--force", "the sheet or the limb")):
            say(note)
    say("validated: " + "; ".join(summary["validated"]))
    say("estimates: " + "; ".join(summary["estimates"]))


case_app = typer.Typer(rich_markup_mode=None, help="Cases: one patient's limb, its scans and design revisions (the clinic's records).",
                       no_args_is_help=True)
scan_app = typer.Typer(rich_markup_mode=None, help="Scans of a case's limb.", no_args_is_help=True)
app.add_typer(case_app, name="case")
app.add_typer(scan_app, name="scan")
DataOption = typer.Option(None, "--data", help="Data folder: database and files [$SOCKETCAD_DATA, else ~/.local/share/socketcad].")
DatabaseOption = typer.Option(None, "--db", envvar="SOCKETCAD_DB", help="Database URL for a shared clinic database, e.g. postgresql+psycopg://user@host/socketcad [SQLite in the data folder].")


def open_store(data: Optional[Path], url: Optional[str]):
    from socketcad.clinic.store import Store, default_data_folder

    return Store(data or default_data_folder(), url)


@case_app.command("new")
def case_new(
    reference: str = typer.Argument(..., help="The clinic's identifier for this patient's limb (no names)."),
    level: str = typer.Option(..., "--level", help="transtibial or transfemoral."),
    side: str = typer.Option(..., "--side", help="left or right."),
    data: Optional[Path] = DataOption,
    url: Optional[str] = DatabaseOption,
) -> None:
    """Open a case."""
    from socketcad.clinic.cases import new_case

    case = new_case(open_store(data, url), reference, level, side)
    say(f"case {case.reference}: {case.side} {case.level}")


@case_app.command("list")
def case_list(data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption) -> None:
    """List the cases."""
    from socketcad.clinic.cases import list_cases

    table = Table(title="Cases")
    for column in ("reference", "level", "side", "scans", "revisions"):
        table.add_column(column)
    for case in list_cases(open_store(data, url)):
        table.add_row(escape(case["reference"]), case["level"], case["side"], str(case["scans"]), str(case["revisions"]))
    out.print(table)


@case_app.command("show")
def case_show(
    reference: str = typer.Argument(..., help="The case's reference."),
    as_json: bool = typer.Option(False, "--json", help="Print the history as JSON."),
    data: Optional[Path] = DataOption,
    url: Optional[str] = DatabaseOption,
) -> None:
    """A case's scans, design revisions (a tree: each names its parent) and audit trail."""
    from socketcad.clinic.cases import history

    record = history(open_store(data, url), reference)
    if as_json:
        out.print_json(json.dumps(record))
        return
    say(f"case {record['reference']}: {record['side']} {record['level']}, opened {record['created_at']}")
    for scan in record["scans"]:
        say(f"  scan {scan['id']}: {scan['filename']} ({scan['method']}, {scan['units']}) {scan['file_hash'][:12]}")
    for revision in record["revisions"]:
        parent = f" from {revision['parent']}" if revision["parent"] else ""
        say(f"  revision {revision['id']}{parent}: {revision['socket_type']} {revision['liner']} on scan "
            f"{revision['scan']}, socket {revision['socket_hash'][:12]} by {revision['by']} {revision['note']}")
    for evaluation in record["evaluations"]:
        say(f"  evaluation {evaluation['id']}: {evaluation['k_level']}, sensitive: "
            f"{', '.join(evaluation['sensitive_areas']) or 'none'}")
    for made in record["fabrications"]:
        say(f"  fabrication {made['id']}: {made['stage']} socket of revision {made['revision']} in {made['material']} by {made['lab']}")
    for fitting in record["fittings"]:
        child = f" -> revision {fitting['child_revision']}" if fitting["child_revision"] else ""
        say(f"  fitting {fitting['id']} of revision {fitting['revision']}: comfort {fitting['comfort']}/10{child}")
    for delivery in record["deliveries"]:
        say(f"  delivery {delivery['id']} of revision {delivery['revision']}: taught "
            f"{', '.join(k for k, done in delivery['checklist'].items() if done) or 'nothing yet'}")
    for followup in record["followups"]:
        say(f"  follow-up {followup['id']}: scan {followup['scan']}, volume {followup['volume_change_pct']:+.2f} %, "
            f"advice: {followup['advice']}")
    for event in record["audit"]:
        say(f"  {event['at']} {event['actor']}: {event['action']}")


@scan_app.command("add")
def scan_add(
    reference: str = typer.Argument(..., help="The case's reference."),
    file: Path = typer.Argument(..., help="Scan or scanned cast: STL, OBJ, PLY, OFF, 3MF, AOP or sample:NAME."),
    method: str = typer.Option("scan", "--method", help="scan, cast or tape."),
    units: Optional[str] = UnitsOption,
    anterior: Optional[str] = typer.Option(
        None, "--anterior", help="Anterior direction in file coordinates, as X,Y,Z: kept with the scan (a scan without bones needs it for a design)."),
    data: Optional[Path] = DataOption,
    url: Optional[str] = DatabaseOption,
) -> None:
    """Keep a scan of the case's limb (checked: it reads as a limb of the case's level and side)."""
    from socketcad.clinic.cases import add_scan

    scan = add_scan(open_store(data, url), reference, file, method, units, parse_anterior(anterior))
    say(f"scan {scan.id} of case {reference}: {scan.file_hash[:12]}")


@app.command("design")
def design_revision(
    reference: str = typer.Argument(..., help="The case's reference."),
    template: Optional[str] = typer.Option(None, "--template", help="Template whose plan for this limb is saved: ptb, tsb, kbm; ic, quad, subischial."),
    plan_file: Optional[Path] = typer.Option(None, "--plan", help="Rectification plan (YAML/JSON) instead of a template."),
    spec_file: Optional[Path] = typer.Option(None, "--spec", help="Socket spec (YAML/JSON); the options below override its fields."),
    liner: Optional[str] = typer.Option(None, "--liner", help="Liner id from the catalogue."),
    closure: Optional[str] = typer.Option(None, "--closure", help="Closure id from the catalogue."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="Distal adapter id [lock_housing_4h for a pin lock, else four_hole_43]."),
    scan_id: Optional[int] = typer.Option(None, "--scan", help="Scan id [the case's newest]."),
    parent: Optional[int] = typer.Option(None, "--parent", help="The revision this one changes."),
    note: str = typer.Option("", "--note", help="Why this revision."),
    data: Optional[Path] = DataOption,
    url: Optional[str] = DatabaseOption,
) -> None:
    """Build and save a design revision of a case (immutable once saved; changes make child revisions)."""
    from socketcad.clinic.cases import design
    from socketcad.design.plan import read_plan

    if (template is None) == (plan_file is None):
        raise InputError("give one of --template NAME or --plan FILE")
    fields = io.read_mapping_file(spec_file, "socket spec", "socket_type: tsb, liner: ...") if spec_file is not None else {}
    fields.update({k: v for k, v in {"liner": liner, "closure": closure, "adapter": adapter}.items() if v is not None})
    fields.setdefault("socket_type", template)
    if "adapter" not in fields and fields.get("closure"):
        fields["adapter"] = "lock_housing_4h" if "pin" in str(fields["closure"]) else "four_hole_43"
    plan = template if template is not None else read_plan(plan_file)
    with steps("design revision") as step:
        step("building the socket")
        revision = design(open_store(data, url), reference, plan, fields, scan_id, parent, note)
    say(f"revision {revision.id} of case {reference}: socket {revision.socket_hash}")


@app.command("rebuild")
def rebuild_revision(
    revision_id: int = typer.Argument(..., help="Revision id (see 'socketcad case show')."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the rebuilt socket STL here."),
    data: Optional[Path] = DataOption,
    url: Optional[str] = DatabaseOption,
) -> None:
    """Build a stored revision again from its records and compare it with the stored socket, byte for byte."""
    from socketcad.clinic.cases import rebuild
    from socketcad.clinic.files import sha256

    if output is not None:
        check_output(output, ("stl",))
    with steps(f"rebuilding revision {revision_id}") as step:
        step("building the socket")
        revision, stl = rebuild(open_store(data, url), revision_id)
    digest = sha256(stl)
    if output is not None:
        io.write_atomic(output, lambda tmp: tmp.write_bytes(stl))
    same = digest == revision.socket_hash
    say(f"revision {revision_id}: stored {revision.socket_hash}, rebuilt {digest}: "
        + ("identical" if same else "DIFFERENT (the code that builds it changed since)"))
    if not same:
        raise typer.Exit(1)


def key_values(pairs: list[str], what: str) -> dict[str, str]:
    """NAME=VALUE options as a mapping; InputError naming the malformed one."""
    result = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"{what} {pair!r} is not NAME=VALUE")
        result[name.strip()] = value.strip()
    return result


def numbers(pairs: dict[str, str], what: str, kind=float) -> dict:
    try:
        return {name: kind(value) for name, value in pairs.items()}
    except ValueError:
        raise InputError(f"{what}: every value must be a number, got {pairs}") from None


@app.command("evaluate")
def evaluate_case(
    reference: str = typer.Argument(..., help="The case's reference."),
    k_level: Optional[str] = typer.Option(None, "--k-level", help="Mobility: K0-K4 (K3 or 3)."),
    form: Optional[Path] = typer.Option(None, "--form", help="The evaluation as YAML/JSON (fields of EvaluationForm); the options below override it."),
    mobility_grade: Optional[str] = typer.Option(None, "--mobility-grade", help="MG1-MG4 (Ottobock), beside the K-level."),
    history: Optional[str] = typer.Option(None, "--history", help="Cause and date of amputation, comorbidities."),
    limb_condition: Optional[str] = typer.Option(None, "--limb-condition", help="Shape, maturity, volume stability, oedema."),
    skin: Optional[str] = typer.Option(None, "--skin", help="Skin integrity, scars, grafts."),
    strength: list[str] = typer.Option([], "--strength", help="MUSCLE_GROUP=MRC grade 0-5 (repeat)."),
    rom: list[str] = typer.Option([], "--rom", help="MOTION=degrees, e.g. knee_flexion=120 (repeat)."),
    sensitive: list[str] = typer.Option([], "--sensitive", help="Pressure-sensitive landmark, e.g. fibular_head (repeat); templates relieve it."),
    lifestyle: Optional[str] = typer.Option(None, "--lifestyle", help="Work, home, activities."),
    goals: Optional[str] = typer.Option(None, "--goals", help="The patient's goals."),
    data: Optional[Path] = DataOption,
    url: Optional[str] = DatabaseOption,
) -> None:
    """Record an evaluation (step 1). The newest one's sensitive areas are relieved by the design templates."""
    from socketcad.clinic.records import evaluate

    fields = io.read_mapping_file(form, "evaluation", "k_level: K3, history: ...") if form is not None else {}
    given = {"k_level": k_level, "mobility_grade": mobility_grade, "history": history, "limb_condition": limb_condition,
             "skin": skin, "lifestyle": lifestyle, "goals": goals}
    fields.update({name: value for name, value in given.items() if value is not None})
    if strength:
        fields["strength_mrc"] = numbers(key_values(strength, "--strength"), "--strength", int)
    if rom:
        fields["range_of_motion_deg"] = numbers(key_values(rom, "--rom"), "--rom")
    if sensitive:
        fields["sensitive_areas"] = list(sensitive)
    if "k_level" not in fields:
        raise InputError("give the K-level (--k-level K0-K4, or k_level in --form)")
    record = evaluate(open_store(data, url), reference, fields)
    areas = ", ".join(record.form["sensitive_areas"]) or "none"
    say(f"evaluation {record.id} of case {reference}: {record.k_level}; sensitive areas: {areas}")


@app.command("fabricate")
def fabricate_revision(
    reference: str = typer.Argument(..., help="The case's reference."),
    revision_id: int = typer.Argument(..., help="The revision made."),
    stage: str = typer.Option(..., "--stage", help="test (check socket) or definitive."),
    material: str = typer.Option(..., "--material", help="Wall material id from the catalogue (pla, petg, pp_copolymer, pa12, carbon_laminate)."),
    lab: str = typer.Option(..., "--lab", help="The lab that made it."),
    note: str = typer.Option("", "--note", help="Anything the next person should know."),
    data: Optional[Path] = DataOption,
    url: Optional[str] = DatabaseOption,
) -> None:
    """Record a socket made from a revision (steps 4 and 6)."""
    from socketcad.clinic.records import fabricate

    record = fabricate(open_store(data, url), reference, revision_id, stage, material, lab, note)
    say(f"fabrication {record.id} of case {reference}: {record.stage} socket of revision {revision_id} in "
        f"{record.material} by {record.lab}")


@app.command("fit")
def fit_revision(
    reference: str = typer.Argument(..., help="The case's reference."),
    revision_id: int = typer.Argument(..., help="The revision whose socket was fitted."),
    comfort: int = typer.Option(..., "--comfort", help="Socket comfort score 0-10 (10 most comfortable)."),
    feedback: list[str] = typer.Option([], "--feedback", help="AREA=what was noted, AREA a landmark, brim or general (repeat)."),
    gait: str = typer.Option("", "--gait", help="Observed gait."),
    adjust: list[str] = typer.Option([], "--adjust", help="'relieve LANDMARK MM', 'push LANDMARK MM' or 'reduce proximal|distal|all PCT' (repeat); they make the child revision."),
    data: Optional[Path] = DataOption,
    url: Optional[str] = DatabaseOption,
) -> None:
    """Record a fitting (step 5); its adjustments become the plan of a child revision, built and saved with it."""
    from socketcad.clinic.fitting import fit

    with steps("fitting") as step:
        step("building the adjusted socket" if adjust else "recording")
        record, child = fit(open_store(data, url), reference, revision_id, comfort, key_values(feedback, "--feedback"),
                            gait, adjust)
    say(f"fitting {record.id} of revision {revision_id}: comfort {record.comfort}/10")
    if child is not None:
        say(f"revision {child.id} (child of {revision_id}): {child.note}; socket {child.socket_hash}")


@app.command("deliver")
def deliver_revision(
    reference: str = typer.Argument(..., help="The case's reference."),
    revision_id: int = typer.Argument(..., help="The revision whose socket is delivered."),
    taught: list[str] = typer.Option([], "--taught", help="Education checklist item gone through: don_doff, socks_liners, skin_inspection, care (repeat)."),
    note: str = typer.Option("", "--note", help="Anything the next person should know."),
    data: Optional[Path] = DataOption,
    url: Optional[str] = DatabaseOption,
) -> None:
    """Record the delivery of a socket and the education given (step 7)."""
    from socketcad.clinic.records import deliver

    record, warnings = deliver(open_store(data, url), reference, revision_id, list(taught), note)
    say(f"delivery {record.id} of revision {revision_id}: taught {sum(record.checklist.values())} of "
        f"{len(record.checklist)} checklist items")
    for warning in warnings:
        say(f"  warning: {warning}")


@app.command("followup")
def follow_up_case(
    reference: str = typer.Argument(..., help="The case's reference."),
    file: Path = typer.Argument(..., help="The follow-up scan: STL, OBJ, PLY, OFF, 3MF, AOP or sample:NAME."),
    socks_ply: int = typer.Option(0, "--socks-ply", help="Sock ply worn now."),
    baseline: Optional[int] = typer.Option(None, "--baseline", help="Scan id to compare with [the delivered revision's scan]."),
    units: Optional[str] = UnitsOption,
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    data: Optional[Path] = DataOption,
    url: Optional[str] = DatabaseOption,
) -> None:
    """Compare a follow-up scan with the baseline: volume, regional and circumference changes, sock advice."""
    from socketcad.clinic.records import follow_up

    with steps("follow-up") as step:
        step("registering the scans and comparing")
        record = follow_up(open_store(data, url), reference, file, socks_ply, baseline, units)
    result = record.result
    if as_json:
        out.print_json(json.dumps(result))
        return
    say(f"follow-up {record.id} of case {reference}: scan {record.scan_id} against scan {record.baseline_scan_id}")
    say(f"  volume below {result['compared_below_mm']:.0f} mm: {result['baseline_volume_cm3']:.1f} -> "
        f"{result['later_volume_cm3']:.1f} cm3 ({result['volume_change_pct']:+.2f} %), mean radial change "
        f"{result['mean_radial_change_mm']:+.2f} mm")
    table = Table(title="Deviation by region (mm, + larger)")
    for column in ("region", "mean", "most lost", "most gained"):
        table.add_column(column)
    for row in result["regions"]:
        table.add_row(row["region"], f"{row['mean_mm']:+.2f}", f"{row['most_lost_mm']:+.2f}", f"{row['most_gained_mm']:+.2f}")
    out.print(table)
    tape = Table(title="Circumferences (mm above the distal end)")
    for column in ("level mm", "baseline mm", "follow-up mm", "change %"):
        tape.add_column(column)
    for row in result["circumferences"]:
        tape.add_row(f"{row['level_mm']:.0f}", f"{row['baseline_mm']:.1f}", f"{row['later_mm']:.1f}", f"{row['change_pct']:+.2f}")
    out.print(tape)
    say(f"advice: {result['advice']}: " + "; ".join(result["reasons"]))
    for note in result["notes"] + [result["estimate"]]:
        say(f"  {note}")


@app.command("diff")
def diff_revisions_command(
    reference: str = typer.Argument(..., help="The case's reference."),
    first: int = typer.Argument(..., help="Revision A."),
    second: int = typer.Argument(..., help="Revision B."),
    map_file: Optional[Path] = typer.Option(None, "--map", help="Write the deviation map here: A's rectified model coloured by B's deviation (PLY; red tighter, blue more room, full colour at 3 mm)."),
    as_json: bool = typer.Option(False, "--json", help="Print the differences as JSON."),
    data: Optional[Path] = DataOption,
    url: Optional[str] = DatabaseOption,
) -> None:
    """What changed from revision A to B: plan, spec and a deviation map of the rectified model."""
    import trimesh

    from socketcad.clinic.diff import deviation_colours, diff_revisions

    if map_file is not None:
        check_output(map_file, ("ply",))
    with steps("comparing revisions") as step:
        step("rectifying both")
        summary, deviation, surface = diff_revisions(open_store(data, url), reference, first, second)
    if map_file is not None:
        coloured = trimesh.Trimesh(surface.vertices, surface.faces, vertex_colors=deviation_colours(deviation), process=False)
        io.write_atomic(map_file, lambda tmp: coloured.export(tmp, file_type="ply"))
    if as_json:
        out.print_json(json.dumps(summary))
        return
    say(f"revision {first} -> {second} of case {reference}")
    for line in summary["plan"] + summary["spec"] + ([summary["scan"]] if summary["scan"] else []):
        say(f"  {line}")
    extent = summary["deviation_mm"]
    say(f"  rectified model: {extent['most_inward']:+.2f} to {extent['most_outward']:+.2f} mm (mean {extent['mean']:+.2f} mm)")
    for row in summary["regions"]:
        say(f"    {row['region']}: mean {row['mean_mm']:+.2f}, {row['most_lost_mm']:+.2f} to {row['most_gained_mm']:+.2f} mm")


@case_app.command("export")
def case_export(
    reference: str = typer.Argument(..., help="The case's reference."),
    output: Path = typer.Option(..., "--output", "-o", help="The archive to write (.zip)."),
    data: Optional[Path] = DataOption,
    url: Optional[str] = DatabaseOption,
) -> None:
    """Write the whole case (records and files) as one archive, for a fabrication lab or another clinic."""
    from socketcad.clinic.archive import export_case

    check_output(output, ("zip",))
    manifest = export_case(open_store(data, url), reference, output)
    say(f"case {reference}: {len(manifest['revisions'])} revisions, {len(manifest['files'])} files -> {output}")


@case_app.command("import")
def case_import(
    archive: Path = typer.Argument(..., help="A case archive from 'socketcad case export'."),
    data: Optional[Path] = DataOption,
    url: Optional[str] = DatabaseOption,
) -> None:
    """Add a case from an archive (checked whole first: a damaged archive changes nothing)."""
    from socketcad.clinic.archive import import_case

    case = import_case(open_store(data, url), archive)
    say(f"case {case.reference}: imported from {archive}")


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("out/demo"), "--out", help="Folder for the demo outputs."),
    sample: str = typer.Option("sample:openlimb-tt-mean", "--sample", help="Sample limb to run on."),
) -> None:
    """Run the main job on a bundled sample limb and write its outputs to a folder."""
    from socketcad.anatomy.export import write_limb
    from socketcad.design.fabrication import fabrication_sheet, write_socket_outputs

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out_dir}: cannot create the output folder ({exc.strerror})") from None
    limb = load(sample, CaptureOptions())
    measures = measure_limb(limb)
    socket, reasons = demo_socket(limb)
    sheet = fabrication_sheet(socket)
    with io.all_or_none():
        write_limb(limb, out_dir / "limb.stl", "stl")
        write_limb(limb, out_dir / "limb.3mf", "3mf")
        write_limb(limb, out_dir / "limb.aop", "aop")
        write_profile_csv(measures, out_dir / "profile.csv")
        io.write_atomic(
            out_dir / "measures.json",
            lambda tmp: tmp.write_text(json.dumps(limb_summary(limb) | measures.as_dict(), indent=2)),
        )
        paths = write_socket_outputs(socket, out_dir / "socket.stl", sheet)
    print_measures(limb, measures)
    out.print()
    for reason in reasons:
        say(f"component choice: {reason}")
    print_sheet(sheet)
    names = ", ".join(p.name for p in paths.values())
    say(f"outputs written to {out_dir.resolve()}: limb.stl, limb.3mf, limb.aop, profile.csv, measures.json, {names}")


def demo_socket(limb: Limb):
    """The demo's test socket: landmarks, the template for the limb's level, the components the
    selection rules propose for a K3 walker with intact skin and stable volume."""
    from socketcad.anatomy.landmarks import locate_landmarks
    from socketcad.design.components import SelectionInputs, propose_system
    from socketcad.design.rectify import rectify as apply_plan
    from socketcad.design.socket import SocketSpec, build_socket
    from socketcad.design.templates import TemplateInputs, template_plan

    limb = locate_landmarks(limb)
    length = float(limb.skin.vertices[:, 2].max())
    proposal = propose_system(SelectionInputs(level=limb.level, k_level=3, residual_length_mm=length,
                                              skin_condition="intact", volume_stability="stable", hand_dexterity="good"))
    template = "ptb" if limb.level == "transtibial" else "subischial"
    plan = template_plan(template, limb, TemplateInputs(liner_thickness_mm=proposal.liner.thickness_mm))
    spec = SocketSpec(socket_type=template, liner=proposal.liner.id, closure=proposal.closure.id,
                      adapter=proposal.adapter.id, material="petg", stage="test", k_level=3)
    return build_socket(apply_plan(limb, plan).rectified_limb(), spec), proposal.reasons


def say(line: str) -> None:
    """Print one plain line on stdout: no markup, no highlighting, never wrapped (paths stay whole);
    control characters from file contents escaped."""
    out.print(printable(line), markup=False, highlight=False, soft_wrap=True)


def escape(text: object) -> str:
    """Text from a file or the store, safe in a rich table: markup and control characters escaped."""
    return escape_markup(printable(text))


def check_output(path: Path, allowed: tuple[str, ...]) -> str:
    """An output path's format, checked before any slow work: a known extension; its folder is made."""
    fmt = io.file_format(path, allowed)
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission
        raise InputError(f"{path}: cannot make the folder {folder} ({exc.strerror}); give another output path") from None
    return fmt


def limb_summary(limb: Limb) -> dict:
    return {
        "source": limb.source,
        "level": limb.level,
        "side": limb.side,
        "units": limb.units.unit,
        "bones": sorted(limb.bones),
        "notes": limb.notes,
        "validated": "volume, area and sections are exact for the triangle surface (divergence theorem, "
        "planar sections); axis, anterior and side are estimates, each note says how it was found",
    }


def print_measures(limb: Limb, measures: LimbMeasures) -> None:
    summary = Table(title=escape(limb.source), show_header=False)
    summary.add_row("level / side", f"{limb.level} / {limb.side}")
    summary.add_row("volume (brim capped)", f"{measures.volume_cm3:,.1f} cm3")
    summary.add_row("surface area", f"{measures.surface_area_mm2 / 100:,.1f} cm2")
    summary.add_row("length (distal end to top)", f"{measures.length_mm:.1f} mm")
    if measures.brim_low_mm is not None:
        summary.add_row("lowest brim point", f"{measures.brim_low_mm:.1f} mm")
    summary.add_row("bones", ", ".join(sorted(limb.bones)) or "none")
    for note in limb.notes:
        summary.add_row("note", escape(note))
    out.print(summary)
    table = Table(title=f"profile every {measures.step_mm:g} mm from {measures.start} ({measures.start_mm:.1f} mm)")
    for column in ("level mm", "from start mm", "circumference mm", "hull circ. mm", "area mm2", "AP mm", "ML mm", ""):
        table.add_column(column, justify="right")
    for s in measures.profile:
        table.add_row(
            f"{s.level_mm:.1f}", f"{s.level_mm - measures.start_mm:+.1f}", f"{s.circumference_mm:.1f}",
            f"{s.hull_circumference_mm:.1f}", f"{s.area_mm2:.0f}", f"{s.ap_width_mm:.1f}",
            f"{s.ml_width_mm:.1f}", "above brim" if s.partial else "",
        )
    out.print(table)


def write_profile_csv(measures: LimbMeasures, path: Path) -> None:
    """The profile as CSV (one row per level, units in the header), written atomically."""
    io.file_format(path, ("csv",))
    buffer = _io.StringIO()
    fields = ["level_mm", "from_start_mm", "circumference_mm", "hull_circumference_mm",
              "area_mm2", "ap_width_mm", "ml_width_mm", "partial"]
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for section in measures.profile:
        row = section.as_dict() | {"from_start_mm": section.level_mm - measures.start_mm}
        writer.writerow({key: (f"{row[key]:.3f}" if isinstance(row[key], float) else row[key]) for key in fields})
    io.write_atomic(path, lambda tmp: tmp.write_text(buffer.getvalue()))


def _usage_error_types() -> tuple[type[Exception], ...]:
    """The exception classes of command-line usage errors (bad option, missing argument...).

    typer >= 0.2x carries its own copy of click (``typer.TyperException`` is the base of its
    usage errors); older typer raises ``click.ClickException``. Catch whichever exist.
    """
    types: list[type[Exception]] = []
    if hasattr(typer, "TyperException"):
        types.append(typer.TyperException)
    try:
        import click
    except ImportError:
        pass
    else:
        types.append(click.ClickException)
    return tuple(types)


def _fail(message: str, code: int) -> None:
    err.print(printable(message), markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


def main() -> None:
    """Entry point: run the app, turning errors into one line and an exit code."""
    usage_errors = _usage_error_types()
    if not os.environ.get("SOCKETCAD_DEBUG"):
        # A library's RuntimeWarning on odd input would be a second line before the error's one;
        # what matters to the user is in the error or the result's notes.
        warnings.simplefilter("ignore")
    try:
        code = app(standalone_mode=False)
    except SocketcadError as exc:
        _fail(f"error: {exc}", 2)
    except (typer.Abort, KeyboardInterrupt):
        _fail("aborted", 130)
    except usage_errors as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # plain 'socketcad': the help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        _fail(f"error: {exc.format_message()}", exc.exit_code)
    except Exception as exc:  # real bugs, and the file system saying no
        if os.environ.get("SOCKETCAD_DEBUG"):
            raise
        if isinstance(exc, OSError) and exc.filename:
            # Permissions, a full disk, a folder in the way...: the user's to fix, not a bug.
            # For a rename (temp file -> output) the output is the second name.
            _fail(f"error: {exc.filename2 or exc.filename}: {exc.strerror}", 2)
        _fail(f"internal error: {type(exc).__name__}: {exc} (please report; SOCKETCAD_DEBUG=1 shows details)", 1)
    # Without standalone mode, typer returns the code of an Exit (e.g. 130 after Ctrl-C) instead of exiting.
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
