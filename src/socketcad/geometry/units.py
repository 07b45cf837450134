"""Length units of a mesh file, and their detection from the size of a residual limb.

Scanners and CAD packages write metres, centimetres, millimetres or inches without
saying which. A human residual limb (with its liner-free skin, transtibial or
transfemoral) is 60-1000 mm in its largest extent, typically about 300 mm, so the
unit whose reading of the file's size lands closest to that is taken; ``units``
overrides. OpenLimb's statistical shapes are normalised to the intact tibia (femur)
length: units ``tibia`` / ``femur`` scale by a reference length instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from socketcad.errors import InputError

MM_PER_UNIT = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "in": 25.4}
REFERENCE_LENGTH_MM = {"tibia": 400.0, "femur": 450.0}
UNITS = tuple(MM_PER_UNIT) + tuple(REFERENCE_LENGTH_MM)

LIMB_EXTENT_RANGE_MM = (60.0, 1000.0)
TYPICAL_LIMB_EXTENT_MM = 300.0


@dataclass(frozen=True)
class UnitChoice:
    """How file coordinates become millimetres: ``mm = file_value * scale_to_mm``."""

    unit: str
    scale_to_mm: float
    how: str  # "given", "detected" or "sample" with the reason


def unit_scale(unit: str, reference_length_mm: float | None = None) -> float:
    """Millimetres per file unit; ``tibia``/``femur`` use the reference bone length."""
    if unit in MM_PER_UNIT:
        return MM_PER_UNIT[unit]
    if unit in REFERENCE_LENGTH_MM:
        length = REFERENCE_LENGTH_MM[unit] if reference_length_mm is None else reference_length_mm
        if not (100.0 <= length <= 700.0):
            raise InputError(
                f"reference {unit} length {length:g} mm is not a human bone length; give 100-700 mm"
            )
        return length
    raise InputError(f"unknown unit '{unit}'; use one of {', '.join(UNITS)}")


def choose_units(
    largest_extent: float,
    unit: str | None = None,
    reference_length_mm: float | None = None,
    source: str = "mesh",
) -> UnitChoice:
    """Given or detected units for a mesh whose largest bounding-box extent is ``largest_extent``."""
    low, high = LIMB_EXTENT_RANGE_MM
    if unit is not None:
        scale = unit_scale(unit, reference_length_mm)
        size_mm = largest_extent * scale
        if low <= size_mm <= high:
            return UnitChoice(unit, scale, f"given ({unit})")
        # The user's word wins (a child's limb, a cast with a long build-up), but it is said.
        return UnitChoice(unit, scale, f"given ({unit}); WARNING: that makes the limb {size_mm:.0f} mm "
                                       f"long, outside the usual {low:.0f}-{high:.0f} mm; check `units`")
    plausible = [u for u, s in MM_PER_UNIT.items() if low <= largest_extent * s <= high]
    if not plausible:
        raise InputError(
            f"{source}: its size ({largest_extent:.4g} file units) is not that of a residual limb in "
            f"mm, cm, m or inches; give `units` (one of {', '.join(UNITS)}) or check the file"
        )
    best = min(
        plausible,
        key=lambda u: abs(math.log(largest_extent * MM_PER_UNIT[u] / TYPICAL_LIMB_EXTENT_MM)),
    )
    size_mm = largest_extent * MM_PER_UNIT[best]
    return UnitChoice(best, MM_PER_UNIT[best], f"detected ({best}: largest extent {size_mm:.0f} mm)")
