"""The anatomical frame of a residual limb.

Axes, right-handed: z along the long axis pointing proximally (distal end down),
y anterior, x = y × z (lateral for a right limb, medial for a left one). The origin
lies on the long axis at the level of the distal-most skin point, so z is the
distance from the distal end in mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from socketcad.errors import GeometryError, InputError
from socketcad.geometry.repair import face_areas, triangles
from socketcad.geometry.memo import per_mesh, share


@dataclass(frozen=True)
class Frame:
    """Rigid map from input coordinates to the anatomical frame.

    rotation: (3, 3), rows are the frame's x, y, z axes in input coordinates.
    origin: (3,) the frame origin in input coordinates (mm).
    """

    rotation: np.ndarray
    origin: np.ndarray

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) input points to frame coordinates."""
        # Three dot products beat a (n, 3) @ (3, 3) matmul by ~4x for large n.
        centred = np.asarray(points, dtype=np.float64) - self.origin
        return np.column_stack([centred @ axis for axis in self.rotation])

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) frame points back to input coordinates."""
        return np.asarray(points, dtype=np.float64) @ self.rotation + self.origin

    @property
    def matrix(self) -> np.ndarray:
        """4x4 homogeneous transform, input -> frame."""
        out = np.eye(4)
        out[:3, :3] = self.rotation
        out[:3, 3] = -self.rotation @ self.origin
        return out

    def apply(self, mesh: trimesh.Trimesh) -> trimesh.Trimesh:
        """A copy of ``mesh`` in frame coordinates (same faces, so the same boundary loops)."""
        from socketcad.geometry.measure import brim_loop
        from socketcad.geometry.repair import boundary_loops, capped_signed_volume, edge_census, face_areas

        moved = trimesh.Trimesh(self.to_local(mesh.vertices), mesh.faces.copy(), process=False, validate=False)
        share(mesh, moved, edge_census, boundary_loops, brim_loop)
        if np.linalg.det(self.rotation) > 0:  # a proper rotation keeps lengths, areas and volumes
            share(mesh, moved, face_areas, capped_signed_volume)
        return moved


def unit(vector: np.ndarray, what: str = "direction") -> np.ndarray:
    """``vector`` scaled to length 1; GeometryError for a zero vector."""
    vector = np.asarray(vector, dtype=np.float64)
    norm = np.linalg.norm(vector)
    if not np.isfinite(norm) or norm < 1e-12:
        raise GeometryError(f"the {what} has zero length")
    return vector / norm


def long_axis(skin: trimesh.Trimesh, proximal_point: np.ndarray) -> np.ndarray:
    """Unit long axis of a limb surface, pointing towards ``proximal_point`` (e.g. the brim centre).

    Principal axis of largest variance of the area-weighted face centroids.
    """
    areas, centroids = face_areas_centres(skin)
    if not np.isfinite(areas.sum()) or areas.sum() <= 0 or not np.isfinite(centroids).all():
        raise GeometryError("the surface has no area to find its long axis on")
    weights = areas / areas.sum()
    mean = weights @ centroids
    centred = centroids - mean
    covariance = (centred * weights[:, None]).T @ centred
    axis = np.linalg.eigh(covariance)[1][:, -1]
    if np.dot(np.asarray(proximal_point) - mean, axis) < 0:
        axis = -axis
    return axis


def perpendicular(direction: np.ndarray, axis: np.ndarray, what: str) -> np.ndarray:
    """The unit part of ``direction`` perpendicular to the unit ``axis``."""
    direction = np.asarray(direction, dtype=np.float64)
    if direction.shape != (3,) or not np.all(np.isfinite(direction)) or not np.any(direction):
        raise InputError(f"the {what} direction must be three finite numbers, not all zero")
    flat = direction - np.dot(direction, axis) * axis
    if np.linalg.norm(flat) < 1e-6 * max(np.linalg.norm(direction), 1e-12):
        raise InputError(f"the {what} direction is parallel to the limb's long axis; give another")
    return unit(flat, what)


def fallback_anterior(axis: np.ndarray) -> np.ndarray:
    """An arbitrary but deterministic direction perpendicular to ``axis``."""
    candidate = np.eye(3)[int(np.argmin(np.abs(axis)))]
    return perpendicular(candidate, axis, "reference")


@per_mesh
def face_areas_centres(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """Face areas (m,) and centroids (m, 3)."""
    corners = triangles(mesh.vertices, mesh.faces)
    centres = (corners[:, 0] + corners[:, 1] + corners[:, 2]) / 3.0  # ~3x faster than .mean(axis=1)
    return face_areas(mesh), centres


def surface_centroid(mesh: trimesh.Trimesh) -> np.ndarray:
    """Area-weighted centroid (3,) of a surface's triangles."""
    areas, centres = face_areas_centres(mesh)
    return areas @ centres / areas.sum()


def build_frame(skin: trimesh.Trimesh, axis: np.ndarray, anterior: np.ndarray) -> Frame:
    """Frame with z = ``axis``, y = ``anterior`` (made perpendicular), origin at the distal end."""
    z = unit(axis, "long axis")
    y = perpendicular(anterior, z, "anterior")
    x = np.cross(y, z)
    rotation = np.vstack([x, y, z])
    centre = surface_centroid(skin)
    distal = float((skin.vertices @ z).min())
    origin = centre + (distal - float(centre @ z)) * z
    return Frame(rotation=rotation, origin=origin)


def anterior_from_brim(brim_points: np.ndarray, min_tilt: float = 0.08) -> np.ndarray | None:
    """Anterior direction (unit, frame x-y) from an oblique transtibial brim.

    brim_points: (k, 3) brim loop in frame coordinates. Transtibial scans and casts are
    usually cut higher anteriorly (over the patella) than posteriorly (popliteal
    fossa), so the direction of the brim's highest point is taken as anterior, but only
    when the brim's height range exceeds ``min_tilt`` of its width; None otherwise.
    A heuristic: right on 4 of the 5 OpenLimbTT shapes (see tests), so say it is one.
    """
    heights = brim_points[:, 2]
    width = np.ptp(brim_points[:, :2], axis=0).max()
    if np.ptp(heights) < min_tilt * width:
        return None
    centre = brim_points[:, :2].mean(axis=0)
    direction = brim_points[np.argmax(heights), :2] - centre
    norm = np.linalg.norm(direction)
    return direction / norm if norm > 0 else None


def section_radii(sections: list[np.ndarray], turn_rad: float = 0.0,
                  step_deg: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Radius functions of cross-sections about their area centroids.

    sections: (k, 2, 2) oriented x-y segments per section (``measure.section_segments``); their angles
    are counted from the direction ``turn_rad`` (radians from x towards y). Returns the angles (m,) in
    radians and the radii (k', m) in mm of the sections with a boundary (the farthest boundary point in
    each angular bin, empty bins interpolated).
    """
    angles = np.radians(np.arange(0.0, 360.0, step_deg))
    rows = []
    for segments in sections:
        if len(segments) < 8:
            continue
        centre = np.array(_area_centroid(segments))
        points = np.vstack([segments[:, 0], segments.mean(axis=1)]) - centre
        turned = np.degrees(np.arctan2(points[:, 1], points[:, 0]) - turn_rad)
        bins = (turned % 360.0 // step_deg).astype(int) % len(angles)
        radius = np.zeros(len(angles))
        np.maximum.at(radius, bins, np.hypot(points[:, 0], points[:, 1]))
        filled = radius > 0
        if filled.sum() < len(angles) // 4:
            continue
        rows.append(np.interp(angles, angles[filled], radius[filled], period=2.0 * np.pi))
    return angles, np.array(rows).reshape(-1, len(angles))


def apex_direction(angles: np.ndarray, radii: np.ndarray) -> tuple[float, float]:
    """The direction of a rounded-triangular section's apex on its line of mirror symmetry.

    angles: (m,) evenly spaced over a turn; radii: (k, m) radius functions (``section_radii``).
    The line of symmetry is the one about which the sections' radius functions, each scaled to
    its mean, are most nearly mirror images; its end where the triangle (third harmonic) points
    is the apex. Returns the apex angle (radians, in the radii's frame) and the asymmetry about
    that line relative to the median line's (0: perfect symmetry, 1: no line stands out).
    """
    m = len(angles)
    scaled = radii / radii.mean(axis=1, keepdims=True)
    offsets = np.arange(1, m // 4)
    index = np.arange(m)
    # asymmetry of every line through the centroid: both half-planes compared across it
    mirror = scaled[:, (index[:, None] + offsets) % m] - scaled[:, (index[:, None] - offsets) % m]  # (k, m, o)
    asymmetry = (mirror ** 2).mean(axis=(0, 2))
    line = asymmetry + np.roll(asymmetry, -(m // 2))
    best = int(np.argmin(line))
    third = np.fft.rfft(scaled, axis=1)[:, 3].mean()
    triangle = np.real(third * np.exp(3j * angles))  # > 0 towards the apices
    # the minimum between samples (a parabola through three): the angle does not step with the sampling
    before, after = line[(best - 1) % m], line[(best + 1) % m]
    curvature = before - 2.0 * line[best] + after
    shift = 0.5 * (before - after) / curvature if curvature > 0 else 0.0
    angle = angles[best] + shift * (angles[1] - angles[0])
    if triangle[best] < triangle[(best + m // 2) % m]:
        angle += np.pi
    return float(angle), float(line[best] / np.median(line))


def shape_reference(skin: trimesh.Trimesh, axis: np.ndarray, top_mm: float) -> tuple[np.ndarray, float]:
    """A direction perpendicular to ``axis`` fixed by the shape alone, whatever the pose in the file.

    The apex (``apex_direction``) of the sections from 10 % to 60 % of ``top_mm`` (the lowest brim
    point above the distal end): on a transtibial limb the shank's rounded triangle points anterior
    over the tibial crest, but its three corners are alike, so it is a hypothesis to check, not a
    finding. Found twice, the second time counted from the first, so that the angular sampling
    itself does not depend on the pose. Returns the unit direction (3,) in input coordinates and the
    apex's asymmetry score (see ``apex_direction``).
    """
    from socketcad.geometry.measure import capped, section_segments

    frame = build_frame(skin, axis, fallback_anterior(axis))
    sections = section_segments(capped(skin), np.linspace(0.1, 0.6, 26) * top_mm, frame.rotation, frame.origin)
    angles, radii = section_radii(sections)
    if len(radii) < 3:
        return frame.rotation[1], 1.0
    first, _ = apex_direction(angles, radii)
    # looked at again from a frame whose y is the first apex (its x a quarter turn before it): the same
    # sections turned, not cut again
    turn = first - 0.5 * np.pi
    second, score = apex_direction(*section_radii(sections, turn))
    angle = turn + second
    return unit(frame.rotation[:2].T @ np.array([np.cos(angle), np.sin(angle)]), "shape reference"), score


def centreline_axis(
    skin: trimesh.Trimesh,
    initial_axis: np.ndarray,
    top_mm: float,
    levels: int = 17,
    iterations: int = 4,
) -> np.ndarray:
    """Long axis as the least-squares line through cross-section centroids.

    Starting from ``initial_axis`` (unit, proximal), sections between 10 % and 90 % of
    ``top_mm`` (the lowest brim point above the distal end) are cut, their area
    centroids found, and a line fitted through them; repeated until it settles.
    Unlike the principal axis, this follows the limb's centreline and is not tilted by
    a bulbous proximal end (on the AmpScan scan: 2.6 deg from the scanner's own axis,
    against 3.9 deg for the principal axis).
    """
    from socketcad.geometry.measure import capped, section_segments

    axis = unit(initial_axis, "long axis")
    closed = capped(skin)
    for _ in range(iterations):
        frame = build_frame(skin, axis, fallback_anterior(axis))
        heights = np.linspace(0.1, 0.9, levels) * top_mm
        centroids = [
            [*_area_centroid(segments), height]
            for height, segments in zip(heights, section_segments(closed, heights, frame.rotation, frame.origin))
            if len(segments) >= 3
        ]
        centroids = [c for c in centroids if np.all(np.isfinite(c))]  # a section of no area has no centroid
        if len(centroids) < 3:
            return axis
        points = frame.to_input(np.asarray(centroids))
        direction = np.linalg.svd(points - points.mean(axis=0))[2][0]
        direction = direction if np.dot(direction, axis) > 0 else -direction
        settled = np.dot(direction, axis) > np.cos(np.radians(0.01))
        axis = direction
        if settled:
            break
    return axis


def _area_centroid(segments: np.ndarray) -> tuple[float, float]:
    """Centroid (x, y) of the region bounded by oriented (k, 2, 2) segments."""
    start, end = segments[:, 0], segments[:, 1]
    cross = start[:, 0] * end[:, 1] - end[:, 0] * start[:, 1]
    area = cross.sum() / 2.0
    cx = ((start[:, 0] + end[:, 0]) * cross).sum() / (6.0 * area)
    cy = ((start[:, 1] + end[:, 1]) * cross).sum() / (6.0 * area)
    return float(cx), float(cy)
