"""The residual limb record and shape capture: file -> clean, aligned ``Limb`` in mm.

``load_limb`` is the one entry point from a file (or ``sample:NAME``) to a limb in its
anatomical frame (see socketcad.geometry.frame): units resolved, parts split into
skin and bones, debris dropped, small holes filled, normals outward, axis, anterior
direction and side found, each with a note on how.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import trimesh

from socketcad.anatomy.bones import label_bones
from socketcad.anatomy.samples import get_sample, is_sample
from socketcad.errors import GeometryError, InputError
from socketcad.geometry import deform, formats, frame as frames, measure, repair
from socketcad.geometry.units import UnitChoice, choose_units, unit_scale

if TYPE_CHECKING:
    from socketcad.anatomy.landmarks import Landmark

LEVELS = ("transtibial", "transfemoral")
SIDES = ("left", "right")


@dataclass(frozen=True)
class CaptureOptions:
    """How to read a limb file. Every field is optional; defaults detect."""

    units: str | None = None  # mm, cm, m, in, tibia, femur
    reference_length_mm: float | None = None  # intact tibia/femur length for normalised shapes
    level: str | None = None  # transtibial or transfemoral
    side: str | None = None  # left or right
    flip_side: bool = False  # mirror the limb to the other side
    anterior: tuple[float, float, float] | None = None  # anterior direction in file coordinates
    keep_axis: bool = False  # the file's +z is already the long axis (scanner-aligned)
    clean: bool = True
    max_hole_perimeter_mm: float = 80.0
    remesh_edge_mm: float | None = None
    force: bool = False  # go on with a shape outside the human range (anatomy.plausible)


@dataclass
class Limb:
    """A residual limb in its anatomical frame (mm): z from the distal end, y anterior.

    skin: outward-wound surface, open at the brim. bones: closed or cut surfaces named
    tibia, fibula, patella, femur, pelvis (see anatomy.bones), else bone-N.
    levels_mm: named heights above the distal end (landmark levels from the file).
    landmarks: skin landmarks by name, filled by anatomy.landmarks.locate_landmarks.
    frame: maps the file's coordinates (after unit scaling) to this frame.
    notes: how each fact was found and what clean-up changed, for the user to read.
    """

    skin: trimesh.Trimesh
    bones: dict[str, trimesh.Trimesh]
    level: str
    side: str
    frame: frames.Frame
    units: UnitChoice
    source: str
    levels_mm: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    landmarks: dict[str, Landmark] = field(default_factory=dict)
    anterior_known: bool = True  # False: the frame's y is a placeholder (no bones, not given)
    fingerprint: str = ""  # skin_fingerprint of the skin as captured (load_limb); kept through rectification

    @property
    def brim_low_mm(self) -> float | None:
        """Height of the lowest point of the brim (proximal opening), or None if closed."""
        loop = measure.brim_loop(self.skin)
        return None if loop is None else float(self.skin.vertices[loop, 2].min())

    def require_anterior(self, what: str) -> None:
        """InputError when the anterior direction is only a placeholder: ``what`` would be placed on a guess."""
        if not self.anterior_known:
            raise InputError(f"{self.source}: the anterior direction is unknown (no bones to find it), so {what} "
                             "would be placed on a guess; give `anterior` as X,Y,Z (the front of the limb in the file's "
                             "coordinates), also when the scan is added to a case")

    def named_level(self, name: str) -> float:
        """Height (mm above the distal end) of a named level: distal, brim, a file level or a landmark."""
        levels = {"distal": 0.0, **({"brim": self.brim_low_mm} if self.brim_low_mm is not None else {})}
        levels.update({key.lower(): float(mark.point_mm[2]) for key, mark in self.landmarks.items()})
        levels.update({key.lower(): value for key, value in self.levels_mm.items()})
        if name.lower() not in levels:
            raise InputError(f"unknown level '{name}'; known levels: {', '.join(levels)}")
        return levels[name.lower()]


def surface_bytes(surface: trimesh.Trimesh) -> bytes:
    """A surface as bytes to hash: vertices to 0.1 um and faces. The rounding keeps a hash the same when
    numpy or scipy releases change the last bits of a computed frame or fit."""
    vertices = np.round(np.asarray(surface.vertices, dtype=np.float64), 4) + 0.0  # + 0.0: no negative zeros
    return vertices.astype("<f8").tobytes() + np.asarray(surface.faces, dtype="<i8").tobytes()


def skin_fingerprint(skin: trimesh.Trimesh) -> str:
    """SHA-256 of a skin in its frame (vertices to 0.1 um, faces): the same file read the same way gives
    the same print, so a socket's sheet can say which limb it was built for."""
    return hashlib.sha256(surface_bytes(skin)).hexdigest()


def load_limb(
    source: str | Path,
    options: CaptureOptions = CaptureOptions(),
    step: Callable[[str], None] = lambda name: None,
) -> Limb:
    """Read, clean and align a residual limb from a mesh/AOP file or ``sample:NAME``.

    A tape-measure file (YAML/JSON, or a tape sample) gives the limb built from it (anatomy.tape), with
    its level and side. ``step(name)`` is called as each stage starts (for progress display).
    """
    _check_options(options)
    if _is_tape(source):
        return _tape_limb(source, options, step)
    path, options = _resolve(source, options)
    step("reading")
    name = str(source)
    notes: list[str] = []
    read = formats.read_mesh_file(path)  # any registered format; AOP also fixes axes, side and landmark levels
    mesh, file_axes, file_side, levels_mm = read.mesh, read.axes, read.side, dict(read.levels_mm)

    # np.ptp, not mesh.extents: trimesh's cache would hash the whole vertex array first.
    units = choose_units(float(np.ptp(mesh.vertices, axis=0).max()), options.units, options.reference_length_mm, path.name)
    mesh = trimesh.Trimesh(mesh.vertices * units.scale_to_mm, mesh.faces, process=False, validate=False)
    notes.append(f"units: {units.how}")
    from socketcad.anatomy.plausible import check_extent  # it reads Limb from here

    check_extent(np.asarray(mesh.vertices), path.name)

    with geometry_named(path.name):  # a shape the clean-up or the frame cannot work on: the file's problem
        step("cleaning")
        skin, bones = _clean(mesh, options, notes, path.name)
        step("aligning")
        level = options.level or _guess_level(bones)
        skin_axis = _long_axis(skin, file_axes, options.keep_axis, notes)
        # Named before the frame: the patella gives the anterior direction. The rules use only
        # heights along the axis and sizes across it, so the names hold in the frame too.
        bones = label_bones(bones, level, skin_axis)
        if any(not label.startswith("bone-") for label in bones):
            notes.append(f"bones named by position and shape: {', '.join(bones)}")
        recorded = get_sample(str(source)).anterior if is_sample(source) else None
        anterior, anterior_note, anterior_known = _anterior(skin, bones, skin_axis, file_axes, options, level, recorded)
        notes.append(f"anterior: {anterior_note}")
        frame = frames.build_frame(skin, skin_axis, anterior)
        skin = frame.apply(skin)
        bones = {label: frame.apply(bone) for label, bone in bones.items()}
        side, side_note = _side(bones, file_side, options, level)
        notes.append(f"side: {side_note}")
        limb = Limb(skin, bones, level, side, frame, units, name, levels_mm, notes,
                    anterior_known=anterior_known, fingerprint=skin_fingerprint(skin))
        _check_plausible(limb, options, path.name)
    return mirrored(limb) if options.flip_side else limb


@contextmanager
def geometry_named(source: str) -> Iterator[None]:
    """GeometryError raised in the block as an InputError naming ``source``."""
    try:
        yield
    except GeometryError as exc:
        raise InputError(f"{source}: {exc}") from None


TAPE_SUFFIXES = (".yaml", ".yml", ".json")


def _is_tape(source: str | Path) -> bool:
    if is_sample(source):
        return get_sample(str(source), kind=None).kind == "tape"
    return Path(source).suffix.lower() in TAPE_SUFFIXES


def _tape_limb(source: str | Path, options: CaptureOptions, step: Callable[[str], None]) -> Limb:
    """The limb built from tape measures; options may name the level and side the file leaves open."""
    from socketcad.anatomy.tape import read_tape, tape_limb  # tape builds Limbs: it imports this module

    step("building from tape measures")
    measures = read_tape(source)
    limb = tape_limb(measures, str(source))
    limb = replace(limb, fingerprint=skin_fingerprint(limb.skin))
    for fact in ("level", "side"):
        given, stated = getattr(options, fact), getattr(limb, fact)
        if given is not None and stated not in ("unknown", given):
            raise InputError(f"{source}: the tape measures are of a {stated} limb, and `{fact}` says {given}")
        if given is not None:
            limb = replace(limb, **{fact: given})
    _check_plausible(limb, options, Path(str(source)).name)
    return mirrored(limb) if options.flip_side else limb


def _check_plausible(limb: Limb, options: CaptureOptions, source: str) -> None:
    """Refuse a shape outside the human range unless forced; forced, say so in the notes."""
    from socketcad.anatomy.plausible import check_plausible, implausible  # it reads Limb from here

    if not options.force:
        check_plausible(limb, source)
    elif found := implausible(limb):
        limb.notes.append(f"WARNING: does not look like a residual limb ({'; '.join(found)}); went on as `force` asked")


def _check_options(options: CaptureOptions) -> None:
    if options.units is not None:
        unit_scale(options.units, options.reference_length_mm)  # unknown units fail before reading
    if options.level is not None and options.level not in LEVELS:
        raise InputError(f"unknown level '{options.level}'; use {' or '.join(LEVELS)}")
    if options.side is not None and options.side not in SIDES:
        raise InputError(f"unknown side '{options.side}'; use left or right")
    if options.remesh_edge_mm is not None and not (0.2 <= options.remesh_edge_mm <= 20):
        raise InputError(f"remesh edge length {options.remesh_edge_mm:g} mm is out of range; use 0.2-20 mm")
    if options.max_hole_perimeter_mm < 0:
        raise InputError("the largest hole to fill must be 0 mm or more")


def _resolve(source: str | Path, options: CaptureOptions) -> tuple[Path, CaptureOptions]:
    """Path of a file or sample; samples bring their own units and level as defaults."""
    if not is_sample(source):
        return Path(source), options
    sample = get_sample(str(source))
    return sample.path, replace(options, units=options.units or sample.units, level=options.level or sample.level)


def _clean(mesh: trimesh.Trimesh, options: CaptureOptions, notes: list[str], source: str):
    """Skin and bones from a raw mesh: split, classify, fill, orient, remesh."""
    mesh = repair.drop_degenerate_faces(mesh)
    if len(mesh.faces) == 0:
        raise InputError(f"{source}: every face is degenerate (zero area); export the mesh again")
    parts = repair.classify_parts(repair.split_parts(mesh)) if options.clean else repair.Parts(mesh)
    if parts.debris:
        notes.append(f"dropped {len(parts.debris)} loose fragment(s) as scanner debris "
                     f"({sum(len(p.faces) for p in parts.debris)} faces)")
    skin = parts.shell
    if options.clean:
        skin, dangling = repair.drop_dangling_faces(skin)
        if dangling:
            notes.append(f"dropped {dangling} face(s) held to the surface by their corners only")
    skin, rewound = repair.consistent_winding(skin)
    if rewound:
        notes.append(f"rewound {rewound} face(s) wound against their neighbours")
    if options.clean and options.max_hole_perimeter_mm > 0:
        skin, filled = repair.fill_holes(skin, options.max_hole_perimeter_mm)
        if filled:
            notes.append(f"filled {filled} hole(s) up to {options.max_hole_perimeter_mm:g} mm around")
    skin, flipped = repair.orient_outward(skin)
    if flipped:
        notes.append("reoriented skin faces to point outward")
    if options.clean:
        skin, pleats, left = deform.unfold_pleats(skin)
        if pleats:
            notes.append(f"faired {pleats} folded-back face(s) (pleats) into the surface around them"
                         + (f"; {left} remain: check the scan there" if left else ""))
    if options.remesh_edge_mm:
        skin = repair.remesh_isotropic(skin, options.remesh_edge_mm)
        notes.append(f"remeshed skin isotropically to {options.remesh_edge_mm:g} mm edges")
    bones = {}
    for index, part in enumerate(parts.inner + parts.outside):
        bones[f"bone-{index + 1}"], _ = repair.orient_outward(part)
    if bones:
        notes.append(f"skin and {len(bones)} bone part(s) told apart by containment")
    return skin, bones


def _guess_level(bones: dict[str, trimesh.Trimesh]) -> str:
    """Transtibial with three or more bone parts (tibia, fibula, patella...), else unknown."""
    if len(bones) >= 3:
        return "transtibial"
    if len(bones) == 2:
        return "transfemoral"
    return "unknown"


def _long_axis(skin, file_axes, keep_axis: bool, notes: list[str]) -> np.ndarray:
    """The long axis in file coordinates: the file's z, or the centreline of the skin."""
    loop = measure.brim_loop(skin)
    if file_axes is not None or keep_axis:
        axis = np.array([0.0, 0.0, 1.0])
        if loop is not None and np.dot(skin.vertices[loop].mean(axis=0) - skin.centroid, axis) < 0:
            axis = -axis
        notes.append("long axis: the file's z axis")
        return axis
    proximal = skin.vertices[loop].mean(axis=0) if loop is not None else _wider_end(skin)
    axis = frames.long_axis(skin, proximal)
    top = float((skin.vertices[loop] @ axis).min() - (skin.vertices @ axis).min()) if loop is not None else None
    if top is None or top <= 0:
        top = float(np.ptp(skin.vertices @ axis))
    axis = frames.centreline_axis(skin, axis, top)
    notes.append("long axis: least-squares line through cross-section centroids (10-90 % of length)")
    return axis


def _wider_end(skin: trimesh.Trimesh) -> np.ndarray:
    """For a closed surface: a point at the end of the principal axis with the wider section."""
    axis = frames.long_axis(skin, skin.centroid + 1.0)
    heights = skin.vertices @ axis
    low, high = heights.min(), heights.max()
    near_low = skin.vertices[heights < low + 0.2 * (high - low)]
    near_high = skin.vertices[heights > high - 0.2 * (high - low)]
    spread = lambda pts: np.linalg.norm(pts - pts.mean(axis=0), axis=1).mean()  # noqa: E731
    return near_high.mean(axis=0) if spread(near_high) >= spread(near_low) else near_low.mean(axis=0)


# Anterior from the shape alone, measured against the bones on the five OpenLimbTT shapes (skin only,
# each in three random poses): the oblique brim's highest point was 1-38 deg off (within 10 deg on one),
# the shank section's apex right on two and a posterior corner on three. Neither is good enough to design
# on, so a bone-less scan's anterior is "unknown" until the user gives it; the shape's guess is kept only
# as a placeholder that does not depend on the pose in the file (landmarks and measures stay repeatable).
UNKNOWN_ANTERIOR = "unknown"


def _anterior(skin, bones, axis, file_axes, options: CaptureOptions, level: str,
              recorded: tuple[tuple[float, float, float], str] | None = None) -> tuple[np.ndarray, str, bool]:
    """Anterior direction in file coordinates, how it was found, and whether it is known (not a guess)."""
    if options.anterior is not None:
        return frames.perpendicular(np.asarray(options.anterior, float), axis, "anterior"), "given", True
    if file_axes is not None:
        return file_axes[1], "from the file (spoke 0)", True
    if recorded is not None:
        return frames.perpendicular(np.asarray(recorded[0], float), axis, "anterior"), recorded[1], True
    patella = bones.get("patella") if level == "transtibial" else None
    if patella is not None:
        centre = frames.surface_centroid(skin)
        return frames.perpendicular(patella.centroid - centre, axis, "anterior"), "from the bones (patella)", True
    if level == "transfemoral" and "femur" in bones and "pelvis" in bones:
        return (_anterior_from_pelvis(bones, axis),
                "from the bones (estimate: ischial tuberosity posterior, hemipelvis medial; check it)", True)
    return _anterior_placeholder(skin, axis, level)


def _anterior_placeholder(skin, axis, level: str) -> tuple[np.ndarray, str, bool]:
    """A pose-independent guess for a limb without bones, labelled unknown (see UNKNOWN_ANTERIOR)."""
    loop = measure.brim_loop(skin)
    heights = skin.vertices @ axis
    top = float(heights[loop].min() - heights.min()) if loop is not None else float(np.ptp(heights))
    reference, _ = frames.shape_reference(skin, axis, top)
    ask = "give `anterior` as X,Y,Z (file coordinates) before designing"
    if loop is not None and level == "transtibial":
        provisional = frames.build_frame(skin, axis, reference)
        direction = frames.anterior_from_brim(provisional.to_local(skin.vertices[loop]))
        if direction is not None:
            return (provisional.rotation[:2].T @ direction,
                    f"{UNKNOWN_ANTERIOR} (no bones); the frame's y is a guess, the oblique brim's highest point "
                    f"(1-38 deg off on the OpenLimbTT shapes): {ask}", False)
    return (reference, f"{UNKNOWN_ANTERIOR} (no bones); the frame's y is a placeholder fixed by the shape (the shank "
                       f"section's apex, a posterior corner on 3 of 5 OpenLimbTT shapes), not found: {ask}", False)


def _anterior_from_pelvis(bones: dict[str, trimesh.Trimesh], axis: np.ndarray) -> np.ndarray:
    """Transfemoral anterior: across the limb from the medial hemipelvis, away from the ischial
    tuberosity (the pelvis's lowest point along the axis, which lies posterior)."""
    pelvis = np.vstack([mesh.vertices for name, mesh in bones.items() if name.startswith("pelvis")])
    femur_top = frames.surface_centroid(bones["femur"])
    medial = frames.perpendicular(pelvis.mean(axis=0) - femur_top, axis, "medial")
    anterior = np.cross(axis, medial)
    ischial = pelvis[np.argmin(pelvis @ axis)]
    return anterior if np.dot(ischial - femur_top, anterior) < 0 else -anterior


def _side(bones, file_side, options: CaptureOptions, level: str) -> tuple[str, str]:
    """Left or right, and how it was found. Bones are in the frame already."""
    if options.side is not None:
        return options.side, "given"
    if file_side is not None:
        return file_side, "from the file"
    if level == "transtibial" and "fibula" in bones and "tibia" in bones:
        lateral_x = frames.surface_centroid(bones["fibula"])[0] - frames.surface_centroid(bones["tibia"])[0]
        if lateral_x != 0:
            side = "right" if lateral_x > 0 else "left"
            return side, "from the bones (fibula is lateral)"
    if level == "transfemoral" and "femur" in bones and "pelvis" in bones:
        lateral_x = frames.surface_centroid(bones["femur"])[0] - frames.surface_centroid(bones["pelvis"])[0]
        if lateral_x != 0:
            return ("right" if lateral_x > 0 else "left"), "from the bones (the hemipelvis is medial)"
    return "unknown", "unknown; give `side`"


def mirrored(limb: Limb) -> Limb:
    """The limb mirrored across its sagittal plane (x -> -x): a left limb becomes a right one."""
    def mirror(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
        vertices = mesh.vertices * np.array([-1.0, 1.0, 1.0])
        return trimesh.Trimesh(vertices, mesh.faces[:, ::-1], process=False, validate=False)

    other = {"left": "right", "right": "left"}.get(limb.side, limb.side)
    rotation = limb.frame.rotation * np.array([[-1.0], [1.0], [1.0]])
    return replace(
        limb,
        skin=mirror(limb.skin),
        bones={label: mirror(bone) for label, bone in limb.bones.items()},
        landmarks={name: mark.mirrored() for name, mark in limb.landmarks.items()},
        side=other,
        fingerprint=skin_fingerprint(mirror(limb.skin)) if limb.fingerprint else "",  # another shape
        frame=frames.Frame(rotation=rotation, origin=limb.frame.origin),
        notes=limb.notes + [f"mirrored to the {other} side (`flip_side`)"],
    )
