"""The measures a prosthetist reads off a residual limb: volume, area, length, profile."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from socketcad.anatomy.landmarks import known_landmarks, locate_landmarks
from socketcad.anatomy.limb import Limb
from socketcad.errors import InputError
from socketcad.geometry import measure, repair


@dataclass(frozen=True)
class LimbMeasures:
    """Whole-limb measures (mm, mm2, mm3) and a cross-section profile.

    Profile levels are heights above the distal end; ``start`` names where the
    profile's steps count from (``distal`` or a named level such as ``MPT``).
    """

    volume_mm3: float
    surface_area_mm2: float
    length_mm: float  # distal end to the highest skin point, along the long axis
    brim_low_mm: float | None  # distal end to the lowest brim point
    start: str
    start_mm: float
    step_mm: float
    profile: list[measure.Section]

    @property
    def volume_cm3(self) -> float:
        return self.volume_mm3 / 1000.0

    def as_dict(self) -> dict:
        return {
            "volume_cm3": self.volume_cm3,
            "surface_area_mm2": self.surface_area_mm2,
            "length_mm": self.length_mm,
            "brim_low_mm": self.brim_low_mm,
            "profile_start": self.start,
            "profile_start_mm": self.start_mm,
            "profile_step_mm": self.step_mm,
            "profile": [section.as_dict() for section in self.profile],
        }


def profile_levels(limb: Limb, step_mm: float, start: str = "distal") -> tuple[float, np.ndarray]:
    """Levels (mm above the distal end) every ``step_mm`` up and down from a named level."""
    if not (0.5 <= step_mm <= 100.0):
        raise InputError(f"profile step {step_mm:g} mm is out of range; use 0.5-100 mm")
    if start.lower() in known_landmarks(limb.level) and not limb.landmarks:
        limb = locate_landmarks(limb)  # a landmark level (e.g. MPT) on a limb whose landmarks are not found yet
    origin = limb.named_level(start)
    top = float(limb.skin.vertices[:, 2].max())
    below = origin - step_mm * np.arange(int(origin // step_mm), 0, -1)
    above = origin + step_mm * np.arange(0, int((top - origin) // step_mm) + 1)
    return origin, np.concatenate([below, above])


def measure_limb(limb: Limb, step_mm: float = 10.0, start: str = "distal") -> LimbMeasures:
    """Volume (brim capped), surface area, length and the cross-section profile of the skin."""
    origin, levels = profile_levels(limb, step_mm, start)
    return LimbMeasures(
        volume_mm3=measure.enclosed_volume_mm3(limb.skin),
        surface_area_mm2=float(repair.face_areas(limb.skin).sum()),
        length_mm=float(limb.skin.vertices[:, 2].max()),
        brim_low_mm=limb.brim_low_mm,
        start=start,
        start_mm=origin,
        step_mm=step_mm,
        profile=measure.profile(limb.skin, levels),
    )


def percent_levels(limb: Limb, fractions: np.ndarray) -> list[measure.Section]:
    """Sections at fractions (0-1) of the limb's length."""
    return measure.profile(limb.skin, np.asarray(fractions) * float(limb.skin.vertices[:, 2].max()))
