"""Regions on the limb surface: where a modification acts, and how strongly at each vertex.

A region is an ellipse on the skin around a centre placed relative to a landmark:
``width_mm`` around the limb, ``height_mm`` along it, turned by ``angle_deg`` on the
surface, with a core of full effect and a ``falloff_mm`` band in which the effect fades
to zero along Perlin's quintic smootherstep (zero slope and curvature at both ends: no
crease, no step). Distances are measured along the skin, as a tape would (arc lengths,
exact on circular sections); directions in the skin's tangent plane at the centre.
``region_map`` labels each skin vertex with the region around a landmark that it lies in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, Sequence, TypeVar

import numpy as np
from scipy.spatial import cKDTree

from socketcad.errors import InputError
from socketcad.geometry.deform import smootherstep, vertex_normals

if TYPE_CHECKING:
    from socketcad.anatomy.limb import Limb

# Vertices whose normal turns more than ~75 deg away from the centre's (cosine < 0.25) fade out,
# and those facing away (cosine <= 0) are never touched: a region on the front of a thin
# limb must not reach through to the back.
FACING_FADE_COSINE = 0.25

FACING_VECTORS = {  # (anterior, lateral) components of each direction a region may face
    "anterior": (1.0, 0.0), "posterior": (-1.0, 0.0), "medial": (0.0, -1.0), "lateral": (0.0, 1.0),
    "anteromedial": (1.0, -1.0), "anterolateral": (1.0, 1.0),
    "posteromedial": (-1.0, -1.0), "posterolateral": (-1.0, 1.0),
}

@dataclass(frozen=True)
class RegionPlacement:
    """A region placed on a surface. Vectors (3,) in the limb frame; lengths in mm."""

    centre_vertex: int
    centre_mm: np.ndarray
    normal: np.ndarray  # outward unit normal at the centre
    up: np.ndarray  # unit tangent of the region's height direction (proximal when angle_deg = 0)
    width_mm: float
    height_mm: float
    falloff_mm: float

    @property
    def reach_mm(self) -> float:
        """Distance from the centre, in the tangent plane, beyond which the weight is zero."""
        return max(self.width_mm, self.height_mm) / 2.0 + self.falloff_mm


def lateral_sign(side: str) -> float:
    """+1 when lateral is +x (right limb: x is the subject's right), -1 for a left limb."""
    if side == "right":
        return 1.0
    if side == "left":
        return -1.0
    raise InputError("the limb's side is unknown, so medial and lateral are too; give `side` left or right")


def anatomical_vector(side: str, proximal: float = 0.0, anterior: float = 0.0, lateral: float = 0.0) -> np.ndarray:
    """A frame vector (3,) from anatomical components (mm or unitless)."""
    x = lateral * lateral_sign(side) if lateral else 0.0
    return np.array([x, anterior, proximal], dtype=np.float64)


def facing_point(vertices: np.ndarray, height_mm: float, direction: np.ndarray, band_mm: float = 3.0) -> np.ndarray:
    """The skin point (3,) at ``height_mm`` that lies furthest along the horizontal ``direction``.

    vertices: (n, 3) skin in the limb frame. Used for anchors such as "posterior at the
    MPT level".
    """
    flat = np.array([direction[0], direction[1], 0.0])
    flat = flat / np.linalg.norm(flat)
    near = np.flatnonzero(np.abs(vertices[:, 2] - height_mm) <= band_mm)
    if len(near) == 0:
        raise InputError(f"the skin has no points at {height_mm:.0f} mm above the distal end")
    return vertices[near[np.argmax(vertices[near] @ flat)]]


def place_region(
    vertices: np.ndarray,
    normals: np.ndarray,
    centre_vertex: int,
    width_mm: float,
    height_mm: float,
    falloff_mm: float,
    angle_deg: float = 0.0,
) -> RegionPlacement:
    """A region centred on vertex ``centre_vertex`` of a surface.

    vertices, normals: (n, 3) surface and unit vertex normals in the limb frame. The
    height direction is the limb axis (+z) in the tangent plane (anterior at the distal
    apex, where the axis is normal to the skin), turned by ``angle_deg`` about the normal.
    """
    normal = normals[centre_vertex]
    up = _tangent(np.array([0.0, 0.0, 1.0]), normal)
    if up is None:
        up = _tangent(np.array([0.0, 1.0, 0.0]), normal)
    side = np.cross(up, normal)
    angle = np.radians(angle_deg)
    up = np.cos(angle) * up + np.sin(angle) * side
    return RegionPlacement(int(centre_vertex), vertices[centre_vertex].copy(), normal.copy(), up,
                           float(width_mm), float(height_mm), float(falloff_mm))


def _tangent(direction: np.ndarray, normal: np.ndarray) -> np.ndarray | None:
    flat = direction - (direction @ normal) * normal
    length = np.linalg.norm(flat)
    return flat / length if length > 0.2 else None


def region_weights(
    vertices: np.ndarray,
    normals: np.ndarray,
    region: RegionPlacement,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """Weight (n,) of every vertex: 1 in the core, smooth fade to 0 across the falloff band.

    Along each direction from the centre, t runs from 0 on the core ellipse (semi-axes
    width/2, height/2) to 1 on the outer ellipse (each semi-axis + falloff); the weight is
    1 - smootherstep(t). ``candidates``: indices of a superset of the vertices within
    reach (e.g. from a k-d tree), so that a region costs what its neighbourhood costs.
    """
    weights = np.zeros(len(vertices))
    candidates = np.arange(len(vertices)) if candidates is None else np.asarray(candidates, dtype=np.int64)
    offset = vertices[candidates] - region.centre_mm
    # Arc lengths are never shorter than chords, so a ball of radius reach holds every vertex in reach.
    inside = np.einsum("ij,ij->i", offset, offset) < region.reach_mm**2
    near, offset = candidates[inside], offset[inside]
    if len(near) == 0:
        return weights
    cosine = normals[near] @ region.normal
    side = np.cross(region.up, region.normal)
    u, v = offset @ side, offset @ region.up
    planar = np.hypot(u, v)
    safe = np.where(planar > 0, planar, 1.0)
    cos, sin = np.where(planar > 0, u / safe, 1.0), v / safe
    radius = _arc_length(np.linalg.norm(offset, axis=1), cosine)
    half_w, half_h = max(region.width_mm / 2.0, 1e-9), max(region.height_mm / 2.0, 1e-9)
    core = 1.0 / np.sqrt((cos / half_w) ** 2 + (sin / half_h) ** 2)
    outer = 1.0 / np.sqrt((cos / (half_w + region.falloff_mm)) ** 2 + (sin / (half_h + region.falloff_mm)) ** 2)
    fade = 1.0 - smootherstep((radius - core) / (outer - core))
    weights[near] = fade * smootherstep(cosine / FACING_FADE_COSINE)
    return weights


def _arc_length(chord: np.ndarray, normal_cosine: np.ndarray) -> np.ndarray:
    """Length along the skin between two points, from their chord and the angle between normals.

    Exact on circular arcs (a limb's cross-sections, its long profile): arc = chord * (a/2) / sin(a/2).
    """
    half = 0.5 * np.arccos(np.clip(normal_cosine, -1.0, 1.0))
    return chord * np.where(half > 1e-6, half / np.maximum(np.sin(half), 1e-12), 1.0)


class RegionShape(Protocol):
    """What ``region_map`` reads of a region: the landmark it sits around and its ellipse (mm)."""

    landmark: str
    width_mm: float
    height_mm: float


R = TypeVar("R", bound=RegionShape)


@dataclass(frozen=True)
class RegionMap(Generic[R]):
    """Which skin vertices (n,) belong to which region (-1: elsewhere) and the regions used."""

    label: np.ndarray
    regions: tuple[R, ...]


def region_map(limb: Limb, regions: Sequence[R], rank: Sequence[float]) -> RegionMap[R]:
    """Label every skin vertex of ``limb`` (landmarks located) with its region: weight >= 0.5 of the
    region's ellipse around the skin vertex nearest its landmark (falloff a quarter of its width); where
    regions overlap, the one of lowest ``rank`` (one number a region) wins. A region whose landmark the
    limb lacks labels nothing."""
    if len(rank) != len(regions):
        raise ValueError(f"rank has {len(rank)} entries for {len(regions)} regions")
    vertices = np.asarray(limb.skin.vertices)
    normals = vertex_normals(limb.skin)
    tree = cKDTree(vertices)
    label = np.full(len(vertices), -1)
    best = np.full(len(vertices), np.inf)
    for index, (region, order) in enumerate(zip(regions, rank)):
        landmark = limb.landmarks.get(region.landmark)
        if landmark is None:
            continue
        centre = int(tree.query(landmark.point_mm)[1])
        placement = place_region(vertices, normals, centre, region.width_mm, region.height_mm, 0.25 * region.width_mm)
        inside = region_weights(vertices, normals, placement) >= 0.5
        take = inside & (order < best)
        label[take], best[take] = index, order
    return RegionMap(label, tuple(regions))
