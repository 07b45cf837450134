"""Bad input through the real command line (a fresh ``python -m socketcad.cli`` process).

Every case must end with exit code 2, exactly one line on stderr that names the culprit
(the file, or the bad value of an option) and the problem, no traceback, nothing on
stdout, and nothing at all (not even a hidden temp file) in the output folder. Each case
runs ``convert BAD out/x.stl`` and ``inspect BAD --csv out/p.csv`` side by side.
"""

from __future__ import annotations

import json
import os
import re
import resource
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import trimesh

from socketcad.anatomy.samples import SAMPLES
from socketcad.errors import InputError
from socketcad.geometry import io

SCAN_PATH = SAMPLES["ampscan-tt-scan"].path  # a real binary STL
AOP_PATH = SAMPLES["ampscan-example-aop"].path  # a real AOP with CR line endings

STL_RECORD = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
TETRA_FACES = "f 1 2 3\nf 1 3 4\nf 1 4 2\nf 2 4 3\n"


# ------------------------------------------------------------------ running the CLI


@dataclass
class Run:
    command: str
    code: int
    stdout: str
    stderr: str


def start(args: list[str], memory_limit: int | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("SOCKETCAD_DEBUG", "COLUMNS")}

    def limit_memory() -> None:
        if memory_limit:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    return subprocess.Popen(
        [sys.executable, "-m", "socketcad.cli", *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limit_memory,
    )


def finish(command: str, process: subprocess.Popen) -> Run:
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"{command} did not finish in 60 s")
    return Run(command, process.returncode, stdout, stderr)


def convert_and_inspect(source: str, extra: list[str], out_dir: Path, memory_limit: int | None = None) -> list[Run]:
    """``convert SOURCE out/x.stl`` and ``inspect SOURCE --csv out/p.csv``, run at the same time."""
    commands = {
        "convert": ["convert", source, str(out_dir / "x.stl"), *extra],
        "inspect": ["inspect", source, "--csv", str(out_dir / "p.csv"), *extra],
    }
    processes = {name: start(args, memory_limit) for name, args in commands.items()}
    return [finish(name, process) for name, process in processes.items()]


def assert_bad_input(run: Run, culprit: str, problem: str) -> None:
    where = f"socketcad {run.command}"
    assert "Traceback" not in run.stderr, f"{where} crashed:\n{run.stderr}"
    assert run.code == 2, f"{where}: exit {run.code}, expected 2; stderr: {run.stderr!r}"
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"{where}: expected one line on stderr, got {run.stderr!r}"
    assert culprit in lines[0], f"{where}: {culprit!r} not named in {lines[0]!r}"
    assert re.search(problem, lines[0], re.IGNORECASE), f"{where}: problem /{problem}/ not said in {lines[0]!r}"
    assert run.stdout == "", f"{where} printed results for bad input: {run.stdout!r}"


def assert_empty(folder: Path) -> None:
    left = sorted(p.name for p in folder.iterdir())
    assert left == [], f"files left in the output folder: {left}"


# ------------------------------------------------------------------------ bad files


def binary_stl(header: bytes, count: int, records: np.ndarray) -> bytes:
    return header[:80].ljust(80, b" ") + struct.pack("<I", count) + records.tobytes()


def scan_records() -> tuple[bytes, np.ndarray]:
    data = SCAN_PATH.read_bytes()
    return data[:80], np.frombuffer(data, dtype=STL_RECORD, offset=84).copy()


def stl_with_bad_coordinate(value: float) -> bytes:
    header, records = scan_records()
    records["corners"][len(records) // 2, 1, 2] = value
    return binary_stl(header, len(records), records)


def aop_missing_one_radius() -> bytes:
    lines = AOP_PATH.read_bytes().split(b"\r")
    while not lines[-1].strip():
        lines.pop()
    del lines[-10]  # a radius line, well inside the radii block
    return b"\r".join(lines) + b"\r"


def scan_scaled(factor: float) -> bytes:
    mesh = trimesh.load(SCAN_PATH)
    mesh.apply_scale(factor)
    return mesh.export(file_type="stl")


BAD_FILES = {
    "empty.stl": lambda: b"",
    "truncated.stl": lambda: SCAN_PATH.read_bytes()[: SCAN_PATH.stat().st_size // 2],
    "billion-faces.stl": lambda: binary_stl(scan_records()[0], 10**9, scan_records()[1][:5]),
    "nan.stl": lambda: stl_with_bad_coordinate(np.nan),
    "inf.stl": lambda: stl_with_bad_coordinate(np.inf),
    "nan.obj": lambda: ("v 0 0 0\nv 10 0 nan\nv 0 10 0\nv 0 0 10\n" + TETRA_FACES).encode(),
    "inf.obj": lambda: ("v 0 0 0\nv 10 0 0\nv 0 -inf 0\nv 0 0 10\n" + TETRA_FACES).encode(),
    "hello.stl": lambda: b"hello world\n" * 10,
    "points.obj": lambda: b"v 0 0 0\nv 100 0 0\nv 0 100 0\nv 0 0 100\n",
    "points.ply": lambda: (
        b"ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\n"
        b"property float z\nend_header\n0 0 0\n100 0 0\n0 100 0\n0 0 100\n"
    ),
    "too-big.stl": lambda: scan_scaled(100.0),
    "short.aop": aop_missing_one_radius,
    "limb.xyz": lambda: b"0 0 0\n1 0 0\n0 1 0\n",
}

FILE_CASES = [
    pytest.param("empty.stl", r"empty", id="empty-stl"),
    pytest.param("truncated.stl", r"truncated|corrupt", id="truncated-binary-stl"),
    pytest.param("billion-faces.stl", r"truncated|corrupt", id="header-claims-1e9-faces"),
    pytest.param("nan.stl", r"nan", id="nan-binary-stl"),
    pytest.param("inf.stl", r"inf", id="inf-binary-stl"),
    pytest.param("nan.obj", r"nan", id="nan-obj"),
    pytest.param("inf.obj", r"inf", id="inf-obj"),
    pytest.param("hello.stl", r"not .*stl|corrupt|invalid", id="text-renamed-stl"),
    pytest.param("points.obj", r"no faces", id="obj-vertices-only"),
    pytest.param("points.ply", r"no faces", id="ply-vertices-only"),
    pytest.param("too-big.stl", r"size.*give \S*units\S* \(one of .*\) or check the file", id="100x-too-big-no-units"),
    pytest.param("short.aop", r"radii.*(truncated|count)", id="aop-one-radius-missing"),
    pytest.param("limb.xyz", r"unknown file type", id="unknown-extension"),
]


@pytest.fixture
def out_dir(tmp_path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("name, problem", FILE_CASES)
def test_bad_file(tmp_path, out_dir, name, problem):
    bad = tmp_path / name
    bad.write_bytes(BAD_FILES[name]())
    # 4 GiB of address space is plenty for a bad file; a reader that believed a header
    # claiming 10**9 faces (50 GB) would die of MemoryError (exit 1) instead of exit 2.
    for run in convert_and_inspect(str(bad), [], out_dir, memory_limit=4 << 30):
        assert_bad_input(run, name, problem)
    assert_empty(out_dir)


def test_missing_file(tmp_path, out_dir):
    for run in convert_and_inspect(str(tmp_path / "missing.stl"), [], out_dir):
        assert_bad_input(run, "missing.stl", r"no such file")
    assert_empty(out_dir)


OPTION_CASES = [
    # (source, extra options, culprit named in the message, problem)
    pytest.param("sample:no-such-limb", [], "no-such-limb", r"unknown sample", id="unknown-sample"),
    pytest.param("sample:ampscan-tt-scan", ["--units", "furlong"], "furlong", r"unit", id="bad-units"),
    pytest.param("sample:ampscan-tt-scan", ["--anterior", "1,2"], "1,2", r"anterior", id="anterior-two-numbers"),
    pytest.param("sample:ampscan-tt-scan", ["--anterior", "0,0,nan"], "0,0,nan", r"anterior", id="anterior-nan"),
    pytest.param("sample:ampscan-tt-scan", ["--anterior", "0,0,0"], "0,0,0", r"anterior", id="anterior-zero"),
    pytest.param("sample:ampscan-tt-scan", ["--side", "sideways"], "sideways", r"side", id="bad-side"),
]


@pytest.mark.parametrize("source, extra, culprit, problem", OPTION_CASES)
def test_bad_option(out_dir, source, extra, culprit, problem):
    for run in convert_and_inspect(source, extra, out_dir):
        assert_bad_input(run, culprit, problem)
    assert_empty(out_dir)


# ------------------------------------------------------------------ the edge cases


def test_a_billion_face_header_fails_fast(tmp_path):
    """The reader checks the size the header implies before allocating anything."""
    bad = tmp_path / "billion-faces.stl"
    bad.write_bytes(BAD_FILES["billion-faces.stl"]())
    started = time.perf_counter()
    with pytest.raises(InputError, match="1,000,000,000"):
        io.read_mesh(bad)
    assert time.perf_counter() - started < 0.5


def test_too_big_shape_with_explicit_units_is_refused_unless_forced(tmp_path):
    """Explicit --units that make the shape 100 times a limb's size are refused with what was found
    (issue 18: '--units in' on a mm scan built a 2.5 m socket); --force reads it as given: 100x the
    length, so 10**6 times the volume of the scan (1,643 cm3, data README), with a warning."""
    big = tmp_path / "too-big.stl"
    big.write_bytes(BAD_FILES["too-big.stl"]())
    refused = finish("inspect", start(["inspect", str(big), "--units", "mm", "--step-mm", "100", "--json"]))
    assert refused.code == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "does not look like a residual limb" in refused.stderr and "mm long" in refused.stderr
    assert "to go on anyway" in refused.stderr  # the way to insist (force) is named
    run = finish("inspect", start(["inspect", str(big), "--units", "mm", "--step-mm", "100", "--json", "--force"]))
    assert run.code == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["units"] == "mm"
    assert data["volume_cm3"] == pytest.approx(1643.0e6, rel=0.01)
    assert data["length_mm"] == pytest.approx(100 * trimesh.load(SCAN_PATH).extents.max(), rel=0.02)
    assert any("WARNING" in note and "went on as" in note for note in data["notes"])
