"""Shape capture from tape measurements, for clinics without a scanner.

A prosthetist measures circumferences every ``interval_mm`` from a reference level
(MPT for a transtibial limb, the perineum / ischial level for a transfemoral one) down
towards the distal end, the residual length from the reference to the distal end, and
optionally AP and ML widths. ``tape_surface`` turns these into a smooth limb surface in
the anatomical frame (mm, z from the distal end, y anterior): elliptical sections whose
perimeter equals the measured circumference, interpolated along z without kinks, a
rounded closed distal end and an open flat brim at the reference.

What is assumed (and said in the limb's notes): sections are ellipses centred on one
straight axis (a tape says nothing about the section's shape or the limb's curvature),
the AP/ML ratio is interpolated between the levels where widths were given (held
constant with one pair of widths, circular with none), and the shape below the lowest
tape level follows ``distal_shape``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import numpy as np
import trimesh
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy.interpolate import CubicHermiteSpline, PchipInterpolator

from socketcad.anatomy.limb import Limb
from socketcad.anatomy.samples import get_sample, is_sample
from socketcad.errors import InputError, every_error, field_path, validated
from socketcad.geometry import io, measure
from socketcad.geometry.frame import Frame
from socketcad.geometry.units import UnitChoice

SCHEMA_VERSION = 1
TAPE_FORMATS = io.DATA_FORMATS
DEFAULT_REFERENCE = {"transtibial": "mpt", "transfemoral": "perineum"}

EDGE_MM = 2.5  # target edge length of the surface
TURN_DEG = 4.0  # largest turn of the profile between two rings (keeps the distal dome smooth)
MAX_RADIUS_SLOPE = 1.5  # mm of radius per mm of height between tape levels; more is a typo, not a limb

# Tip radius of curvature as a fraction of (lowest-section radius)^2 / (its height): the
# flattest end a monotone profile allows is 1.5 (see _tip_slope).
DISTAL_TIP = {"round": 0.5, "conical": 0.08, "square": 1.5}

# Real limb sections are not ellipses: for the same tape circumference they hold less
# area (4 pi A / C^2 with C the convex-hull perimeter, 5-95 % of the length, weighted by
# C^2): OpenLimbTT mean 0.978, its modes 1-2 at +-2 SD 0.968-0.978; OpenLimbTF mean 0.981.
# An ellipse of AP/ML 0.9 has 0.997, about 2 % more volume than these limbs.
SECTION_ROUNDNESS = {"transtibial": 0.975, "transfemoral": 0.98}


class TapeMeasures(BaseModel):
    """Tape measurements of a residual limb (lengths in mm).

    circumferences_mm[i] is taken ``i * interval_mm`` below the reference level, the
    first one at the reference itself. ap_width_mm / ml_width_mm are one value (at the
    reference) or one per circumference. distal_shape describes the end below the
    lowest tape level: ``round`` a dome (tip curvature about that of a hemisphere
    whose radius is the lowest section's), ``conical`` a tapering end with a small
    blunt tip, ``square`` a flat end with rounded edges. section_roundness is the
    sections' isoperimetric quotient 4 pi area / circumference^2 (1 = circle); by
    default SECTION_ROUNDNESS for the level.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    schema_version: int = SCHEMA_VERSION
    level: Literal["transtibial", "transfemoral"]
    side: Literal["left", "right", "unknown"] = "unknown"
    reference: str = Field(min_length=1, max_length=40)
    residual_length_mm: float = Field(ge=20.0, le=1000.0)
    interval_mm: float = Field(ge=2.0, le=100.0)
    circumferences_mm: list[float] = Field(min_length=3, max_length=500)
    ap_width_mm: float | list[float] | None = None
    ml_width_mm: float | list[float] | None = None
    distal_shape: Literal["round", "conical", "square"] = "round"
    section_roundness: float | None = Field(None, ge=0.85, le=1.0)
    description: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _consistent(self) -> "TapeMeasures":
        _check_version(self.schema_version)
        _check_circumferences(self)
        _check_widths(self)
        return self

    @property
    def levels_mm(self) -> np.ndarray:
        """Heights of the tape levels above the distal end (n,), reference first."""
        return self.residual_length_mm - self.interval_mm * np.arange(len(self.circumferences_mm))

    @property
    def roundness(self) -> float:
        """The sections' isoperimetric quotient: given, or the level's default."""
        return self.section_roundness if self.section_roundness is not None else SECTION_ROUNDNESS[self.level]

    def widths_mm(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(AP, ML) widths (k,) each, at the first k levels (k = 1 or n), or None."""
        if self.ap_width_mm is None:
            return None
        return np.atleast_1d(np.asarray(self.ap_width_mm, float)), np.atleast_1d(np.asarray(self.ml_width_mm, float))


def _check_version(version: int) -> None:
    if version != SCHEMA_VERSION:
        raise ValueError(f"schema_version: {version} is not supported; this socketcad reads version {SCHEMA_VERSION}")


def _check_circumferences(m: TapeMeasures) -> None:
    """Each circumference is a limb's, above the distal end, without impossible jumps."""
    for index, value in enumerate(m.circumferences_mm):
        if not (math.isfinite(value) and 30.0 <= value <= 1500.0):
            raise ValueError(
                f"circumferences_mm[{index}]: {value:g} mm is not a limb circumference (30-1500 mm); "
                "check the value and that it is in mm"
            )
    last = len(m.circumferences_mm) - 1
    if m.interval_mm * last >= m.residual_length_mm:
        first_bad = int(math.ceil(m.residual_length_mm / m.interval_mm - 1e-9))
        raise ValueError(
            f"circumferences_mm[{first_bad}]: its level, {first_bad * m.interval_mm:g} mm below the reference, "
            f"is at or below the distal end (residual_length_mm {m.residual_length_mm:g}); "
            "remove it or check residual_length_mm and interval_mm"
        )
    radii = np.asarray(m.circumferences_mm) / (2 * np.pi)
    slopes = np.abs(np.diff(radii)) / m.interval_mm
    if slopes.size and slopes.max() > MAX_RADIUS_SLOPE:
        index = int(np.argmax(slopes > MAX_RADIUS_SLOPE)) + 1  # the first jump, going down
        raise ValueError(
            f"circumferences_mm[{index}]: {m.circumferences_mm[index]:g} mm after {m.circumferences_mm[index - 1]:g} mm "
            f"{m.interval_mm:g} mm above changes the radius by {slopes[index - 1] * m.interval_mm:.0f} mm; "
            "no limb does that, check for a typo"
        )


def _check_widths(m: TapeMeasures) -> None:
    """Both widths or neither, one or n values, each pair possible for its circumference."""
    if (m.ap_width_mm is None) != (m.ml_width_mm is None):
        given, missing = ("ap_width_mm", "ml_width_mm") if m.ml_width_mm is None else ("ml_width_mm", "ap_width_mm")
        raise ValueError(f"{missing}: missing; give it with {given} (the section's shape needs both) or neither")
    if m.ap_width_mm is None:
        return
    count = len(m.circumferences_mm)
    for name in ("ap_width_mm", "ml_width_mm"):
        values = np.atleast_1d(np.asarray(getattr(m, name), float))
        if len(values) not in (1, count):
            raise ValueError(f"{name}: {len(values)} values; give one (at the reference) or one per circumference ({count})")
        for index, value in enumerate(values):
            if not (math.isfinite(value) and 10.0 <= value <= 500.0):
                where = f"{name}[{index}]" if isinstance(getattr(m, name), list) else name
                raise ValueError(f"{where}: {value:g} mm is not a limb width (10-500 mm); check the value and its units")
    ap, ml = m.widths_mm()
    if len(ap) != len(ml):
        raise ValueError("ap_width_mm: give as many values as ml_width_mm")
    for index, (a, b, c) in enumerate(zip(ap, ml, m.circumferences_mm)):
        # A convex section (a tape bridges hollows) inside an a x b box touching all four
        # sides has a perimeter between twice the box diagonal and the box perimeter.
        low, high = 2 * math.hypot(a, b), 2 * (a + b)
        if not (0.9 * low <= c <= 1.1 * high):
            where = f"[{index}]" if len(ap) > 1 else ""
            raise ValueError(
                f"ap_width_mm{where} / ml_width_mm{where}: {a:g} x {b:g} mm cannot go with a circumference of {c:g} mm "
                f"(a section that wide measures {low:.0f}-{high:.0f} mm around); check the values and their level"
            )


# --------------------------------------------------------------------------- files


def parse_tape(data: object, source: str = "tape measures") -> TapeMeasures:
    """TapeMeasures from parsed YAML/JSON data; InputError with one line naming the field."""
    return validated(TapeMeasures, data, source, "expected a mapping of fields (level, reference, residual_length_mm, ...)",
                     describe=_one_line)


def _one_line(exc: ValidationError) -> str:
    """Every pydantic error as 'field[index]: message', on one line."""
    return every_error(exc, problem=_problem)


def _problem(error: dict) -> str:
    """One pydantic error as 'field[index]: message', in the tape's words."""
    message = str(error["msg"]).removeprefix("Value error, ")
    path = field_path(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown field; the fields are {', '.join(TapeMeasures.model_fields)}"
    if error["type"] == "missing":
        return f"{path}: missing; it is required"
    if error["type"] == "too_short" and path == "circumferences_mm":
        return f"{path}: {len(error['input'])} given; measure at least 3 levels, every interval_mm from the reference down"
    if error["type"] in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        unit = " mm" if path.endswith("_mm") else ""
        return f"{path}: {error['input']!r}{unit} is out of range ({message.removeprefix('Input should be ')}{unit})"
    if not path or message.startswith(path.split("[")[0]):
        return message
    return f"{path}: {message}"


def read_tape(path: str | Path) -> TapeMeasures:
    """Tape measures from a YAML or JSON file, or ``sample:NAME``."""
    if is_sample(path):
        path = get_sample(str(path), kind="tape").path
    path = Path(path)
    data = io.read_data_file(path, "tape measures")
    return parse_tape(data, path.name)


def write_tape(measures: TapeMeasures, path: str | Path) -> None:
    """Write tape measures as YAML (or JSON for .json), atomically."""
    path = Path(path)
    fmt = io.file_format(path, TAPE_FORMATS)
    data = measures.model_dump(exclude_none=True)
    if fmt == "json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    io.write_atomic(path, lambda tmp: tmp.write_text(text))


# --------------------------------------------------------------------------- measuring a limb


def tape_from_limb(
    limb: Limb,
    reference_level_mm: float,
    interval_mm: float,
    *,
    reference: str | None = None,
    distal_shape: str = "round",
    decimals: int = 1,
) -> TapeMeasures:
    """Measure a limb surface as a prosthetist would with a tape and calipers.

    Circumferences are the convex-hull perimeters of the sections: a tape pulled around
    a limb bridges concavities (popliteal hollow, scar folds) instead of following the
    skin into them. AP and ML widths (caliper spans, frame y and x extents) are taken at
    every level. Values are rounded to ``decimals`` (0.1 mm by default).
    """
    level = limb.level if limb.level in DEFAULT_REFERENCE else None
    if level is None:
        raise InputError(f"{limb.source}: level '{limb.level}' unknown; load it with `level` transtibial or transfemoral")
    highest = limb.brim_low_mm if limb.brim_low_mm is not None else float(limb.skin.vertices[:, 2].max())
    if not (0 < reference_level_mm <= highest):
        raise InputError(
            f"reference level {reference_level_mm:g} mm is outside the limb's full sections (0-{highest:.1f} mm); "
            "a tape needs a closed section"
        )
    count = int(math.ceil(reference_level_mm / interval_mm - 1e-9))
    levels = reference_level_mm - interval_mm * np.arange(count)
    sections = measure.profile(limb.skin, levels)
    if len(sections) != count:
        raise InputError(f"{limb.source}: no closed section at some tape levels; check the reference level")
    rounded = lambda values: [round(float(v), decimals) for v in values]  # noqa: E731
    return parse_tape(
        {
            "level": level,
            "side": limb.side if limb.side in ("left", "right") else "unknown",
            "reference": reference or DEFAULT_REFERENCE[level],
            "residual_length_mm": round(float(reference_level_mm), decimals),
            "interval_mm": float(interval_mm),
            "circumferences_mm": rounded(s.hull_circumference_mm for s in sections),
            "ap_width_mm": rounded(s.ap_width_mm for s in sections),
            "ml_width_mm": rounded(s.ml_width_mm for s in sections),
            "distal_shape": distal_shape,
        },
        limb.source,
    )


# --------------------------------------------------------------------------- building a surface


def _tip_slope(shape: str, radius_mm: float, height_mm: float) -> float:
    """d(r^2)/dz at the distal tip (mm): twice the tip's radius of curvature.

    A section of radius r at height h above the tip. r^2 = 2 R z near the tip is a
    sphere of radius R; a monotone cubic from (0, 0) to (h, r^2) allows a tip slope of
    at most 3 r^2 / h (Fritsch-Carlson), i.e. R <= 1.5 r^2 / h: that is ``square``.
    """
    return 2.0 * DISTAL_TIP[shape] * radius_mm**2 / height_mm


def _profile_splines(m: TapeMeasures) -> tuple[CubicHermiteSpline, PchipInterpolator]:
    """Squared equivalent radius g(z) = (C / 2 pi)^2 and AP/ML ratio q(z), z in mm (0 to the reference).

    g interpolates the tape levels and g(0) = 0 (the tip) with PCHIP slopes (monotone,
    C1, no overshoot); the tip slope sets the distal dome (``distal_shape``).
    """
    levels = m.levels_mm[::-1]  # ascending
    radii = np.asarray(m.circumferences_mm[::-1]) / (2 * np.pi)
    z = np.concatenate([[0.0], levels])
    g = np.concatenate([[0.0], radii**2])
    slopes = PchipInterpolator(z, g).derivative()(z)
    slopes[0] = _tip_slope(m.distal_shape, radii[0], levels[0])
    # Fritsch-Carlson: the lowest span stays monotone (no dip below the tip) while
    # (tip slope / secant)^2 + (upper slope / secant)^2 <= 9.
    secant = g[1] / z[1]
    slopes[0] = min(slopes[0], secant * math.sqrt(max(9.0 - (slopes[1] / secant) ** 2, 0.01)))
    spline = CubicHermiteSpline(z, g, slopes)
    widths = m.widths_mm()
    if widths is None or len(widths[0]) == 1:
        ratio = 1.0 if widths is None else float(widths[0][0] / widths[1][0])
        return spline, PchipInterpolator([0.0, levels[-1]], [ratio, ratio])
    q = (widths[0] / widths[1])[::-1]
    return spline, PchipInterpolator(z, np.concatenate([[q[0]], q]))


def _ring_heights(g: CubicHermiteSpline, knots: np.ndarray) -> np.ndarray:
    """Heights of the surface's rings (ascending, 0 excluded), each knot a ring.

    Rings are spaced along the profile curve (r, z) so that each step is at most
    EDGE_MM long and turns at most TURN_DEG: fine on the distal dome, EDGE_MM elsewhere.
    """
    # Dense samples, quadratic in the lowest span where r grows like sqrt(z).
    t = np.linspace(0.0, 1.0, 4001)
    dense = [knots[1] * t**2] + [np.linspace(a, b, max(2, int((b - a) / 0.05))) for a, b in zip(knots[1:-1], knots[2:])]
    z = np.unique(np.concatenate(dense + [knots]))
    r = np.sqrt(np.maximum(g(z), 0.0))
    step = np.hypot(np.diff(r), np.diff(z))
    angle = np.unwrap(np.arctan2(np.diff(z), np.diff(r)))
    turn = np.concatenate([[0.0], np.abs(np.diff(angle))])
    u = np.concatenate([[0.0], np.cumsum(step / EDGE_MM + turn / np.radians(TURN_DEG))])
    u_knots = np.interp(knots, z, u)
    rings = []
    for low, high in zip(u_knots[:-1], u_knots[1:]):
        count = max(1, int(math.ceil(high - low - 1e-9)))
        rings.append(np.linspace(low, high, count + 1)[1:])
    return np.interp(np.concatenate(rings), u, z)


def _section_shapes(ratio: np.ndarray, roundness: float, spokes: int) -> np.ndarray:
    """Unit-perimeter section polygons (k, spokes, 2) with AP/ML width ratios (k,), x = ML, y = AP.

    An ellipse made a rounded triangle, apex anterior (the tibial crest; the calf is broad
    posteriorly), by the radial factor 1 - e sin(3 theta); e (0-0.1, convex) is found per
    section so that 4 pi area / perimeter^2 equals ``roundness`` (0 where the ellipse is
    already less round), and the ellipse's axis ratio so that the shape's AP and ML
    extents (caliper widths) keep ``ratio``.
    """
    theta = 2 * np.pi * np.arange(spokes) / spokes
    triangle = 1 - np.sin(3 * theta)

    def shaped(axes: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        factor = 1 + e[:, None] * (triangle - 1)
        points = np.stack([factor * np.cos(theta), factor * axes[:, None] * np.sin(theta)], axis=-1)
        following = np.roll(points, -1, axis=1)
        perimeter = np.linalg.norm(following - points, axis=-1).sum(axis=1)
        area = 0.5 * np.sum(points[..., 0] * following[..., 1] - following[..., 0] * points[..., 1], axis=1)
        return points / perimeter[:, None, None], 4 * np.pi * area / perimeter**2

    axes = np.asarray(ratio, float).copy()
    for _ in range(4):  # the triangle widens the section a little: correct the ellipse's axes
        low, high = np.zeros(len(axes)), np.full(len(axes), 0.1)
        for _ in range(30):  # bisection on e, all sections at once (roundness falls as e grows)
            middle = 0.5 * (low + high)
            too_round = shaped(axes, middle)[1] > roundness
            low, high = np.where(too_round, middle, low), np.where(too_round, high, middle)
        points = shaped(axes, low)[0]
        extent = np.ptp(points, axis=1)
        axes = axes * ratio / (extent[:, 1] / extent[:, 0])
    return points


def tape_surface(m: TapeMeasures) -> trimesh.Trimesh:
    """The limb surface the tape measures describe (frame coordinates, mm).

    Rings of rounded-elliptical sections (ML along x, AP along y, see _section_shapes)
    whose perimeter is the interpolated circumference, a ring at every tape level,
    closed at the distal end by one tip vertex at the origin, open (a flat brim) at the
    reference: nothing above it was measured. Outward-wound, about EDGE_MM edges.
    """
    g, q = _profile_splines(m)
    knots = np.concatenate([[0.0], m.levels_mm[::-1]])
    z = _ring_heights(g, knots)
    perimeter = 2 * np.pi * np.sqrt(np.maximum(g(z), 0.0))
    spokes = 4 * int(math.ceil(perimeter.max() / EDGE_MM / 4))  # a multiple of 4: spokes on the AP and ML axes
    sections = _section_shapes(q(z), m.roundness, spokes) * perimeter[:, None, None]
    rings = np.concatenate([sections, np.broadcast_to(z[:, None, None], (len(z), spokes, 1))], axis=-1)
    vertices = np.vstack([[0.0, 0.0, 0.0], rings.reshape(-1, 3)])
    return trimesh.Trimesh(vertices, _ring_faces(len(z), spokes), process=False, validate=False)


def _ring_faces(ring_count: int, spokes: int) -> np.ndarray:
    """Faces (m, 3) of a tip vertex 0 fanned to ring 0 and quads between rings, outward."""
    j = np.arange(spokes)
    nxt = (j + 1) % spokes
    fan = np.column_stack([np.zeros(spokes, int), 1 + nxt, 1 + j])
    lower = 1 + spokes * np.arange(ring_count - 1)[:, None]
    upper = lower + spokes
    quads = np.concatenate(
        [
            np.stack([lower + j, lower + nxt, upper + nxt], axis=-1),
            np.stack([lower + j, upper + nxt, upper + j], axis=-1),
        ],
        axis=1,
    ).reshape(-1, 3)
    return np.vstack([fan, quads]).astype(np.int64)


def tape_limb(m: TapeMeasures, source: str = "tape measures") -> Limb:
    """A Limb built from tape measures: skin = tape_surface, no bones, the reference as a level."""
    widths = m.widths_mm()
    shape_note = (
        "sections round (no AP/ML widths given)" if widths is None
        else "sections elliptical, AP/ML ratio from the widths at the reference, held constant" if len(widths[0]) == 1
        else "sections elliptical, AP/ML ratio interpolated between the measured widths"
    )
    return Limb(
        skin=tape_surface(m),
        bones={},
        level=m.level,
        side=m.side,
        frame=Frame(rotation=np.eye(3), origin=np.zeros(3)),
        units=UnitChoice("mm", 1.0, "given (tape measures are in mm)"),
        source=source,
        levels_mm={m.reference: float(m.residual_length_mm)},
        notes=[
            f"built from tape measures: {len(m.circumferences_mm)} circumferences every {m.interval_mm:g} mm "
            f"from {m.reference} ({m.residual_length_mm:g} mm above the distal end)",
            f"assumed: {shape_note}, made rounded triangles (apex anterior) of roundness "
            f"4 pi A / C^2 = {m.roundness:g}, centred on one straight axis; perimeters equal the tape circumferences",
            f"assumed: distal end '{m.distal_shape}' below the lowest tape level "
            f"({m.levels_mm[-1]:g} mm); open flat brim at {m.reference}",
        ],
    )
