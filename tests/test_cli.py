"""The socketcad command line, end to end on the shipped samples.

Reference values come from outside the program: /work/shared/data/README.md gives the
AmpScan scan's closed volume (about 1,643 cm3) and the OpenLimbTT full-size mean's capped
skin volume (about 2,174 cm3); the AOP landmark heights are read from the AOP text here.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import trimesh
import typer.main

from socketcad import cli as socketcad_cli
from socketcad.operations import result_schemas
from socketcad.operations import _common as operations_common
from socketcad.anatomy.samples import SAMPLES

SCAN = "sample:ampscan-tt-scan"
SCAN_PATH = SAMPLES["ampscan-tt-scan"].path
AOP_SAMPLE = "sample:ampscan-example-aop"
AOP_PATH = SAMPLES["ampscan-example-aop"].path

SCAN_VOLUME_CM3 = 1643.0  # data README: stl_file.stl closed volume, about 1,643 cm3
OPENLIMB_MEAN_VOLUME_CM3 = 2174.0  # data README: FullSize mean skin, capped, about 2,174 cm3


# --------------------------------------------------------------------------- helpers


def inspect_json(cli, *args) -> dict:
    result = cli("inspect", *args, "--json")
    assert result.code == 0, f"inspect {args} failed ({result.code}): {result.stderr}"
    return json.loads(result.stdout)


def convert(cli, *args) -> None:
    result = cli("convert", *args)
    assert result.code == 0, f"convert {args} failed ({result.code}): {result.stderr}"


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def landmark_height_mm(aop_path: Path, name: str) -> float:
    """A landmark's height above the distal slice, read straight from the AOP text.

    Layout (DOMAIN.md): ... side, landmark count, then per landmark: name, point count,
    3 values per point (the third is the height); then spokes, spacing, slices, spacing.
    """
    lines = [line.strip() for line in aop_path.read_bytes().decode("latin-1").replace("\r\n", "\r")
             .replace("\n", "\r").split("\r")]
    i = lines.index("END COMMENTS") + 4  # after CYLINDRICAL, the side and the landmark count
    heights = {}
    for _ in range(int(lines[i - 1])):
        label, count = lines[i], int(lines[i + 1])
        heights[label] = float(lines[i + 4])  # third value of the first point
        i += 2 + 3 * count
    n_spokes, spoke_spacing = int(lines[i]), float(lines[i + 1])
    i += 2 + (n_spokes if spoke_spacing == 0 else 0)
    slice_spacing = float(lines[i + 1])
    distal = 0.0 if slice_spacing > 0 else float(lines[i + 2])
    return heights[name] - distal


@pytest.fixture
def umask():
    """Set the process umask for a test and put the old one back."""
    old = os.umask(0o022)
    os.umask(old)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(old)


# ------------------------------------------------------------------------------ help


COMMANDS = sorted(typer.main.get_command(socketcad_cli.app).commands)


def test_commands_are_discovered():
    assert {"samples", "inspect", "convert", "demo"} <= set(COMMANDS)


@pytest.mark.parametrize("command", [[]] + [[name] for name in COMMANDS], ids=lambda c: c[0] if c else "app")
def test_help(cli, command):
    result = cli(*command, "--help")
    assert result.code == 0, result.stderr
    assert "Usage" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_no_arguments_shows_the_help_not_a_traceback(cli):
    result = cli()
    assert "Usage" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize(
    "args, names",
    [
        (["frobnicate"], "frobnicate"),  # unknown command
        (["inspect"], "file"),  # missing argument
        (["inspect", SCAN, "--units"], "--units"),  # option without its value
        (["inspect", SCAN, "--step-mm", "ten"], "--step-mm"),  # not a number
    ],
    ids=["unknown-command", "missing-argument", "option-without-value", "not-a-number"],
)
def test_usage_errors_are_one_line_with_exit_2(cli, args, names):
    result = cli(*args)
    assert result.code == 2, f"exit {result.code}: {result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert names in lines[0]


def test_ctrl_c_exits_130(cli, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(operations_common, "load_limb", interrupted)
    result = cli("inspect", SCAN)
    assert result.code == 130, f"exit {result.code} after Ctrl-C"


@pytest.mark.parametrize("error", [RuntimeError("kaboom"), OSError("kaboom")], ids=["RuntimeError", "OSError"])
def test_internal_error_is_one_line_with_exit_1(cli, monkeypatch, error):
    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(operations_common, "load_limb", broken)
    result = cli("inspect", SCAN)
    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "kaboom" in lines[0] and "internal error" in lines[0], result.stderr


# --------------------------------------------------------------------------- samples


def test_samples_lists_every_sample_in_full(cli):
    result = cli("samples")
    assert result.code == 0, result.stderr
    for name in SAMPLES:
        assert f"sample:{name}" in result.stdout, f"sample:{name} missing or cut short"


# --------------------------------------------------------------------------- inspect


def test_inspect_json_volume_matches_published_value(cli):
    data = inspect_json(cli, SCAN)
    assert rel_diff(data["volume_cm3"], SCAN_VOLUME_CM3) < 0.01, data["volume_cm3"]
    assert data["units"] == "mm" and data["source"] == SCAN


def test_inspect_csv_has_units_and_one_row_per_level(cli, tmp_path):
    data = inspect_json(cli, SCAN, "--csv", tmp_path / "p.csv")
    header, rows = read_csv(tmp_path / "p.csv")
    assert {"level_mm", "from_start_mm", "circumference_mm", "area_mm2"} <= set(header)
    unitless = [name for name in header if name != "partial" and not (name.endswith("_mm") or name.endswith("_mm2"))]
    assert not unitless, f"columns without units: {unitless}"
    assert len(rows) == len(data["profile"])
    # levels every 10 mm from the distal end up to the top of the limb
    assert abs(len(rows) - data["length_mm"] / 10) <= 1, (len(rows), data["length_mm"])
    levels = np.array([float(row["level_mm"]) for row in rows])
    assert np.allclose(np.diff(levels), 10.0)
    for row in rows:
        assert float(row["from_start_mm"]) == pytest.approx(float(row["level_mm"]), abs=1e-3)


def test_inspect_csv_half_the_step_doubles_the_rows(cli, tmp_path):
    cli("inspect", SCAN, "--csv", tmp_path / "10.csv")
    result = cli("inspect", SCAN, "--step-mm", "5", "--csv", tmp_path / "5.csv")
    assert result.code == 0, result.stderr
    n10, n5 = len(read_csv(tmp_path / "10.csv")[1]), len(read_csv(tmp_path / "5.csv")[1])
    assert n10 > 10 and abs(n5 - 2 * n10) <= 2, (n10, n5)


def test_inspect_from_a_file_landmark_starts_the_steps_there(cli, tmp_path):
    mpt = landmark_height_mm(AOP_PATH, "MPT")
    assert 50 < mpt < 250, mpt  # sanity of the independent reading
    data = inspect_json(cli, AOP_SAMPLE, "--from", "MPT", "--csv", tmp_path / "p.csv")
    assert data["profile_start_mm"] == pytest.approx(mpt, abs=0.01)
    _, rows = read_csv(tmp_path / "p.csv")
    starts = [row for row in rows if abs(float(row["from_start_mm"])) < 1e-6]
    assert len(starts) == 1, "exactly one row should be at the MPT level"
    assert float(starts[0]["level_mm"]) == pytest.approx(mpt, abs=0.01)
    offsets = np.array([float(row["from_start_mm"]) for row in rows])
    assert np.allclose(offsets / 10, np.round(offsets / 10), atol=1e-4), "steps must count from MPT"
    assert offsets.min() < 0 < offsets.max(), "levels below and above MPT"


# --------------------------------------------------------------------------- convert


@pytest.mark.parametrize("fmt", ["stl", "obj", "ply", "off", "3mf"])
def test_convert_keeps_the_volume(cli, tmp_path, fmt):
    original = inspect_json(cli, SCAN)["volume_cm3"]
    convert(cli, SCAN, tmp_path / f"limb.{fmt}")
    back = inspect_json(cli, tmp_path / f"limb.{fmt}")
    assert back["units"] == "mm"
    assert rel_diff(back["volume_cm3"], original) < 0.005, (back["volume_cm3"], original)


def test_convert_to_aop_keeps_the_skin_below_the_brim(cli, tmp_path):
    """AOP slices must be complete all round, so the shape ends at the lowest brim point:
    its volume is the limb's below that level (integrated independently from sections)."""
    from socketcad.anatomy.limb import load_limb
    from socketcad.geometry import aop, measure

    convert(cli, SCAN, tmp_path / "limb.aop")
    shape = aop.read_aop(tmp_path / "limb.aop")
    top = float(shape.slice_heights_mm[-1])
    limb = load_limb(SCAN)
    levels = np.linspace(0.0, top, 400)[1:]
    areas = np.array([s.area_mm2 for s in measure.profile(limb.skin, levels)])
    z, a = np.r_[0.0, levels], np.r_[0.0, areas]
    # the trapezoid rule by hand: numpy 1.26 (allowed by pyproject) has no np.trapezoid
    below_top_cm3 = float(np.sum(np.diff(z) * (a[1:] + a[:-1]) / 2)) / 1000
    back = inspect_json(cli, tmp_path / "limb.aop")
    assert rel_diff(back["volume_cm3"], below_top_cm3) < 0.01, (back["volume_cm3"], below_top_cm3)


def test_convert_ascii_stl(cli, tmp_path):
    convert(cli, SCAN, tmp_path / "limb.stl", "--ascii")
    text = (tmp_path / "limb.stl").read_bytes()
    assert text.lstrip().startswith(b"solid") and b"facet normal" in text and b"\0" not in text
    text.decode("ascii")  # nothing but ASCII
    back = inspect_json(cli, tmp_path / "limb.stl")
    assert rel_diff(back["volume_cm3"], inspect_json(cli, SCAN)["volume_cm3"]) < 0.005


def test_convert_keep_pose_keeps_the_input_coordinates(cli, tmp_path):
    original = trimesh.load(SCAN_PATH)
    convert(cli, SCAN, tmp_path / "posed.stl", "--keep-pose")
    convert(cli, SCAN, tmp_path / "framed.stl")
    posed, framed = trimesh.load(tmp_path / "posed.stl"), trimesh.load(tmp_path / "framed.stl")
    assert np.allclose(posed.bounds, original.bounds, atol=1e-3), (posed.bounds, original.bounds)
    # the anatomical frame: distal end at z = 0, limb along +z
    assert framed.bounds[0, 2] == pytest.approx(0.0, abs=1e-3)
    assert not np.allclose(framed.bounds, original.bounds, atol=1.0), "the default must re-pose the limb"
    assert framed.extents[2] == pytest.approx(inspect_json(cli, SCAN)["length_mm"], abs=0.01)


def test_convert_output_in_a_folder_that_is_in_the_way(cli, tmp_path):
    (tmp_path / "limb.stl").mkdir()
    result = cli("convert", SCAN, tmp_path / "limb.stl")
    assert result.code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "limb.stl" in lines[-1] and "Traceback" not in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["limb.stl"], "temp file left behind"


# ------------------------------------------------------------------------------ demo


def test_demo_writes_its_outputs_and_prints_the_folder(cli, tmp_path):
    cache = Path(os.environ["SOCKETCAD_CACHE"]) / "tissue"  # the kept quick mesh: no minute of meshing
    cache.mkdir(parents=True)
    for kept in (Path(__file__).parent / "data" / "tissue").glob("tissue-*.npz"):
        shutil.copy(kept, cache)
    out_dir = tmp_path / "a rather long folder name so that the printed path exceeds eighty columns"
    result = cli("demo", "--out", out_dir)
    assert result.code == 0, result.stderr
    expected = {"limb.stl", "limb.3mf", "limb.aop", "profile.csv", "measures.json",
                "socket.stl", "socket.3mf", "socket-inner.aop", "socket-sheet.json", "analysis", "report.html",
                "report.pdf"}
    assert {p.name for p in out_dir.iterdir()} == expected
    assert {p.name for p in (out_dir / "analysis").iterdir()} == {"interface-maps.npz", "interface-summary.json"}
    assert f"report: {(out_dir / 'report.html').resolve()}" in result.stdout
    assert not list(cache.glob("*.tmp")) and len(list(cache.iterdir())) == 3, "the kept mesh was not used"
    socket = trimesh.load(out_dir / "socket.stl")
    assert socket.is_watertight and socket.volume > 100_000  # mm3
    assert "component choice:" in result.stdout
    assert all((out_dir / name).stat().st_size > 0 for name in expected)
    assert str(out_dir.resolve()) in result.stdout, "the folder must be printed whole (not wrapped)"
    measures = json.loads((out_dir / "measures.json").read_text())
    assert rel_diff(measures["volume_cm3"], OPENLIMB_MEAN_VOLUME_CM3) < 0.01, measures["volume_cm3"]
    _, rows = read_csv(out_dir / "profile.csv")
    assert len(rows) == len(measures["profile"]) > 10


# ----------------------------------------------------------------------------- units


@pytest.mark.parametrize("unit, mm_per_unit", [("mm", 1.0), ("cm", 10.0), ("m", 1000.0), ("in", 25.4)])
def test_units_are_detected(cli, tmp_path, unit, mm_per_unit):
    mesh = trimesh.load(SCAN_PATH)
    mesh.apply_scale(1.0 / mm_per_unit)
    mesh.export(tmp_path / f"scan-{unit}.stl")
    data = inspect_json(cli, tmp_path / f"scan-{unit}.stl")
    assert data["units"] == unit, data["notes"]
    reference = inspect_json(cli, SCAN)["volume_cm3"]
    assert rel_diff(data["volume_cm3"], reference) < 0.001, (data["volume_cm3"], reference)


# ----------------------------------------------------------------------- permissions


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664)], ids=["umask-022", "umask-002"])
def test_written_files_follow_the_umask(cli, tmp_path, umask, mask, mode):
    umask(mask)
    convert(cli, SCAN, tmp_path / "limb.stl")
    convert(cli, SCAN, tmp_path / "limb.aop")
    assert cli("inspect", SCAN, "--csv", tmp_path / "p.csv").code == 0
    demo = cli("demo", "--out", tmp_path / "demo", "--no-report", "--json")  # the report: as every output
    assert demo.code == 0, demo.stderr
    jsonschema.validate(json.loads(demo.stdout), result_schemas()["DemoResult"])  # --json follows its schema
    written = [tmp_path / "limb.stl", tmp_path / "limb.aop", tmp_path / "p.csv", *(tmp_path / "demo").iterdir()]
    for path in written:
        actual = path.stat().st_mode & 0o777
        assert actual == mode, f"{path.name}: mode {actual:o}, expected {mode:o} (umask {mask:03o})"
        assert actual & 0o044, f"{path.name} is private ({actual:o})"
