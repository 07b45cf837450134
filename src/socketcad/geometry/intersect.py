"""Self-intersection check of a triangle mesh: which non-adjacent faces touch or cross.

Written here, vectorised with numpy, because trimesh has no such check and the usual
providers are too heavy or unsuitable (python-fcl, open3d, CGAL) or GPL (MeshFix).

Broad phase: bounding balls of the faces (centroid, farthest corner), paired by a
scipy k-d tree query on the centroids, split by face size so that a few big faces do
not inflate the search radius for all; then vertex-sharing pairs are dropped and the
rest filtered by bounding-box overlap, in chunks so temporaries stay small. Measured
faster than a uniform-grid hash in numpy (0.4 s against 1.0 s for 330k faces).

Narrow phase: triangle B, grown by the tolerance, is a convex prism (its plane
thickened by +-tol, its three edge lines moved out by tol). Each edge of A is clipped
against B's prism (Cyrus-Beck), and each edge of B against A's. Two triangles within
tol of each other always have a closest point on an edge of one of them, so this
flags every pair closer than tol, crossing or coplanar-overlapping pairs included,
and nothing farther than about tol / sin(half the sharpest corner angle). Contact counts as
intersection: for a printable solid a touch is a defect too.
"""

from __future__ import annotations

import itertools

import numpy as np
import trimesh
from scipy.spatial import cKDTree

# Candidate pairs filtered per step: keeps the temporaries small (~10 MB) and in cache.
_CHUNK = 1 << 18


def _dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Dot product over a last axis of 3, written out: numpy's reductions over tiny axes are slow."""
    return u[..., 0] * v[..., 0] + u[..., 1] * v[..., 1] + u[..., 2] * v[..., 2]


def _min3(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.minimum(x[:, 0], x[:, 1]), x[:, 2])


def _max3(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(x[:, 0], x[:, 1]), x[:, 2])


def face_planes(corners: np.ndarray) -> np.ndarray:
    """Unit planes (m, 4, 4) of triangles (m, 3, 3): the face plane, then the inward planes
    of edges 01, 12, 20; a row (n, d) measures n . x + d in mesh units.

    Degenerate (zero-area) faces get NaN planes.
    """
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    edges = np.stack([b - a, c - b, a - c], axis=1)
    normal = np.cross(edges[:, 0], edges[:, 1])
    inward = np.cross(normal[:, None, :], edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        normal /= np.sqrt(_dot(normal, normal))[:, None]
        inward /= np.sqrt(_dot(inward, inward))[:, :, None]
    planes = np.empty((len(corners), 4, 4))
    planes[:, 0, :3] = normal
    planes[:, 0, 3] = -_dot(normal, a)
    planes[:, 1:, :3] = inward
    planes[:, 1:, 3] = -_dot(inward, corners)  # edge k starts at corner k
    return planes


def _edges_hit_prisms(corners: np.ndarray, planes: np.ndarray, tolerance: float) -> np.ndarray:
    """Whether an edge of triangles (k, 3, 3) enters the tol-grown prism of planes (k, 4, 4): (k,)."""
    # value[:, p, v]: plane p at corner v; edge e runs from corner e to corner e + 1.
    value = np.einsum("kpj,kvj->kpv", planes[:, :, :3], corners) + planes[:, :, 3:]
    enter = np.zeros((len(corners), 3))
    leave = np.ones((len(corners), 3))
    outside = np.zeros((len(corners), 3), dtype=bool)
    # Cyrus-Beck clipping of each edge against five half-spaces f >= 0.
    for f0 in (value[:, 0] + tolerance, tolerance - value[:, 0],
               value[:, 1] + tolerance, value[:, 2] + tolerance, value[:, 3] + tolerance):
        f1 = np.roll(f0, -1, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = f0 / (f0 - f1)  # where f crosses zero along the edge
        outside |= (f0 < 0) & (f1 < 0)
        np.maximum(enter, np.where((f0 < 0) & (f1 >= 0), t, 0.0), out=enter)
        np.minimum(leave, np.where((f0 >= 0) & (f1 < 0), t, 1.0), out=leave)
    hit = (enter <= leave) & ~outside
    return (hit[:, 0] | hit[:, 1] | hit[:, 2]) & np.isfinite(planes[:, 0, 0])


def triangle_pairs_intersect(a: np.ndarray, b: np.ndarray, tolerance: float = 1e-6) -> np.ndarray:
    """Whether triangles a[i] and b[i] (k, 3, 3) come within ``tolerance`` (mesh units): (k,) bool.

    Crossing, touching and coplanar-overlapping pairs are True; shared vertices are not
    excluded here (they touch), see ``self_intersections``. A zero-area triangle is
    tested by its edges only, so two zero-area triangles are never reported.
    """
    a = np.asarray(a, dtype=float).reshape(-1, 3, 3)
    b = np.asarray(b, dtype=float).reshape(-1, 3, 3)
    planes_a, planes_b = face_planes(a), face_planes(b)
    # Cheap reject first: one triangle wholly beyond the other's thickened plane.
    side_b = _dot(planes_a[:, None, 0, :3], b) + planes_a[:, None, 0, 3]
    side_a = _dot(planes_b[:, None, 0, :3], a) + planes_b[:, None, 0, 3]
    apart = ((_min3(side_b) > tolerance) | (_max3(side_b) < -tolerance)
             | (_min3(side_a) > tolerance) | (_max3(side_a) < -tolerance))
    near = np.flatnonzero(~apart)
    hit = np.zeros(len(a), dtype=bool)
    hit[near] = (_edges_hit_prisms(a[near], planes_b[near], tolerance)
                 | _edges_hit_prisms(b[near], planes_a[near], tolerance))
    return hit


def _ball_pairs(center: np.ndarray, radius: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Pairs (p, 2) from ``index`` whose balls (center (m, 3), radius (m,)) overlap, each once.

    One k-d tree query with the largest radius would drown a fine mesh in pairs if a few
    faces are big (cylinder caps, a stitched hole), so faces are split by size: the small
    ones pair among themselves in one query, big ones query the small ones' tree with
    their own radius, and the big ones (under half) recurse.
    """
    if len(index) < 2:
        return np.empty((0, 2), dtype=np.int64)
    r = radius[index]
    cut = 1.2 * float(np.median(r))
    small = r <= cut
    s, big = index[small], index[~small]
    tree = cKDTree(center[s], balanced_tree=False, compact_nodes=False)
    found = [s[tree.query_pairs(2 * cut, output_type="ndarray")]]
    if len(big):
        hits = tree.query_ball_point(center[big], radius[big] + cut)
        count = np.fromiter(map(len, hits), dtype=np.int64, count=len(big))
        near = np.fromiter(itertools.chain.from_iterable(hits), dtype=np.int64, count=int(count.sum()))
        found.append(np.column_stack([np.repeat(big, count), s[near]]))
        found.append(_ball_pairs(center, radius, big))
    return np.concatenate(found)


def _hit_chunks(mesh: trimesh.Trimesh, tolerance_mm: float):
    """Chunks (p, 2) of intersecting non-adjacent face pairs, i < j, unsorted."""
    if tolerance_mm < 0:
        raise ValueError(f"tolerance_mm must be >= 0, got {tolerance_mm}")
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(faces) < 2:
        return
    corners = np.take(np.asarray(mesh.vertices, dtype=float), faces, axis=0)
    lo, hi = _min3(corners) - tolerance_mm, _max3(corners) + tolerance_mm
    center = (corners[:, 0] + corners[:, 1] + corners[:, 2]) / 3
    offsets = corners - center[:, None]
    radius = np.sqrt(_max3(_dot(offsets, offsets))) + tolerance_mm
    candidates = _ball_pairs(center, radius, np.arange(len(faces)))
    for start in range(0, len(candidates), _CHUNK):
        i, j = candidates[start:start + _CHUNK].T
        fi, fj = np.take(faces, i, axis=0), np.take(faces, j, axis=0)
        shared = (fi[:, :1] == fj) | (fi[:, 1:2] == fj) | (fi[:, 2:] == fj)
        keep = ~(shared[:, 0] | shared[:, 1] | shared[:, 2])
        i, j = i[keep], j[keep]
        overlap = np.maximum(lo[i], lo[j]) <= np.minimum(hi[i], hi[j])
        keep = overlap[:, 0] & overlap[:, 1] & overlap[:, 2]
        i, j = i[keep], j[keep]
        hit = triangle_pairs_intersect(corners[i], corners[j], tolerance_mm)
        i, j = i[hit], j[hit]
        yield np.column_stack([np.minimum(i, j), np.maximum(i, j)])


def self_intersections(mesh: trimesh.Trimesh, tolerance_mm: float = 1e-6) -> np.ndarray:
    """Face pairs (k, 2) int64, i < j, sorted, whose triangles come within ``tolerance_mm``.

    Pairs sharing a vertex (hence also those sharing an edge) are skipped: they touch by
    construction, so a fold confined to one vertex's fan is not seen. Adjacency is by
    vertex index: an unmerged mesh reports its seams as contacts.
    """
    pairs = np.concatenate([np.empty((0, 2), dtype=np.int64), *_hit_chunks(mesh, tolerance_mm)])
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def is_self_intersecting(mesh: trimesh.Trimesh, tolerance_mm: float = 1e-6) -> bool:
    """Whether any two non-adjacent faces of ``mesh`` come within ``tolerance_mm``; stops at the first."""
    return any(len(chunk) for chunk in _hit_chunks(mesh, tolerance_mm))
