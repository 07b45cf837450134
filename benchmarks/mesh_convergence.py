"""Mesh convergence of the interface analysis (README's table): PTB pin-lock socket on the OpenLimbTT
mean, 6 mm silicone liner, 80 kg, donning + standing, at tissue edges of 14, 12, 10 and 8 mm.

    .venv/bin/python benchmarks/mesh_convergence.py [EDGE_MM ...]

Each edge gets one fresh fTetWild mesh, and fTetWild's meshes differ from run to run: at 12 mm the
standing peaks of five meshes spread by several per cent (README), so read differences of that size
as noise. About 15 minutes on 2 cores.
"""

from __future__ import annotations

import sys

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


def main(edges_mm: list[float]) -> int:
    limb = locate_landmarks(load_limb("sample:openlimb-tt-mean"))
    socket = build_socket(rectify(limb, template_plan("ptb", limb)).rectified_limb(), SPEC)
    table = Table(title="PTB standing by tissue edge (kPa; N)")
    for column in ("edge mm", "DOF", "elements", "peak", "sensel peak", "mean", "patellar tendon peak / mean",
                   "popliteal peak / mean", "normal force N"):
        table.add_column(column, justify="right")
    for edge in edges_mm:
        result = analyse_interface(limb, socket.inner, 6.0, "pin_lock", 80, 3, tissue=tissue_mesh(limb, edge),
                                   cases=("standing",))
        case = result.summary().model_dump()["cases"]["standing"]
        regions = {row["region"]: row for row in case["regions"]}
        table.add_row(f"{edge:g}", f"{result.dofs:,}", f"{result.elements:,}", f"{case['peak_pressure_kpa']:.1f}",
                      f"{case['sensel_peak_kpa']:.1f}", f"{case['mean_pressure_kpa']:.1f}",
                      *(f"{regions[name]['peak_kpa']:.1f} / {regions[name]['mean_kpa']:.1f}"
                        for name in ("patellar tendon", "popliteal")),
                      f"{case['contact_force_n']:,.0f}")
        Console(width=160).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main([float(edge) for edge in sys.argv[1:]] or [14.0, 12.0, 10.0, 8.0]))
