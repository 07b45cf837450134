"""Socket trimlines: the brim's height all round, anchored on landmarks.

A trimline is a few named points, each an angle around the long axis (from anterior
towards lateral, degrees) and a height given as a landmark's height plus an offset (mm).
Between them the height is a periodic cubic spline of the angle, so the brim is a
smooth closed curve (C2, no corners). Editing a trimline means editing the offsets.

Default heights are this project's reading of the socket designs' descriptions, for an
adult limb, and say so: PTB/TSB after Radcliffe & Foort 1961 (anterior at mid-patella,
medial/lateral walls to the femoral condyles, posterior just above the MPT, lowered for
the hamstrings); KBM after Kuhn (patella left free, wings over the femoral condyles);
quadrilateral after Radcliffe 1955 (ischial seat at the tuberosity), ischial containment
after Sabolich/Long 1985 (ischium contained, lateral wall over the trochanter), subischial
after Fatone & Caldwell 2017 (every wall below the ischial tuberosity).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy.interpolate import CubicSpline

from socketcad.anatomy.limb import Limb
from socketcad.anatomy.regions import lateral_sign
from socketcad.design.socket_types import SOCKET_TYPES
from socketcad.errors import InputError
from socketcad.geometry import measure

BRIM_MARGIN_MM = 8.0  # the trimline stays this far below the model's brim: a scan's edge is ragged
LOWERED_CLEARANCE_MM = 5.0  # a point brought down to a low brim goes this much further (see fit_below_brim)
SAMPLES = np.linspace(0.0, 2.0 * np.pi, 720, endpoint=False)  # angles (rad) the brim's room is checked at


class TrimPoint(BaseModel):
    """One trimline point: ``landmark``'s height + ``offset_mm``, at ``angle_deg`` from anterior towards lateral."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    angle_deg: float = Field(ge=-180.0, lt=360.0)
    landmark: str
    offset_mm: float = Field(ge=-200.0, le=200.0, allow_inf_nan=False)


class Trimline(BaseModel):
    """A closed trimline: at least 3 points at distinct angles."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    socket_type: str
    points: tuple[TrimPoint, ...]

    @field_validator("points")
    @classmethod
    def _distinct_angles(cls, points: tuple[TrimPoint, ...]) -> tuple[TrimPoint, ...]:
        angles = np.sort(np.mod([p.angle_deg for p in points], 360.0))
        if len(points) < 3 or np.any(np.diff(np.append(angles, angles[0] + 360.0)) < 5.0):
            raise ValueError("a trimline needs at least 3 points at angles at least 5 degrees apart")
        return points

    def with_offsets(self, offsets_mm: dict[str, float]) -> Trimline:
        """This trimline with some points' offsets replaced: {point name: offset_mm}."""
        names = {p.name for p in self.points}
        unknown = sorted(set(offsets_mm) - names)
        if unknown:
            raise InputError(f"trimline point '{unknown[0]}' is not in the {self.socket_type} trimline; "
                             f"its points: {', '.join(p.name for p in self.points)}")
        points = tuple(p.model_copy(update={"offset_mm": float(offsets_mm.get(p.name, p.offset_mm))}) for p in self.points)
        return Trimline(socket_type=self.socket_type, points=points)


def _points(*rows: tuple[str, float, str, float]) -> tuple[TrimPoint, ...]:
    return tuple(TrimPoint(name=n, angle_deg=a, landmark=m, offset_mm=o) for n, a, m, o in rows)


# (name, angle from anterior towards lateral, landmark, offset mm). Mid-patella is 50 mm above
# the MPT on the OpenLimbTT mean (patella centre 196.7 mm, MPT 145.1 mm).
_PTB = _points(("anterior", 0, "mpt", 50), ("anterolateral", 60, "mpt", 45), ("lateral", 90, "mpt", 40),
               ("lateral_hamstring", 135, "mpt", 5), ("posterior", 180, "mpt", 15),
               ("medial_hamstring", 225, "mpt", 5), ("medial", 270, "mpt", 40), ("anteromedial", 300, "mpt", 45))
_KBM = _points(("anterior", 0, "mpt", 20), ("anterolateral", 45, "mpt", 45), ("lateral", 90, "mpt", 75),
               ("lateral_hamstring", 135, "mpt", 5), ("posterior", 180, "mpt", 15),
               ("medial_hamstring", 225, "mpt", 5), ("medial", 270, "mpt", 75), ("anteromedial", 315, "mpt", 45))
_IC = _points(("anterior", 0, "ischial_tuberosity", 50), ("lateral", 90, "greater_trochanter", 40),
              ("posterior", 180, "ischial_tuberosity", 20), ("posteromedial", 225, "ischial_tuberosity", 30),
              ("medial", 270, "perineum", 0))
_QUAD = _points(("anterior", 0, "ischial_tuberosity", 65), ("lateral", 90, "ischial_tuberosity", 65),
                ("posterior", 180, "ischial_tuberosity", 0), ("posteromedial", 225, "ischial_tuberosity", 0),
                ("medial", 270, "perineum", 0))
_SUBISCHIAL = _points(("anterior", 0, "ischial_tuberosity", -25), ("lateral", 90, "ischial_tuberosity", -15),
                      ("posterior", 180, "ischial_tuberosity", -25), ("medial", 270, "perineum", -10))

# Keyed by the registered socket types (design.socket_types): ic = ischial containment, quad = quadrilateral.
_TRIMLINES = {"ptb": _PTB, "tsb": _PTB, "kbm": _KBM, "ic": _IC, "quad": _QUAD, "subischial": _SUBISCHIAL}
if set(_TRIMLINES) != set(SOCKET_TYPES):
    raise RuntimeError(f"default trimlines {sorted(_TRIMLINES)} do not match the socket types {sorted(SOCKET_TYPES)}")
DEFAULT_TRIMLINES = {name: _TRIMLINES[name] for name in SOCKET_TYPES}
LEVEL_OF = {name: kind.level for name, kind in SOCKET_TYPES.items()}  # derived from the registry


def default_trimline(socket_type: str) -> Trimline:
    """The default trimline of a socket type (see the module docstring for the sources)."""
    if socket_type not in DEFAULT_TRIMLINES:
        raise InputError(f"unknown socket type '{socket_type}'; known: {', '.join(DEFAULT_TRIMLINES)}")
    return Trimline(socket_type=socket_type, points=DEFAULT_TRIMLINES[socket_type])


def frame_angles(limb: Limb, points: np.ndarray) -> np.ndarray:
    """Angle (radians, 0..2pi) of points (n, 3) around the long axis, from anterior towards lateral."""
    points = np.asarray(points, dtype=np.float64)
    return np.mod(np.arctan2(lateral_sign(limb.side) * points[:, 0], points[:, 1]), 2.0 * np.pi)


def trimline_curve(trimline: Trimline, limb: Limb) -> CubicSpline:
    """Height (mm) of the trimline as a periodic C2 function of the angle (radians, from anterior towards lateral)."""
    angles = np.mod(np.radians([p.angle_deg for p in trimline.points]), 2.0 * np.pi)
    heights = np.array([limb.named_level(p.landmark) + p.offset_mm for p in trimline.points])
    order = np.argsort(angles)
    angles, heights = angles[order], heights[order]
    return CubicSpline(np.append(angles, angles[0] + 2.0 * np.pi), np.append(heights, heights[0]), bc_type="periodic")


def trim_level(trimline: Trimline, limb: Limb, points: np.ndarray) -> np.ndarray:
    """Signed height (n,) of points (n, 3) above the trimline (mm; < 0 below it, i.e. inside the socket)."""
    curve = trimline_curve(trimline, limb)
    return np.asarray(points)[:, 2] - curve(frame_angles(limb, points))


def _room_mm(trimline: Trimline, limb: Limb, samples: np.ndarray) -> np.ndarray | None:
    """Room (mm) between the model's brim, less the margin, and the trimline at ``samples`` (radians);
    None for a model without a brim."""
    loop = measure.brim_loop(limb.skin)
    if loop is None:
        return None
    brim = limb.skin.vertices[loop]
    brim_angles = frame_angles(limb, brim)
    order = np.argsort(brim_angles)
    angles = np.append(brim_angles[order], brim_angles[order][0] + 2.0 * np.pi)
    brim_height = np.append(brim[order, 2], brim[order[0], 2])
    return np.interp(samples, angles, brim_height, period=2.0 * np.pi) - BRIM_MARGIN_MM - trimline_curve(trimline, limb)(samples)


def _gap(angles: np.ndarray, angle: float) -> np.ndarray:
    """The unsigned angle (radians, 0..pi) from each of ``angles`` to ``angle``, the short way round."""
    return np.abs(np.angle(np.exp(1j * (np.asarray(angles) - angle))))


def _nearest_point(trimline: Trimline, angle: float) -> TrimPoint:
    return trimline.points[int(np.argmin(_gap(np.radians([p.angle_deg for p in trimline.points]), angle)))]


def _lowered(trimline: Trimline, name: str, limb: Limb) -> float:
    """The highest offset (mm, to 0.5 mm) of point ``name`` at which the trimline fits below the brim
    near it: the spline spreads a point's change over its neighbours, so it is sought, not subtracted."""
    point = next(p for p in trimline.points if p.name == name)
    near = _gap(SAMPLES, np.radians(point.angle_deg)) < np.radians(45.0)

    def fits(offset: float) -> bool:
        return _room_mm(trimline.with_offsets({name: offset}), limb, SAMPLES[near]).min() >= 0.0

    low, high = point.offset_mm - 400.0, point.offset_mm
    if not fits(low):
        return low
    while high - low > 0.5:
        middle = 0.5 * (low + high)
        low, high = (middle, high) if fits(middle) else (low, middle)
    return float(np.floor(low * 2.0) / 2.0)


def fit_below_brim(trimline: Trimline, limb: Limb, given: set[str] = frozenset()) -> tuple[Trimline, list[str]]:
    """The trimline lowered where the model's brim (less the margin) is lower than the design's default,
    with a note for each point lowered; InputError if a point the user placed (``given``) lies above it.

    A scan or shape that ends below the design's brim (the OpenLimbTF mean ends 16 mm below the ischium)
    cannot carry a wall there: the wall stops at the model's edge, and the note says how far below the
    design that is, so that the limb can be captured higher for the full design. Each default point
    goes to the lowest brim height around it (half-way to its neighbours); then any overshoot of the
    spline between points is taken off the nearest point.
    """
    room = _room_mm(trimline, limb, SAMPLES)
    if room is None or room.min() >= 0.0:
        return trimline, []
    design = {p.name: p.offset_mm for p in trimline.points}
    curve = trimline_curve(trimline, limb)
    ceiling = room + curve(SAMPLES)  # the brim, less the margin
    angles = np.radians([p.angle_deg for p in trimline.points])
    offsets = {}
    for point, angle in zip(trimline.points, angles):
        if point.name in given:
            continue
        half = 0.5 * np.sort(_gap(angles, angle))[1]  # half-way to the nearer neighbour
        around = _gap(SAMPLES, angle) <= half
        excess = float(curve(angle)) - float(ceiling[around].min()) + LOWERED_CLEARANCE_MM
        if excess > 0.0:
            offsets[point.name] = point.offset_mm - np.ceil(excess)
    trimline = trimline.with_offsets(offsets)
    for _ in range(20):
        room = _room_mm(trimline, limb, SAMPLES)
        if room.min() >= 0.0:
            break
        point = _nearest_point(trimline, SAMPLES[int(np.argmin(room))])
        if point.name in given:
            raise InputError(
                f"trimline point '{point.name}' ({point.landmark} {point.offset_mm:+g} mm) lies {-room.min():.0f} mm "
                f"above the model's brim; lower it (`trim_offsets_mm` {point.name}={_lowered(trimline, point.name, limb):g} or "
                "below) or capture the limb higher")
        trimline = trimline.with_offsets({point.name: point.offset_mm - np.ceil(-room.min() + 0.5)})
    else:
        raise InputError(f"the {trimline.socket_type} trimline does not fit below the model's brim; capture the limb higher")
    notes = [f"trimline '{p.name}' lowered from {p.landmark} {design[p.name]:+g} to {p.offset_mm:+g} mm: the model ends "
             f"there (its brim less {BRIM_MARGIN_MM:g} mm); capture the limb higher for the full {trimline.socket_type} brim"
             for p in trimline.points if p.offset_mm != design[p.name]]
    return trimline, notes
