"""Naming the bone parts of a limb: tibia, fibula, patella, femur / femur, pelvis.

The rules use only heights along the long axis and sizes across it, so they hold
before the anterior direction is known (load_limb needs the patella to find it).
A part that fits no rule keeps its ``bone-N`` name: a wrong name is worse than none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from socketcad.geometry.repair import face_areas

TRANSTIBIAL_BONES = ("tibia", "fibula", "patella", "femur")


@dataclass(frozen=True)
class _Part:
    """Shape of one bone part along ``axis``: heights (mm) and sizes (mm, mm2)."""

    label: str
    bottom: float
    top: float
    width: float  # largest extent across the axis
    area: float

    @property
    def length(self) -> float:
        return self.top - self.bottom


def _parts(bones: dict[str, trimesh.Trimesh], axis: np.ndarray) -> list[_Part]:
    """Heights and sizes of every part along the unit ``axis`` (3,)."""
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    across = np.linalg.svd(np.eye(3) - np.outer(axis, axis))[0][:, :2]  # two unit vectors normal to the axis
    parts = []
    for label, mesh in bones.items():
        heights = mesh.vertices @ axis
        flat = mesh.vertices @ across
        width = float(np.ptp(flat, axis=0).max())
        parts.append(_Part(label, float(heights.min()), float(heights.max()), width, float(face_areas(mesh).sum())))
    return parts


def label_bones(
    bones: dict[str, trimesh.Trimesh], level: str, axis: np.ndarray = (0.0, 0.0, 1.0)
) -> dict[str, trimesh.Trimesh]:
    """The same parts under anatomical names; unrecognised parts keep their keys.

    bones: parts in any coordinates whose long axis (proximal) is ``axis`` (default:
    the limb frame's z). level: transtibial or transfemoral; anything else names nothing.
    """
    parts = _parts(bones, np.asarray(axis, dtype=np.float64))
    if level == "transtibial":
        names = _transtibial_names(parts)
    elif level == "transfemoral":
        names = _transfemoral_names(parts)
    else:
        names = {}
    named = {names[p.label]: bones[p.label] for p in parts if p.label in names}
    named.update({p.label: bones[p.label] for p in parts if p.label not in names})
    return named


def _transtibial_names(parts: list[_Part]) -> dict[str, str]:
    """Old label -> name. Below the knee lie tibia and fibula; above it femur and patella.

    The reference is the part reaching lowest (tibia, or the fibula if cut longer):
    a part whose bottom is above that part's middle sits at or above the knee joint.
    """
    if not parts:
        return {}
    lowest = min(parts, key=lambda p: p.bottom)
    knee = lowest.bottom + 0.5 * lowest.length
    below = sorted((p for p in parts if p.bottom < knee), key=lambda p: -p.area)
    above = sorted((p for p in parts if p.bottom >= knee), key=lambda p: -p.area)
    names: dict[str, str] = {}
    if below:
        tibia = below[0]
        names[tibia.label] = "tibia"
        slender = [p for p in below[1:] if p.width < 0.75 * tibia.width and p.length > 1.2 * p.width]
        if slender:
            names[slender[0].label] = "fibula"
    reference = below[0] if below else lowest
    for part in above:
        compact = part.length < 1.6 * part.width and part.area < 0.5 * reference.area
        if compact and "patella" not in names.values():
            names[part.label] = "patella"
        elif not compact and "femur" not in names.values() and part.top > reference.top:
            names[part.label] = "femur"
    return names


def _transfemoral_names(parts: list[_Part]) -> dict[str, str]:
    """Old label -> name: the femur reaches lowest; parts mostly above its top third are pelvis."""
    if not parts:
        return {}
    femur = min(parts, key=lambda p: p.bottom)
    names = {femur.label: "femur"}
    pelvis = sorted((p for p in parts if p is not femur and p.bottom > femur.bottom + 0.6 * femur.length),
                    key=lambda p: -p.area)
    for index, part in enumerate(pelvis):
        names[part.label] = "pelvis" if index == 0 else f"pelvis-{index + 1}"
    return names
