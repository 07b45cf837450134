"""socketcad command line: a shell over ``socketcad.operations``.

Each command parses its arguments into the operation's request, calls the operation, and prints its
result: tables, or with ``--json`` the result model (its schema: ``socketcad schema``). Every rule lives
in the library. Exit codes: 0 success, 2 bad input (one line on stderr naming the file or field and the
problem), 1 an internal error (one line; SOCKETCAD_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import functools
import json
import re
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape as escape_markup
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from socketcad import (CHECKLIST, UNITS, InputError, Settings, SocketcadError, formats_help, operations as ops,
                       printable, socket_types_help)

app = typer.Typer(
    help="socketcad: design custom prosthetic sockets from a residual-limb scan. "
    "Every FILE may also be sample:NAME (see 'socketcad samples').",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[400/450]" and "[3]" are defaults, not markup
)
case_app = typer.Typer(rich_markup_mode=None, help="Cases: one patient's limb, its scans and design revisions "
                       "(the clinic's records).", no_args_is_help=True)
scan_app = typer.Typer(rich_markup_mode=None, help="Scans of a case's limb.", no_args_is_help=True)
app.add_typer(case_app, name="case")
user_app = typer.Typer(rich_markup_mode=None, help="Users of the web application ('socketcad serve').",
                       no_args_is_help=True)
app.add_typer(scan_app, name="scan")
app.add_typer(user_app, name="user")
out = Console()
err = Console(stderr=True)
SETTINGS: Settings | None = None  # read once, in main()

LIMB_FILE = f"Limb: {formats_help()} or sample:NAME."
TYPES = socket_types_help()
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
JsonOption = typer.Option(False, "--json", help="Print the result as JSON (schema: 'socketcad schema').")
LandmarksOption = typer.Option(None, "--landmarks", help="YAML/JSON {name: [x, y, z]} (frame, mm) overriding found landmarks.")
DataOption = typer.Option(None, "--data", help="Data folder: database and files [$SOCKETCAD_DATA, else ~/.local/share/socketcad].")
DatabaseOption = typer.Option(None, "--db", help="Database URL for a shared clinic database, e.g. "
                              "postgresql+psycopg://user@host/socketcad [$SOCKETCAD_DB, else SQLite in the data folder].")


def settings() -> Settings:
    return SETTINGS or Settings.from_environment()


def capture(units=None, reference_length_mm=None, side=None, flip_side=False, anterior=None, keep_axis=False,
            level=None, force=False, **extra) -> ops.Capture:
    return ops.Capture(units=units, reference_length_mm=reference_length_mm, side=side, flip_side=flip_side,
                       anterior=anterior, keep_axis=keep_axis, level=level, force=force, **extra)


@contextmanager
def steps(title: str) -> Iterator:
    """A progress callback for an operation: a spinner on a terminal naming each stage."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task(title, total=None)
        yield lambda name: progress.update(task, description=f"{title}: {name}")


def store(data: Optional[Path], url: Optional[str]):
    return ops.open_store(settings(), data, url)


def shown(result, as_json: bool, printer) -> None:
    """The result as JSON (the model) or through its printer."""
    if as_json:
        out.print_json(result.model_dump_json())
    else:
        printer(result)


# ---- capture -------------------------------------------------------------------------------------------------


@app.command()
def samples(as_json: bool = JsonOption) -> None:
    """List the sample limbs shipped with socketcad (use them as sample:NAME)."""
    shown(ops.samples(), as_json, print_samples)


@app.command()
def catalogue(as_json: bool = JsonOption) -> None:
    """The component catalogue: liners, closures, adapters and wall materials, by the ids options take."""
    shown(ops.catalogue(), as_json, print_catalogue)


@app.command()
def schema(name: Optional[str] = typer.Argument(None, help="One result's name (default: all).")) -> None:
    """The JSON schema of every command's --json result (the operations' result models)."""
    schemas = ops.result_schemas()
    if name is not None and name not in schemas:
        raise InputError(f"no result called {name!r}; one of {', '.join(schemas)}")
    out.print_json(json.dumps(schemas[name] if name else schemas))


@app.command()
def inspect(
    file: str = typer.Argument(..., help=LIMB_FILE),
    step_mm: float = typer.Option(10.0, "--step-mm", help="Profile spacing in mm."),
    start: str = typer.Option("distal", "--from", help="Level the profile steps count from: distal, brim or a file landmark (e.g. MPT)."),
    as_json: bool = JsonOption,
    profile_csv: Optional[Path] = typer.Option(None, "--csv", help="Also write the profile as CSV here."),
    units: Optional[str] = UnitsOption, reference_length_mm: Optional[float] = ReferenceOption,
    side: Optional[str] = SideOption, flip_side: bool = FlipOption, anterior: Optional[str] = AnteriorOption,
    keep_axis: bool = KeepAxisOption, level: Optional[str] = LevelOption, force: bool = ForceOption,
) -> None:
    """Measure a residual limb: volume (brim capped), area, length and a cross-section profile."""
    request = ops.InspectRequest(source=file, step_mm=step_mm, start=start, profile_csv=profile_csv, capture=capture(
        units, reference_length_mm, side, flip_side, anterior, keep_axis, level, force))
    with steps(Path(file).name) as step:
        result = ops.inspect(request, step)
    shown(result, as_json, print_inspection)


@app.command()
def convert(
    source: str = typer.Argument(..., help=f"Input: {formats_help()} or sample:NAME."),
    target: Path = typer.Argument(..., help=f"Output: {formats_help(False)} (by its extension; millimetres)."),
    keep_pose: bool = typer.Option(False, "--keep-pose", help="Keep the input's position and orientation (default: the anatomical frame)."),
    raw: bool = typer.Option(False, "--raw", help="No clean-up: keep debris, holes and every part as read."),
    remesh_mm: Optional[float] = typer.Option(None, "--remesh-mm", help="Isotropic remesh of the skin to this edge length (mm)."),
    spokes: int = typer.Option(72, "--spokes", help="AOP output: number of spokes."),
    slice_mm: float = typer.Option(2.0, "--slice-mm", help="AOP output: slice spacing in mm."),
    ascii_stl: bool = typer.Option(False, "--ascii", help="STL output: write ASCII instead of binary."),
    as_json: bool = JsonOption,
    units: Optional[str] = UnitsOption, reference_length_mm: Optional[float] = ReferenceOption,
    side: Optional[str] = SideOption, flip_side: bool = FlipOption, anterior: Optional[str] = AnteriorOption,
    keep_axis: bool = KeepAxisOption, level: Optional[str] = LevelOption, force: bool = ForceOption,
) -> None:
    """Convert a limb between formats, in millimetres, cleaned and in the anatomical frame."""
    request = ops.ConvertRequest(source=source, target=target, keep_pose=keep_pose, spokes=spokes, slice_mm=slice_mm,
                                 ascii_stl=ascii_stl, capture=capture(
                                     units, reference_length_mm, side, flip_side, anterior, keep_axis, level, force,
                                     clean=not raw, remesh_edge_mm=remesh_mm))
    with steps(Path(source).name) as step:
        result = ops.convert(request, step)
    shown(result, as_json, print_converted)


@app.command()
def tape(
    measures_file: str = typer.Argument(..., help="Tape measures: YAML or JSON (see README), or sample:NAME."),
    output: Path = typer.Option(..., "--output", "-o", help=f"Limb surface to write: {formats_help(False, kind='surface')} (millimetres)."),
    ascii_stl: bool = typer.Option(False, "--ascii", help="STL output: write ASCII instead of binary."),
    as_json: bool = JsonOption,
) -> None:
    """Build a smooth limb surface from tape measurements (circumferences, length, AP/ML widths)."""
    result = ops.tape(ops.TapeRequest(measures=measures_file, output=output, ascii_stl=ascii_stl))
    shown(result, as_json, lambda r: say(
        f"wrote {output}: {r.level} limb from {r.circumferences} circumferences, {r.volume_cm3:,.1f} cm3 (brim capped), "
        f"{r.residual_length_mm:g} mm from {r.reference} to the distal end, {r.distal_shape} end"))


@app.command()
def landmarks(
    file: str = typer.Argument(..., help=LIMB_FILE),
    landmark_file: Optional[Path] = LandmarksOption,
    skin_only: bool = typer.Option(False, "--skin-only", help="Find landmarks from the skin shape even when bones are present."),
    as_json: bool = JsonOption,
    units: Optional[str] = UnitsOption, reference_length_mm: Optional[float] = ReferenceOption,
    side: Optional[str] = SideOption, flip_side: bool = FlipOption, anterior: Optional[str] = AnteriorOption,
    keep_axis: bool = KeepAxisOption, level: Optional[str] = LevelOption, force: bool = ForceOption,
) -> None:
    """Find the anatomical landmarks of a limb (from bones, else the skin) and say how each was found."""
    request = ops.LandmarksRequest(source=file, landmarks=landmark_file, skin_only=skin_only, capture=capture(
        units, reference_length_mm, side, flip_side, anterior, keep_axis, level, force))
    with steps(Path(file).name) as step:
        result = ops.landmarks(request, step)
    shown(result, as_json, print_landmarks)


# ---- design --------------------------------------------------------------------------------------------------


@app.command()
def rectify(
    file: str = typer.Argument(..., help=LIMB_FILE),
    output: Path = typer.Option(..., "--output", "-o", help=f"Rectified limb: {formats_help(False, kind='surface')} (mm)."),
    template: Optional[str] = typer.Option(None, "--template", help=f"Start from a socket-type template: {TYPES}."),
    plan: Optional[Path] = typer.Option(None, "--plan", help="Rectification plan (YAML/JSON); see 'socketcad rectify --save-plan'."),
    deviation_csv: Optional[Path] = typer.Option(None, "--report", help="Per-vertex signed deviation map (CSV, mm, + outwards)."),
    save_plan: Optional[Path] = typer.Option(None, "--save-plan", help="Also write the plan used (YAML/JSON), to edit and re-run."),
    liner_thickness_mm: Optional[float] = typer.Option(None, "--liner-mm", help="Templates: liner thickness (TSB reduction), mm [6]."),
    bar_depth_mm: Optional[float] = typer.Option(None, "--bar-mm", help="Templates: PTB/KBM patellar tendon bar depth, mm [8]."),
    sensitive_areas: Optional[str] = typer.Option(None, "--sensitive", help="Pressure-sensitive landmarks to relieve, comma-separated (e.g. fibular_head,distal_tibia)."),
    landmark_file: Optional[Path] = LandmarksOption,
    as_json: bool = JsonOption,
    units: Optional[str] = UnitsOption, reference_length_mm: Optional[float] = ReferenceOption,
    side: Optional[str] = SideOption, flip_side: bool = FlipOption, anterior: Optional[str] = AnteriorOption,
    keep_axis: bool = KeepAxisOption, level: Optional[str] = LevelOption, force: bool = ForceOption,
) -> None:
    """Modify a limb model by a plan or a socket-type template: pushes, reliefs, reductions, flare, smoothing."""
    request = ops.RectifyRequest(
        source=file, output=output, template=template, plan=plan, deviation_csv=deviation_csv, save_plan=save_plan,
        liner_thickness_mm=liner_thickness_mm, bar_depth_mm=bar_depth_mm, sensitive_areas=listed(sensitive_areas),
        landmarks=landmark_file, capture=capture(units, reference_length_mm, side, flip_side, anterior, keep_axis,
                                                 level, force))
    with steps(Path(file).name) as step:
        result = ops.rectify(request, step)
    shown(result, as_json, print_rectification)


@app.command()
def build(
    file: str = typer.Argument(..., help=f"Limb or rectified model: {formats_help()} or sample:NAME."),
    output: Path = typer.Option(..., "--output", "-o", help="Socket STL; the 3MF, inner-surface AOP and fabrication sheet are written beside it."),
    template: Optional[str] = typer.Option(None, "--template", help=f"Rectify first with this template (also the socket type): {TYPES}."),
    plan: Optional[Path] = typer.Option(None, "--plan", help="Rectify first with this plan (YAML/JSON)."),
    socket_type: Optional[str] = typer.Option(None, "--type", help=f"Socket type (trimline) if not given by --template: {TYPES}."),
    spec_file: Optional[Path] = typer.Option(None, "--spec", help="Socket spec (YAML/JSON); options below override its fields."),
    liner: Optional[str] = typer.Option(None, "--liner", help="Liner id from the catalogue (see 'socketcad catalogue')."),
    closure: Optional[str] = typer.Option(None, "--closure", help="Closure (suspension) id from the catalogue."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="Distal adapter id [the selection rule's: a lock housing under a pin lock, else a pyramid plate (transtibial) or 4-hole adapter (transfemoral)]."),
    material: Optional[str] = typer.Option(None, "--material", help="Wall material id [petg]."),
    stage: Optional[str] = typer.Option(None, "--stage", help="test or definitive [test]."),
    k_level: Optional[str] = typer.Option(None, "--k-level", help="Mobility grade K0-K4, as K3 or 3 (wall thickness, load level) [3]."),
    wall_thickness_mm: Optional[float] = typer.Option(None, "--wall-mm", help="Wall thickness, mm [the material's default for the K-level]."),
    trim_offsets_mm: Optional[list[str]] = typer.Option(None, "--trim", help="Trimline offset edit NAME=MM (repeatable), e.g. --trim posterior=-5."),
    strength: bool = typer.Option(False, "--strength", help="Also check the wall under ISO 10328 loads by FE (adds seconds)."),
    body_mass_kg: float = typer.Option(80.0, "--body-mass", help="With --strength: body mass, kg (ISO 10328 level)."),
    landmark_file: Optional[Path] = LandmarksOption,
    as_json: bool = typer.Option(False, "--json", help="Print the fabrication sheet as JSON."),
    units: Optional[str] = UnitsOption, reference_length_mm: Optional[float] = ReferenceOption,
    side: Optional[str] = SideOption, flip_side: bool = FlipOption, anterior: Optional[str] = AnteriorOption,
    keep_axis: bool = KeepAxisOption, level: Optional[str] = LevelOption, force: bool = ForceOption,
) -> None:
    """Build a test or definitive socket: liner offset, trimline, wall, distal adapter; STL + 3MF + AOP + sheet."""
    spec = ops.SpecFields(socket_type=socket_type, liner=liner, closure=closure, adapter=adapter, material=material,
                          stage=stage, k_level=k_level, wall_thickness_mm=wall_thickness_mm,
                          trim_offsets_mm=numbers(pairs(trim_offsets_mm or [], "trim_offsets_mm"), "trim_offsets_mm"))
    request = ops.BuildRequest(
        source=file, output=output, template=template, plan=plan, spec_file=spec_file, spec=spec, strength=strength,
        body_mass_kg=body_mass_kg, landmarks=landmark_file, capture=capture(
            units, reference_length_mm, side, flip_side, anterior, keep_axis, level, force))
    with steps(Path(file).name) as step:
        result = ops.build(request, step)
    shown(result, as_json, print_sheet)


@app.command()
def analyze(
    file: str = typer.Argument(..., help="The limb the socket was built for: a mesh file or sample:NAME (a scan without bones gets the OpenLimbTT mean bones fitted; give --side)."),
    socket_file: Path = typer.Argument(..., help="Socket STL written by 'socketcad build' (its -sheet.json beside it names the liner and closure)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for interface-maps.npz and interface-summary.json."),
    body_mass_kg: float = typer.Option(80.0, "--body-mass", help="Body mass, kg (load cases)."),
    k_level: str = typer.Option("K3", "--k-level", help="Mobility grade K0-K4, as K3 or 3 (heel strike and swing loads)."),
    tolerances: Optional[Path] = typer.Option(None, "--tolerances", help="Regional pressure tolerance table (YAML/JSON list) replacing the defaults."),
    edge_mm: float = typer.Option(12.0, "--edge-mm", help="Tissue mesh edge length, mm (smaller: finer and slower; 12: see README)."),
    mesh_cache: Optional[Path] = typer.Option(None, "--mesh-cache", help="Folder of kept tissue meshes (default $SOCKETCAD_CACHE/tissue, else ~/.cache/socketcad/tissue): every analysis of one limb runs on one mesh, so revisions compare."),
    fresh_mesh: bool = typer.Option(False, "--fresh-mesh", help="Mesh the tissue anew and leave the cache alone."),
    quick: bool = typer.Option(False, "--quick", help="Preview: donning and standing on a coarse mesh, in seconds (its measured error is printed); check tolerances with the full analysis."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    units: Optional[str] = UnitsOption, side: Optional[str] = SideOption,
    anterior: Optional[str] = AnteriorOption, level: Optional[str] = LevelOption,
    force: bool = typer.Option(False, "--force", help="Go on with a shape outside the human range, or a socket whose sheet names another limb."),
) -> None:
    """Predict interface pressure and shear: donning, standing, heel strike, stance rotation, swing pull-off."""
    request = ops.AnalyseRequest(
        source=file, socket=socket_file, output=output, body_mass_kg=body_mass_kg, k_level=k_level,
        tolerances=tolerances, edge_mm=edge_mm, mesh_cache=None if fresh_mesh else (mesh_cache or settings().tissue_cache),
        quick=quick, capture=capture(units, side=side, anterior=anterior, level=level, force=force))
    with steps("interface mechanics") as step:
        result = ops.analyse(request, step)
    shown(result, as_json, print_interface)


@app.command()
def report(
    file: str = typer.Argument(..., help="The limb the socket was built for: a mesh file or sample:NAME."),
    socket_file: Path = typer.Argument(..., help="Socket STL written by 'socketcad build' (its -sheet.json beside it)."),
    output: Path = typer.Option(..., "--output", "-o", help="The report, .html (self-contained); its PDF is written beside it."),
    template: Optional[str] = typer.Option(None, "--template", help=f"The template the socket was rectified with: {TYPES}."),
    plan: Optional[Path] = typer.Option(None, "--plan", help="Or the plan it was rectified with (YAML/JSON)."),
    analysis: Optional[Path] = typer.Option(None, "--analysis", help="Folder 'socketcad analyze' wrote (pressure and shear maps)."),
    evaluation: Optional[Path] = typer.Option(None, "--evaluation", help="Evaluation form (YAML/JSON, as 'case evaluate' takes)."),
    reference: str = typer.Option("", "--reference", help="The patient's reference shown on every page (no names) [the socket file's name]."),
    no_pdf: bool = typer.Option(False, "--no-pdf", help="Write the HTML page only."),
    as_json: bool = JsonOption,
    units: Optional[str] = UnitsOption, side: Optional[str] = SideOption,
    anterior: Optional[str] = AnteriorOption, level: Optional[str] = LevelOption,
    force: bool = typer.Option(False, "--force", help="Go on with a shape outside the human range, or a socket whose sheet names another limb."),
) -> None:
    """Report a design: evaluation, capture, rectification map, socket sheet and pictures, wall, pressure and shear."""
    request = ops.DesignReportRequest(source=file, socket=socket_file, output=output, template=template, plan=plan,
                                analysis=analysis, evaluation=evaluation, reference=reference, pdf=not no_pdf,
                                capture=capture(units, side=side, anterior=anterior, level=level, force=force))
    with steps("report") as step:
        result = ops.report_design(request, step)
    shown(result, as_json, print_report)


# ---- clinic --------------------------------------------------------------------------------------------------


@case_app.command("new")
def case_new(
    reference: str = typer.Argument(..., help="The clinic's identifier for this patient's limb (no names)."),
    level: str = typer.Option(..., "--level", help="transtibial or transfemoral."),
    side: str = typer.Option(..., "--side", help="left or right."),
    as_json: bool = JsonOption, data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Open a case."""
    case = ops.new_case(store(data, url), ops.NewCaseRequest(reference=reference, level=level, side=side),
                        settings().actor)
    shown(case, as_json, lambda c: say(f"case {c.reference}: {c.side} {c.level}"))


@case_app.command("list")
def case_list(as_json: bool = JsonOption, data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption) -> None:
    """List the cases."""
    shown(ops.cases(store(data, url)), as_json, print_cases)


@case_app.command("show")
def case_show(
    reference: str = typer.Argument(..., help="The case's reference."),
    as_json: bool = typer.Option(False, "--json", help="Print the history as JSON."),
    data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """A case's scans, design revisions (a tree: each names its parent) and audit trail."""
    shown(ops.case_history(store(data, url), reference), as_json, print_history)


@case_app.command("report")
def case_report(
    reference: str = typer.Argument(..., help="The case's reference."),
    output: Path = typer.Option(..., "--output", "-o", help="The report, .html (self-contained); its PDF is written beside it."),
    revision: Optional[int] = typer.Option(None, "--revision", help="The revision reported (it needs an analysis: 'case analyze') [the newest]."),
    no_pdf: bool = typer.Option(False, "--no-pdf", help="Write the HTML page only."),
    as_json: bool = JsonOption,
    data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Report a case revision: evaluation, design, pressure and shear, fitting history, revision tree, follow-ups."""
    request = ops.CaseReportRequest(reference=reference, revision=revision, output=output, pdf=not no_pdf)
    with steps(f"report of {reference}") as step:
        result = ops.report_case(store(data, url), request, step)
    shown(result, as_json, print_report)


@scan_app.command("add")
def scan_add(
    reference: str = typer.Argument(..., help="The case's reference."),
    file: str = typer.Argument(..., help=f"Scan or scanned cast: {formats_help()} or sample:NAME."),
    method: str = typer.Option("scan", "--method", help="scan, cast or tape."),
    units: Optional[str] = UnitsOption,
    anterior: Optional[str] = typer.Option(None, "--anterior", help="Anterior direction in file coordinates, as X,Y,Z: kept with the scan (a scan without bones needs it for a design)."),
    as_json: bool = JsonOption, data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Keep a scan of the case's limb (checked: it reads as a limb of the case's level and side)."""
    request = ops.AddScanRequest(reference=reference, source=file, method=method, units=units, anterior=anterior)
    with steps("scan") as step:
        scan = ops.add_scan(store(data, url), request, settings().actor, step)
    shown(scan, as_json, lambda s: say(f"scan {s.id} of case {s.reference}: {s.file_hash[:12]}"))


@app.command("design")
def design_revision(
    reference: str = typer.Argument(..., help="The case's reference."),
    template: Optional[str] = typer.Option(None, "--template", help=f"Template whose plan for this limb is saved: {TYPES}."),
    plan: Optional[Path] = typer.Option(None, "--plan", help="Rectification plan (YAML/JSON) instead of a template."),
    spec_file: Optional[Path] = typer.Option(None, "--spec", help="Socket spec (YAML/JSON); the options below override its fields."),
    liner: Optional[str] = typer.Option(None, "--liner", help="Liner id from the catalogue."),
    closure: Optional[str] = typer.Option(None, "--closure", help="Closure id from the catalogue."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="Distal adapter id [the selection rule's for the closure and level]."),
    scan: Optional[int] = typer.Option(None, "--scan", help="Scan id [the case's newest]."),
    parent: Optional[int] = typer.Option(None, "--parent", help="The revision this one changes."),
    note: str = typer.Option("", "--note", help="Why this revision."),
    as_json: bool = JsonOption, data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Build and save a design revision of a case (immutable once saved; changes make child revisions)."""
    request = ops.DesignRequest(reference=reference, template=template, plan=plan, spec_file=spec_file, scan=scan,
                                parent=parent, note=note,
                                spec=ops.SpecFields(liner=liner, closure=closure, adapter=adapter))
    with steps("design revision") as step:
        revision = ops.save_design(store(data, url), request, settings().actor, step)
    shown(revision, as_json, lambda r: say(f"revision {r.id} of case {r.reference}: socket {r.socket_hash}"))


@app.command("rebuild")
def rebuild_revision(
    revision_id: int = typer.Argument(..., help="Revision id (see 'socketcad case show')."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the rebuilt socket STL here."),
    as_json: bool = JsonOption, data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Build a stored revision again from its records and compare it with the stored socket, byte for byte."""
    with steps(f"rebuilding revision {revision_id}") as step:
        result = ops.rebuild(store(data, url), revision_id, output, step)
    shown(result, as_json, lambda r: say(f"revision {r.revision}: stored {r.stored_hash}, rebuilt {r.rebuilt_hash}: "
          + ("identical" if r.identical else "DIFFERENT (the code that builds it changed since)")))
    if not result.identical:
        raise typer.Exit(1)


@app.command("evaluate")
def evaluate_case(
    reference: str = typer.Argument(..., help="The case's reference."),
    k_level: Optional[str] = typer.Option(None, "--k-level", help="Mobility: K0-K4 (K3 or 3)."),
    form: Optional[Path] = typer.Option(None, "--form", help="The evaluation as YAML/JSON (fields of EvaluationForm); the options below override it."),
    mobility_grade: Optional[str] = typer.Option(None, "--mobility-grade", help="MG1-MG4 (Ottobock), beside the K-level."),
    history: Optional[str] = typer.Option(None, "--history", help="Cause and date of amputation, comorbidities."),
    limb_condition: Optional[str] = typer.Option(None, "--limb-condition", help="Shape, maturity, volume stability, oedema."),
    skin: Optional[str] = typer.Option(None, "--skin", help="Skin integrity, scars, grafts."),
    strength_mrc: list[str] = typer.Option([], "--strength", help="MUSCLE_GROUP=MRC grade 0-5 (repeat)."),
    range_of_motion_deg: list[str] = typer.Option([], "--rom", help="MOTION=degrees, e.g. knee_flexion=120 (repeat)."),
    sensitive_areas: list[str] = typer.Option([], "--sensitive", help="Pressure-sensitive landmark, e.g. fibular_head (repeat); templates relieve it."),
    lifestyle: Optional[str] = typer.Option(None, "--lifestyle", help="Work, home, activities."),
    goals: Optional[str] = typer.Option(None, "--goals", help="The patient's goals."),
    as_json: bool = JsonOption, data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Record an evaluation (step 1). The newest one's sensitive areas are relieved by the design templates."""
    given = {"k_level": k_level, "mobility_grade": mobility_grade, "history": history, "limb_condition": limb_condition,
             "skin": skin, "lifestyle": lifestyle, "goals": goals, "sensitive_areas": list(sensitive_areas) or None,
             "strength_mrc": numbers(pairs(strength_mrc, "strength_mrc"), "strength_mrc", int) or None,
             "range_of_motion_deg": numbers(pairs(range_of_motion_deg, "range_of_motion_deg"), "range_of_motion_deg") or None}
    request = ops.EvaluateRequest(reference=reference, form_file=form,
                                  fields={name: value for name, value in given.items() if value is not None})
    record = ops.evaluate(store(data, url), request, settings().actor)
    shown(record, as_json, lambda r: say(f"evaluation {r.id} of case {r.reference}: {r.k_level}; sensitive areas: "
                                         f"{', '.join(r.sensitive_areas) or 'none'}"))


@app.command("fabricate")
def fabricate_revision(
    reference: str = typer.Argument(..., help="The case's reference."),
    revision_id: int = typer.Argument(..., help="The revision made."),
    stage: str = typer.Option(..., "--stage", help="test (check socket) or definitive."),
    material: str = typer.Option(..., "--material", help="Wall material id from the catalogue (see 'socketcad catalogue')."),
    lab: str = typer.Option(..., "--lab", help="The lab that made it."),
    note: str = typer.Option("", "--note", help="Anything the next person should know."),
    as_json: bool = JsonOption, data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Record a socket made from a revision (steps 4 and 6)."""
    request = ops.FabricateRequest(reference=reference, revision=revision_id, stage=stage, material=material, lab=lab,
                                   note=note)
    made = ops.fabricate(store(data, url), request, settings().actor)
    shown(made, as_json, lambda m: say(f"fabrication {m.id} of case {m.reference}: {m.stage} socket of revision "
                                       f"{m.revision} in {m.material} by {m.lab}"))


@app.command("fit")
def fit_revision(
    reference: str = typer.Argument(..., help="The case's reference."),
    revision_id: int = typer.Argument(..., help="The revision whose socket was fitted."),
    comfort: int = typer.Option(..., "--comfort", help="Socket comfort score 0-10 (10 most comfortable)."),
    feedback: list[str] = typer.Option([], "--feedback", help="AREA=what was noted, AREA a landmark, brim or general (repeat)."),
    gait: str = typer.Option("", "--gait", help="Observed gait."),
    adjust: list[str] = typer.Option([], "--adjust", help="'relieve LANDMARK MM', 'push LANDMARK MM' or 'reduce proximal|distal|all PCT' (repeat); they make the child revision."),
    as_json: bool = JsonOption, data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Record a fitting (step 5); its adjustments become the plan of a child revision, built and saved with it."""
    request = ops.FitRequest(reference=reference, revision=revision_id, comfort=comfort, gait=gait,
                             feedback=pairs(feedback, "feedback"), adjustments=list(adjust))
    with steps("fitting") as step:
        record = ops.fit(store(data, url), request, settings().actor, step)
    shown(record, as_json, print_fitting)


@app.command("deliver")
def deliver_revision(
    reference: str = typer.Argument(..., help="The case's reference."),
    revision_id: int = typer.Argument(..., help="The revision whose socket is delivered."),
    taught: list[str] = typer.Option([], "--taught", help=f"Education checklist item gone through: {', '.join(CHECKLIST)} (repeat)."),
    note: str = typer.Option("", "--note", help="Anything the next person should know."),
    as_json: bool = JsonOption, data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Record the delivery of a socket and the education given (step 7)."""
    request = ops.DeliverRequest(reference=reference, revision=revision_id, taught=list(taught), note=note)
    record = ops.deliver(store(data, url), request, settings().actor)
    shown(record, as_json, print_delivery)


@app.command("followup")
def follow_up_case(
    reference: str = typer.Argument(..., help="The case's reference."),
    file: str = typer.Argument(..., help=f"The follow-up scan: {formats_help()} or sample:NAME."),
    socks_ply: int = typer.Option(0, "--socks-ply", help="Sock ply worn now."),
    baseline: Optional[int] = typer.Option(None, "--baseline", help="Scan id to compare with [the delivered revision's scan]."),
    units: Optional[str] = UnitsOption,
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Compare a follow-up scan with the baseline: volume, regional and circumference changes, sock advice."""
    request = ops.FollowUpRequest(reference=reference, source=file, socks_ply=socks_ply, baseline=baseline, units=units)
    with steps("follow-up") as step:
        record = ops.follow_up(store(data, url), request, settings().actor, step)
    shown(record, as_json, print_follow_up)


@app.command("diff")
def diff_revisions_command(
    reference: str = typer.Argument(..., help="The case's reference."),
    first: int = typer.Argument(..., help="Revision A."),
    second: int = typer.Argument(..., help="Revision B."),
    map_file: Optional[Path] = typer.Option(None, "--map", help="Write the deviation map here: A's rectified model coloured by B's deviation (PLY; red tighter, blue more room, full colour at 3 mm)."),
    as_json: bool = typer.Option(False, "--json", help="Print the differences as JSON."),
    data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """What changed from revision A to B: plan, spec and a deviation map of the rectified model."""
    request = ops.DiffRequest(reference=reference, first=first, second=second, map_file=map_file)
    with steps("comparing revisions") as step:
        result = ops.diff(store(data, url), request, step)
    shown(result, as_json, print_diff)


@case_app.command("export")
def case_export(
    reference: str = typer.Argument(..., help="The case's reference."),
    output: Path = typer.Option(..., "--output", "-o", help="The archive to write (.zip)."),
    as_json: bool = JsonOption, data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Write the whole case (records and files) as one archive, for a fabrication lab or another clinic."""
    result = ops.export_case(store(data, url), reference, output, settings().actor)
    shown(result, as_json, lambda r: say(f"case {r.reference}: {r.revisions} revisions, {r.files} files -> {output}"))


@case_app.command("import")
def case_import(
    archive: Path = typer.Argument(..., help="A case archive from 'socketcad case export'."),
    as_json: bool = JsonOption, data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Add a case from an archive (checked whole first: a damaged archive changes nothing)."""
    case = ops.import_case(store(data, url), archive, settings().actor)
    shown(case, as_json, lambda c: say(f"case {c.reference}: imported from {c.archive}"))


@case_app.command("analyze")
def case_analyze(
    reference: str = typer.Argument(..., help="The case's reference."),
    revision_id: int = typer.Argument(..., help="The revision whose socket is analysed (see 'socketcad case show')."),
    quick: bool = typer.Option(False, "--quick", help="Preview: donning and standing on a coarse mesh, in seconds (its measured error is printed); check tolerances with the full analysis."),
    body_mass_kg: Optional[float] = typer.Option(None, "--body-mass", "--body-mass-kg", help="Body mass, kg (load cases); the evaluation does not record it."),
    k_level: Optional[str] = typer.Option(None, "--k-level", help="Mobility grade K0-K4, as K3 or 3 [the newest evaluation's]."),
    as_json: bool = JsonOption, data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Predict a revision's interface pressure and shear on its limb and keep the result with the revision."""
    request = ops.AnalyseRevisionRequest(reference=reference, revision=revision_id, body_mass_kg=body_mass_kg,
                                         k_level=k_level, quick=quick, mesh_cache=settings().tissue_cache)
    with steps("interface mechanics") as step:
        result = ops.analyse_revision(store(data, url), request, settings().actor, step)
    shown(result, as_json, print_revision_analysis)


def print_revision_analysis(result) -> None:
    say(f"analysis {result.id} of case {result.reference} revision {result.revision}: "
        f"{'quick preview' if result.quick else 'full analysis'}, {result.body_mass_kg:g} kg, {result.k_level}")
    table("Interface peaks by load case (kPa)", ("case", "peak kPa", "sensel peak kPa", "mean kPa", "peak shear kPa"),
          [(p.case, f"{p.peak_pressure_kpa:g}", f"{p.sensel_peak_kpa:g}", f"{p.mean_pressure_kpa:g}",
            f"{p.peak_shear_kpa:g}") for p in result.peaks])
    over = [f"{name}: {r.region}" for name, case in result.summary.cases.items() for r in case.regions or []
            if r.over_tolerance]
    say("over tolerance (nodal peak): " + (", ".join(over) or "none"))
    for note in result.summary.notes:
        say(flags(note))


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("out/demo"), "--out", help="Folder for the demo outputs."),
    sample: str = typer.Option("sample:openlimb-tt-mean", "--sample", help="Sample limb to run on."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip the quick interface analysis and the report (HTML, PDF)."),
    as_json: bool = JsonOption,
) -> None:
    """Run the main job on a bundled sample limb and write its outputs to a folder, with its report."""
    request = ops.DemoRequest(out=out_dir, sample=sample, mesh_cache=settings().tissue_cache, report=not no_report)
    with steps("demo") as step:
        result = ops.demo(request, step)
    shown(result, as_json, print_demo)


# ---- translation: options to requests, results to text ----------------------------------------------------------


def listed(text: Optional[str]) -> tuple[str, ...]:
    """'a, b' -> ('a', 'b')."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


def pairs(items: list[str], field: str) -> dict[str, str]:
    """NAME=VALUE options as a mapping; InputError naming the field of the malformed one."""
    result = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"`{field}` {item!r} is not NAME=VALUE")
        result[name.strip()] = value.strip()
    return result


def numbers(values: dict[str, str], field: str, kind=float) -> dict:
    try:
        return {name: kind(value) for name, value in values.items()}
    except ValueError:
        raise InputError(f"`{field}`: every value must be a number, e.g. NAME=5; got {values}") from None


def say(line: str) -> None:
    """Print one plain line on stdout: no markup, no highlighting, never wrapped (paths stay whole);
    control characters from file contents escaped."""
    out.print(printable(line), markup=False, highlight=False, soft_wrap=True)


def escape(text: object) -> str:
    """Text from a file or the store, safe in a rich table: markup and control characters escaped."""
    return escape_markup(printable(text))


def table(title: str, columns: tuple[str, ...], rows, **options) -> None:
    """A rich table of plain cells (escaped)."""
    grid = Table(title=escape(title), **options)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(escape(cell) for cell in row))
    out.print(grid)


def print_samples(result) -> None:
    grid = Table(title="socketcad samples")
    longest = max(len(f"sample:{s.name}") for s in result.samples)  # the name is typed back: never cut short
    grid.add_column("name", no_wrap=True, min_width=longest)
    grid.add_column("level", no_wrap=True, min_width=max(len(s.level) for s in result.samples))
    grid.add_column("units", no_wrap=True)
    grid.add_column("what", overflow="fold")
    grid.add_column("licence", overflow="fold")
    for s in result.samples:
        grid.add_row(f"sample:{s.name}", s.level, s.units, escape(s.description), escape(s.licence))
    out.print(grid)


def print_catalogue(parts) -> None:
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
        grid = Table(title=title)
        for column in columns:
            grid.add_column(column, no_wrap=column == "id")  # ids are typed back: never broken
        for row in rows:
            grid.add_row(*(escape(str(cell)) for cell in row))
        out.print(grid)


def print_converted(result) -> None:
    for note in result.notes:
        err.print(f"[dim]{escape(note)}[/dim]", soft_wrap=True)
    say("wrote " + ", ".join(result.written))


def print_fitting(record) -> None:
    say(f"fitting {record.id} of revision {record.revision}: comfort {record.comfort}/10")
    if record.child is not None:
        say(f"revision {record.child.id} (child of {record.revision}): {record.child.note}; socket "
            f"{record.child.socket_hash}")


def print_delivery(record) -> None:
    say(f"delivery {record.id} of revision {record.revision}: taught {sum(record.checklist.values())} of "
        f"{len(record.checklist)} checklist items")
    for warning in record.warnings:
        say(f"  warning: {warning}")


def print_demo(result) -> None:
    print_inspection(result.inspection)
    out.print()
    for reason in result.component_reasons:
        say(f"component choice: {reason}")
    print_sheet(result.sheet)
    folder = Path(result.written[0]).parent.resolve()
    say(f"outputs written to {folder}: " + ", ".join(Path(p).name for p in result.written))
    if result.report:
        say(f"report: {Path(result.report).resolve()} (and its PDF beside it); open it in a web browser")


def print_report(result) -> None:
    pdf = f" and {result.pdf} ({result.pages} pages)" if result.pdf else ""
    say(f"report written to {result.html}{pdf}: {result.figures} pictures, {result.seconds:.1f} s")


def print_inspection(result) -> None:
    summary = Table(title=escape(result.source), show_header=False)
    summary.add_row("level / side", f"{result.level} / {result.side}")
    summary.add_row("volume (brim capped)", f"{result.volume_cm3:,.1f} cm3")
    summary.add_row("surface area", f"{result.surface_area_mm2 / 100:,.1f} cm2")
    summary.add_row("length (distal end to top)", f"{result.length_mm:.1f} mm")
    if result.brim_low_mm is not None:
        summary.add_row("lowest brim point", f"{result.brim_low_mm:.1f} mm")
    summary.add_row("bones", ", ".join(result.bones) or "none")
    for note in result.notes:
        summary.add_row("note", escape(note))
    out.print(summary)
    grid = Table(title=f"profile every {result.profile_step_mm:g} mm from {escape(result.profile_start)} "
                       f"({result.profile_start_mm:.1f} mm)")
    for column in ("level mm", "from start mm", "circumference mm", "hull circ. mm", "area mm2", "AP mm", "ML mm", ""):
        grid.add_column(column, justify="right")
    for s in result.profile:
        grid.add_row(f"{s.level_mm:.1f}", f"{s.level_mm - result.profile_start_mm:+.1f}", f"{s.circumference_mm:.1f}",
                     f"{s.hull_circumference_mm:.1f}", f"{s.area_mm2:.0f}", f"{s.ap_width_mm:.1f}",
                     f"{s.ml_width_mm:.1f}", "above brim" if s.partial else "")
    out.print(grid)
    for path in result.written:
        say(f"profile written to {path}")


def print_landmarks(result) -> None:
    grid = Table(title=f"{escape(result.source)}: landmarks (frame: z up from the distal end, y anterior, x right; mm)")
    for column in ("landmark", "x mm", "y mm", "z mm", "how found"):
        grid.add_column(column, justify="right" if column.endswith("mm") else "left", overflow="fold")
    for row in result.landmarks:
        grid.add_row(row.name, f"{row.x_mm:.1f}", f"{row.y_mm:.1f}", f"{row.z_mm:.1f}", escape(row.how))
    out.print(grid)


def print_rectification(result) -> None:
    head = Table(title=escape(f"{result.source}: plan '{result.plan}'"), show_header=False)
    head.add_row("volume", f"{result.volume_before_cm3:,.1f} -> {result.volume_after_cm3:,.1f} cm3 "
                           f"({result.volume_change_pct:+.2f} %)")
    head.add_row("deviation", f"{result.deviation_min_mm:+.2f} to {result.deviation_max_mm:+.2f} mm (+ outwards)")
    for label, texts in (("source", result.sources), ("assumption", result.assumptions)):
        for text in texts:
            head.add_row(label, escape(text))
    out.print(head)
    grid = Table(title="modifications (mm, + outwards; area cm2): pushes and reliefs sit on the reduced shape "
                       "(the scan after the plan's reductions) and their depth is measured from it; 'from the scan' "
                       "adds what the reductions took there")
    grid.add_column("#", justify="right")
    grid.add_column("modification", overflow="fold")
    for column in ("target", "from reduced: centre", "core", "from the scan: centre", "core", "area"):
        grid.add_column(column, justify="right")
    value = lambda v, form: "" if v is None else format(v, form)  # noqa: E731
    span = lambda low, high: f"{low:+.1f}..{high:+.1f}" if low is not None else ""  # noqa: E731
    for row in result.modifications:
        grid.add_row(str(row.index), escape(f"{row.kind}: {row.label}"), value(row.target_mm, "+.1f"),
                     value(row.centre_over_reduced_mm, "+.2f"),
                     span(row.core_over_reduced_min_mm, row.core_over_reduced_max_mm),
                     value(row.centre_deviation_mm, "+.2f"), span(row.core_deviation_min_mm, row.core_deviation_max_mm),
                     value(row.area_cm2, ".1f"))
    out.print(grid)
    for row in result.modifications:
        if row.note:
            say(f"note: {row.note}")
    say("wrote " + ", ".join(result.written))


def print_sheet(sheet) -> None:
    grid = Table(title=escape(f"{sheet.socket_type.upper()} {sheet.stage} socket: fabrication sheet"), show_header=False)
    grid.add_row("material", f"{escape(sheet.material.name)}: {sheet.material_volume_cm3:.1f} cm3, {sheet.mass_g:.0f} g")
    grid.add_row("wall / distal floor", f"{sheet.wall_thickness_mm:g} mm / {sheet.distal_floor_mm:g} mm")
    grid.add_row("liner", escape(f"{sheet.liner.name} ({sheet.liner.offset_mm:g} mm offset)"))
    grid.add_row("closure", escape(sheet.closure.name))
    grid.add_row("adapter", escape(f"{sheet.adapter.name}, holes {[list(h) for h in sheet.adapter.bolt_holes_mm]} mm"))
    grid.add_row("openings", escape(", ".join(f"{o.name} {o.diameter_mm:g} mm" for o in sheet.openings) or "none"))
    grid.add_row("size", " x ".join(f"{v:g}" for v in sheet.size_mm) + " mm")
    grid.add_row("print", escape(sheet.print_orientation))
    grid.add_row("checks", f"watertight {sheet.checks.watertight}, self-intersecting face pairs "
                           f"{sheet.checks.self_intersecting_face_pairs}")
    for note in sheet.notes:
        if note.startswith("WARNING"):
            grid.add_row("warning", escape(note))
    strength = sheet.wall_strength
    if strength is not None:
        grid.add_row("wall strength", escape(f"ISO 10328 {strength.iso_10328_level}, {strength.material_strength_mpa:g} MPa "
                                             f"({strength.strength_basis})"))
        for name, row in (("heel strike", strength.heel_strike), ("push off", strength.push_off)):
            grid.add_row(f"  {name}", f"{row.force_n:g} N: peak von Mises {row.peak_von_mises_mpa:g} MPa, "
                         f"deflection {row.max_deflection_mm:g} mm, safety factor {row.safety_factor:g}")
        grid.add_row("  estimates", escape(strength.estimates))
    out.print(grid)
    written = getattr(sheet, "written", None)
    if written:
        say("wrote " + ", ".join(written.values()))


def print_interface(summary) -> None:
    grid = Table(title="Interface pressure and shear (kPa)")
    for column in ("case", "peak", "sensel peak", "mean", "peak/mean", "peak shear", "over tolerance"):
        grid.add_column(column)
    for name, case in summary.cases.items():
        over = [r.region for r in case.regions or [] if r.over_tolerance]
        grid.add_row(name, f"{case.peak_pressure_kpa:g}", f"{case.sensel_peak_kpa:g}", f"{case.mean_pressure_kpa:g}",
                     "-" if case.peak_to_mean is None else f"{case.peak_to_mean:g}", f"{case.peak_shear_kpa:g}",
                     escape(", ".join(over) or "-"))
    out.print(grid)
    walking = summary.cases.get("heel_strike")
    regions = Table(title="Standing and heel strike by region (kPa)" if walking else "Standing by region (kPa)")
    for column in ("region", "tolerance", "standing peak", "standing mean") + (("heel strike peak", "heel strike mean")
                                                                               if walking else ()):
        regions.add_column(column)
    heel = {r.region: r for r in walking.regions} if walking else {}
    for row in summary.cases["standing"].regions:
        flagged = lambda r: f"{r.peak_kpa:g}{' OVER' if r.over_tolerance else ''}"  # noqa: E731
        regions.add_row(escape(row.region), f"{row.tolerance_kpa:g}", flagged(row), f"{row.mean_kpa:g}",
                        *((flagged(heel[row.region]), f"{heel[row.region].mean_kpa:g}") if walking else ()))
    out.print(regions)
    measured = lambda value, unit: "not run" if value is None else f"{value:g} {unit}"  # noqa: E731
    say(f"pistoning in swing {measured(summary.pistoning_mm, 'mm')}; rotation in stance "
        f"{measured(summary.stance_rotation_deg, 'deg')}")
    for name, case in summary.cases.items():
        if not case.converged:
            say(f"warning: {name} did not converge (force residual {case.residual_ratio:.1e} of the load after "
                f"{case.newton_iterations} Newton iterations): treat its numbers as rough")
    say(f"sensel peak: the highest mean over one pressure-mapping sensel ({summary.sensel}), the figure to "
        "compare with measured pressures; the tolerance flags use the peak")
    say(f"penalty contact stiffness {summary.penalty_stiffness_mpa_per_mm:g} MPa/mm; {summary.dofs} dofs")
    for note in summary.notes:
        say(flags(note))
    say("validated: " + "; ".join(summary.validated))
    say("estimates: " + "; ".join(summary.estimates))
    say("wrote " + ", ".join(summary.written.values()))


def print_cases(result) -> None:
    table("Cases", ("reference", "level", "side", "scans", "revisions"),
          [(c.reference, c.level, c.side, c.scans, c.revisions) for c in result.cases])


def print_history(record) -> None:
    say(f"case {record.reference}: {record.side} {record.level}, opened {record.created_at}")
    for scan in record.scans:
        say(f"  scan {scan.id}: {scan.filename} ({scan.method}, {scan.units}) {scan.file_hash[:12]}")
    for r in record.revisions:
        parent = f" from {r.parent}" if r.parent else ""
        say(f"  revision {r.id}{parent}: {r.socket_type} {r.liner} on scan {r.scan}, socket {r.socket_hash[:12]} "
            f"by {r.by} {r.note}")
    for e in record.evaluations:
        say(f"  evaluation {e.id}: {e.k_level}, sensitive: {', '.join(e.sensitive_areas) or 'none'}")
    for made in record.fabrications:
        say(f"  fabrication {made.id}: {made.stage} socket of revision {made.revision} in {made.material} by {made.lab}")
    for f in record.fittings:
        child = f" -> revision {f.child_revision}" if f.child_revision else ""
        say(f"  fitting {f.id} of revision {f.revision}: comfort {f.comfort}/10{child}")
    for d in record.deliveries:
        say(f"  delivery {d.id} of revision {d.revision}: taught "
            f"{', '.join(k for k, done in d.checklist.items() if done) or 'nothing yet'}")
    for f in record.followups:
        say(f"  follow-up {f.id}: scan {f.scan}, volume {f.volume_change_pct:+.2f} %, advice: {f.advice}")
    for a in record.analyses:
        say(f"  analysis {a.id} of revision {a.revision}: {'quick preview' if a.quick else 'full'}, "
            f"{a.body_mass_kg:g} kg {a.k_level}, " + ", ".join(f"{p.case} peak {p.peak_pressure_kpa:g} kPa (sensel "
            f"{p.sensel_peak_kpa:g} kPa)" for p in a.peaks) + f" by {a.by} {a.created_at}")
    for event in record.audit:
        say(f"  {event.at} {event.actor}: {event.action}")


def print_follow_up(record) -> None:
    say(f"follow-up {record.id} of case {record.reference}: scan {record.scan} against scan {record.baseline_scan}")
    say(f"  volume below {record.compared_below_mm:.0f} mm: {record.baseline_volume_cm3:.1f} -> "
        f"{record.later_volume_cm3:.1f} cm3 ({record.volume_change_pct:+.2f} %), mean radial change "
        f"{record.mean_radial_change_mm:+.2f} mm")
    table("Deviation by region (mm, + larger)", ("region", "mean", "most lost", "most gained"),
          [(r.region, f"{r.mean_mm:+.2f}", f"{r.most_lost_mm:+.2f}", f"{r.most_gained_mm:+.2f}") for r in record.regions])
    table("Circumferences (mm above the distal end)", ("level mm", "baseline mm", "follow-up mm", "change %"),
          [(f"{r.level_mm:.0f}", f"{r.baseline_mm:.1f}", f"{r.later_mm:.1f}", f"{r.change_pct:+.2f}")
           for r in record.circumferences])
    say(f"advice: {record.advice}: " + "; ".join(record.reasons))
    for note in record.notes + [record.estimate]:
        say(f"  {flags(note)}")


def print_diff(result) -> None:
    say(f"revision {result.first} -> {result.second} of case {result.case}")
    for line in result.plan + result.spec + ([result.scan] if result.scan else []):
        say(f"  {line}")
    extent = result.deviation_mm
    say(f"  rectified model: {extent.most_inward:+.2f} to {extent.most_outward:+.2f} mm (mean {extent.mean:+.2f} mm)")
    for row in result.regions:
        say(f"    {row.region}: mean {row.mean_mm:+.2f}, {row.most_lost_mm:+.2f} to {row.most_gained_mm:+.2f} mm")


@functools.cache  # the commands do not change while the program runs
def _option_flags() -> dict[str, str]:
    """Request field name -> this command line's flag, from the commands' own parameters (e.g. side -> --side)."""
    command = typer.main.get_command(app)
    names: dict[str, str] = {"landmarks": "--landmarks", "plan": "--plan", "trim_offsets_mm": "--trim"}

    def walk(group) -> None:
        for sub in getattr(group, "commands", {}).values():
            walk(sub)
            for param in getattr(sub, "params", []):
                longest = [opt for opt in param.opts if opt.startswith("--")]
                if longest and param.name:
                    names.setdefault(param.name, longest[0])
    walk(command)
    return names


_FIELD = re.compile(r"`([a-z][a-z0-9_]*)`")


def flags(message: str) -> str:
    """A library message with each `field` written as this command line's flag for it (--field)."""
    known = _option_flags()
    return _FIELD.sub(lambda match: known.get(match.group(1), match.group(1)), message)


def _fail(message: str, code: int) -> None:
    err.print(printable(message), markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


# ---- the web application ------------------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    username: str = typer.Argument(..., help="The name they sign in with."),
    role: str = typer.Option(..., "--role", help="prosthetist (every step of the clinic's cases), technician (read "
                             "designs, record fabrication) or admin (the clinic's users)."),
    clinic: str = typer.Option(..., "--clinic", help="The clinic (made if new; the first one takes the cases made "
                               "before the store had clinics)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from the first line of "
                                        "standard input instead of asking for it."),
    as_json: bool = JsonOption, data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Add a user of the web application (the first admin of a clinic, then through the web)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    added = ops.add_user(store(data, url), ops.AddUserRequest(username=username, password=password, role=role,
                                                               clinic=clinic), settings().actor)
    shown(added, as_json, lambda u: say(f"user {u.username}: {u.role} of {u.clinic}"))


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback: this machine only; "
                             "0.0.0.0 only behind an HTTPS proxy)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    workers: int = typer.Option(2, "--workers", help="Worker processes for builds and analyses."),
    secure_cookies: bool = typer.Option(False, "--secure-cookies", help="Mark the session cookie Secure (served "
                                        "over HTTPS)."),
    demo: bool = typer.Option(False, "--demo", help="Put the demo clinic in an empty store first (a user 'demo' "
                              "and a case with the sample scan); prints how to sign in."),
    data: Optional[Path] = DataOption, url: Optional[str] = DatabaseOption,
) -> None:
    """Serve the clinic web application (open http://HOST:PORT in a browser)."""
    from socketcad import serve as run_server  # the web libraries load only here

    clinic_store = store(data, url)
    if demo:
        seeded = ops.demo_clinic(clinic_store)
        say(f"demo clinic: sign in as {seeded.username} / {seeded.password}" if seeded.created
            else f"demo clinic already there: sign in as {seeded.username}")
    say(f"socketcad on http://{host}:{port}  (Ctrl-C stops it)")
    run_server(clinic_store, url or settings().database_url, host, port, workers, secure_cookies,
               settings().tissue_cache)


def main() -> None:
    """Entry point: read the settings, run the app, turn errors into one line and an exit code."""
    global SETTINGS
    SETTINGS = Settings.from_environment()
    if not SETTINGS.debug:
        # A library's RuntimeWarning on odd input would be a second line before the error's one;
        # what matters to the user is in the error or the result's notes.
        warnings.simplefilter("ignore")
    try:
        code = app(standalone_mode=False)
    except SocketcadError as exc:
        _fail(f"error: {flags(str(exc))}", 2)
    except (typer.Abort, KeyboardInterrupt):
        _fail("aborted", 130)
    except typer.TyperException as exc:  # usage errors: a bad option, a missing argument (typer's own click)
        if type(exc).__name__ == "NoArgsIsHelpError":  # plain 'socketcad': the help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        _fail(f"error: {exc.format_message()}", exc.exit_code)
    except Exception as exc:  # real bugs, and the file system saying no
        if SETTINGS.debug:
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

