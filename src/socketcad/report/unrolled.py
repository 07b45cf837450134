"""A surface field unrolled: angle around the limb's long axis against height, the way socket pressure-mapping
systems (F-Socket) lay their sensor strips out.

Angle 0 is anterior, +90 lateral, -90 medial, +/-180 posterior, whatever the side (the limb frame's x is
lateral on a right limb, medial on a left one: geometry.frame). Height is mm above the distal end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

__all__ = ["SurfaceSampling", "UnrolledMap", "angle_height", "unroll", "unroll_surface"]


def angle_height(points: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) limb-frame mm -> angle (n,) degrees in [-180, 180) (0 anterior, + lateral) and height (n,) mm."""
    points = np.asarray(points, dtype=float)
    lateral = points[:, 0] if side == "right" else -points[:, 0]
    angle = np.degrees(np.arctan2(lateral, points[:, 1]))
    return np.where(angle >= 180.0, angle - 360.0, angle), points[:, 2]


@dataclass(frozen=True)
class UnrolledMap:
    """values (h, a) on the grid of cell centres angles_deg (a,) and heights_mm (h,); NaN where the surface
    has no point."""

    angles_deg: np.ndarray
    heights_mm: np.ndarray
    values: np.ndarray

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(left, right, bottom, top) of the grid's cells, for imshow."""
        da = self.angles_deg[1] - self.angles_deg[0]
        dh = self.heights_mm[1] - self.heights_mm[0]
        return (self.angles_deg[0] - da / 2, self.angles_deg[-1] + da / 2,
                self.heights_mm[0] - dh / 2, self.heights_mm[-1] + dh / 2)


def unroll(points: np.ndarray, values: np.ndarray, side: str, angle_step_deg: float = 3.0,
           height_step_mm: float = 3.0) -> UnrolledMap:
    """The mean of ``values`` (n,) over the surface points (n, 3) (limb frame, mm) in each cell of an
    angle x height grid. Cells that no point falls in but whose neighbours have points (where points are
    sparser than cells) take their neighbours' mean; the rest stay NaN (above the brim, past the end).

    A mean per cell, not an interpolant: cheap on 200k vertices (bincount) and never invents a value
    between separate parts of the surface; a sensel-averaged field loses nothing by it."""
    angle, height = angle_height(points, side)
    values = np.asarray(values, dtype=float)
    columns = int(round(360.0 / angle_step_deg))
    low, high = float(height.min()), float(height.max())
    rows = max(1, int(np.ceil((high - low) / height_step_mm)))
    col = np.clip(((angle + 180.0) / 360.0 * columns).astype(int), 0, columns - 1)
    row = np.clip(((height - low) / height_step_mm).astype(int), 0, rows - 1)
    cell = row * columns + col
    counts = np.bincount(cell, minlength=rows * columns).reshape(rows, columns).astype(float)
    sums = np.bincount(cell, weights=values, minlength=rows * columns).reshape(rows, columns)
    grid = np.divide(sums, counts, out=np.full_like(sums, np.nan), where=counts > 0)
    empty = counts == 0
    if empty.any():  # one pass of the 3 x 3 neighbours' mean (angle wraps around; height does not)
        padded_sums = np.pad(np.where(empty, 0.0, grid), ((1, 1), (0, 0)))
        padded_hits = np.pad((~empty).astype(float), ((1, 1), (0, 0)))
        near_sum = sum(np.roll(padded_sums, (dr, dc), axis=(0, 1)) for dr in (-1, 0, 1) for dc in (-1, 0, 1))[1:-1]
        near_hits = sum(np.roll(padded_hits, (dr, dc), axis=(0, 1)) for dr in (-1, 0, 1) for dc in (-1, 0, 1))[1:-1]
        fill = empty & (near_hits >= 5)  # surrounded: a cell the points skipped, not the edge of the surface
        grid[fill] = near_sum[fill] / near_hits[fill]
    angles = -180.0 + (np.arange(columns) + 0.5) * 360.0 / columns
    heights = low + (np.arange(rows) + 0.5) * height_step_mm
    return UnrolledMap(angles_deg=angles, heights_mm=heights, values=grid)



@dataclass(frozen=True, eq=False)
class SurfaceSampling:
    """Points spread evenly by area over a surface, each with the triangle it lies in: (k, 3) points, (k, 3)
    corner vertex indices and (k, 3) barycentric weights; the surface's own vertices come last."""

    points: np.ndarray
    corners: np.ndarray
    weights: np.ndarray

    @classmethod
    def of(cls, surface: trimesh.Trimesh, count: int, seed: int = 0) -> SurfaceSampling:
        vertices = np.asarray(surface.vertices)
        points, faces = trimesh.sample.sample_surface(surface, count, seed=seed)
        corners = np.asarray(surface.faces)[faces]
        weights = trimesh.triangles.points_to_barycentric(vertices[corners], points)
        own = np.arange(len(vertices))
        return cls(np.vstack([points, vertices]), np.vstack([corners, np.column_stack([own, own, own])]),
                   np.vstack([weights, np.tile([1.0, 0.0, 0.0], (len(vertices), 1))]))

    @classmethod
    def for_grid(cls, surface: trimesh.Trimesh, angle_step_deg: float, height_step_mm: float,
                 per_cell: int = 20) -> SurfaceSampling:
        """About ``per_cell`` points a cell of the unrolled grid (seeded: the same every time)."""
        height = np.asarray(surface.vertices)[:, 2]
        cells = (360.0 / angle_step_deg) * max(1.0, float(np.ptp(height)) / height_step_mm)
        return cls.of(surface, int(per_cell * cells))

    def values(self, per_vertex: np.ndarray) -> np.ndarray:
        """A per-vertex field (n,) at the sample points (k,), linear in each triangle."""
        return np.einsum("ij,ij->i", self.weights, np.asarray(per_vertex, dtype=float)[self.corners])


def unroll_surface(surface: trimesh.Trimesh, values: np.ndarray, side: str, angle_step_deg: float = 3.0,
                   height_step_mm: float = 3.0, sampling: SurfaceSampling | None = None) -> UnrolledMap:
    """``unroll`` of a per-vertex field (n,) over the surface sampled evenly by area (``sampling``: one to
    reuse, default SurfaceSampling.for_grid): a scan's triangles vary in size, so its vertices alone leave
    cells empty where its triangles are large."""
    sampling = sampling or SurfaceSampling.for_grid(surface, angle_step_deg, height_step_mm)
    return unroll(sampling.points, sampling.values(values), side, angle_step_deg, height_step_mm)
