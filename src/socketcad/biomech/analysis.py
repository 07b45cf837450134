"""The interface analysis of a built socket, set up once: the sheet names the liner and closure, the socket
must have been built for this limb, the limb must be transtibial, the tissue mesh comes from a cache."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import trimesh

from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import Limb
from socketcad.biomech.fem import NEWTON_RTOL
from socketcad.biomech.interface import QUICK_NOTE, QUICK_RTOL, InterfaceResult, Materials, analyse_interface, cavity_of
from socketcad.biomech.loads import interface_cases
from socketcad.biomech.mesh import DEFAULT_EDGE_MM, QUICK_EDGE_MM, QUICK_ENVELOPE, tissue_mesh
from socketcad.biomech.tolerance import DEFAULT_TRANSTIBIAL, RegionTolerance
from socketcad.design.components import load_catalogue, parse_k_level
from socketcad.design.fabrication import FabricationSheet, check_built_for
from socketcad.errors import InputError

__all__ = ["analyse_socket", "check_analysis_inputs"]

NOT_CHECKED = "`force`: not checked that the socket was built for this limb"


def check_analysis_inputs(body_mass_kg: float, k_level: object) -> int:
    """The K-level as 0-4; InputError for a body mass or K-level no load case can take (before any work)."""
    number = parse_k_level(k_level)
    interface_cases(body_mass_kg, number)
    return number


def analyse_socket(limb: Limb, socket_solid: trimesh.Trimesh, sheet: FabricationSheet, body_mass_kg: float,
                   k_level: object = 3, tolerances: tuple[RegionTolerance, ...] = DEFAULT_TRANSTIBIAL,
                   edge_mm: float = DEFAULT_EDGE_MM, cache: Path | None = None, force: bool = False,
                   where: str = "the socket", step=lambda name: None, quick: bool = False) -> InterfaceResult:
    """Donning and the load cases of ``limb`` in the socket ``socket_solid`` (limb frame, mm) whose
    fabrication ``sheet`` names its liner and closure. ``cache``: folder of kept tissue meshes (None: mesh
    anew). ``force``: analyse even if the sheet records another limb. ``where``: names the socket in errors.
    ``quick``: the preview, donning and standing on a coarse mesh (``edge_mm`` is then not used)."""
    number = check_analysis_inputs(body_mass_kg, k_level)
    liner = load_catalogue().liner(sheet.liner.id)
    limb = locate_landmarks(limb)
    unchecked = None if force else check_built_for(sheet, limb, where)
    if limb.level != "transtibial":
        raise InputError("interface analysis covers transtibial limbs for now (the tolerance table and bones fit)")
    materials = Materials(liner_youngs_kpa=liner.elastic_modulus_kpa, friction=liner.friction_skin)
    step("meshing the tissue (fTetWild)")
    if quick:
        tissue = tissue_mesh(limb, QUICK_EDGE_MM, cache=cache, envelope=QUICK_ENVELOPE)
        cases, rtol = ("standing",), QUICK_RTOL
    else:
        tissue, cases, rtol = tissue_mesh(limb, edge_mm, cache=cache), None, NEWTON_RTOL
    result = analyse_interface(limb, cavity_of(socket_solid, limb), liner.thickness_mm, sheet.closure.kind,
                               body_mass_kg, number, materials, tissue=tissue, tolerances=tolerances, cases=cases,
                               step=step, rtol=rtol)
    said = NOT_CHECKED if force else unchecked
    notes = ((QUICK_NOTE,) if quick else ()) + ((said,) if said else ())
    return replace(result, notes=result.notes + notes, quick=quick)
