"""Bones for a scan that has none: the OpenLimbTT mean limb's bones, scaled into the scan.

A surface scan or cast holds only skin, but interface mechanics needs the bones that hold the soft
tissue. The mean transtibial limb of OpenLimb (bundled, with its tibia, fibula, patella and femur) is
mapped into the scan axis by axis in the limb frame:
- along the long axis, the shaft is stretched between the tibia's distal end (left at the mean's height:
  the distal pad) and the mid-patellar-tendon (MPT) level; above the MPT the knee is moved, not scaled
  (its size does not follow the residual limb's length);
- across it, by the median ratios of the skin's medio-lateral and antero-posterior widths over the limb,
  and shifted to the skin's section centres.
Both MPT heights are found the same way, from the skin shape (anatomy.landmarks), so the two limbs are
measured alike. Where a bone would then come closer to the skin than ``MIN_COVER_MM``, the bones are
drawn in towards the long axis.

Checked against the OpenLimb shape-mode samples, whose own bones are known (tests/test_bone_fit.py).
This is an estimate: real bones differ in shape and place from the mean. The limb's notes say so.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import trimesh

from socketcad.anatomy.landmarks import mpt_level_from_skin
from socketcad.anatomy.limb import CaptureOptions, Limb, load_limb, mirrored
from socketcad.errors import InputError
from socketcad.geometry import measure
from socketcad.geometry.solid import closest_faces

MEAN_LIMB = "sample:openlimb-tt-mean"
FITTED_NOTE = "bones:"  # how the note on fitted bones begins (the CLI prints it)
MIN_COVER_MM = 2.0  # soft tissue kept between a fitted bone and the skin
SECTION_FRACTIONS = np.linspace(0.2, 0.9, 8)  # of the MPT height: where the widths are compared
SHRINK_STEP = 0.97  # per try, across the axis, while a bone is too close to the skin
MIN_SHAFT_MM = 30.0  # the limb's MPT must lie at least this far above the mean tibia's distal end
MAX_SHRINK_TRIES = 12  # 0.97**12 = 0.69: beyond that the mean bones do not belong in this limb


@lru_cache(maxsize=1)
def _mean_limb() -> Limb:
    return load_limb(MEAN_LIMB, CaptureOptions())


def with_mean_bones(limb: Limb) -> Limb:
    """``limb`` (transtibial, skin only, side known) with the OpenLimbTT mean bones fitted into it and a
    note saying how. InputError if the side is unknown (the fibula is lateral) or the bones do not fit."""
    if limb.level != "transtibial":
        raise InputError("fitting mean bones covers transtibial limbs only; give a limb with its bones")
    if limb.side not in ("left", "right"):
        raise InputError("the limb's side is unknown, and the fitted fibula must lie laterally: give `side` left or right")
    mean = _mean_limb()
    mean = mean if mean.side == limb.side else mirrored(mean)
    heights, scale, shift, how = _axis_maps(mean, limb)
    for tries in range(MAX_SHRINK_TRIES + 1):
        drawn_in = scale * SHRINK_STEP ** tries
        bones = {name: _moved(bone, heights, drawn_in, shift) for name, bone in mean.bones.items()}
        cover = _least_cover_mm(bones, limb)
        if cover >= MIN_COVER_MM:
            break
    else:
        raise InputError(f"the OpenLimbTT mean bones do not fit inside this limb (drawn in 30 %, {cover:.1f} mm of "
                         f"tissue over them, {MIN_COVER_MM:g} mm needed): give a limb with its own bones")
    note = (f"{FITTED_NOTE} none in the file; the OpenLimbTT mean bones fitted into the skin ({how}; final scale "
            f"ML {drawn_in[0]:.3f}, AP {drawn_in[1]:.3f}; at least {cover:.1f} mm of tissue over them). "
            "An estimate: real bones differ from the mean")
    return replace(limb, bones=bones, notes=limb.notes + [note])


def _axis_maps(mean: Limb, limb: Limb) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """From the mean limb's frame to ``limb``'s: heights (2, 2) mm, [[distal tibia, MPT] in the mean,
    [the same in the limb]]; scale (2,) and shift (2,) across the axis (x, y); and how they were found."""
    mean_mpt, _ = mpt_level_from_skin(mean)
    limb_mpt, _ = mpt_level_from_skin(limb)
    distal = float(mean.bones["tibia"].vertices[:, 2].min())
    if limb_mpt < distal + MIN_SHAFT_MM:
        raise InputError(f"the limb's MPT level ({limb_mpt:.0f} mm) is too close to its distal end for the mean "
                         "bones: give a limb with its own bones")
    heights = np.array([[distal, mean_mpt], [distal, limb_mpt]])
    mean_boxes = _section_boxes(mean.skin, SECTION_FRACTIONS * mean_mpt)
    limb_boxes = _section_boxes(limb.skin, SECTION_FRACTIONS * limb_mpt)
    widths = np.median((limb_boxes[:, 1] - limb_boxes[:, 0]) / (mean_boxes[:, 1] - mean_boxes[:, 0]), axis=0)
    centre_mean, centre_limb = mean_boxes.mean(axis=1), limb_boxes.mean(axis=1)
    shift = np.median(centre_limb - widths * centre_mean, axis=0)
    how = (f"tibial shaft from {distal:.0f} mm to the MPT at {limb_mpt:.0f} mm against the mean's {mean_mpt:.0f} mm; "
           f"median ML and AP width ratios {widths[0]:.3f}, {widths[1]:.3f} over {len(SECTION_FRACTIONS)} sections")
    return heights, widths, shift, how


def _section_boxes(skin: trimesh.Trimesh, heights_mm: np.ndarray) -> np.ndarray:
    """(levels, 2, 2): per height, the section's [min x, min y] and [max x, max y] (mm)."""
    sections = measure.section_segments(measure.capped(skin), heights_mm)
    return np.array([[s[:, 0].min(axis=0), s[:, 0].max(axis=0)] for s in sections])


def _moved(bone: trimesh.Trimesh, heights: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> trimesh.Trimesh:
    """The bone with its heights mapped piecewise linearly (slope 1 below the first and above the last
    of ``heights``) and x, y scaled and shifted."""
    (low, high), (new_low, new_high) = heights
    z = bone.vertices[:, 2]
    moved = np.column_stack([bone.vertices[:, :2] * scale + shift, np.interp(z, heights[0], heights[1])])
    moved[z < low, 2] = z[z < low] - low + new_low
    moved[z > high, 2] = z[z > high] - high + new_high
    return trimesh.Trimesh(moved, bone.faces.copy(), process=False)


def _least_cover_mm(bones: dict[str, trimesh.Trimesh], limb: Limb) -> float:
    """Least depth (mm) of the bones' vertices below the skin, over the height the skin covers;
    negative where a bone pokes through."""
    top = float(limb.skin.vertices[:, 2].max())
    points = np.vstack([bone.vertices for bone in bones.values()])
    points = points[points[:, 2] < top]
    closest, distance, face = closest_faces(limb.skin, points)
    outside = np.einsum("ij,ij->i", points - closest, limb.skin.face_normals[face]) > 0
    return float(np.where(outside, -distance, distance).min())
