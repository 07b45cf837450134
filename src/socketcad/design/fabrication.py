"""What a lab needs to make a built socket: printable files and a fabrication sheet.

Files written next to the requested STL path ``socket.stl``: ``socket.3mf`` (millimetres,
with the spec as metadata), ``socket-inner.aop`` (the cavity surface, for carving a
positive mould), ``socket-sheet.json`` (the fabrication sheet). Every file is written
atomically; nothing is written until everything has been computed.
"""

from __future__ import annotations

import json
from pathlib import Path


from pydantic import BaseModel

from socketcad import __version__
from socketcad.design.socket import Socket
from socketcad.errors import InputError, validated
from socketcad.geometry import aop, io
from socketcad.geometry.intersect import self_intersections

AOP_SPOKES = 72
AOP_SLICE_MM = 2.0


def output_paths(stl_path: Path) -> dict[str, Path]:
    """The files a build writes, named after the STL path (must end in .stl)."""
    stem = stl_path.with_suffix("")
    return {"stl": stl_path, "3mf": stem.with_suffix(".3mf"), "aop": Path(f"{stem}-inner.aop"),
            "sheet": Path(f"{stem}-sheet.json")}


def check_built_for(sheet: FabricationSheet, limb, where: str) -> str | None:
    """InputError if the sheet (``where``) records a limb other than ``limb`` (their skins' fingerprints);
    a note when either does not record one (sheets from before they did, limbs not read from a file)."""
    made_for = sheet.limb
    recorded = made_for.fingerprint if made_for is not None else None
    if not recorded or not limb.fingerprint:
        return "the sheet or the limb does not record which limb the socket was made for: not checked"
    if recorded != limb.fingerprint:
        raise InputError(f"{where}: the socket was built for another limb ({made_for.source}, read "
                         f"with other options or another file) than {limb.source}; give the limb and options it "
                         "was built from, or set `force` to analyse it anyway")
    return None


class SheetMaterial(BaseModel):
    id: str
    name: str
    density_g_cm3: float
    source: str


class SheetLiner(BaseModel):
    id: str
    name: str
    thickness_mm: float
    offset_mm: float


class SheetClosure(BaseModel):
    id: str
    name: str
    kind: str


class SheetAdapter(BaseModel):
    id: str
    name: str
    bolt_holes_mm: list[tuple[float, float]]  # hole centres (x, y) on the mounting face, limb frame
    bolt_hole_diameter_mm: float


class SheetOpening(BaseModel):
    """A drilled or cut opening: its axis from ``start_mm`` along the unit ``direction`` (limb frame; sheets
    from before they were recorded lack them)."""

    name: str
    diameter_mm: float
    start_mm: list[float] | None = None
    direction: list[float] | None = None


class SheetTrimPoint(BaseModel):
    name: str
    angle_deg: float
    landmark: str
    offset_mm: float


class BuiltFor(BaseModel):
    """The limb a socket was made for: its source and skin fingerprint (anatomy.limb.skin_fingerprint)."""

    source: str
    fingerprint: str


class SheetChecks(BaseModel):
    watertight: bool
    self_intersecting_face_pairs: int


class StrengthCase(BaseModel):
    """One ISO 10328 proof load on the wall (biomech.wall): N, MPa, mm."""

    force_n: float
    peak_von_mises_mpa: float
    max_deflection_mm: float
    safety_factor: float
    dofs: int
    seconds: float
    load_source: str
    solver: str


class WallStrength(BaseModel):
    """The wall checked under ISO 10328 heel-strike and push-off proof loads (computed by biomech.wall;
    the record lives here, in the sheet that carries it)."""

    iso_10328_level: str
    material_strength_mpa: float
    strength_basis: str
    heel_strike: StrengthCase
    push_off: StrengthCase
    validated: str
    estimates: str


class FabricationSheet(BaseModel):
    """What a lab needs to make a socket (mm, g, cm3); written beside the STL as ``-sheet.json``."""

    socket_type: str
    stage: str
    material: SheetMaterial
    material_volume_cm3: float
    mass_g: float
    wall_thickness_mm: float
    distal_floor_mm: float
    liner: SheetLiner
    closure: SheetClosure
    adapter: SheetAdapter
    openings: list[SheetOpening]
    trimline: list[SheetTrimPoint]
    size_mm: list[float]
    print_orientation: str
    frame: str
    limb: BuiltFor | None = None  # sheets from before it was recorded lack it
    notes: list[str]
    checks: SheetChecks
    validated: list[str]
    estimates: list[str]
    socketcad_version: str
    wall_strength: WallStrength | None = None  # when the wall was checked (biomech.wall)

    def json_text(self) -> str:
        """The sheet as written to ``-sheet.json`` (no wall_strength key when it was not checked)."""
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2)


def read_sheet(path: Path) -> FabricationSheet:
    """The fabrication sheet at ``path``; InputError naming the file unless it is one socketcad wrote."""
    data = io.read_data_file(path, "fabrication sheet")
    if not isinstance(data, dict) or not {"liner", "closure"} <= set(data):
        raise InputError(f"{path}: not a socketcad fabrication sheet (no liner or closure)")
    return validated(FabricationSheet, data, str(path), "not a socketcad fabrication sheet")


def fabrication_sheet(socket: Socket, strength: WallStrength | None = None) -> FabricationSheet:
    """The lab's sheet: material, mass, components, print orientation, checks (mm, g, cm3).

    The solid is checked for self-intersections here (about 1 s per 500k faces), not in the build."""
    spec, material = socket.spec, socket.material
    low, high = socket.solid.bounds
    crossings = int(len(self_intersections(socket.solid)))
    notes = list(socket.notes)
    if crossings:
        notes.append(f"WARNING: {crossings} pairs of faces of the solid cross or touch (a concave crease narrower "
                     "than the wall); check the file in the slicer before printing")
    return FabricationSheet(
        socket_type=spec.socket_type,
        stage=spec.stage,
        material=SheetMaterial(id=material.id, name=material.name, density_g_cm3=material.density_g_cm3,
                               source=material.source),
        material_volume_cm3=round(socket.volume_cm3, 1),
        mass_g=round(socket.mass_g, 0),
        wall_thickness_mm=socket.wall_thickness_mm,
        distal_floor_mm=round(socket.floor_mm, 1),
        liner=SheetLiner(id=socket.liner.id, name=socket.liner.name, thickness_mm=socket.liner.thickness_mm,
                         offset_mm=round(socket.liner_offset_mm, 2)),
        closure=SheetClosure(id=socket.closure.id, name=socket.closure.name, kind=socket.closure.kind),
        adapter=SheetAdapter(id=socket.adapter.id, name=socket.adapter.name,
                             bolt_holes_mm=[(round(float(x), 2), round(float(y), 2)) for x, y, _ in socket.bolt_centres_mm],
                             bolt_hole_diameter_mm=socket.adapter.bolt_hole_diameter_mm),
        openings=[SheetOpening(name=o.name, diameter_mm=round(2 * o.radius_mm, 1),
                               start_mm=[round(float(v), 2) for v in o.start_mm],
                               direction=[round(float(v), 4) for v in o.direction]) for o in socket.openings],
        trimline=[SheetTrimPoint(name=p.name, angle_deg=p.angle_deg, landmark=p.landmark, offset_mm=p.offset_mm)
                  for p in socket.trimline.points],
        size_mm=[round(float(v), 1) for v in high - low],
        print_orientation=("upright: the flat distal mounting face on the build plate, long axis vertical "
                           "(no supports inside the cavity; layers are perpendicular to the long axis, the "
                           "weakest direction under bending, so check the wall strength below)"),
        frame="limb frame: z up the long axis from the distal end of the limb, y anterior, x the subject's right; mm",
        # which limb it was made for: the analysis of another limb in it is refused (check_built_for)
        limb=BuiltFor(source=socket.model.source, fingerprint=socket.model.fingerprint),
        notes=notes,
        checks=SheetChecks(watertight=bool(socket.solid.is_watertight), self_intersecting_face_pairs=crossings),
        validated=["watertight manifold solid (manifold3d)",
                   "wall thickness measured by ray casting on the solid (tests: >= specified - 0.1 mm)"],
        estimates=["component dimensions marked 'assumption' in the catalogue",
                   "the cavity at the liner's nominal thickness (its give under load is not taken off)"],
        socketcad_version=__version__,
        wall_strength=strength,
    )


def socket_metadata(socket: Socket) -> dict[str, str]:
    """3MF metadata: what the file is and how it was made."""
    spec = socket.spec
    return {"Title": f"{spec.socket_type.upper()} {spec.stage} socket", "Application": f"socketcad {__version__}",
            "Description": f"{socket.material.name}, wall {socket.wall_thickness_mm:g} mm, liner {socket.liner.name}, "
                           f"closure {socket.closure.name}, adapter {socket.adapter.name}; units mm, limb frame",
            "spec": json.dumps(spec.model_dump(mode="json"), sort_keys=True)}


def write_socket_outputs(socket: Socket, stl_path: Path, sheet: FabricationSheet) -> dict[str, Path]:
    """Write the STL, 3MF, inner-surface AOP and fabrication sheet; return their paths."""
    paths = output_paths(Path(stl_path))
    inner_aop = aop.mesh_to_aop(socket.inner, n_spokes=AOP_SPOKES, slice_spacing_mm=AOP_SLICE_MM,
                                side=socket.spec.side.upper() if socket.spec.side else "NONE",
                                comments=("socketcad socket inner surface (rectified model + liner), mm",))
    with io.all_or_none():
        io.write_mesh(socket.solid, paths["stl"])
        io.write_mesh(socket.solid, paths["3mf"], metadata=socket_metadata(socket))
        aop.write_aop(inner_aop, paths["aop"])
        io.write_atomic(paths["sheet"], lambda tmp: tmp.write_text(sheet.json_text()))
    return paths
