"""Closed-form test shapes: surfaces of revolution open at the top, like a residual limb."""

from __future__ import annotations

import numpy as np
import trimesh


def revolve(z: np.ndarray, r: np.ndarray, n_spokes: int) -> trimesh.Trimesh:
    """Surface of revolution about +z through profile points (z_i, r_i), open at the top.

    If r[0] == 0 the bottom is a single apex vertex (closed); faces wound outward.
    """
    angles = 2 * np.pi * np.arange(n_spokes) / n_spokes
    apex = r[0] == 0
    rings = range(1 if apex else 0, len(z))
    vertices = [[0.0, 0.0, z[0]]] if apex else []
    for k in rings:
        vertices.extend(np.column_stack([r[k] * np.cos(angles), r[k] * np.sin(angles), np.full(n_spokes, z[k])]))
    vertices = np.asarray(vertices, dtype=float)
    offset = 1 if apex else 0
    faces = []
    j = np.arange(n_spokes)
    jn = (j + 1) % n_spokes
    if apex:
        faces.append(np.column_stack([np.zeros(n_spokes, int), offset + jn, offset + j]))
    for ring in range(len(rings) - 1):
        a = offset + ring * n_spokes
        b = a + n_spokes
        faces.append(np.column_stack([a + j, a + jn, b + jn]))
        faces.append(np.column_stack([a + j, b + jn, b + j]))
    return trimesh.Trimesh(vertices, np.vstack(faces), process=False)


def cone(radius: float, height: float, edge: float = 1.0) -> trimesh.Trimesh:
    """Open cone, apex at the origin, opening of ``radius`` at z = ``height`` (mm)."""
    slant = np.hypot(radius, height)
    n_rings = int(np.ceil(slant / edge))
    z = np.linspace(0.0, height, n_rings + 1)
    return revolve(z, radius * z / height, int(np.ceil(2 * np.pi * radius / edge)))


def cylinder_with_dome(radius: float, length: float, edge: float = 1.0) -> trimesh.Trimesh:
    """Cylinder of ``radius`` on a hemispherical distal end, open at z = radius + length."""
    n_arc = int(np.ceil(0.5 * np.pi * radius / edge))
    theta = np.linspace(0.0, 0.5 * np.pi, n_arc + 1)
    dome_z = radius - radius * np.cos(theta)
    dome_r = radius * np.sin(theta)
    n_len = int(np.ceil(length / edge))
    tube_z = radius + np.linspace(0.0, length, n_len + 1)[1:]
    z = np.concatenate([dome_z, tube_z])
    r = np.concatenate([dome_r, np.full(len(tube_z), radius)])
    return revolve(z, r, int(np.ceil(2 * np.pi * radius / edge)))


def polygon_area(radius: float, n: int) -> float:
    """Area of the regular n-gon inscribed in a circle of ``radius``."""
    return 0.5 * n * radius**2 * np.sin(2 * np.pi / n)
