"""Benchmark: load + clean + frame + measure, on the sample scan and a 1M-triangle version.

Prints a table with trimesh's own load time measured in the same run as the baseline
(this machine is noisy: compare ratios, not seconds). Target: the whole chain on about
1,000,000 triangles under 3 s on a 2-core machine.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import trimesh
from rich.console import Console
from rich.table import Table

from socketcad.anatomy.limb import load_limb
from socketcad.anatomy.measures import measure_limb
from socketcad.anatomy.samples import SAMPLES
from socketcad.geometry import io

TARGET_SECONDS_1M = 3.0


def timed(function, repeats: int) -> tuple[float, object]:
    """Median wall time over ``repeats`` runs (s) and the last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def chain(path: Path) -> dict[str, float]:
    """Seconds for each stage of the capture chain on one file."""
    stages: dict[str, float] = {}
    marks = [("start", time.perf_counter())]
    limb = load_limb(path, step=lambda name: marks.append((name, time.perf_counter())))
    marks.append(("measure", time.perf_counter()))
    measure_limb(limb, step_mm=10)
    marks.append(("end", time.perf_counter()))
    for (name, t0), (_, t1) in zip(marks[1:], marks[2:]):
        stages[name] = t1 - t0
    stages["total"] = marks[-1][1] - marks[0][1]
    return stages


def make_million(folder: Path) -> Path:
    """The sample scan subdivided three times (~956k triangles), as binary STL."""
    scan = trimesh.load(SAMPLES["ampscan-tt-scan"].path, process=False)
    big = scan.subdivide().subdivide().subdivide()
    path = folder / "scan-1M.stl"
    io.write_mesh(big, path)
    return path


def main() -> int:
    console = Console(width=150)
    with tempfile.TemporaryDirectory() as folder:
        files = {"sample scan": SAMPLES["ampscan-tt-scan"].path, "1M subdivided": make_million(Path(folder))}
        table = Table(title="capture chain: load + clean + frame + measure (median of 3)")
        for column in ("input", "triangles", "trimesh.load s", "read s", "clean s", "frame s",
                       "measure s", "chain s", "chain / trimesh.load", "peak MiB"):
            table.add_column(column, justify="right")
        verdict = True
        for name, path in files.items():
            baseline, mesh = timed(lambda: trimesh.load(path), 3)
            runs = [chain(path) for _ in range(3)]
            stages = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            tracemalloc.start()
            chain(path)
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            table.add_row(
                name, f"{len(mesh.faces):,}", f"{baseline:.3f}", f"{stages['reading']:.3f}",
                f"{stages['cleaning']:.3f}", f"{stages['aligning']:.3f}", f"{stages['measure']:.3f}",
                f"{stages['total']:.3f}", f"{stages['total'] / baseline:.2f}", f"{peak:.0f}",
            )
            if name.startswith("1M"):
                verdict = stages["total"] < TARGET_SECONDS_1M
                summary = (f"1M chain {stages['total']:.2f} s (target < {TARGET_SECONDS_1M:g} s): "
                           + ("met" if verdict else "NOT met"))
        console.print(table)
        console.print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
