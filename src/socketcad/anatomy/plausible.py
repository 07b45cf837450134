"""Is it a residual limb at all? Size, volume and shape checked against the human range.

A file in the wrong units (``units`` ``in`` on a millimetre scan makes a 6.5 m limb), a cube or a box
reads as a surface like any other, and every step after it would give numbers for it. ``load_limb``
refuses what lies far outside these ranges unless the user insists (``force``). The ranges are wide
on purpose (children to large adults, transtibial to transfemoral, scans that reach the hip):

- length, distal end to the top of the skin: 50-1000 mm (the unit window of geometry.units);
- widest section across the axis: 40-350 mm (a thigh at the groin is about 150-250 mm across);
- volume, brim capped: 50-25,000 cm3 (the OpenLimbTT mean is 2,174 cm3, the AmpScan scan 1,643);
- shape: sections round, not square: the median over 20-80 % of the length of 4 pi A / C^2 with the
  tape's (convex-hull) perimeter C is at least 0.85, where a square gives 0.785 and the OpenLimb
  populations' rounded triangles 0.975-0.98 (anatomy.tape).

Not checked: how long the limb is for its width. A short transfemoral stump is as wide as it is long
(the OpenLimbTF mean shrunk distally and tilted: 191 mm long, 186 mm wide), so a ball passes.
"""

from __future__ import annotations

import numpy as np

from socketcad.anatomy.limb import Limb
from socketcad.errors import InputError
from socketcad.geometry import measure

__all__ = ["LENGTH_MM", "WIDTH_MM", "VOLUME_CM3", "MIN_ROUNDNESS", "MAX_EXTENT_MM", "MAX_COORDINATE_MM",
           "MIN_THICKNESS_MM", "implausible", "check_plausible", "check_extent"]

LENGTH_MM = (50.0, 1000.0)
WIDTH_MM = (40.0, 350.0)
VOLUME_CM3 = (50.0, 25000.0)
MIN_ROUNDNESS = 0.85
# Hard limits, checked on the raw mesh before any work and not lifted by `force`: past them no step can
# give a meaningful number (a 1e9 mm coordinate has float32 steps of 64 mm; a 1e9 mm profile needs GBs).
# The worst units mistake, a 1 m millimetre scan read as inches (25.4 m), stays inside, refused by the
# forceable checks above with their reason.
MAX_EXTENT_MM = 50_000.0
MAX_COORDINATE_MM = 1e6
MIN_THICKNESS_MM = 1.0  # the thinnest principal spread (standard deviation) of the vertices: flat below


def _mm(value: float) -> str:
    return f"{value:,.0f}" if value < 1e7 else f"{value:.1e}"


def check_extent(vertices_mm: np.ndarray, source: str) -> None:
    """InputError if (n, 3) vertices, in mm, span more than MAX_EXTENT_MM, lie beyond MAX_COORDINATE_MM
    or are flat (a plane has no volume to fit a socket to)."""
    extent, far = float(np.ptp(vertices_mm, axis=0).max()), float(np.abs(vertices_mm).max())
    if extent > MAX_EXTENT_MM or far > MAX_COORDINATE_MM:
        raise InputError(f"{source}: spans {_mm(extent)} mm and reaches {_mm(far)} mm from the origin after units; "
                         f"socketcad reads shapes up to {MAX_EXTENT_MM:,.0f} mm across within {MAX_COORDINATE_MM:,.0g} "
                         "mm of the origin: check `units` and the file")
    sample = vertices_mm[:: max(1, len(vertices_mm) // 20000)]
    spread = np.sqrt(np.maximum(np.linalg.eigvalsh(np.cov(sample.T)), 0.0)) if len(sample) > 3 else np.zeros(3)
    if spread[0] < MIN_THICKNESS_MM:
        raise InputError(f"{source}: the shape is flat ({spread[0]:.2g} mm thick across its thinnest direction); "
                         "a limb scan is a 3-D surface: export the whole scan")


def implausible(limb: Limb) -> list[str]:
    """What about ``limb`` lies outside the human range, one phrase each (empty: plausible)."""
    length = float(np.ptp(limb.skin.vertices[:, 2]))
    found = []
    if not LENGTH_MM[0] <= length <= LENGTH_MM[1]:
        found.append(f"{length:,.0f} mm long (a residual limb is {LENGTH_MM[0]:g}-{LENGTH_MM[1]:g} mm)")
    sections = measure.profile(limb.skin, np.linspace(0.2, 0.8, 13) * length + limb.skin.vertices[:, 2].min())
    if not sections:
        return found + ["without a closed cross-section along its length"]
    width = max(max(s.ap_width_mm, s.ml_width_mm) for s in sections)
    if not WIDTH_MM[0] <= width <= WIDTH_MM[1]:
        found.append(f"{width:,.0f} mm wide (a residual limb is {WIDTH_MM[0]:g}-{WIDTH_MM[1]:g} mm)")
    volume = measure.enclosed_volume_mm3(limb.skin) / 1000.0
    if not VOLUME_CM3[0] <= volume <= VOLUME_CM3[1]:
        found.append(f"{volume:,.0f} cm3 (a residual limb holds {VOLUME_CM3[0]:g}-{VOLUME_CM3[1]:,.0f} cm3)")
    roundness = float(np.median([4 * np.pi * s.area_mm2 / s.hull_circumference_mm ** 2 for s in sections]))
    if roundness < MIN_ROUNDNESS:
        found.append(f"square in section (roundness {roundness:.2f}; a limb's is above {MIN_ROUNDNESS:g}, a square's 0.79)")
    return found


def check_plausible(limb: Limb, source: str) -> None:
    """InputError naming every way ``limb`` read from ``source`` is not a human residual limb."""
    found = implausible(limb)
    if found:
        raise InputError(f"{source}: does not look like a residual limb: {'; '.join(found)} (units: "
                         f"{limb.units.unit}); check `units` and the file, or set `force` to go on anyway")
