"""Timing and reporting for the benchmarks (run as scripts: ``python benchmarks/bench_x.py`` puts this
folder on the path)."""

from __future__ import annotations

import statistics
import time

from rich.console import Console
from rich.table import Table


def seconds(function, repeats: int = 1) -> tuple[float, object]:
    """The median wall time (s) of ``repeats`` calls of ``function``, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def report(console: Console, title: str, columns: tuple[str, ...], row: tuple[str, ...], what: str | None = None,
           measured_s: float = 0.0, target_s: float = 0.0, digits: int = 3) -> None:
    """One benchmark's table (a row of figures under ``columns``) and whether ``what`` met its target (if any)."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(*row)
    console.print(table)
    if what is None:
        return
    console.print(f"{what} {measured_s:.{digits}f} s (target < {target_s:g} s): "
                  + ("met" if measured_s < target_s else "NOT met"))
