"""Follow-up (step 7): a later scan of the limb against the baseline scan the socket was made on.

1. Registration: the later skin is aligned rigidly to the baseline on the stable region, where bone lies
   under the skin and the volume does not change (transtibial: the knee, from 30 mm below the mid-patellar
   tendon to 60 mm above it; transfemoral: from 30 mm below the ischial tuberosity up). Point-to-plane ICP
   (geometry.registration) from starts a full turn about the long axis, as the anterior direction of a
   scan without bones is not known; the mirror image is registered too, so a scan of the other limb is
   recognised.
2. Changes, in the baseline's frame below the socket's top (transtibial: 20 mm above the mid-patellar
   tendon; transfemoral: the ischial tuberosity): volume change %, the signed deviation of the skin (mm,
   + larger) per region, and circumferences every 30 mm up from the distal end, as a tape would read them.
3. Advice from published data (DOMAIN.md), with the numbers: within the fabrication accuracy of +/-1.1 %
   volume (Sanders 2007) nothing; a loss is taken up by socks, the smallest ply whose volume covers it
   (1-ply 5.2 %, 2-ply 7.2 %, 3-ply 10.4 %, Jasken & Hall 2018); a loss beyond 10.4 % (beyond what socks
   were measured to take up) or any gain beyond 1.1 % needs a new socket (socks cannot take up growth).
"""

from __future__ import annotations

import numpy as np
import trimesh
from pydantic import BaseModel

from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import Limb
from socketcad.anatomy.regions import region_map
from socketcad.errors import InputError
from socketcad.geometry import registration, solid
from socketcad.geometry.measure import enclosed_volume_mm3, profile, signed_deviation

# (landmark, below mm, above mm): the band registered on; (landmark, offset mm): the top of the compared part
STABLE_BAND = {"transtibial": ("mpt", 30.0, 60.0), "transfemoral": ("ischial_tuberosity", 30.0, 400.0)}
SOCKET_TOP = {"transtibial": ("mpt", 20.0), "transfemoral": ("ischial_tuberosity", 0.0)}
TOP_CLEARANCE_MM = 5.0  # stay this far below the lower of the two scans' tops
START_ANGLES_DEG = np.arange(0.0, 360.0, 15.0)  # a full turn: neither scan's anterior is trusted
START_SHIFTS_MM = (0.0,)  # both origins are the distal end: ICP finds the shift
MIRROR_RATIO = 0.5  # the mirror image fitting twice as well as the scan itself: the other limb
POOR_FIT_MM = 3.0
TAPE_STEP_MM = 30.0

SOCK_VOLUME_PCT = {1: 5.2, 2: 7.2, 3: 10.4}  # volume taken by socks, foam models: Jasken & Hall 2018
FABRICATION_ACCURACY_PCT = 1.1  # +/-1.1 % volume (about one sock ply): Sanders 2007
SCANNER_REPEATABILITY_L = (0.10, 0.13)  # Kofman 2018
SOURCES = ("sock volumes 1-ply 5.2 %, 2-ply 7.2 %, 3-ply 10.4 % (Jasken & Hall 2018, foam models)",
           "fabrication accuracy +/-1.1 % volume, about one sock ply (Sanders 2007)",
           "scanner repeatability 0.10-0.13 L volume (Kofman 2018)")


class RegionChange(BaseModel):
    """Deviation over one region (mm, + larger / more room): mean and extremes."""

    region: str
    mean_mm: float
    most_lost_mm: float
    most_gained_mm: float


class TapeChange(BaseModel):
    level_mm: float  # above the distal end
    baseline_mm: float
    later_mm: float
    change_pct: float


class FollowUpComparison(BaseModel):
    """A later scan against the baseline: volume, regions and circumferences (mm, cm3, %), sock advice."""

    compared_below_mm: float
    registration_rms_mm: float
    mirror_rms_mm: float
    transform: list[list[float]]  # (4, 4) later frame -> baseline frame, mm
    baseline_volume_cm3: float
    later_volume_cm3: float
    volume_change_pct: float
    mean_radial_change_mm: float
    regions: list[RegionChange]
    circumferences: list[TapeChange]
    socks_ply_worn: int
    advice: str  # one of ADVICE
    reasons: list[str]
    notes: list[str]
    sources: list[str]
    estimate: str


def register(baseline: Limb, later: Limb) -> tuple[np.ndarray, float, float]:
    """The rigid transform (4, 4) taking ``later``'s frame onto ``baseline``'s on the stable band, its RMS
    distance there (mm), and the RMS of the mirror image's best fit (mm). InputError if the later scan
    reads as the other limb.

    Neither scan's anterior direction is trusted (a bone-less scan's is a placeholder): the starts go
    a full turn about the long axis, so the mirror image taken across any plane through the axis is the
    other limb, whatever the frames' y.
    """
    lower, upper = _band(baseline)
    band = registration.band_surface(baseline.skin, lower, upper)
    near = _in_band(later.skin.vertices, lower - 30.0, upper + 30.0)  # the part that can land on the band
    fit, mirror = registration.align_in_band(near, band, lower, upper, START_ANGLES_DEG, START_SHIFTS_MM)
    rms, mirror_rms = fit.rms_mm, mirror.rms_mm
    if not np.isfinite(rms):  # no start brought enough of the scan onto the band
        raise _not_reaching()
    if mirror_rms < MIRROR_RATIO * rms:
        raise InputError(f"the follow-up scan fits the baseline's mirror image ({mirror_rms:.1f} mm against "
                         f"{rms:.1f} mm): it reads as the other limb; is it this side of this patient?")
    final = registration.refine_in_band(later.skin.vertices, band, fit.matrix, lower, upper)
    return final.matrix, final.rms_mm, mirror_rms


def compare(baseline: Limb, later: Limb, socks_ply: int) -> FollowUpComparison:
    """Registration, volume, regional and circumference changes, and the advice (see the module docstring);
    plain data, lengths mm, volumes cm3."""
    if not 0 <= socks_ply <= 30:
        raise InputError(f"socks worn {socks_ply} ply is outside 0-30")
    baseline = baseline if baseline.landmarks else locate_landmarks(baseline)
    matrix, rms, mirror_rms = register(baseline, later)
    moved = later.skin.copy()
    moved.apply_transform(matrix)
    landmark, offset = SOCKET_TOP[baseline.level]
    top = min(baseline.named_level(landmark) + offset,
              min(baseline.skin.vertices[:, 2].max(), moved.vertices[:, 2].max()) - TOP_CLEARANCE_MM)
    before, after = _volume_below(baseline.skin, top), _volume_below(moved, top)
    change_pct = 100.0 * (after - before) / before
    deviation = signed_deviation(baseline.skin, moved)
    below = baseline.skin.vertices[:, 2] < top
    regions = regional_deviation(baseline, deviation, below, top)
    levels = np.arange(TAPE_STEP_MM, top, TAPE_STEP_MM)
    tape = [TapeChange(level_mm=round(float(a.level_mm), 1), baseline_mm=round(a.circumference_mm, 1),
                       later_mm=round(b.circumference_mm, 1),
                       change_pct=round(100.0 * (b.circumference_mm - a.circumference_mm) / a.circumference_mm, 2))
            for a, b in zip(profile(baseline.skin, levels), profile(moved, levels)) if a.level_mm == b.level_mm]
    area = float(baseline.skin.area_faces[below[baseline.skin.faces].all(axis=1)].sum())
    advice, reasons = sock_advice(change_pct, socks_ply)
    lower, upper = _band(baseline)
    notes = [f"registered on the stable band ({lower:.0f}-{upper:.0f} mm above the "
             f"distal end) with RMS {rms:.2f} mm (mirror image {mirror_rms:.2f} mm)"]
    if not baseline.anterior_known:
        notes.append("the baseline's anterior is unknown (no bones, not given): changes by thirds only, not by "
                     "the regions around landmarks; keep the scan with `anterior` for those")
    if rms > POOR_FIT_MM:
        notes.append(f"the registration is poor (RMS {rms:.1f} mm > {POOR_FIT_MM:g} mm): check the scan is of this limb")
    change_l = (after - before) / 1e6
    repeatable = "within" if abs(change_l) <= SCANNER_REPEATABILITY_L[1] else "beyond"
    notes.append(f"a change of {change_l:+.3f} L is {repeatable} the scanner repeatability of "
                 f"{SCANNER_REPEATABILITY_L[0]:.2f}-{SCANNER_REPEATABILITY_L[1]:.2f} L (Kofman 2018)")
    return FollowUpComparison(
        compared_below_mm=round(top, 1),
        registration_rms_mm=round(rms, 3),
        mirror_rms_mm=round(mirror_rms, 3),
        transform=np.round(matrix, 6).tolist(),
        baseline_volume_cm3=round(before / 1000.0, 2),
        later_volume_cm3=round(after / 1000.0, 2),
        volume_change_pct=round(change_pct, 2),
        mean_radial_change_mm=round((after - before) / area, 2),
        regions=regions,
        circumferences=tape,
        socks_ply_worn=socks_ply,
        advice=advice,
        reasons=reasons,
        notes=notes,
        sources=list(SOURCES),
        estimate="sock advice from published averages (foam models), not this patient's socks: confirm at the fitting",
    )


ADVICE = ("none", "add socks", "remove socks", "new socket")  # what sock_advice can say


def sock_advice(change_pct: float, socks_ply: int) -> tuple[str, list[str]]:
    """(one of ADVICE, the reasons with their numbers)."""
    if abs(change_pct) <= FABRICATION_ACCURACY_PCT:
        return "none", [f"volume change {change_pct:+.1f} % is within the fabrication accuracy of "
                        f"+/-{FABRICATION_ACCURACY_PCT:g} % (about one sock ply)"]
    if change_pct > 0:
        reasons = [f"the limb is {change_pct:.1f} % larger than the socket was made for: socks cannot take up growth"]
        if socks_ply:
            reasons.append(f"take off the {socks_ply} ply of socks now worn at once")
        return "new socket", reasons
    loss = -change_pct
    largest = max(SOCK_VOLUME_PCT)
    if loss > SOCK_VOLUME_PCT[largest]:
        return "new socket", [f"volume loss {loss:.1f} % is beyond what socks take up ({largest}-ply "
                              f"{SOCK_VOLUME_PCT[largest]:g} %, Jasken & Hall 2018)"]
    needed = min(ply for ply, share in SOCK_VOLUME_PCT.items() if share >= loss)
    if socks_ply >= needed:
        return "none", [f"volume loss {loss:.1f} % is taken up by the {socks_ply} ply now worn "
                        f"({needed}-ply takes up {SOCK_VOLUME_PCT[needed]:g} %)"]
    return "add socks", [f"volume loss {loss:.1f} %: wear {needed} ply in all (add {needed - socks_ply}); {needed}-ply "
                         f"takes up {SOCK_VOLUME_PCT[needed]:g} % (Jasken & Hall 2018)"]


def _band(limb: Limb) -> tuple[float, float]:
    landmark, below, above = STABLE_BAND[limb.level]
    level = limb.named_level(landmark)
    return level - below, min(level + above, float(limb.skin.vertices[:, 2].max()) - TOP_CLEARANCE_MM)


def _in_band(points: np.ndarray, lower: float, upper: float) -> np.ndarray:
    inside = points[registration.z_band(points, lower, upper)]
    if len(inside) < 50:
        raise _not_reaching()
    return inside


def _not_reaching() -> InputError:
    return InputError("the follow-up scan does not reach the stable region (the knee for a transtibial limb, "
                      "the ischial level for a transfemoral one): rescan it up to there")


def _volume_below(skin: trimesh.Trimesh, level_mm: float) -> float:
    vertices, faces, _ = solid.cut_below(skin.vertices, skin.faces, skin.vertices[:, 2] - level_mm)
    return enclosed_volume_mm3(trimesh.Trimesh(vertices, faces, process=False))


def regional_deviation(baseline: Limb, deviation: np.ndarray, below: np.ndarray, top: float) -> list[RegionChange]:
    """Mean and extreme deviation per region: thirds of the compared length, and (transtibial) the
    pressure-tolerance regions around the landmarks."""
    z = baseline.skin.vertices[:, 2]
    groups = [(name, below & (z >= top * k / 3) & (z < top * (k + 1) / 3))
              for k, name in enumerate(("distal third", "middle third", "proximal third"))]
    if baseline.level == "transtibial" and baseline.anterior_known:  # the regions sit around landmarks
        from socketcad.biomech.tolerance import DEFAULT_TRANSTIBIAL

        # where regions overlap, the least tolerant wins
        mapped = region_map(baseline, DEFAULT_TRANSTIBIAL, [region.tolerance_kpa for region in DEFAULT_TRANSTIBIAL])
        groups += [(region.name, below & (mapped.label == index)) for index, region in enumerate(mapped.regions)]
    return [RegionChange(region=name, mean_mm=round(float(deviation[mask].mean()), 2),
                         most_lost_mm=round(float(deviation[mask].min()), 2),
                         most_gained_mm=round(float(deviation[mask].max()), 2))
            for name, mask in groups if mask.any()]
