"""AOP files (AAOP cylindrical shapes): read, write, and convert to and from meshes.

The AAOP shape file is the interchange format of O&P CAD systems and carvers. It is
ASCII, one item per line::

    AAOP1
    <comment lines>
    END COMMENTS
    CYLINDRICAL
    RIGHT | LEFT | NONE                     side
    <number of landmarks>, then per landmark: name, point count, 3 values per point
    <number of spokes>
    <spoke spacing, degrees>                0 = one explicit angle per spoke follows
    <number of slices>
    <slice spacing, mm>                     0 = one explicit height per slice follows
    <radii, mm>                             slice by slice, distal slice first; within a
                                            slice spoke by spoke in angle order

Lines may end in CR, LF or CRLF; the reader accepts any mix, remembers the most
common one and writes it back unless told otherwise (CRLF for shapes made here).
A landmark point's third value is its height in mm; what its first two values mean
is vendor-specific, so all three are kept exactly as written.

On writing, spokes are written as a spacing when they are evenly spaced from 0 deg
all the way round (360 / n_spokes, within 1e-9 deg), else as explicit angles.
Slice heights are always written explicitly, as in the vendor example: every
reader takes that, and it keeps heights exact. Numbers get up to 6 decimals.

Frame and angle convention (the socketcad anatomical frame): z is the long axis,
pointing proximally, with slice heights as z; y is anterior; x = y cross z, which
is lateral on a right leg and medial on a left one. The spoke at angle theta
points along (-sin theta, cos theta, 0): spoke 0 deg points anterior (+y) and
angles increase counter-clockwise seen from above (looking down -z, right-handed
about +z), so 90 deg points to -x (medial on a right leg). A radius r on the spoke
at theta and the slice at height h is the point (-r sin theta, r cos theta, h).
Other vendors may count spokes the other way round; mirror the angles if so.

Meshes: ``aop_to_mesh`` joins those points slice to slice, closes the distal slice
with a fan to its centre on the axis and leaves the proximal end (the brim) open;
normals point outward. ``mesh_to_aop`` is its inverse: each radius is the farthest
hit of the ray from the axis point (0, 0, h) along the spoke. By default the slices
are the levels min z + k * 2 mm from the first at which every spoke hits the surface
(the distal tip's section is a point, or does not surround the axis) up to the last
before a spoke misses (the brim); there is no zero-radius tip slice.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import trimesh

from socketcad.errors import GeometryError, InputError
from socketcad.geometry.io import atomic_path

SIDES = ("RIGHT", "LEFT", "NONE")
LINE_ENDINGS = {"CRLF": "\r\n", "CR": "\r", "LF": "\n"}
DEFAULT_SLICE_SPACING_MM = 2.0

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_DECIMALS = 6
_EVEN_TOLERANCE = 1e-9
# A regular spoke spacing must add up to a full turn within this (degrees).
_FULL_TURN_TOLERANCE_DEG = 1e-3
# Heights this close to the mesh's z extent (relative) are sampled just inside it.
_END_NUDGE = 1e-7
# Angular slack (radians) so a ray through a section vertex hits both its segments.
_ANGLE_SLACK = 1e-9


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class AopLandmark:
    """A named landmark: points of 3 values each; the third is the height in mm."""

    name: str
    values: tuple[tuple[float, float, float], ...]

    def __post_init__(self) -> None:
        if _has_line_break(self.name):
            raise InputError(f"landmark name {self.name!r} contains a line break; use one line")
        points = tuple(tuple(float(v) for v in point) for point in self.values)
        if not points or any(len(p) != 3 or not np.isfinite(p).all() for p in points):
            raise InputError(
                f"landmark {self.name!r}: give one or more points of 3 finite values each"
            )
        object.__setattr__(self, "values", points)

    @property
    def heights_mm(self) -> tuple[float, ...]:
        """Height (third value, mm) of each point."""
        return tuple(point[2] for point in self.values)


@dataclass(frozen=True, eq=False)
class AopShape:
    """A cylindrical AOP shape; arrays are float64 and read-only.

    spoke_angles_deg: (n_spokes,) increasing, spanning less than 360.
    slice_heights_mm: (n_slices,) increasing, distal first.
    radii_mm: (n_slices, n_spokes), finite and >= 0.
    line_ending: "\\r\\n", "\\r" or "\\n", used when writing.
    """

    side: str
    spoke_angles_deg: np.ndarray
    slice_heights_mm: np.ndarray
    radii_mm: np.ndarray
    landmarks: tuple[AopLandmark, ...] = ()
    comments: tuple[str, ...] = ()
    line_ending: str = "\r\n"

    def __post_init__(self) -> None:
        angles = _checked_angles(self.spoke_angles_deg)
        heights = _checked_heights(self.slice_heights_mm)
        radii = _frozen_array(self.radii_mm, "radii_mm", ndim=2)
        if self.side not in SIDES:
            raise InputError(f"AOP side {self.side!r} is unknown; use one of {', '.join(SIDES)}")
        if radii.shape != (len(heights), len(angles)):
            raise InputError(
                f"radii_mm has shape {radii.shape}, expected (n_slices, n_spokes) = "
                f"({len(heights)}, {len(angles)})"
            )
        if (radii < 0).any():
            raise InputError("radii must be >= 0 mm (distances from the axis)")
        _check_comments(self.comments)
        if self.line_ending not in LINE_ENDINGS.values():
            raise InputError(f"line ending {self.line_ending!r} is unknown; use CR, LF or CRLF")
        object.__setattr__(self, "spoke_angles_deg", angles)
        object.__setattr__(self, "slice_heights_mm", heights)
        object.__setattr__(self, "radii_mm", radii)
        object.__setattr__(self, "landmarks", tuple(self.landmarks))
        object.__setattr__(self, "comments", tuple(self.comments))

    @property
    def n_spokes(self) -> int:
        return len(self.spoke_angles_deg)

    @property
    def n_slices(self) -> int:
        return len(self.slice_heights_mm)


def _frozen_array(values, name: str, ndim: int) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    if array.ndim != ndim:
        raise InputError(f"{name} must be a {ndim}-D array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError(f"{name} holds NaN or infinite values")
    array.setflags(write=False)
    return array


def _checked_angles(values) -> np.ndarray:
    """Spoke angles (n,) as a read-only float64 array; InputError unless valid."""
    angles = _frozen_array(values, "spoke_angles_deg", ndim=1)
    if len(angles) < 3:
        raise InputError(f"an AOP shape needs at least 3 spokes, got {len(angles)}")
    if not _increasing(angles) or angles[-1] - angles[0] >= 360.0:
        raise InputError("spoke angles must increase and span less than 360 degrees")
    return angles


def _checked_heights(values) -> np.ndarray:
    """Slice heights (n,) as a read-only float64 array; InputError unless valid."""
    heights = _frozen_array(values, "slice_heights_mm", ndim=1)
    if len(heights) < 1:
        raise InputError("an AOP shape needs at least 1 slice, got 0")
    if not _increasing(heights):
        raise InputError("slice heights must increase from distal to proximal")
    return heights


def _check_comments(comments: tuple[str, ...]) -> None:
    for comment in comments:
        if _has_line_break(comment) or comment.strip().upper() == "END COMMENTS":
            raise InputError(
                f"comment {comment!r} cannot be written: comments are single lines "
                "other than 'END COMMENTS'"
            )


def _has_line_break(text: str) -> bool:
    return _LINE_BREAK.search(text) is not None


def _increasing(values: np.ndarray) -> bool:
    return bool(np.all(np.diff(values) > 0))


# -------------------------------------------------------------------------- reading


def read_aop(path: str | os.PathLike) -> AopShape:
    """Read an AOP file; InputError (one line, with file and line) if it is malformed."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not an AOP file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark from some editors
        data = data[3:]
    # Latin-1 decodes any byte, so odd characters in comments never stop a read.
    return parse_aop(data.decode("latin-1"), source=path.name)


def parse_aop(text: str, source: str = "AOP") -> AopShape:
    """Parse the text of an AOP file; ``source`` names it in error messages."""
    lines = _LINE_BREAK.split(text)
    while lines and not lines[-1].strip():
        lines.pop()
    reader = _Reader(lines, source)
    comments = _read_header(reader)
    side = _read_side(reader)
    landmarks = _read_landmarks(reader)
    angles = _read_spokes(reader)
    heights = _read_slices(reader)
    radii = _read_radii(reader, len(heights), len(angles))
    return AopShape(
        side=side,
        spoke_angles_deg=angles,
        slice_heights_mm=heights,
        radii_mm=radii,
        landmarks=landmarks,
        comments=comments,
        line_ending=detect_line_ending(text) or LINE_ENDINGS["CRLF"],
    )


def detect_line_ending(text: str) -> str | None:
    """The most common line ending of a text ("\\r\\n", "\\r" or "\\n"); None if none."""
    crlf = text.count("\r\n")
    counts = {"\r\n": crlf, "\r": text.count("\r") - crlf, "\n": text.count("\n") - crlf}
    best = max(counts, key=counts.get)
    return best if counts[best] else None


class _Reader:
    """Walks the lines of an AOP text; every error names the source and the line."""

    def __init__(self, lines: list[str], source: str) -> None:
        self.lines = lines
        self.source = source
        self.index = 0  # lines consumed so far; the next line's number is index + 1

    @property
    def remaining(self) -> int:
        return len(self.lines) - self.index

    def error(self, line_no: int, problem: str) -> InputError:
        return InputError(f"{self.source} line {line_no}: {problem}")

    def line(self, what: str) -> tuple[int, str]:
        """The next line (number, raw text), or an error saying ``what`` was expected."""
        if self.index >= len(self.lines):
            raise self.error(
                self.index + 1, f"expected {what}, found the end of the file; the file is truncated"
            )
        self.index += 1
        return self.index, self.lines[self.index - 1]

    def number(self, what: str, hint: str = "fix or remove the line") -> float:
        line_no, text = self.line(what)
        return self.parse_number(line_no, text, what, hint)

    def parse_number(self, line_no: int, text: str, what: str, hint: str = "fix the line") -> float:
        try:
            value = float(text.strip())
        except ValueError:
            found = repr(text.strip()[:40]) if text.strip() else "an empty line"
            raise self.error(line_no, f"expected {what}, found {found}; {hint}") from None
        if not np.isfinite(value):
            raise self.error(line_no, f"{what} is {text.strip()}, not a finite number; fix the value")
        return value

    def integer(self, what: str, minimum: int) -> int:
        line_no, text = self.line(what)
        try:
            value = int(text.strip())
        except ValueError:
            raise self.error(
                line_no, f"expected {what} (a whole number), found {text.strip()!r}; fix the line"
            ) from None
        if value < minimum:
            raise self.error(line_no, f"{what} is {value}, at least {minimum} needed; fix the count")
        return value


def _read_header(reader: _Reader) -> tuple[str, ...]:
    """Check AAOP1 ... END COMMENTS, CYLINDRICAL; return the comment lines."""
    line_no, text = reader.line("'AAOP1'")
    if text.strip().upper() != "AAOP1":
        found = text.strip()[:40]
        raise reader.error(line_no, f"expected 'AAOP1', found {found!r}; this is not an AOP file")
    first_comment = line_no + 1
    comments = []
    while True:
        if reader.remaining == 0:
            raise reader.error(
                first_comment, "the comments starting here never end: no 'END COMMENTS' line; add it"
            )
        line_no, text = reader.line("a comment or 'END COMMENTS'")
        if text.strip().upper() == "END COMMENTS":
            break
        comments.append(text)
    line_no, text = reader.line("'CYLINDRICAL'")
    if text.strip().upper() != "CYLINDRICAL":
        raise reader.error(
            line_no,
            f"expected 'CYLINDRICAL', found {text.strip()[:40]!r}; "
            "only cylindrical AOP shapes are supported",
        )
    return tuple(comments)


def _read_side(reader: _Reader) -> str:
    line_no, text = reader.line("the side (RIGHT, LEFT or NONE)")
    side = text.strip().upper()
    if side not in SIDES:
        raise reader.error(line_no, f"unknown side {text.strip()[:40]!r}; use RIGHT, LEFT or NONE")
    return side


def _read_landmarks(reader: _Reader) -> tuple[AopLandmark, ...]:
    count = reader.integer("the number of landmarks", minimum=0)
    return tuple(_read_landmark(reader) for _ in range(count))


def _read_landmark(reader: _Reader) -> AopLandmark:
    name = reader.line("a landmark name")[1].strip()
    count_line = reader.index + 1
    n_points = reader.integer(f"the number of points of landmark {name!r}", minimum=1)
    hint = f"check the point count {n_points} of landmark {name!r} on line {count_line}"
    values = tuple(
        tuple(
            reader.number(f"value {k + 1} of point {i + 1} of landmark {name!r}", hint)
            for k in range(3)
        )
        for i in range(n_points)
    )
    return AopLandmark(name, values)


def _read_spokes(reader: _Reader) -> np.ndarray:
    """Spoke angles in degrees, (n_spokes,)."""
    n_spokes = reader.integer("the number of spokes", minimum=3)
    line_no, text = reader.line("the spoke spacing in degrees")
    spacing = reader.parse_number(line_no, text, "the spoke spacing in degrees")
    if spacing < 0:
        raise reader.error(line_no, f"the spoke spacing is {spacing:g}; use >= 0 (0 = explicit angles)")
    if spacing > 0:
        turn = n_spokes * spacing
        if abs(turn - 360.0) > _FULL_TURN_TOLERANCE_DEG:
            raise reader.error(
                line_no,
                f"{n_spokes} spokes at {spacing:g} deg make {turn:g} deg, not a full turn; "
                "fix the spacing or the number of spokes",
            )
        return np.arange(n_spokes) * (360.0 / n_spokes)
    angles = _read_increasing(reader, n_spokes, "spoke angle", "deg", "spoke angles")
    if angles[-1] - angles[0] >= 360.0:
        raise reader.error(
            reader.index,
            f"the spoke angles span {angles[-1] - angles[0]:g} deg; they must span less than 360",
        )
    return angles


def _read_slices(reader: _Reader) -> np.ndarray:
    """Slice heights in mm, (n_slices,)."""
    n_slices = reader.integer("the number of slices", minimum=1)
    line_no, text = reader.line("the slice spacing in mm")
    spacing = reader.parse_number(line_no, text, "the slice spacing in mm")
    if spacing < 0:
        raise reader.error(line_no, f"the slice spacing is {spacing:g}; use >= 0 (0 = explicit heights)")
    if spacing > 0:
        return np.arange(n_slices) * spacing
    return _read_increasing(reader, n_slices, "slice height", "mm", "slice heights")


def _read_increasing(reader: _Reader, count: int, what: str, unit: str, plural: str) -> np.ndarray:
    """``count`` explicit values, each greater than the one before."""
    values = []
    for i in range(count):
        line_no, text = reader.line(f"{what} {i + 1} of {count}")
        value = reader.parse_number(line_no, text, f"{what} {i + 1} of {count}")
        if values and value <= values[-1]:
            raise reader.error(
                line_no,
                f"{what} {i + 1} of {count} is {value:g} {unit}, not greater than the one before "
                f"({values[-1]:g}); {plural} must increase: fix the order or the count of {plural}",
            )
        values.append(value)
    return np.array(values)


def _read_radii(reader: _Reader, n_slices: int, n_spokes: int) -> np.ndarray:
    """Radii in mm, (n_slices, n_spokes)."""
    expected = n_slices * n_spokes
    counts = f"{expected} radii ({n_slices} slices x {n_spokes} spokes)"
    if reader.remaining < expected:
        raise reader.error(
            len(reader.lines) + 1,
            f"expected {counts}, found {reader.remaining}; "
            "the file is truncated or the counts are wrong",
        )
    if reader.remaining > expected:
        raise reader.error(
            reader.index + expected + 1,
            f"expected {counts}, found {reader.remaining} lines; remove the extra lines "
            "from here on or fix the counts",
        )
    radii = np.empty(expected)
    for i in range(expected):
        line_no, text = reader.line("a radius")
        radii[i] = reader.parse_number(line_no, text, f"radius {i + 1} of {expected} (mm)")
        if radii[i] < 0:
            raise reader.error(line_no, f"radius {radii[i]:g} mm is negative; radii are >= 0, fix it")
    return radii.reshape(n_slices, n_spokes)


# -------------------------------------------------------------------------- writing


def format_aop(shape: AopShape, line_ending: str | None = None) -> str:
    """The text of an AOP file; ``line_ending`` ("\\r\\n"/"\\r"/"\\n" or CRLF/CR/LF)
    defaults to the shape's own."""
    ending = _line_ending(line_ending or shape.line_ending)
    lines = ["AAOP1", *shape.comments, "END COMMENTS", "CYLINDRICAL", shape.side]
    lines.append(str(len(shape.landmarks)))
    for landmark in shape.landmarks:
        lines += [landmark.name, str(len(landmark.values))]
        lines += [_number(v) for point in landmark.values for v in point]
    angles = shape.spoke_angles_deg
    lines += [str(len(angles)), *_axis_lines(angles, 360.0 / len(angles))]
    heights = shape.slice_heights_mm
    lines += [str(len(heights)), *_axis_lines(heights, None)]
    lines += [_number(r) for r in shape.radii_mm.ravel()]
    return ending.join(lines) + ending


def write_aop(shape: AopShape, path: str | os.PathLike, line_ending: str | None = None) -> None:
    """Write an AOP file atomically: the target is replaced only by a complete file."""
    path = Path(path)
    text = format_aop(shape, line_ending)
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        raise InputError(
            f"{path.name}: a comment or landmark name has characters an AOP file cannot hold; "
            "use plain ASCII"
        ) from None
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        reason = exc.strerror or exc
        raise InputError(f"{path}: cannot be written ({reason}); check the folder and free space") from None


def _line_ending(value: str) -> str:
    ending = LINE_ENDINGS.get(value.upper(), value)
    if ending not in LINE_ENDINGS.values():
        raise InputError(f"line ending {value!r} is unknown; use CRLF, CR or LF")
    return ending


def _axis_lines(values: np.ndarray, step: float | None) -> list[str]:
    """Just the spacing if values are k * step (k = 0, 1, ...), else 0 and the values."""
    if step and np.allclose(values, np.arange(len(values)) * step, rtol=0, atol=_EVEN_TOLERANCE):
        return [_number(step)]
    return ["0", *(_number(v) for v in values)]


def _number(value: float) -> str:
    text = f"{value:.{_DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


# ------------------------------------------------------------------- mesh conversion


def _spoke_directions(angles_deg: np.ndarray) -> np.ndarray:
    """Unit (x, y) direction of each spoke, (n, 2): 0 deg = +y, 90 deg = -x."""
    theta = np.radians(angles_deg)
    return np.column_stack([-np.sin(theta), np.cos(theta)])


def _polar_angles(xy: np.ndarray) -> np.ndarray:
    """Spoke angle (radians, in (-pi, pi]) of points (n, 2); inverse of _spoke_directions."""
    return np.arctan2(-xy[:, 0], xy[:, 1])


def aop_to_mesh(shape: AopShape) -> trimesh.Trimesh:
    """The AOP surface as a triangle mesh in the anatomical frame (mm).

    Vertex k * n_spokes + j is slice k, spoke j; the last vertex is the centre of the
    distal slice, to which a fan closes the distal end. The proximal end (the brim)
    is left open. Faces are wound so that normals point outward.
    """
    n_slices, n_spokes = shape.radii_mm.shape
    xy = shape.radii_mm[:, :, None] * _spoke_directions(shape.spoke_angles_deg)[None]
    z = np.broadcast_to(shape.slice_heights_mm[:, None, None], (n_slices, n_spokes, 1))
    centre = [0.0, 0.0, shape.slice_heights_mm[0]]
    vertices = np.vstack([np.concatenate([xy, z], axis=2).reshape(-1, 3), centre])
    faces = np.vstack([_wall_faces(n_slices, n_spokes), _distal_fan(n_slices, n_spokes)])
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)


def _wall_faces(n_slices: int, n_spokes: int) -> np.ndarray:
    """Two triangles per quad between consecutive slices, (2 (n_slices-1) n_spokes, 3)."""
    k, j = np.meshgrid(np.arange(n_slices - 1), np.arange(n_spokes), indexing="ij")
    a = k * n_spokes + j
    b = k * n_spokes + (j + 1) % n_spokes
    c, d = b + n_spokes, a + n_spokes
    # (a, b, c): along increasing angle, then up; the cross product points outward.
    return np.stack([a, b, c, a, c, d], axis=-1).reshape(-1, 3)


def _distal_fan(n_slices: int, n_spokes: int) -> np.ndarray:
    """Triangles from the distal centre (the vertex after the rings) to slice 0, facing -z."""
    j = np.arange(n_spokes)
    return np.column_stack([np.full(n_spokes, n_slices * n_spokes), (j + 1) % n_spokes, j])


def mesh_to_aop(
    mesh: trimesh.Trimesh,
    n_spokes: int = 72,
    slice_spacing_mm: float | None = None,
    slice_heights_mm: np.ndarray | None = None,
    side: str = "NONE",
    landmarks: tuple[AopLandmark, ...] = (),
    comments: tuple[str, ...] = (),
    *,
    spoke_angles_deg: np.ndarray | None = None,
) -> AopShape:
    """Sample a mesh in the anatomical frame (long axis z, axis through x = y = 0) as
    an AOP shape.

    Each radius is the farthest hit of the ray from (0, 0, h) along the spoke.
    Spokes: ``n_spokes`` evenly from 0 deg, or ``spoke_angles_deg`` (n,). Slices:
    ``slice_heights_mm`` (n,) as given, else the levels min z + k * ``slice_spacing_mm``
    (default 2 mm) from the first one where every spoke hits the surface (at the
    distal tip the section is a point, or does not surround the axis) up to the last
    one before a spoke misses (the brim). Heights at the mesh's z extent are sampled
    just inside it, so a flat distal cap or a planar brim gives its rim.
    GeometryError if a spoke misses the surface at a given slice height.
    """
    if slice_spacing_mm is not None and slice_heights_mm is not None:
        raise InputError("give slice_spacing_mm or slice_heights_mm, not both")
    angles = _spoke_angles(n_spokes, spoke_angles_deg)
    faces = _faces(mesh)
    if slice_heights_mm is None:
        spacing = DEFAULT_SLICE_SPACING_MM if slice_spacing_mm is None else float(slice_spacing_mm)
        heights, radii = _default_slices(faces, angles, spacing)
    else:
        heights = _checked_heights(slice_heights_mm)
        radii = _sample_radii(faces, heights, angles)
        _raise_on_miss(radii, heights, angles)
    return AopShape(side, angles, heights, radii, tuple(landmarks), tuple(comments))


def _spoke_angles(n_spokes: int, spoke_angles_deg: np.ndarray | None) -> np.ndarray:
    if spoke_angles_deg is not None:
        return _checked_angles(spoke_angles_deg)
    if int(n_spokes) != n_spokes or n_spokes < 3:
        raise InputError(f"n_spokes must be a whole number >= 3, got {n_spokes}")
    return np.arange(int(n_spokes)) * (360.0 / int(n_spokes))


class _Faces(NamedTuple):
    """A mesh with each face's z range, for slicing."""

    vertices: np.ndarray  # (v, 3) mm
    corners: np.ndarray  # (n, 3) vertex index of each face corner
    z_low: np.ndarray  # (n,) lowest corner z of each face
    z_high: np.ndarray  # (n,) highest corner z of each face


def _faces(mesh: trimesh.Trimesh) -> _Faces:
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(faces) == 0:
        raise GeometryError("mesh_to_aop: the mesh has no faces")
    z = vertices[:, 2][faces]
    # Pairwise minimum/maximum: numpy's reductions along a length-3 axis are slow.
    z_low = np.minimum(np.minimum(z[:, 0], z[:, 1]), z[:, 2])
    z_high = np.maximum(np.maximum(z[:, 0], z[:, 1]), z[:, 2])
    return _Faces(vertices, faces, z_low, z_high)


def _default_slices(
    faces: _Faces, angles: np.ndarray, spacing: float
) -> tuple[np.ndarray, np.ndarray]:
    """Heights (n,) and radii (n, n_spokes) of the default slices (see mesh_to_aop)."""
    if not spacing > 0:
        raise InputError(f"slice spacing {spacing:g} mm must be > 0")
    z_min, z_max = faces.z_low.min(), faces.z_high.max()
    levels = z_min + spacing * np.arange(int(np.floor((z_max - z_min) / spacing + 1e-9)) + 1)
    radii = _sample_radii(faces, levels, angles)
    full = ~np.isnan(radii).any(axis=1)
    if not full.any():
        raise GeometryError(
            "mesh_to_aop: at no height does every spoke ray hit the surface; put the mesh "
            "in the anatomical frame (long axis z, axis through x = y = 0)"
        )
    first = int(np.argmax(full))
    run = full[first:]
    last = first + (len(run) if run.all() else int(np.argmin(run)))
    return levels[first:last], radii[first:last]


def _raise_on_miss(radii: np.ndarray, heights: np.ndarray, angles: np.ndarray) -> None:
    missed = np.argwhere(np.isnan(radii))
    if len(missed):
        k, j = missed[0]
        raise GeometryError(
            f"mesh_to_aop: the spoke at {angles[j]:g} deg misses the surface at slice height "
            f"{heights[k]:g} mm ({len(missed)} spoke/slice misses in all); keep the heights "
            "within the surface and put the mesh in the anatomical frame (axis through x = y = 0)"
        )


def _sample_radii(faces: _Faces, heights: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Farthest ray hit per slice and spoke, (n_slices, n_spokes) mm; NaN where none."""
    levels = _nudge_ends(heights, faces.z_low.min(), faces.z_high.max())
    order = np.argsort(levels, kind="stable")
    level, start, end = _section_segments(faces, levels[order])
    radii = np.empty((len(levels), len(angles)))
    radii[order] = _farthest_hits(len(levels), level, start, end, angles)
    return radii


def _nudge_ends(heights: np.ndarray, z_min: float, z_max: float) -> np.ndarray:
    """Heights at (or within rounding of) the mesh's z extent moved just inside it."""
    eps = _END_NUDGE * max(z_max - z_min, 1.0)
    near = (heights >= z_min - eps) & (heights <= z_max + eps)
    return np.where(near, np.clip(heights, z_min + eps, z_max - eps), heights)


def _expand_ranges(first: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges first[i] .. first[i] + counts[i] - 1: each member's i and value."""
    owner = np.repeat(np.arange(len(counts)), counts)
    within = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, first[owner] + within


def _section_segments(
    faces: _Faces, levels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut the faces with the planes z = levels (sorted, (L,)).

    Returns the level index (m,) and the two (x, y) ends (m, 2) of each section
    segment. All planes are cut at once, face by crossed plane: trimesh's
    mesh_multiplane loops over the planes in Python, each time over every face.
    """
    # A corner counts as above a plane when z >= level, so a face crosses the planes
    # with min z < level <= max z.
    first = np.searchsorted(levels, faces.z_low, side="right")
    counts = np.searchsorted(levels, faces.z_high, side="right") - first
    face, level = _expand_ranges(first, counts)
    height = levels[level]
    corners = faces.corners[face]
    above = faces.vertices[corners, 2] >= height[:, None]
    # The lone corner on its side of the plane; both its edges cross the plane.
    lone_above = above.sum(axis=1) == 1
    lone = np.where(lone_above, np.argmax(above, axis=1), np.argmin(above, axis=1))
    rows = np.arange(len(face))
    lone_corner = faces.vertices[corners[rows, lone]]
    start = _crossing(lone_corner, faces.vertices[corners[rows, (lone + 1) % 3]], height, lone_above)
    end = _crossing(lone_corner, faces.vertices[corners[rows, (lone + 2) % 3]], height, lone_above)
    return level, start, end


def _crossing(
    lone: np.ndarray, other: np.ndarray, height: np.ndarray, lone_above: np.ndarray
) -> np.ndarray:
    """(x, y) where the edges from corners ``lone`` to ``other`` (m, 3) meet z = height (m,)."""
    # Interpolate from the lower to the upper end, so the two faces sharing an edge get
    # bit-identical points and a ray through a section vertex cannot slip between them.
    low = np.where(lone_above[:, None], other, lone)
    high = np.where(lone_above[:, None], lone, other)
    t = (height - low[:, 2]) / (high[:, 2] - low[:, 2])
    return low[:, :2] + t[:, None] * (high[:, :2] - low[:, :2])


def _farthest_hits(
    n_levels: int, level: np.ndarray, start: np.ndarray, end: np.ndarray, angles_deg: np.ndarray
) -> np.ndarray:
    """Farthest distance along each spoke ray to the segments (m,) of its level,
    (n_levels, n_spokes) mm; NaN where the ray hits nothing."""
    n_spokes = len(angles_deg)
    # Each segment is seen from the axis under an angular interval; only the spokes in
    # it can hit the segment, so pair segments with those instead of with every spoke.
    a0, a1 = _polar_angles(start), _polar_angles(end)
    sweep = np.mod(a1 - a0 + np.pi, 2 * np.pi) - np.pi
    keep = (np.abs(sweep) < np.pi - 1e-6) & np.any(start != end, axis=1)  # not through the axis
    level, start, end, a0, a1, sweep = (v[keep] for v in (level, start, end, a0, a1, sweep))
    low = np.mod(np.where(sweep >= 0, a0, a1) - np.radians(angles_deg[0]), 2 * np.pi)
    high = low + np.abs(sweep)
    # Spoke angles from spoke 0, repeated one turn either side: intervals may wrap.
    rel = np.radians(angles_deg - angles_deg[0])
    wrapped = np.concatenate([rel - 2 * np.pi, rel, rel + 2 * np.pi])
    first = np.searchsorted(wrapped, low - _ANGLE_SLACK, side="left")
    counts = np.searchsorted(wrapped, high + _ANGLE_SLACK, side="right") - first
    segment, spoke = _expand_ranges(first, counts)
    spoke %= n_spokes
    direction = _spoke_directions(angles_deg)[spoke]
    a, e = start[segment], end[segment] - start[segment]
    # The ray t * d meets a + s * e at t = cross(a, e) / cross(d, e).
    denom = direction[:, 0] * e[:, 1] - direction[:, 1] * e[:, 0]
    hit = np.abs(denom) > 1e-12 * np.hypot(e[:, 0], e[:, 1])
    t = (a[hit, 0] * e[hit, 1] - a[hit, 1] * e[hit, 0]) / denom[hit]
    cell = (level[segment] * n_spokes + spoke)[hit]
    radii = np.full(n_levels * n_spokes, -np.inf)
    np.maximum.at(radii, cell[t > 0], t[t > 0])
    radii[np.isinf(radii)] = np.nan
    return radii.reshape(n_levels, n_spokes)
