"""Benchmark: interface mechanics, donning + standing, on the sample limb at default resolution.

The OpenLimbTT mean with a PTB pin-lock socket (6 mm locking liner), 80 kg, K3. Timed: the tissue
mesh (fTetWild), then the analysis (liner layer, stiffness, donning, standing). Printed: degrees of
freedom, elements, time and Newton iterations per step, the process's memory peak (RSS, which sees
CHOLMOD's C allocations where tracemalloc would not). Baseline, measured in the same run: one
Cholesky factorisation of the limb's stiffness (the unit of work a Newton iteration costs; this
machine is noisy: compare ratios). Target: donning + standing under 60 s on 2 cores.
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
from socketcad.biomech.interface import _into_wall, _problem, analyse_interface  # private: the baseline's problem
from socketcad.biomech.mesh import tissue_mesh, with_liner
from socketcad.design.rectify import rectify
from socketcad.design.socket import SocketSpec, build_socket
from socketcad.design.templates import template_plan

TARGET_SECONDS = 60.0
SPEC = SocketSpec(socket_type="ptb", liner="silicone_locking_6", closure="pin_lock_icelock", adapter="lock_housing_4h")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    console = Console(width=150)
    limb = locate_landmarks(load_limb("sample:openlimb-tt-mean"))
    socket = build_socket(rectify(limb, template_plan("ptb", limb)).rectified_limb(), SPEC)
    before_mb = peak_rss_mb()
    clock = time.perf_counter()
    tissue = tissue_mesh(limb)
    mesh_s = time.perf_counter() - clock
    clock = time.perf_counter()
    result = analyse_interface(limb, socket.inner, 6.0, "pin_lock", 80, 3, tissue=tissue, cases=("standing",))
    analysis_s = time.perf_counter() - clock
    peak_mb = peak_rss_mb()

    problem, _ = _problem(with_liner(tissue, 6.0), _into_wall(socket.inner), result.materials)
    free = len(problem.tie.free_dofs)  # bones held: without contact the limb is free to float
    matrix = problem.reduced_stiffness[:free, :free].tocsc()
    factor = cholmod.analyze(matrix, mode="supernodal", ordering_method="metis")
    clock = time.perf_counter()
    factor.cholesky_inplace(matrix)
    baseline_s = time.perf_counter() - clock

    table = Table(title="interface mechanics: OpenLimbTT mean, PTB, donning + standing")
    for column in ("step", "s", "Newton iterations", "factorisations", "CG iterations", "peak kPa", "mean kPa"):
        table.add_column(column, justify="right")
    for name, case in result.cases.items():
        loaded = case.pressure_kpa[case.pressure_kpa > 0]
        table.add_row(name, f"{case.seconds:.1f}", f"{case.newton_iterations}", f"{case.factorizations}",
                      f"{case.cg_iterations}", f"{case.pressure_kpa.max():.1f}", f"{loaded.mean():.1f}")
    console.print(table)
    steps_s = sum(case.seconds for case in result.cases.values())
    console.print(f"degrees of freedom {result.dofs:,}, elements {result.elements:,}")
    console.print(f"tissue mesh {mesh_s:.1f} s; analysis {analysis_s:.1f} s (donning + standing {steps_s:.1f} s, "
                  f"the rest: liner layer, stiffness, factor analysis, skin map)")
    console.print(f"one Cholesky factorisation (bones held, no contact) {baseline_s:.2f} s; analysis / factorisation {analysis_s / baseline_s:.1f}")
    console.print(f"memory peak {peak_mb:,.0f} MB RSS ({peak_mb - before_mb:,.0f} MB above the socket build)")
    console.print(f"donning + standing {analysis_s:.1f} s (target < {TARGET_SECONDS:g} s): "
                  + ("met" if analysis_s < TARGET_SECONDS else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
