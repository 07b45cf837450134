"""The socket builder: rectified model + component spec -> a printable, watertight socket.

``build_socket(model, spec)`` is pure and deterministic. Geometry, in the limb frame (mm):

1. Inner surface: the rectified model offset outward by the liner's nominal thickness (what
   the load does to the liner is the interface analysis's to compute, socketcad.biomech).
2. Cut along the trimline (a smooth level set of height against angle, see trimline.py).
3. Wall: the inner surface offset by the wall thickness, joined along the brim (solid.shell).
4. Distal block: the convex hull of the wall's distal end and the adapter's mounting disc
   below it, less the cavity, so the outer surface runs smoothly into a flat mounting face
   perpendicular to the long axis; floor thick enough for the distal build-up and the lock.
5. Cut-outs: bolt holes of the adapter's pattern centred on the long axis, the lock housing
   and pin channel for a pin lock, the valve port for suction closures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
import trimesh
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy.spatial import cKDTree

from socketcad.anatomy.limb import Limb
from socketcad.anatomy.regions import anatomical_vector
from socketcad.design import components
from socketcad.design.plan import plan_from_dict
from socketcad.design.rectify import rectify
from socketcad.design.socket_types import SOCKET_TYPES, socket_type_names, socket_types_help
from socketcad.design.trimline import LEVEL_OF, Trimline, default_trimline, fit_below_brim, trim_level
from socketcad.errors import InputError, every_error, validated
from socketcad.geometry import deform, solid

SPEC_VERSION = 1
HULL_BLEND_MM = 30.0  # the distal block blends into the wall over this height above the cavity floor
VALVE_HEIGHT_MM = 12.0  # valve port axis above the cavity floor; medial (assumption: away from the floor's bolts)
MAX_EDGE_MM = 2.0  # median edge; finer than this, a 9 mm offset's flat faces stay within 0.1 mm of the curved one
HOLE_CLEARANCE_MM = 1.0
BORDER_BAND_MM = 8.0  # either side of the trimline, the offsets are evened out before the cut
TRIM_ALLOWANCE_MM = 6.0  # model kept above the trimline for the offsets (< trimline.BRIM_MARGIN_MM)
CLEARANCE_BLEND_MM = 50.0  # a closure's distal clearance fades out over this length  # cut-outs reach this far past the faces they open, so no film is left


class SocketSpec(BaseModel):
    """What to build: socket type, components (catalogue ids), wall, trimline edits."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1] = SPEC_VERSION
    socket_type: str = Field(  # a registered socket type (design.socket_types), the template names
        json_schema_extra={"enum": list(SOCKET_TYPES)}, description=f"socket type: {socket_types_help()}")
    liner: str
    closure: str
    adapter: str
    material: str = "petg"
    stage: Literal["test", "definitive"] = "test"
    k_level: int = Field(3, ge=0, le=4)
    side: Literal["left", "right"] | None = None  # if given, must match the limb
    wall_thickness_mm: float | None = Field(None, allow_inf_nan=False)  # None: the material's default for the K-level
    # Raise (+) or lower (-) the trimline at its landmarks; beyond 150 mm it leaves the limb.
    trim_offsets_mm: dict[str, Annotated[float, Field(ge=-150, le=150, allow_inf_nan=False)]] = Field(
        default_factory=dict, max_length=20)

    @field_validator("socket_type", mode="before")
    @classmethod
    def _socket_type(cls, value):
        if not isinstance(value, str) or value not in SOCKET_TYPES:
            shown = f"'{value[:40]}'" if isinstance(value, str) else repr(value)[:40]
            raise ValueError(f"unknown socket type {shown}; use one of {', '.join(socket_type_names())}")
        return value

    @field_validator("k_level", mode="before")
    @classmethod
    def _k_level(cls, value):
        return components.k_level_number(value)


def spec_from_dict(data: object, source: str = "socket spec") -> SocketSpec:
    """A validated SocketSpec; InputError naming the field otherwise."""
    return validated(SocketSpec, data, source, "a socket spec is a mapping of fields (socket_type, liner, closure, ...)",
                     describe=_spec_problems)


def _spec_problems(exc) -> str:
    """Every problem of a spec on one line; a missing component lists the catalogue's ids for it."""
    catalogue = components.load_catalogue()
    known = {"liner": catalogue.liners, "closure": catalogue.closures, "adapter": catalogue.adapters,
             "material": catalogue.materials}

    def missing_component(error: dict) -> str | None:
        name = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] != "missing" or name not in known:
            return None
        return f"{name}: required, one of {', '.join(part.id for part in known[name])} (see the catalogue)"

    return every_error(exc, problem=missing_component)


@dataclass(frozen=True)
class Socket:
    """A built socket (limb frame, mm).

    solid: watertight manifold socket. inner: the cavity surface below the trimline (open at
    the brim), inner_directions (n, 3) its unit outward normals. wall_thickness_mm: the
    specified wall. bolt_centres_mm (k, 3): the adapter's holes on the mounting face.
    mounting_face_mm: height of the flat distal face.
    """

    spec: SocketSpec
    model: Limb  # the rectified model it was built on, with its landmarks
    solid: trimesh.Trimesh
    inner: trimesh.Trimesh
    inner_directions: np.ndarray
    rectified: trimesh.Trimesh
    trimline: Trimline
    liner_offset_mm: float
    wall_thickness_mm: float
    floor_mm: float
    mounting_face_mm: float
    bolt_centres_mm: np.ndarray
    openings: tuple
    liner: components.Liner
    closure: components.Closure
    adapter: components.Adapter
    material: components.WallMaterial
    notes: list[str] = field(default_factory=list)

    @property
    def volume_cm3(self) -> float:
        return float(self.solid.volume) / 1000.0

    @property
    def mass_g(self) -> float:
        return self.volume_cm3 * self.material.density_g_cm3


def build_socket(model: Limb, spec: SocketSpec) -> Socket:
    """Build the socket for a rectified model with landmarks (limb frame, mm)."""
    catalogue = components.load_catalogue()
    liner, closure = catalogue.liner(spec.liner), catalogue.closure(spec.closure)
    adapter, material = catalogue.adapter(spec.adapter), catalogue.material(spec.material)
    _check_spec(model, spec, liner, closure, adapter, material)
    model.require_anterior("the trimline")
    wall_mm = spec.wall_thickness_mm if spec.wall_thickness_mm is not None else components.wall_thickness_mm(material, spec.k_level)
    trimline = default_trimline(spec.socket_type).with_offsets(spec.trim_offsets_mm)
    trimline, trim_notes = fit_below_brim(trimline, model, set(spec.trim_offsets_mm))
    liner_mm = liner.thickness_mm
    model, clearance_note = _with_distal_clearance(model, closure)
    wall = _wall(model, trimline, liner_mm, wall_mm)
    floor_mm = _floor_thickness(wall_mm, material, closure)
    face_z = wall.floor_z - floor_mm
    bolts = _bolt_centres(adapter, face_z)
    openings = _openings(bolts, adapter, closure, wall.inner, model, wall.floor_z, face_z, wall_mm)
    body = _with_distal_block(wall, adapter, face_z, openings)
    notes = [f"inner surface = rectified model + {liner_mm:.2f} mm ({liner.name}, nominal thickness)",
             f"wall {wall_mm:g} mm {material.name}; distal floor {floor_mm:g} mm; mounting face at {face_z:.1f} mm"]
    notes += [clearance_note] if clearance_note else []
    notes += trim_notes
    return Socket(spec, model, body, wall.inner, wall.directions, wall.skin, trimline, liner_mm, wall_mm, floor_mm,
                  face_z, bolts, tuple(openings), liner, closure, adapter, material, notes)


@dataclass(frozen=True)
class _Wall:
    """The wall below the trimline: inner (cavity) surface, its unit normals (n, 3) and outer
    vertices (n, 3); the model skin it was made from and that skin's liner offset (p, 3)."""

    skin: trimesh.Trimesh
    liner_offset: np.ndarray
    inner: trimesh.Trimesh
    directions: np.ndarray
    outer: np.ndarray

    @property
    def floor_z(self) -> float:
        return float(self.inner.vertices[:, 2].min())


def _wall(model: Limb, trimline: Trimline, liner_mm: float, wall_mm: float) -> _Wall:
    """The cavity (model + loaded liner) and the wall's outer surface, both cut at the trimline."""
    skin = _refined(_below_trimline(model, trimline))
    normals = deform.vertex_normals(skin)
    # Cut away for certain (so left as it is by the offsets): well above the trimline, both on the
    # skin and where the outer offset will be (a sloped surface's offset drops below its source).
    skin_level = trim_level(trimline, model, skin.vertices)
    beyond = np.minimum(skin_level, trim_level(trimline, model, skin.vertices + (liner_mm + wall_mm) * normals)) > 0.5 * TRIM_ALLOWANCE_MM
    offset = solid.offset_surface(skin, liner_mm, unused=beyond)
    outer = solid.offset_surface(skin, liner_mm + wall_mm, chords_outside=True, unused=beyond)
    border = np.abs(skin_level) < BORDER_BAND_MM  # the cut goes through here
    offset = solid.evened_out(skin, offset, border, liner_mm, exact=True)
    outer = solid.evened_out(skin, outer, border, liner_mm + wall_mm, exact=False)
    level = trim_level(trimline, model, offset)
    vertices, faces, carried = solid.cut_below(offset, skin.faces, level, np.hstack([normals, outer]))
    directions = carried[:, :3] / np.linalg.norm(carried[:, :3], axis=1, keepdims=True)
    inner = trimesh.Trimesh(vertices, faces, process=False, validate=False)
    return _Wall(skin, offset, inner, directions, carried[:, 3:])


def _with_distal_block(wall: _Wall, adapter, face_z: float, openings: list[Opening]) -> trimesh.Trimesh:
    """The watertight socket: the wall, the distal block down to the mounting face, less the openings."""
    vertices, faces, floor_z = wall.inner.vertices, wall.inner.faces, wall.floor_z
    # Only the distal part of the wall goes through the booleans (they cost what the whole
    # mesh costs); the rest is joined back along a shared strip, if the trimline is above it.
    split_z = floor_z + HULL_BLEND_MM + 15.0
    rim_low = float(vertices[np.unique(solid.boundary_edges(faces)), 2].min())
    if rim_low > split_z + float(np.linalg.norm(wall.outer - vertices, axis=1).max()):
        lower, upper, seam = solid.split_shell(vertices, faces, wall.outer, split_z)
    else:  # a very short socket: all of it goes through the booleans
        lower, upper, seam = solid.shell(vertices, faces, wall.outer), None, None
    # The cavity cut from the block reaches 0.05 mm into the wall: faces coinciding with the wall's
    # own would make the union a degenerate case that costs manifold3d seconds.
    normals = deform.vertex_normals(wall.skin)
    cavity = _distal_cavity(wall.liner_offset + 0.05 * normals, wall.skin.faces, floor_z + HULL_BLEND_MM + 5.0)
    # Hull points 0.5 mm inside the wall, for the same reason.
    inside = wall.outer - 0.5 * wall.directions
    block = _distal_block(inside[wall.outer[:, 2] < floor_z + HULL_BLEND_MM], adapter, face_z)
    body = solid.to_manifold(lower) + (block - cavity)
    body = body - solid.manifold3d.Manifold.batch_boolean([o.solid() for o in openings], solid.manifold3d.OpType.Add)
    return solid.from_manifold(body) if upper is None else solid.rejoined(solid.from_manifold(body), upper, seam)


def _below_trimline(model: Limb, trimline: Trimline) -> trimesh.Trimesh:
    """The model's skin up to TRIM_ALLOWANCE_MM above the trimline: the socket is made from that
    only, so the scan's ragged brim (whose offset folds) never takes part."""
    vertices, faces, _ = solid.cut_below(model.skin.vertices, model.skin.faces,
                                         trim_level(trimline, model, model.skin.vertices) - TRIM_ALLOWANCE_MM)
    return trimesh.Trimesh(vertices, faces, process=False, validate=False)


def _refined(skin: trimesh.Trimesh) -> trimesh.Trimesh:
    """The skin with every face split in four if its median edge exceeds MAX_EDGE_MM: offsetting
    a coarse mesh (the OpenLimb shapes have 3-4.5 mm edges) cuts corners by up to 0.3 mm on
    convex areas."""
    corners = skin.vertices[skin.faces]
    if np.median(np.linalg.norm(corners[:, 1] - corners[:, 0], axis=1)) <= MAX_EDGE_MM:  # one edge per face: enough for a median
        return skin
    vertices, faces = trimesh.remesh.subdivide(skin.vertices, skin.faces)
    return trimesh.Trimesh(vertices, faces, process=False, validate=False)


def _check_spec(model: Limb, spec: SocketSpec, liner, closure, adapter, material) -> None:
    if spec.side is not None and model.side in ("left", "right") and spec.side != model.side:
        raise InputError(f"side: the spec is for a {spec.side} limb but this limb is {model.side}")
    if model.level in ("transtibial", "transfemoral") and LEVEL_OF[spec.socket_type] != model.level:
        raise InputError(f"socket_type: '{spec.socket_type}' is a {LEVEL_OF[spec.socket_type]} socket but this limb is {model.level}")
    if spec.wall_thickness_mm is not None and not 1.5 <= spec.wall_thickness_mm <= 15.0:
        raise InputError(f"wall_thickness_mm: {spec.wall_thickness_mm:g} mm is outside 1.5-15 mm")
    if spec.stage == "test" and not material.test_socket:
        raise InputError(f"material: {material.name} is not a test-socket material; use it with stage 'definitive'")
    components.check_compatibility(liner, closure, adapter, model.level)


def _with_distal_clearance(model: Limb, closure) -> tuple[Limb, str | None]:
    """The model lengthened distally by the closure's clearance (e.g. a lanyard's strap attachment)
    where no lock housing provides that space below the liner."""
    clearance = closure.distal_clearance_mm or 0.0
    if clearance <= 0.0 or closure.lock_housing_height_mm:
        return model, None
    plan = plan_from_dict({"schema_version": 1, "name": f"{closure.id} distal clearance",
                           "modifications": [{"kind": "distal", "elongation_mm": clearance, "length_mm": CLEARANCE_BLEND_MM}]})
    note = f"distal clearance {clearance:g} mm for the {closure.name} (cavity lengthened, blended over {CLEARANCE_BLEND_MM:g} mm)"
    return rectify(model, plan).rectified_limb(), note


def _floor_thickness(wall_mm: float, material, closure) -> float:
    """Distal floor (mm) between the cavity's lowest point and the mounting face."""
    floor = wall_mm + material.distal_buildup_mm
    if closure.lock_housing_height_mm:  # the lock below the floor, deep enough for the liner's pin
        floor = max(floor, wall_mm + closure.lock_housing_height_mm, closure.distal_clearance_mm or 0.0)
    return floor


def _distal_block(outer_points: np.ndarray, adapter, face_z: float):
    """Convex hull of the wall's distal end and the mounting disc at ``face_z``."""
    angles = np.linspace(0.0, 2.0 * np.pi, solid.CIRCLE_SEGMENTS, endpoint=False)
    radius = 0.5 * adapter.plate_diameter_mm
    disc = np.column_stack([radius * np.cos(angles), radius * np.sin(angles), np.full_like(angles, face_z)])
    return solid.manifold3d.Manifold.hull_points(np.vstack([outer_points, disc]))


def _distal_cavity(offset: np.ndarray, faces: np.ndarray, top_z: float):
    """The cavity (liner-offset surface, closed) below ``top_z``: all the distal block can reach;
    a small solid, so the booleans do not carry the whole cavity."""
    vertices, kept, _ = solid.cut_below(offset, faces, offset[:, 2] - top_z)
    return solid.closed_at_top(trimesh.Trimesh(vertices, kept, process=False, validate=False))


def _bolt_centres(adapter, face_z: float) -> np.ndarray:
    """Bolt hole centres (k, 3) on the mounting face, pattern centred on the long axis."""
    pattern = np.asarray(adapter.bolt_pattern_mm, dtype=np.float64).reshape(-1, 2)
    return np.column_stack([pattern, np.full(len(pattern), face_z)])


@dataclass(frozen=True)
class Opening:
    """A cylindrical cut-out: from ``start_mm`` (3,) along unit ``direction`` (3,) for ``length_mm``."""

    name: str
    start_mm: np.ndarray
    direction: np.ndarray
    length_mm: float
    radius_mm: float

    def solid(self):
        return solid.cylinder_along(self.radius_mm, self.start_mm, self.direction, self.length_mm)

    def distance_mm(self, points: np.ndarray) -> np.ndarray:
        """Distance (n,) of points (n, 3) from the opening's axis segment."""
        along = np.clip((points - self.start_mm) @ self.direction, 0.0, self.length_mm)
        return np.linalg.norm(points - (self.start_mm + along[:, None] * self.direction), axis=1)


def _openings(bolts, adapter, closure, inner, model: Limb, floor_z: float, face_z: float, wall_mm: float) -> list[Opening]:
    """Bolt holes, lock housing, pin channel, valve port and lanyard strap exit."""
    up = np.array([0.0, 0.0, 1.0])
    below = face_z - HOLE_CLEARANCE_MM
    openings = [Opening(f"bolt hole {i + 1}", np.array([x, y, below]), up,
                        _floor_height_at(inner, x, y, floor_z + HULL_BLEND_MM) + HOLE_CLEARANCE_MM - below,
                        0.5 * adapter.bolt_hole_diameter_mm) for i, (x, y, _) in enumerate(bolts)]
    if closure.lock_housing_height_mm:
        openings.append(Opening("lock housing", np.array([0.0, 0.0, below]), up, floor_z - wall_mm - below,
                                0.5 * closure.lock_housing_diameter_mm))
    if closure.pin_channel_diameter_mm:
        openings.append(Opening("pin channel", np.array([0.0, 0.0, below]), up, floor_z + HOLE_CLEARANCE_MM - below,
                                0.5 * closure.pin_channel_diameter_mm))
    port = np.array([0.0, 0.0, floor_z + VALVE_HEIGHT_MM])
    if closure.valve_port_diameter_mm:
        medial = anatomical_vector(model.side, lateral=-1.0)
        openings.append(Opening("valve port", port, medial, 400.0, 0.5 * closure.valve_port_diameter_mm))
    if closure.strap_exit_width_mm:  # a round exit as wide as the strap (assumption: lateral, like the valve's height)
        lateral = anatomical_vector(model.side, lateral=1.0)
        openings.append(Opening("strap exit", port, lateral, 400.0, 0.5 * closure.strap_exit_width_mm))
    return openings


def _floor_height_at(inner: trimesh.Trimesh, x: float, y: float, default: float) -> float:
    """Height of the cavity floor above (x, y): the lowest inner vertex within 3 mm of that line."""
    near = np.hypot(inner.vertices[:, 0] - x, inner.vertices[:, 1] - y) < 3.0
    return float(inner.vertices[near, 2].min()) if near.any() else default


def measured_wall_thickness(socket: Socket) -> tuple[np.ndarray, np.ndarray]:
    """Wall thickness (n,) measured on the built solid by ray casting from each inner-surface
    vertex along its outward normal (mm), and the mask (n,) of vertices it is measured at:
    below the trimline (more than a wall thickness from the cut edge) and not over an
    opening (bolt hole, lock, port: within the opening's radius + the wall thickness of its axis)."""
    vertices = socket.inner.vertices
    edge = vertices[np.unique(solid.boundary_edges(socket.inner.faces))]
    # Within a wall thickness of the cut edge a normal ray can leave through the edge's face.
    measured = cKDTree(edge).query(vertices)[0] > socket.wall_thickness_mm + 0.5
    for opening in socket.openings:
        measured &= opening.distance_mm(vertices) > opening.radius_mm + socket.wall_thickness_mm
    thickness = np.full(len(vertices), np.nan)
    body = solid.to_manifold(socket.solid)
    thickness[measured] = solid.thickness_along(body, vertices[measured], socket.inner_directions[measured])
    return thickness, measured
