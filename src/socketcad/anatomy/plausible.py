"""Is it a residual limb at all? Size, volume and shape checked against the human range.

A file in the wrong units (``--units in`` on a millimetre scan makes a 6.5 m limb), a cube or a box
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

__all__ = ["LENGTH_MM", "WIDTH_MM", "VOLUME_CM3", "MIN_ROUNDNESS", "implausible", "check_plausible"]

LENGTH_MM = (50.0, 1000.0)
WIDTH_MM = (40.0, 350.0)
VOLUME_CM3 = (50.0, 25000.0)
MIN_ROUNDNESS = 0.85


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
                         f"{limb.units.unit}); check --units and the file, or pass --force to go on anyway")
