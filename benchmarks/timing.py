"""Timing for the benchmarks (run as scripts: ``python benchmarks/bench_x.py`` puts this folder on the path)."""

from __future__ import annotations

import statistics
import time


def seconds(function, repeats: int) -> tuple[float, object]:
    """The median wall time (s) of ``repeats`` calls of ``function``, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result
