"""What a lab needs to make a built socket: printable files and a fabrication sheet.

Files written next to the requested STL path ``socket.stl``: ``socket.3mf`` (millimetres,
with the spec as metadata), ``socket-inner.aop`` (the cavity surface, for carving a
positive mould), ``socket-sheet.json`` (the fabrication sheet). Every file is written
atomically; nothing is written until everything has been computed.
"""

from __future__ import annotations

import json
from pathlib import Path


from socketcad import __version__
from socketcad.design.socket import Socket
from socketcad.errors import InputError
from socketcad.geometry import aop, io
from socketcad.geometry.intersect import self_intersections

AOP_SPOKES = 72
AOP_SLICE_MM = 2.0


def output_paths(stl_path: Path) -> dict[str, Path]:
    """The files a build writes, named after the STL path (must end in .stl)."""
    stem = stl_path.with_suffix("")
    return {"stl": stl_path, "3mf": stem.with_suffix(".3mf"), "aop": Path(f"{stem}-inner.aop"),
            "sheet": Path(f"{stem}-sheet.json")}


def check_built_for(sheet: dict, limb, where: str) -> str | None:
    """InputError if the sheet (``where``) records a limb other than ``limb`` (their skins' fingerprints);
    a note when either does not record one (sheets from before they did, limbs not read from a file)."""
    made_for = sheet.get("limb")
    recorded = made_for.get("fingerprint") if isinstance(made_for, dict) else None
    if not recorded or not limb.fingerprint:
        return "the sheet or the limb does not record which limb the socket was made for: not checked"
    if recorded != limb.fingerprint:
        raise InputError(f"{where}: the socket was built for another limb ({made_for.get('source')}, read "
                         f"with other options or another file) than {limb.source}; give the limb and options it "
                         "was built from, or --force to analyse it anyway")
    return None


def fabrication_sheet(socket: Socket, strength: dict | None = None) -> dict:
    """Plain data for the lab: material, mass, components, print orientation, checks (mm, g, cm3).

    The solid is checked for self-intersections here (about 1 s per 500k faces), not in the build."""
    spec, material = socket.spec, socket.material
    low, high = socket.solid.bounds
    crossings = int(len(self_intersections(socket.solid)))
    sheet = {
        "socket_type": spec.socket_type,
        "stage": spec.stage,
        "material": {"id": material.id, "name": material.name, "density_g_cm3": material.density_g_cm3,
                     "source": material.source},
        "material_volume_cm3": round(socket.volume_cm3, 1),
        "mass_g": round(socket.mass_g, 0),
        "wall_thickness_mm": socket.wall_thickness_mm,
        "distal_floor_mm": round(socket.floor_mm, 1),
        "liner": {"id": socket.liner.id, "name": socket.liner.name, "thickness_mm": socket.liner.thickness_mm,
                  "offset_mm": round(socket.liner_offset_mm, 2)},
        "closure": {"id": socket.closure.id, "name": socket.closure.name, "kind": socket.closure.kind},
        "adapter": {"id": socket.adapter.id, "name": socket.adapter.name,
                    "bolt_holes_mm": [[round(float(x), 2), round(float(y), 2)] for x, y, _ in socket.bolt_centres_mm],
                    "bolt_hole_diameter_mm": socket.adapter.bolt_hole_diameter_mm},
        "openings": [{"name": o.name, "diameter_mm": round(2 * o.radius_mm, 1)} for o in socket.openings],
        "trimline": [{"name": p.name, "angle_deg": p.angle_deg, "landmark": p.landmark, "offset_mm": p.offset_mm}
                     for p in socket.trimline.points],
        "size_mm": [round(float(v), 1) for v in high - low],
        "print_orientation": ("upright: the flat distal mounting face on the build plate, long axis vertical "
                              "(no supports inside the cavity; layers are perpendicular to the long axis, the "
                              "weakest direction under bending, so check the wall strength below)"),
        "frame": "limb frame: z up the long axis from the distal end of the limb, y anterior, x the subject's right; mm",
        # which limb it was made for: the analysis of another limb in it is refused (check_built_for)
        "limb": {"source": socket.model.source, "fingerprint": socket.model.fingerprint},
        "notes": socket.notes,
        "checks": {"watertight": bool(socket.solid.is_watertight), "self_intersecting_face_pairs": crossings},
        "validated": ["watertight manifold solid (manifold3d)",
                      "wall thickness measured by ray casting on the solid (tests: >= specified - 0.1 mm)"],
        "estimates": ["component dimensions marked 'assumption' in the catalogue",
                      "the cavity at the liner's nominal thickness (its give under load is not taken off)"],
        "socketcad_version": __version__,
    }
    if crossings:
        sheet["notes"] = socket.notes + [f"WARNING: {crossings} pairs of faces of the solid cross or touch (a concave "
                                         "crease narrower than the wall); check the file in the slicer before printing"]
    if strength is not None:
        sheet["wall_strength"] = strength
    return sheet


def socket_metadata(socket: Socket) -> dict[str, str]:
    """3MF metadata: what the file is and how it was made."""
    spec = socket.spec
    return {"Title": f"{spec.socket_type.upper()} {spec.stage} socket", "Application": f"socketcad {__version__}",
            "Description": f"{socket.material.name}, wall {socket.wall_thickness_mm:g} mm, liner {socket.liner.name}, "
                           f"closure {socket.closure.name}, adapter {socket.adapter.name}; units mm, limb frame",
            "spec": json.dumps(spec.model_dump(mode="json"), sort_keys=True)}


def write_socket_outputs(socket: Socket, stl_path: Path, sheet: dict) -> dict[str, Path]:
    """Write the STL, 3MF, inner-surface AOP and fabrication sheet; return their paths."""
    paths = output_paths(Path(stl_path))
    inner_aop = aop.mesh_to_aop(socket.inner, n_spokes=AOP_SPOKES, slice_spacing_mm=AOP_SLICE_MM,
                                side=socket.spec.side.upper() if socket.spec.side else "NONE",
                                comments=("socketcad socket inner surface (rectified model + liner), mm",))
    with io.all_or_none():
        io.write_mesh(socket.solid, paths["stl"])
        io.write_mesh(socket.solid, paths["3mf"], metadata=socket_metadata(socket))
        aop.write_aop(inner_aop, paths["aop"])
        io.write_atomic(paths["sheet"], lambda tmp: tmp.write_text(json.dumps(sheet, indent=2)))
    return paths
