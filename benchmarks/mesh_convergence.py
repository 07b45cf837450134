"""Mesh convergence of the interface analysis (README's table): PTB pin-lock socket on the OpenLimbTT
mean, 6 mm silicone liner, 80 kg, K3, standing and heel strike, at tissue edges of 14, 12, 10, 8 and 6 mm.

    .venv/bin/python benchmarks/mesh_convergence.py [EDGE_MM ...]

Each edge gets one fresh fTetWild mesh, and fTetWild's meshes differ from run to run: at 12 mm the
standing peaks of five meshes spread by several per cent (README), so read differences of that size
as noise. Printed per edge: degrees of freedom, mesh and analysis seconds, nodal and sensel peaks and
mean pressures, and each figure's difference from the finest edge's; then the coarsest edge from which
the sensel peaks and means stay within 3 % of the finest. About 30 minutes on 2 cores.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.table import Table

from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import load_limb
from socketcad.biomech.interface import analyse_interface
from socketcad.biomech.mesh import tissue_mesh
from socketcad.design.rectify import rectify
from socketcad.design.socket import SocketSpec, build_socket
from socketcad.design.templates import template_plan

SPEC = SocketSpec(socket_type="ptb", liner="silicone_locking_6", closure="pin_lock_icelock", adapter="lock_housing_4h")
CASES = ("standing", "heel_strike")
FIGURES = ("peak_pressure_kpa", "sensel_peak_kpa", "mean_pressure_kpa")
CONVERGED_PCT = 3.0


def main(edges_mm: list[float]) -> int:
    console = Console(width=200)
    limb = locate_landmarks(load_limb("sample:openlimb-tt-mean"))
    cavity = build_socket(rectify(limb, template_plan("ptb", limb)).rectified_limb(), SPEC).inner
    rows = {}
    for edge in edges_mm:
        clock = time.perf_counter()
        tissue = tissue_mesh(limb, edge)
        mesh_s = time.perf_counter() - clock
        clock = time.perf_counter()
        result = analyse_interface(limb, cavity, 6.0, "pin_lock", 80, 3, tissue=tissue, cases=CASES)
        summary = result.summary()
        rows[edge] = (summary.dofs, mesh_s, time.perf_counter() - clock,
                      {case: summary.cases[case] for case in CASES})
        console.print(f"{edge:g} mm: {summary.dofs:,} DOF, mesh {mesh_s:.0f} s, analysis {rows[edge][2]:.0f} s, "
                      + ", ".join(f"{case} {' / '.join(f'{getattr(row, f):.1f}' for f in FIGURES)} kPa "
                                  f"({row.newton_iterations} its, {'converged' if row.converged else 'NOT converged'})"
                                  for case, row in rows[edge][3].items()))
    finest = rows[min(rows)][3]
    table = Table(title="PTB by tissue edge: nodal peak / sensel peak / mean (kPa), difference from the finest edge (%)")
    for column in ("edge mm", "DOF", "mesh s", "analysis s") + tuple(f"{case} {what}" for case in CASES
                                                                      for what in ("kPa", "%")):
        table.add_column(column, justify="right")
    for edge, (dofs, mesh_s, analysis_s, cases) in rows.items():
        cells = []
        for case in CASES:
            cells.append(" / ".join(f"{getattr(cases[case], f):.1f}" for f in FIGURES))
            cells.append(" / ".join(f"{difference(cases[case], finest[case], f):+.1f}" for f in FIGURES))
        table.add_row(f"{edge:g}", f"{dofs:,}", f"{mesh_s:.0f}", f"{analysis_s:.0f}", *cells)
    console.print(table)
    within = [edge for edge in sorted(rows) if all(abs(difference(rows[e][3][case], finest[case], f)) <= CONVERGED_PCT
                                                  for e in sorted(rows) if e <= edge for case in CASES
                                                  for f in FIGURES[1:])]
    console.print(f"sensel peaks and means within {CONVERGED_PCT:g} % of the finest ({min(rows):g} mm) from "
                  + (f"{max(within):g} mm down" if max(within) > min(rows) else "no edge coarser than the finest"))
    return 0


def difference(case, finest, figure: str) -> float:
    return 100.0 * (getattr(case, figure) / getattr(finest, figure) - 1.0)


if __name__ == "__main__":
    sys.exit(main([float(edge) for edge in sys.argv[1:]] or [14.0, 12.0, 10.0, 8.0, 6.0]))
