"""socketcad command line: a thin shell over the library.

Exit codes: 0 success, 2 bad input (one line on stderr naming the file and the
problem), 1 an internal error (one line; set SOCKETCAD_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import csv
import io as _io
import json
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from socketcad.anatomy.limb import CaptureOptions, Limb, load_limb
from socketcad.anatomy.measures import LimbMeasures, measure_limb
from socketcad.anatomy.samples import SAMPLES
from socketcad.errors import InputError, SocketcadError
from socketcad.geometry import io
from socketcad.geometry.units import UNITS

app = typer.Typer(
    help="socketcad: design custom prosthetic sockets from a residual-limb scan. "
    "Every FILE may also be sample:NAME (see 'socketcad samples').",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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


def capture_options(units, reference, side, flip, anterior, keep_axis, level, **extra) -> CaptureOptions:
    """CaptureOptions from CLI values; InputError for a malformed --anterior."""
    vector = None
    if anterior:
        try:
            vector = tuple(float(value) for value in anterior.split(","))
        except ValueError:
            vector = ()
        if len(vector) != 3 or not all(math.isfinite(v) for v in vector) or not any(vector):
            raise InputError(f"--anterior '{anterior}' is not a direction: give three finite numbers X,Y,Z, not all 0")
    return CaptureOptions(
        units=units, reference_length_mm=reference, side=side, flip_side=flip,
        anterior=vector, keep_axis=keep_axis, level=level, **extra,
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
) -> None:
    """Measure a residual limb: volume (brim capped), area, length and a cross-section profile."""
    if csv_path is not None:
        check_output(csv_path, ("csv",))
    limb = load(file, capture_options(units, reference, side, flip, anterior, keep_axis, level))
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
) -> None:
    """Convert a limb between formats, in millimetres, cleaned and in the anatomical frame."""
    fmt = check_output(target, io.MESH_FORMATS + ("aop",))
    options = capture_options(
        units, reference, side, flip, anterior, keep_axis, level, clean=not raw, remesh_edge_mm=remesh_mm,
    )
    limb = load(source, options)
    from socketcad.anatomy.export import write_limb

    write_limb(limb, target, fmt, keep_pose=keep_pose, spokes=spokes, slice_mm=slice_mm, ascii_stl=ascii_stl)
    for note in limb.notes:
        err.print(f"[dim]{escape(note)}[/dim]", soft_wrap=True)
    say(f"wrote {target}")


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("out/demo"), "--out", help="Folder for the demo outputs."),
    sample: str = typer.Option("sample:openlimb-tt-mean", "--sample", help="Sample limb to run on."),
) -> None:
    """Run the main job on a bundled sample limb and write its outputs to a folder."""
    from socketcad.anatomy.export import write_limb

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out_dir}: cannot create the output folder ({exc.strerror})") from None
    limb = load(sample, CaptureOptions())
    measures = measure_limb(limb)
    write_limb(limb, out_dir / "limb.stl", "stl")
    write_limb(limb, out_dir / "limb.3mf", "3mf")
    write_limb(limb, out_dir / "limb.aop", "aop")
    write_profile_csv(measures, out_dir / "profile.csv")
    io.write_atomic(
        out_dir / "measures.json",
        lambda tmp: tmp.write_text(json.dumps(limb_summary(limb) | measures.as_dict(), indent=2)),
    )
    print_measures(limb, measures)
    out.print()
    say(f"outputs written to {out_dir.resolve()}: limb.stl, limb.3mf, limb.aop, profile.csv, measures.json")


def say(line: str) -> None:
    """Print one plain line on stdout: no markup, no highlighting, never wrapped (paths stay whole)."""
    out.print(line, markup=False, highlight=False, soft_wrap=True)


def check_output(path: Path, allowed: tuple[str, ...]) -> str:
    """An output path's format, checked before any slow work: known extension, existing folder."""
    fmt = io.file_format(path, allowed)
    if not Path(path).parent.is_dir():
        raise InputError(f"{path}: the folder {Path(path).parent} does not exist; create it first")
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
    err.print(message, markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


def main() -> None:
    """Entry point: run the app, turning errors into one line and an exit code."""
    usage_errors = _usage_error_types()
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
