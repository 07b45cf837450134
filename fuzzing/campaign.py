"""A bounded, seeded mutation campaign against the command line: every bad input must give exit 2 and one
line, write nothing, and neither hang, crash nor exhaust memory.

    python fuzzing/campaign.py --minutes 10 --workers 2 --seed 19      # make fuzz
    python fuzzing/campaign.py --count 40 --seed 1                      # a short, deterministic run

Seeds (a small limb-shaped mesh in every format, the AOP and tape samples, a plan, a spec, landmarks, an
evaluation and a case archive) are mutated, input i by ``random.Random(f"{seed}:{i}")``, so a count and a
seed give the same inputs on every run. Each input runs in a child forked from a parent that has imported
socketcad once (a fresh interpreter costs 2 s), under a 4 GiB address-space limit and a 30 s timeout.
Failing inputs are kept under --out with their command and output, to become regression files.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # a forked child must not inherit a BLAS thread pool
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import io as _io
import json
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh
import yaml

import socketcad.cli as cli
import socketcad.clinic.archive  # noqa: F401  imported before forking: children start warm
import socketcad.clinic.records  # noqa: F401
import socketcad.design.plan  # noqa: F401
import socketcad.design.socket  # noqa: F401
from socketcad.anatomy.samples import SAMPLES
from socketcad.geometry import io

MEMORY_BYTES = 4 * 2**30
TIMEOUT_S = 30.0
KINDS = ("mesh", "aop", "tape", "plan", "landmarks", "spec", "evaluation", "archive")
MESH_FORMATS = {"stl": "stl", "stl-ascii": "stl_ascii", "obj": "obj", "ply": "ply", "off": "off"}
OUTCOMES = ("refused", "accepted", "internal", "multi-line", "wrote on error", "hang", "memory", "crash")
FAILURES = OUTCOMES[2:]


# ------------------------------------------------------------------ seeds

def limb_mesh() -> trimesh.Trimesh:
    """A limb-shaped surface, small so that each run is quick: a capsule 300 mm long, 100 mm across."""
    return trimesh.creation.capsule(height=200.0, radius=50.0, count=[24, 24])


def plan_seed() -> dict:
    return {"schema_version": 1, "name": "fuzz", "modifications": [
        {"kind": "push", "label": "patellar tendon", "region": {"landmark": "mpt", "width_mm": 40, "height_mm": 30},
         "depth_mm": 4},
        {"kind": "reduction", "profile": [{"level_pct": 0, "reduction_pct": 3}, {"level_pct": 100, "reduction_pct": 5}]},
        {"kind": "smooth", "iterations": 2}]}


def make_seeds(folder: Path) -> dict[str, list[Path]]:
    """Every seed file, by kind; the limb mesh is also ``folder/limb.stl`` (the limb of plan and spec runs)."""
    mesh = limb_mesh()
    seeds: dict[str, list[Path]] = {kind: [] for kind in KINDS}
    for name, file_type in MESH_FORMATS.items():
        path = folder / f"seed-{name}.{name.split('-')[0]}"
        payload = mesh.export(file_type=file_type)
        path.write_bytes(payload.encode() if isinstance(payload, str) else payload)
        seeds["mesh"].append(path)
    (folder / "seed.3mf").write_bytes(io.three_mf_bytes(mesh, {"Title": "fuzz"}))
    seeds["mesh"].append(folder / "seed.3mf")
    mesh.export(folder / "limb.stl")
    seeds["aop"].append(SAMPLES["ampscan-example-aop"].path)
    seeds["tape"].append(SAMPLES["ampscan-tt-tape"].path)
    for kind, record in (("plan", plan_seed()),
                         ("landmarks", {"mpt": [0.0, 50.0, 200.0], "distal_end": [0.0, 0.0, 0.0]}),
                         ("spec", {"socket_type": "tsb", "liner": "silicone_locking_6", "closure": "pin_lock_icelock",
                                   "adapter": "lock_housing_4h", "trim_offsets_mm": {"posterior": -5.0}}),
                         ("evaluation", {"k_level": "K3", "history": "trauma 2024", "strength_mrc": {"knee_extensors": 4},
                                         "range_of_motion_deg": {"knee_flexion": 120}, "sensitive_areas": ["fibular_head"]})):
        for suffix in ("yaml", "json"):
            path = folder / f"{kind}.{suffix}"
            path.write_text(json.dumps(record, indent=1) if suffix == "json" else yaml.safe_dump(record, sort_keys=False))
            seeds[kind].append(path)
    seeds["archive"].append(folder / "case.zip")
    return seeds


def make_store(folder: Path, limb: Path) -> Path:
    """A clinic data folder with case FUZZ-1 (its limb scan kept) and that case's archive beside it."""
    data = folder / "store"
    for args in (["case", "new", "FUZZ-1", "--level", "transtibial", "--side", "left"],
                 ["scan", "add", "FUZZ-1", str(limb), "--units", "mm", "--anterior", "0,1,0"],
                 ["case", "export", "FUZZ-1", "-o", str(folder / "case.zip")]):
        code, _, err = run_in_child([*args, "--data", str(data)], folder, TIMEOUT_S * 4)
        if code != 0:
            raise SystemExit(f"fuzzing: making the seed store failed at {' '.join(args)}: {err.strip()}")
    return data


# ------------------------------------------------------------------ mutations

NUMBERS = [b"nan", b"NaN", b"inf", b"-inf", b"1e308", b"-1e308", b"0", b"-1", b"9" * 30, b"9" * 5000,
           b"1e-320", b"-0", b"4294967296", b"-9223372036854775809"]
JUNK = [b"\x00", b"\x1b[31m", b"\xff\xfe", b"\n", b" ", b"-", b"{", b"[", b"&a", b"*a", b"!!set", b"facet",
        b"f 1 2", b"v 1", b"v 1 2 3 4", b"endsolid", b"\r"]
TYPES = [None, [], {}, 0, -1, 1e308, float("nan"), "", "x" * 5000, "\x1b]0;title\x07", [1, 2, 3], {"a": {"b": [None]}},
         True, "2026-01-01", 2**70]


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """A few random byte edits: flips, cuts, repeated or deleted chunks, inserted numbers or junk."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        at = rng.randrange(len(data))
        edit = rng.choice(["flip", "truncate", "repeat", "delete", "number", "junk"])
        if edit == "flip":
            data[at] = rng.randrange(256)
        elif edit == "truncate":
            del data[at:]
        elif edit == "repeat":
            size = rng.randint(1, 2000)
            data[at:at] = data[at:at + size] * rng.randint(1, 50)
        elif edit == "delete":
            del data[at:at + rng.randint(1, 2000)]
        elif edit == "number":
            data[at:at] = rng.choice(NUMBERS)
        else:
            data[at:at] = rng.choice(JUNK)
    return bytes(data)


def mutate_numbers(text: str, rng: random.Random) -> str:
    """Numbers of a text format replaced by extreme ones."""
    words = text.split(" ")
    numeric = [i for i, word in enumerate(words) if word.strip().lstrip("-").replace(".", "", 1).replace("e", "", 1).isdigit()]
    for i in rng.sample(numeric, min(len(numeric), rng.randint(1, 20))):
        words[i] = rng.choice(NUMBERS).decode() + ("\n" if words[i].endswith("\n") else "")
    return " ".join(words)


def mutate_mesh(rng: random.Random) -> trimesh.Trimesh:
    """The limb mesh with shape edits a reader passes: holes, duplicates, far vertices, flatness, debris, folds."""
    mesh = limb_mesh()
    vertices, faces = mesh.vertices.copy(), mesh.faces.copy()
    generator = np.random.default_rng(rng.randrange(2**32))
    for _ in range(rng.randint(1, 3)):
        edit = rng.choice(["drop", "duplicate", "move", "scale", "thin", "loose", "flip", "weld", "one face"])
        if edit == "drop":
            faces = faces[generator.random(len(faces)) > rng.random()]
        elif edit == "duplicate":
            faces = np.vstack([faces] * rng.randint(2, 4))
        elif edit == "move":
            chosen = generator.random(len(vertices)) < rng.random() * 0.5
            vertices[chosen] += generator.normal(size=(int(chosen.sum()), 3)) * 10.0 ** rng.randint(0, 12)
        elif edit == "scale":
            vertices *= 10.0 ** rng.uniform(-6, 6)
        elif edit == "thin":
            vertices[:, rng.randrange(3)] *= 10.0 ** rng.uniform(-12, -1)
        elif edit == "loose":
            count = rng.choice([10, 1000, 12_000, 30_000])
            faces = np.vstack([faces, len(vertices) + np.arange(3 * count).reshape(-1, 3)])
            vertices = np.vstack([vertices, generator.random((3 * count, 3)) * 300.0])
        elif edit == "flip":
            chosen = generator.random(len(faces)) < rng.random()
            faces[chosen] = faces[chosen][:, ::-1]
        elif edit == "weld":
            chosen = generator.integers(0, len(vertices), size=rng.randint(1, 500))
            vertices[chosen] = vertices[chosen[0]]
        else:
            faces = faces[:1]
    return trimesh.Trimesh(vertices, faces.reshape(-1, 3), process=False, validate=False)


def mutate_record(record: object, rng: random.Random) -> object:
    """A parsed record with one field anywhere replaced by a value of another type, or nested deep."""
    record = json.loads(json.dumps(record))
    if rng.random() < 0.15:
        return rng.choice([None, [record], 5, "text", nest(record, rng.choice([30, 500, 5000]))])
    node = record
    for _ in range(10):
        keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not keys:
            break
        key = rng.choice(keys)
        if isinstance(node[key], (dict, list)) and rng.random() < 0.6:
            node = node[key]
            continue
        choice = rng.random()
        if choice < 0.7:
            node[key] = rng.choice(TYPES)
        elif choice < 0.85 and isinstance(node, dict):
            node[rng.choice(["\x1b[2J", "extra", "", "\n"])] = rng.choice(TYPES)
        elif isinstance(node, list):
            node.extend([node[key]] * rng.choice([100, 5000]))
        else:
            del node[key]
        break
    return record


@dataclass(frozen=True)
class Nested:
    """``value`` inside ``depth`` lists: written as text, as deep nesting overflows the encoders."""

    value: object
    depth: int


def nest(value: object, depth: int) -> Nested:
    return Nested(value, depth)


def dump(record: object, suffix: str) -> bytes:
    if isinstance(record, Nested):
        return b"[" * record.depth + json.dumps(record.value, allow_nan=True).encode() + b"]" * record.depth
    if suffix == "json":
        return json.dumps(record, allow_nan=True).encode()
    return yaml.safe_dump(record, sort_keys=False).encode()


def mutate_archive(seed: bytes, rng: random.Random) -> bytes:
    """The case archive with its manifest's records mutated, members doubled or added, or bytes edited."""
    with zipfile.ZipFile(_io.BytesIO(seed)) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    manifest = json.loads(members["manifest.json"])
    choice = rng.random()
    buffer = _io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if choice < 0.6:
            members["manifest.json"] = dump(mutate_record(manifest, rng), "json")
        for name, data in members.items():
            archive.writestr(name, data)
        if 0.6 <= choice < 0.7:
            warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # the duplicate is the point
            archive.writestr("manifest.json", json.dumps({**manifest, "case": {**manifest["case"], "reference": "B"}}))
        elif 0.7 <= choice < 0.75:
            info = zipfile.ZipInfo(f"files/{'0' * 64}")
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as member:  # 1.5 GiB of zeros, ~1.5 MB packed
                block = bytes(2**24)
                for _ in range(96):
                    member.write(block)
    data = buffer.getvalue()
    return mutate_bytes(data, rng) if choice >= 0.75 else data


# ------------------------------------------------------------------ one input

@dataclass
class Input:
    kind: str
    args: list[str]
    files: dict[str, bytes]  # name in the work folder -> content


def make_input(index: int, seed: int, seeds: dict[str, list[Path]], folder: Path, data: Path, kinds) -> Input:
    rng = random.Random(f"{seed}:{index}")
    kind = kinds[index % len(kinds)]
    source = rng.choice(seeds[kind])
    suffix = source.suffix.lstrip(".")
    limb = ["--units", "mm", "--anterior", "0,1,0", "--level", "transtibial", "--side", "left"]
    limb_path = str(folder / "limb.stl")
    if kind == "mesh":
        if rng.random() < 0.5:
            fmt = rng.choice(list(MESH_FORMATS))
            suffix = fmt.split("-")[0]
            payload = mutate_mesh(rng).export(file_type=MESH_FORMATS[fmt])
            content = payload.encode() if isinstance(payload, str) else payload
        else:
            content = source.read_bytes()
            content = (mutate_numbers(content.decode(), rng).encode() if rng.random() < 0.3 and _is_text(content)
                       else mutate_bytes(content, rng))
        name = f"in.{suffix}"
        command = rng.random()
        if command < 0.25:
            args = ["convert", name, "-o", "out/x.stl"]
        elif command < 0.4:  # through landmarks and a template's rectification
            args = ["rectify", name, *limb, "--template", "tsb", "-o", "out/r.stl", "--report", "out/r.csv"]
        else:
            args = ["inspect", name, "--csv", "out/p.csv", *(["--units", "mm"] if rng.random() < 0.5 else []),
                    *(["--force"] if rng.random() < 0.3 else [])]
        return Input(kind, args, {name: content})
    if kind == "aop":
        text = source.read_bytes()
        content = mutate_numbers(text.decode("latin-1"), rng).encode("latin-1") if rng.random() < 0.4 else mutate_bytes(text, rng)
        return Input(kind, ["inspect", "in.aop", "--csv", "out/p.csv"], {"in.aop": content})
    if kind == "archive":
        content = mutate_archive(source.read_bytes(), rng)
        return Input(kind, ["case", "import", "in.zip", "--data", str(data)], {"in.zip": content})
    record = yaml.safe_load(source.read_text())
    name = f"in.{suffix}"
    content = dump(mutate_record(record, rng), suffix) if rng.random() < 0.6 else mutate_bytes(source.read_bytes(), rng)
    commands = {
        "tape": ["inspect", name, "--csv", "out/p.csv"],
        "plan": ["rectify", limb_path, *limb, "--plan", name, "-o", "out/r.stl", "--report", "out/r.csv",
                 "--save-plan", "out/p.yaml"],
        "landmarks": ["landmarks", limb_path, *limb, "--landmarks", name],
        "spec": ["build", limb_path, *limb, "--spec", name, "-o", "out/s.stl"],
        "evaluation": ["evaluate", "FUZZ-1", "--form", name, "--data", str(data)],
    }
    return Input(kind, commands[kind], {name: content})


def _is_text(data: bytes) -> bool:
    try:
        data.decode("ascii")
    except UnicodeDecodeError:
        return False
    return True


# ------------------------------------------------------------------ running

def start_child(args: list[str], work: Path) -> int:
    """Fork a child that runs ``socketcad ARGS`` in ``work`` (stdout, stderr to files there); its pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.chdir(work)
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
        for stream, name in ((1, "stdout.txt"), (2, "stderr.txt")):
            os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), stream)
        sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)
        sys.argv = ["socketcad", *args]
        try:
            cli.main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except MemoryError:
            sys.stderr.write("MemoryError\n")
            code = 137
        except BaseException as exc:  # noqa: BLE001  anything escaping main() is a bug main() missed
            sys.stderr.write(f"escaped main(): {type(exc).__name__}: {exc}\n")
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def run_in_child(args: list[str], work: Path, timeout_s: float = TIMEOUT_S) -> tuple[int, str, str]:
    """Run one command to its end in a forked child; (exit code, stdout, stderr)."""
    pid = start_child(args, work)
    code = wait(pid, time.monotonic() + timeout_s)
    return code, _read(work / "stdout.txt"), _read(work / "stderr.txt")


def wait(pid: int, deadline: float) -> int:
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -999
        time.sleep(0.01)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def outcome(code: int, err: str, work: Path) -> str:
    """What a finished child did: one of OUTCOMES."""
    lines = [line for line in err.splitlines() if line.strip()]
    written = [p for p in (work / "out").rglob("*")] if (work / "out").exists() else []
    if code == -999:
        return "hang"
    if "MemoryError" in err or code in (137, -9):
        return "memory"
    if code < 0:
        return "crash"
    if code == 0:
        return "accepted"
    if code != 2:
        return "internal"
    if written:
        return "wrote on error"
    return "refused" if len(lines) == 1 else "multi-line"


@dataclass
class Counts:
    """Outcomes per kind of input; the failing inputs' descriptions."""

    by_kind: dict[str, Counter] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    store_problems: list[str] = field(default_factory=list)
    inputs: int = 0
    seconds: float = 0.0

    def add(self, kind: str, result: str) -> None:
        self.by_kind.setdefault(kind, Counter())[result] += 1
        self.inputs += 1

    @property
    def failed(self) -> int:
        return sum(counter[name] for counter in self.by_kind.values() for name in FAILURES) + len(self.store_problems)

    def table(self) -> str:
        rows = [f"{'kind':<11}" + "".join(f"{name:>15}" for name in OUTCOMES)]
        for kind in KINDS:
            if kind in self.by_kind:
                rows.append(f"{kind:<11}" + "".join(f"{self.by_kind[kind][name]:>15,}" for name in OUTCOMES))
        return "\n".join(rows)


def campaign(seed: int, *, count: int | None = None, minutes: float | None = None, workers: int = 2,
             kinds: tuple[str, ...] = KINDS, out: Path = Path("out/fuzz")) -> Counts:
    """Run inputs 0, 1, 2... (``count`` of them, or for ``minutes``) on ``workers`` children at a time."""
    started = time.monotonic()
    deadline = started + minutes * 60 if minutes else float("inf")
    counts = Counts()
    root = Path(tempfile.mkdtemp(prefix="socketcad-fuzz-"))
    failures = out / "failures"
    try:
        seeds = make_seeds(root)
        data = make_store(root, root / "limb.stl")
        running: dict[int, tuple[Input, Path, float, int]] = {}
        index = 0
        while running or (index < (count if count is not None else 10**12) and time.monotonic() < deadline):
            while len(running) < workers and index < (count if count is not None else 10**12) \
                    and time.monotonic() < deadline:
                case = make_input(index, seed, seeds, root, data, kinds)
                work = root / f"run-{index}"
                (work / "out").mkdir(parents=True)
                for name, content in case.files.items():
                    (work / name).write_bytes(content)
                running[start_child(case.args, work)] = (case, work, time.monotonic() + TIMEOUT_S, index)
                index += 1
            finished = _reap(running)
            for pid, code in finished:
                case, work, _, number = running.pop(pid)
                err = _read(work / "stderr.txt")
                result = outcome(code, err, work)
                counts.add(case.kind, result)
                if result in FAILURES:
                    counts.failures.append(_keep(failures, number, case, result, code, err, work))
                shutil.rmtree(work, ignore_errors=True)
            if not finished:
                time.sleep(0.01)
        counts.store_problems = store_problems(data, root)
        counts.seconds = time.monotonic() - started
        return counts
    finally:
        shutil.rmtree(root, ignore_errors=True)


def store_problems(data: Path, folder: Path) -> list[str]:
    """What is wrong with the store the campaign's archives and evaluations went into: a case that 'case
    show' fails on, a database that fails SQLite's integrity check, a stored file no record names."""
    import sqlite3

    with sqlite3.connect(data / "socketcad.db") as db:
        problems = [] if db.execute("PRAGMA integrity_check").fetchone()[0] == "ok" else ["integrity_check failed"]
        references = [row[0] for row in db.execute("SELECT reference FROM cases")]
        named = {row[0] for row in db.execute("SELECT file_hash FROM scans UNION SELECT socket_hash FROM revisions "
                                              "UNION SELECT sheet_hash FROM revisions")}
    for reference in references:
        code, _, err = run_in_child(["case", "show", reference, "--data", str(data)], folder)
        if code != 0:
            problems.append(f"case show {reference!r}: exit {code}: {err.strip()[:200]}")
    stored = {path.name for path in (data / "files").glob("*/*")}
    problems += [f"file {name[:12]} is named by no record" for name in sorted(stored - named)]
    return problems


def _reap(running: dict) -> list[tuple[int, int]]:
    """The children that ended (or were killed for running past their time), with exit codes."""
    finished = []
    for pid, (_, _, deadline, _) in list(running.items()):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            finished.append((pid, os.waitstatus_to_exitcode(status)))
        elif time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            finished.append((pid, -999))
    return finished


def _keep(folder: Path, number: int, case: Input, result: str, code: int, err: str, work: Path) -> str:
    """Save a failing input and what it did; its one-line description."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in case.files.items():
        (folder / f"{case.kind}-{number}-{name}").write_bytes(content)
    first = next((line for line in err.splitlines()[::-1] if line.strip()), "")[:300]
    description = f"{result}: {case.kind} #{number} (exit {code}): socketcad {' '.join(case.args)}: {first}"
    (folder / f"{case.kind}-{number}.txt").write_text(f"{description}\n\n--- stderr\n{err}")
    return description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--count", type=int, default=None, help="stop after this many inputs")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--out", type=Path, default=Path("out/fuzz"))
    options = parser.parse_args()
    if options.count is None and options.minutes is None:
        options.minutes = 10.0
    kinds = tuple(kind for kind in options.kinds.split(",") if kind)
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    counts = campaign(options.seed, count=options.count, minutes=options.minutes, workers=options.workers,
                      kinds=kinds, out=options.out)
    print(f"socketcad fuzzing campaign: seed {options.seed}, {counts.inputs:,} inputs in {counts.seconds:.0f} s "
          f"on {options.workers} workers ({counts.inputs / max(counts.seconds, 1e-9) * 60:.0f} a minute)")
    print(counts.table())
    print(f"store after the campaign: {len(counts.store_problems)} problems (case show on every case, "
          "PRAGMA integrity_check, files no record names)")
    for line in counts.failures + counts.store_problems:
        print(line)
    print(f"{counts.failed} failing inputs" + (f", kept in {options.out / 'failures'}" if counts.failed else ""))
    sys.exit(1 if counts.failed else 0)


if __name__ == "__main__":
    main()
