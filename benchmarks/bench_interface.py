"""Benchmark: the interface analysis (donning and the four load cases) and its quick preview, on the sample limb.

The OpenLimbTT mean with a PTB pin-lock socket (6 mm locking liner), 80 kg, K3, on fresh tissue meshes
(fTetWild; their time is printed apart: a clinic's cache makes each limb's mesh once). Printed per step:
degrees of freedom, Newton iterations (one factorisation of the tangent each), seconds, converged,
and the seconds over one Cholesky factorisation of the tissue stiffness measured in the same run (the
unit of work; this machine is noisy: compare ratios). Then the quick preview (donning + standing on
the coarse mesh) and its error against the full analysis, and the process's memory peak (RSS, which
sees CHOLMOD's C allocations where tracemalloc would not). Targets (issue 21): the whole analysis
under 60 s on 2 cores, the preview under 10 s.
"""

from __future__ import annotations

import resource
import sys
import time

from rich.console import Console
from rich.table import Table
from sksparse import cholmod

from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import load_limb
from socketcad.biomech.interface import QUICK_RTOL, _into_wall, _problem, analyse_interface, quick_error  # private: the baseline's problem
from socketcad.biomech.mesh import QUICK_EDGE_MM, QUICK_ENVELOPE, tissue_mesh, with_liner
from socketcad.design.rectify import rectify
from socketcad.design.socket import SocketSpec, build_socket
from socketcad.design.templates import template_plan

TARGET_SECONDS = 60.0
QUICK_TARGET_SECONDS = 10.0
SPEC = SocketSpec(socket_type="ptb", liner="silicone_locking_6", closure="pin_lock_icelock", adapter="lock_housing_4h")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def one_factorisation_s(tissue, cavity, materials) -> float:
    """Seconds of one Cholesky factorisation of the limb's stiffness (bones held: without contact the
    limb floats), its symbolic analysis done beforehand as the solver does."""
    problem, _ = _problem(with_liner(tissue, 6.0), _into_wall(cavity), materials)
    free = len(problem.tie.free_dofs)
    matrix = problem.reduced_stiffness[:free, :free].tocsc()
    factor = cholmod.analyze(matrix, mode="supernodal", ordering_method="metis")
    clock = time.perf_counter()
    factor.cholesky_inplace(matrix)
    return time.perf_counter() - clock


def timed(limb, cavity, tissue, cases, **options):
    clock = time.perf_counter()
    result = analyse_interface(limb, cavity, 6.0, "pin_lock", 80, 3, tissue=tissue, cases=cases, **options)
    return result, time.perf_counter() - clock


def main() -> int:
    console = Console(width=150)
    limb = locate_landmarks(load_limb("sample:openlimb-tt-mean"))
    cavity = build_socket(rectify(limb, template_plan("ptb", limb)).rectified_limb(), SPEC).inner
    before_mb = peak_rss_mb()
    clock = time.perf_counter()
    tissue = tissue_mesh(limb)
    mesh_s = time.perf_counter() - clock
    clock = time.perf_counter()
    coarse = tissue_mesh(limb, QUICK_EDGE_MM, envelope=QUICK_ENVELOPE)
    coarse_mesh_s = time.perf_counter() - clock

    full, full_s = timed(limb, cavity, tissue, None)
    peak_mb = peak_rss_mb()
    quick, quick_s = timed(limb, cavity, coarse, ("standing",), rtol=QUICK_RTOL)  # as analyse_socket's quick
    factor_s = one_factorisation_s(tissue, cavity, full.materials)
    quick_factor_s = one_factorisation_s(coarse, cavity, full.materials)

    table = Table(title="interface analysis: OpenLimbTT mean, PTB pin lock, 80 kg, K3")
    for column in ("analysis", "step", "DOF", "Newton iterations", "s", "s / factorisation", "converged",
                   "sensel peak kPa", "mean kPa"):
        table.add_column(column, justify="right")
    for label, result, unit_s in (("full", full, factor_s), ("quick", quick, quick_factor_s)):
        summary = result.summary()
        for name, case in summary.cases.items():
            table.add_row(label, name, f"{summary.dofs:,}", f"{case.newton_iterations}", f"{case.seconds:.1f}",
                          f"{case.seconds / unit_s:.1f}", "yes" if case.converged else "NO",
                          f"{case.sensel_peak_kpa:.1f}", f"{case.mean_pressure_kpa:.1f}")
    console.print(table)
    console.print(f"one Cholesky factorisation (bones held, no contact): full mesh {factor_s:.2f} s, "
                  f"quick mesh {quick_factor_s:.2f} s")
    console.print(f"tissue meshes (fTetWild, once per limb with a cache): full {mesh_s:.1f} s, quick {coarse_mesh_s:.1f} s")
    console.print(f"whole analysis {full_s:.1f} s = {full_s / factor_s:.0f} factorisations (target < {TARGET_SECONDS:g} s): "
                  + ("met" if full_s < TARGET_SECONDS else "NOT met"))
    console.print(f"quick preview, donning + standing {quick_s:.1f} s = {quick_s / factor_s:.1f} full-mesh factorisations "
                  f"(target < {QUICK_TARGET_SECONDS:g} s): " + ("met" if quick_s < QUICK_TARGET_SECONDS else "NOT met"))
    console.print("quick against full, standing: " + ", ".join(
        f"{name} {value:+.1f} %" for name, value in quick_error(quick, full).items()))
    console.print(f"memory peak {peak_mb:,.0f} MB RSS after the full analysis ({peak_mb - before_mb:,.0f} MB above the "
                  f"socket build), {peak_rss_mb():,.0f} MB at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
