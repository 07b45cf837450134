"""Exact measures of a limb surface: volume, area, cross-sections and their profile; the signed
deviation of one surface from another.

Meshes here are in the anatomical frame (z from the distal end, y anterior, mm).
Cross-sections are computed on the surface with its brim capped, so that every
level gives a closed section; levels above the lowest brim point are marked partial.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import trimesh
from scipy.spatial import ConvexHull

from socketcad.errors import GeometryError
from socketcad.geometry.deform import vertex_normals
from socketcad.geometry.memo import per_mesh
from socketcad.geometry.repair import boundary_loops, cap_faces, capped_signed_volume, loop_perimeter, triangles


@per_mesh
def brim_loop(mesh: trimesh.Trimesh) -> np.ndarray | None:
    """The longest boundary loop (the proximal opening), or None for a closed surface."""
    loops = boundary_loops(mesh)
    if not loops:
        return None
    return max(loops, key=lambda loop: loop_perimeter(mesh.vertices, loop))


@per_mesh
def capped(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The surface with every boundary loop closed by a fan to the loop's centroid."""
    loops = boundary_loops(mesh)
    if not loops:
        return mesh
    vertices = [mesh.vertices]
    faces = [mesh.faces]
    for index, loop in enumerate(loops):
        vertices.append(mesh.vertices[loop].mean(axis=0, keepdims=True))
        faces.append(cap_faces(loop, len(mesh.vertices) + index))
    return trimesh.Trimesh(np.vstack(vertices), np.vstack(faces), process=False, validate=False)


def enclosed_volume_mm3(mesh: trimesh.Trimesh) -> float:
    """Volume enclosed by the outward surface with its openings capped (mm3)."""
    return abs(capped_signed_volume(mesh))


def section_segments(
    mesh: trimesh.Trimesh,
    heights: np.ndarray,
    rotation: np.ndarray | None = None,
    origin: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Cross-sections of a closed, outward-wound surface by planes z = h.

    With ``rotation`` (3, 3) and ``origin`` (3,), z and the segments are in that frame
    (rows of rotation are its axes), and only the cut faces are transformed.
    Returns one (k, 2, 2) array of x-y segments per height, each segment oriented
    counter-clockwise around the material seen from +z (positive shoelace area).
    A vertex exactly on a plane counts as above it, so no segment is produced twice.
    """
    rotation = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
    origin = np.zeros(3) if origin is None else np.asarray(origin, dtype=np.float64)
    heights = np.asarray(heights, dtype=np.float64)
    z = np.take((mesh.vertices - origin) @ rotation[2], mesh.faces)  # (m, 3)
    sections = []
    # Column-wise minimum/maximum: ~5x faster than z.min(axis=1) on (m, 3).
    z_low = np.minimum(np.minimum(z[:, 0], z[:, 1]), z[:, 2])
    z_high = np.maximum(np.maximum(z[:, 0], z[:, 1]), z[:, 2])
    for height, crossing in zip(heights, _faces_by_level(z_low, z_high, heights)):
        # Only the few faces the plane cuts are gathered and moved into the frame.
        corners = (triangles(mesh.vertices, mesh.faces[crossing]) - origin) @ rotation.T
        corners[:, :, 2] = z[crossing]  # the very heights the faces were selected by
        normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        sections.append(_face_segments(corners, normals[:, :2], height))
    return sections


def _faces_by_level(z_low: np.ndarray, z_high: np.ndarray, heights: np.ndarray) -> list[np.ndarray]:
    """Indices of the faces with z_low < h <= z_high, for each h in ``heights``.

    Each face finds the levels it spans by binary search, instead of every level
    scanning every face (k masks over m faces): ~10x faster for a profile of a scan.
    """
    order = np.argsort(heights, kind="stable")
    sorted_heights = heights[order]
    first = np.searchsorted(sorted_heights, z_low, side="right")
    count = np.searchsorted(sorted_heights, z_high, side="right") - first
    spanning = np.flatnonzero(count > 0)
    count, first = count[spanning], first[spanning]
    face = np.repeat(spanning, count)
    offset = np.arange(len(face)) - np.repeat(np.cumsum(count) - count, count)
    level = np.repeat(first, count) + offset
    by_level = np.argsort(level, kind="stable")  # keeps faces in index order within a level
    bounds = np.searchsorted(level[by_level], np.arange(len(heights) + 1))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return [face[by_level[bounds[r]:bounds[r + 1]]] for r in rank]


def _face_segments(corners: np.ndarray, normals_xy: np.ndarray, height: float) -> np.ndarray:
    """Segments (k, 2, 2) where the plane z = height cuts each triangle (k, 3, 3)."""
    if len(corners) == 0:
        return np.empty((0, 2, 2))
    above = corners[:, :, 2] >= height
    # Each crossing triangle has exactly one vertex alone on its side: the apex.
    lone_above = above.sum(axis=1) == 1
    apex = np.where(lone_above, np.argmax(above, axis=1), np.argmin(above, axis=1))
    rows = np.arange(len(corners))
    tip = corners[rows, apex]
    ends = []
    for step in (1, 2):
        other = corners[rows, (apex + step) % 3]
        t = (height - tip[:, 2]) / (other[:, 2] - tip[:, 2])
        ends.append(tip[:, :2] + t[:, None] * (other[:, :2] - tip[:, :2]))
    segments = np.stack(ends, axis=1)
    direction = segments[:, 1] - segments[:, 0]
    outward_right = direction[:, 1] * normals_xy[:, 0] - direction[:, 0] * normals_xy[:, 1]
    flip = outward_right < 0
    segments[flip] = segments[flip][:, ::-1]
    return segments


@dataclass(frozen=True)
class Section:
    """One cross-section of the limb at ``level_mm`` above the distal end.

    circumference_mm follows the skin exactly (the section's perimeter, as a tape
    pulled snug on soft tissue reads it); hull_circumference_mm is the perimeter of the
    section's convex hull (a tape bridging concavities such as the popliteal area).
    """

    level_mm: float
    circumference_mm: float
    hull_circumference_mm: float
    area_mm2: float
    ap_width_mm: float
    ml_width_mm: float
    partial: bool  # above the lowest brim point: the cap closes part of the section

    def as_dict(self) -> dict:
        return asdict(self)


def measure_section(segments: np.ndarray, level_mm: float, partial: bool) -> Section:
    """Measures of one section from its oriented (k, 2, 2) segments (mm)."""
    if len(segments) < 3:
        raise GeometryError(f"no closed cross-section at {level_mm:.1f} mm")
    start, end = segments[:, 0], segments[:, 1]
    perimeter = float(np.linalg.norm(end - start, axis=1).sum())
    area = float(0.5 * np.sum(start[:, 0] * end[:, 1] - end[:, 0] * start[:, 1]))
    points = start
    hull = ConvexHull(points)
    extent = points.max(axis=0) - points.min(axis=0)
    return Section(
        level_mm=float(level_mm),
        circumference_mm=perimeter,
        hull_circumference_mm=float(hull.area),  # in 2-D, qhull's "area" is the perimeter
        area_mm2=area,
        ap_width_mm=float(extent[1]),
        ml_width_mm=float(extent[0]),
        partial=bool(partial),
    )


def profile(mesh: trimesh.Trimesh, levels_mm: np.ndarray) -> list[Section]:
    """Sections of a limb surface (frame coordinates, brim open) at the given levels."""
    loop = brim_loop(mesh)
    brim_low = float(mesh.vertices[loop, 2].min()) if loop is not None else np.inf
    closed = capped(mesh)
    top = float(mesh.vertices[:, 2].max())
    levels = [float(level) for level in levels_mm if 0.0 < level < top]
    return [
        measure_section(segments, level, level > brim_low)
        for level, segments in zip(levels, section_segments(closed, np.asarray(levels)))
    ]


def signed_deviation(baseline: trimesh.Trimesh, later: trimesh.Trimesh) -> np.ndarray:
    """Signed distance (n,) from each baseline vertex to the later surface, mm: + where it lies outside
    (along the baseline's vertex normal: where a limb grew)."""
    from socketcad.geometry.solid import closest_points  # solid imports this module

    closest, distance = closest_points(later, baseline.vertices)
    outward = np.einsum("ij,ij->i", closest - baseline.vertices, vertex_normals(baseline))
    return np.where(outward >= 0, distance, -distance)
