"""Wall strength of a built socket under the ISO 10328 proof loads of the patient's mass.

The finite-element model (biomech.structure) is the socket's wall between its cavity and outer
surfaces, rebuilt on a decimated copy of the rectified model (about FE_FACES faces: the solve
then takes seconds) with the same liner offset, wall thickness and trimline. The wall is
clamped where the distal block holds it (CLAMP_HEIGHT_MM above the cavity floor) and loaded
over the inner surface above the clamp band by the load case's force and its moment about the
adapter. What is validated and what is an estimate is said in biomech.structure and
biomech.loads; the distal block, adapter and bolts are not part of this model.
"""

from __future__ import annotations

import numpy as np
import trimesh

from socketcad.biomech.loads import check_body_mass, iso10328_load_case
from socketcad.biomech.structure import DEFAULT_CLAMP_BAND_MM, layered_wall_mesh, wall_strength
from socketcad.design.fabrication import StrengthCase, WallStrength
from socketcad.design.socket import Socket
from socketcad.design.trimline import trim_level
from socketcad.errors import GeometryError, InputError
from socketcad.geometry import deform, solid

FE_FACES = 2500  # about 1,000 wall vertices: the helper's convergence study changed < 2 % from 433 to 769
FE_LAYERS = 2  # quadratic tetrahedra, 2 layers through the wall (1 layer: peak stress 4 % low)
MAX_DIRECTION_SMOOTHING = 20
CLAMP_HEIGHT_MM = 15.0
ISO_LEVEL_MAX_KG = (("P3", 60.0), ("P4", 80.0), ("P5", 100.0), ("P6", 125.0))


def iso_level(body_mass_kg: float) -> str:
    """The ISO 10328 test loading level for a body mass (kg): P3 <= 60, P4 <= 80, P5 <= 100, P6 <= 125."""
    check_body_mass(body_mass_kg)
    for level, most_kg in ISO_LEVEL_MAX_KG:
        if body_mass_kg <= most_kg:
            return level
    raise InputError(f"body mass {body_mass_kg:g} kg is above ISO 10328's heaviest level (P6, 125 kg); "
                     "the wall cannot be checked against the standard")


def fe_wall(socket: Socket, faces: int = FE_FACES) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The wall on a decimated model: inner vertices (n, 3), faces (m, 3), unit directions (n, 3)
    towards the outer surface and thickness (n,) mm, cut at the socket's trimline.

    The directions are the cavity surface's normals smoothed (rim included) until no prism of the
    layered FE mesh folds (concave spots narrower than the wall, slivers along the cut); the
    thickness is the specified wall.
    """
    coarse = socket.model.skin.simplify_quadric_decimation(face_count=faces)
    coarse = trimesh.Trimesh(coarse.vertices, coarse.faces, process=False, validate=False)
    inner = solid.offset_surface(coarse, socket.liner_offset_mm)
    vertices, kept, _ = solid.cut_below(inner, coarse.faces, trim_level(socket.trimline, socket.model, inner))
    surface = trimesh.Trimesh(vertices, kept, process=False, validate=False)
    # The rim's directions are smoothed too: on a scan the cut leaves small faces along the trimline whose
    # normals cross (the AmpScan scan: 5-6 folding prisms, all on the rim, that a pinned rim kept folded)
    directions, operator = deform.vertex_normals(surface), deform.umbrella_operator(surface)
    thickness = np.full(len(vertices), socket.wall_thickness_mm)
    for _ in range(MAX_DIRECTION_SMOOTHING):
        if not _folds(vertices, kept, directions, thickness):
            return vertices, kept, directions, thickness
        directions = operator @ directions
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    raise GeometryError("the wall folds in the FE model even with smoothed directions; refine the model or thicken it")


def _folds(vertices: np.ndarray, faces: np.ndarray, directions: np.ndarray, thickness: np.ndarray) -> bool:
    try:
        layered_wall_mesh(vertices, faces, directions, thickness, FE_LAYERS)
    except GeometryError:
        return True
    return False


def socket_wall_strength(socket: Socket, body_mass_kg: float) -> WallStrength:
    """Peak von Mises stress, deflection and safety factor of the wall under ISO 10328 heel-strike
    and push-off proof loads for ``body_mass_kg``, for the fabrication sheet."""
    level = iso_level(body_mass_kg)
    vertices, faces, directions, thickness = fe_wall(socket)
    floor_z = vertices[:, 2].min()
    clamped = vertices[:, 2] < floor_z + CLAMP_HEIGHT_MM
    loaded = vertices[:, 2] > floor_z + CLAMP_HEIGHT_MM + DEFAULT_CLAMP_BAND_MM
    material = socket.material
    side = socket.model.side if socket.model.side in ("left", "right") else "right"
    cases = {}
    for condition in ("heel_strike", "push_off"):
        case = iso10328_load_case(level, condition)
        check = wall_strength(vertices, faces, directions, thickness, clamped, loaded, case, material.youngs_modulus_mpa,
                              material.poisson, material.strength_mpa, layers=FE_LAYERS, side=side)
        cases[condition] = StrengthCase(force_n=case.force_n, peak_von_mises_mpa=round(check.peak_von_mises_mpa, 2),
                                        max_deflection_mm=round(check.max_deflection_mm, 3),
                                        safety_factor=round(check.safety_factor, 2), dofs=int(check.dofs),
                                        seconds=round(check.seconds, 1), load_source=case.source, solver=check.solver)
    return WallStrength(
        iso_10328_level=f"{level} (body mass {body_mass_kg:g} kg)", material_strength_mpa=material.strength_mpa,
        strength_basis=material.strength_basis, **cases,
        validated="FE verified against beam theory and mesh convergence (tests); see biomech.structure",
        estimates=("boundary conditions (distal block clamped), load transfer (traction on the inner surface), "
                   "ISO load-line offsets, printed-material strength; the adapter and bolts are not modelled"))
