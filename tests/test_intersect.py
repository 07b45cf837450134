"""Self-intersection check: clean solids, crossings, near misses, and an exact reference."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import trimesh
from trimesh.transformations import translation_matrix as shift

from socketcad.geometry.intersect import is_self_intersecting, self_intersections, triangle_pairs_intersect


# --- exact reference: closed triangles in rational arithmetic, slow and independent ---

def _sub(u, v):
    return tuple(a - b for a, b in zip(u, v))


def _cross(u, v):
    return (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])


def _dot(u, v):
    return sum(a * b for a, b in zip(u, v))


def _sign(x):
    return (x > 0) - (x < 0)


def _orient2(a, b, c):
    return _sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))


def _in_triangle2(x, t):
    signs = {_orient2(t[0], t[1], x), _orient2(t[1], t[2], x), _orient2(t[2], t[0], x)}
    return not {1, -1} <= signs


def _on_segment2(p, q, x):
    return min(p[0], q[0]) <= x[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= x[1] <= max(p[1], q[1])


def _segments_meet2(p, q, r, s):
    d1, d2, d3, d4 = _orient2(r, s, p), _orient2(r, s, q), _orient2(p, q, r), _orient2(p, q, s)
    if d1 * d2 < 0 and d3 * d4 < 0:
        return True
    return ((d1 == 0 and _on_segment2(r, s, p)) or (d2 == 0 and _on_segment2(r, s, q))
            or (d3 == 0 and _on_segment2(p, q, r)) or (d4 == 0 and _on_segment2(p, q, s)))


def _segment_meets_triangle(p, q, t):
    normal = _cross(_sub(t[1], t[0]), _sub(t[2], t[0]))
    dp, dq = _dot(normal, _sub(p, t[0])), _dot(normal, _sub(q, t[0]))
    if _sign(dp) * _sign(dq) > 0:
        return False
    axis = max(range(3), key=lambda k: abs(normal[k]))
    flat = lambda x: tuple(x[k] for k in range(3) if k != axis)  # noqa: E731
    t2 = [flat(v) for v in t]
    if dp == 0 and dq == 0:
        p2, q2 = flat(p), flat(q)
        return (_in_triangle2(p2, t2) or _in_triangle2(q2, t2)
                or any(_segments_meet2(p2, q2, t2[k], t2[(k + 1) % 3]) for k in range(3)))
    s = dp / (dp - dq)
    return _in_triangle2(flat(tuple(a + s * (b - a) for a, b in zip(p, q))), t2)


def exact_intersect(a, b) -> bool:
    """Closed triangles a, b (3, 3) share a point, decided exactly on their float coordinates."""
    a = [tuple(Fraction(float(c)) for c in v) for v in a]
    b = [tuple(Fraction(float(c)) for c in v) for v in b]
    return (any(_segment_meets_triangle(a[k], a[(k + 1) % 3], b) for k in range(3))
            or any(_segment_meets_triangle(b[k], b[(k + 1) % 3], a) for k in range(3)))


# --- shapes ---

def thin_cup(radius: float = 50.0, wall: float = 0.5, cut: float = 20.0) -> trimesh.Trimesh:
    """Sphere cut above z = ``cut``, offset inward by ``wall`` (mm), rim stitched: a closed thin shell."""
    sphere = trimesh.creation.icosphere(5, radius=radius)
    outer = trimesh.Trimesh(sphere.vertices, sphere.faces[sphere.triangles_center[:, 2] < cut])
    outer.remove_unreferenced_vertices()
    n = len(outer.vertices)
    boundary = trimesh.grouping.group_rows(outer.edges_sorted, require_count=1)
    u, v = outer.edges[boundary].T  # directed as in their outer face
    rim = np.vstack([np.column_stack([v, u, u + n]), np.column_stack([v, u + n, v + n])])
    vertices = np.vstack([outer.vertices, outer.vertices * (radius - wall) / radius])
    return trimesh.Trimesh(vertices, np.vstack([outer.faces, outer.faces[:, ::-1] + n, rim]))


def concatenated(*meshes: trimesh.Trimesh) -> trimesh.Trimesh:
    """Meshes side by side in one vertex and face list, not unioned."""
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return trimesh.Trimesh(np.vstack([m.vertices for m in meshes]),
                           np.vstack([m.faces + o for m, o in zip(meshes, offsets)]), process=False)


def moved(mesh: trimesh.Trimesh, matrix: np.ndarray) -> trimesh.Trimesh:
    out = mesh.copy()
    out.apply_transform(matrix)
    return out


def offset(mesh: trimesh.Trimesh, distance: float) -> trimesh.Trimesh:
    """Each vertex moved ``distance`` mm along its vertex normal."""
    return trimesh.Trimesh(mesh.vertices + distance * mesh.vertex_normals, mesh.faces, process=False)


def pair_set(pairs: np.ndarray) -> set[tuple[int, int]]:
    return set(map(tuple, pairs.tolist()))


def crossing_pairs_exact(mesh: trimesh.Trimesh, first, second) -> set[tuple[int, int]]:
    """Pairs (i in first, j in second) sharing no vertex whose triangles meet, decided exactly."""
    tri, faces = mesh.triangles, mesh.faces
    lo, hi = tri.min(axis=1), tri.max(axis=1)
    return {(min(i, j), max(i, j)) for i in first for j in second
            if (lo[i] <= hi[j]).all() and (lo[j] <= hi[i]).all()  # exact, and spares most Fraction work
            and not set(faces[i]) & set(faces[j]) and exact_intersect(tri[i], tri[j])}


ROTATION = trimesh.transformations.random_rotation_matrix(np.random.default_rng(7).random(3))


# --- clean solids ---

@pytest.mark.parametrize("mesh", [
    trimesh.creation.icosphere(4, radius=30.0),
    trimesh.creation.icosphere(5, radius=30.0),
    trimesh.creation.cylinder(radius=20.0, height=80.0, sections=64),
    trimesh.creation.annulus(r_min=18.0, r_max=20.0, height=60.0, sections=64),
    trimesh.creation.box(extents=[10.0, 20.0, 30.0]),
    thin_cup(),
], ids=["icosphere4", "icosphere5", "cylinder", "annulus", "box", "thin-cup"])
def test_closed_solids_are_clean(mesh):
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    pairs = self_intersections(mesh)
    assert pairs.shape == (0, 2)
    assert not is_self_intersecting(mesh)


def test_thin_cup_is_thin():
    """The cup's walls, 0.5 mm apart, are closer than its 2 mm faces: the narrow phase must decide."""
    cup = thin_cup()
    assert np.sqrt(cup.area_faces.mean()) > 1.0
    assert cup.volume == pytest.approx(0.5 * cup.area / 2, rel=0.05)
    assert is_self_intersecting(cup, tolerance_mm=0.6)


# --- crossings ---

def test_overlapping_boxes_pairs_are_exactly_the_crossings():
    a = trimesh.creation.box(extents=[10.0, 10.0, 10.0])
    b = moved(trimesh.creation.box(extents=[8.0, 9.0, 11.0]), shift([4, 3, 2]) @ ROTATION)
    mesh = concatenated(a, b)
    pairs = self_intersections(mesh)
    assert len(pairs) > 0 and is_self_intersecting(mesh)
    assert (pairs[:, 0] < 12).all() and (pairs[:, 1] >= 12).all()
    assert pair_set(pairs) == crossing_pairs_exact(mesh, range(12), range(12, 24))


def test_sphere_with_vertex_pushed_through():
    sphere = trimesh.creation.icosphere(3, radius=10.0)
    top = int(np.argmax(sphere.vertices[:, 2]))
    vertices = sphere.vertices.copy()
    vertices[top] = [0.3, 0.2, -12.0]
    mesh = trimesh.Trimesh(vertices, sphere.faces, process=False)
    pairs = self_intersections(mesh)
    fan = np.flatnonzero((sphere.faces == top).any(axis=1))
    assert len(pairs) > 0
    assert np.isin(pairs, fan).any(axis=1).all()
    tri = mesh.triangles
    assert all(exact_intersect(tri[i], tri[j]) for i, j in pairs)
    assert pair_set(pairs) == crossing_pairs_exact(mesh, fan, np.setdiff1d(np.arange(len(mesh.faces)), fan))


def test_offset_beyond_concave_radius_folds():
    """The torus hole (radius 20 mm) is concave around the axis: an outward offset past 20 mm folds it."""
    torus = trimesh.creation.torus(major_radius=30.0, minor_radius=10.0, major_sections=64, minor_sections=32)
    assert not is_self_intersecting(offset(torus, 15.0))
    folded = offset(torus, 25.0)
    pairs = self_intersections(folded)
    assert len(pairs) > 0
    # Only faces that crossed the axis take part: those on the inner side of the hole.
    inner = np.linalg.norm(torus.triangles_center[:, :2], axis=1) < 30.0
    assert inner[pairs].all()


def test_mixed_face_sizes_match_brute_force():
    """Big box faces against small sphere faces exercise the broad phase's size classes."""
    box = trimesh.creation.box(extents=[20.0, 20.0, 20.0])
    ball = moved(trimesh.creation.icosphere(3, radius=6.0), shift([9.0, 2.0, -3.0]))
    mesh = concatenated(box, ball)
    pairs = self_intersections(mesh)
    i, j = np.meshgrid(np.arange(12), np.arange(12, len(mesh.faces)), indexing="ij")
    i, j = i.ravel(), j.ravel()
    brute = triangle_pairs_intersect(mesh.triangles[i], mesh.triangles[j])
    assert len(pairs) > 0
    assert pair_set(pairs) == pair_set(np.column_stack([i[brute], j[brute]]))


def test_triangle_soup_matches_brute_force():
    """Unconnected triangles of sizes spread over 3 decades: broad phase misses nothing."""
    rng = np.random.default_rng(3)
    n = 400
    centers = rng.uniform(0.0, 50.0, (n, 1, 3))
    sizes = 10.0 ** rng.uniform(-1.0, 1.5, (n, 1, 1))
    tri = centers + sizes * rng.normal(size=(n, 3, 3))
    mesh = trimesh.Trimesh(tri.reshape(-1, 3), np.arange(3 * n).reshape(-1, 3), process=False)
    i, j = np.triu_indices(n, k=1)
    brute = triangle_pairs_intersect(tri[i], tri[j])
    assert 0 < brute.sum() < len(i)
    assert pair_set(self_intersections(mesh)) == pair_set(np.column_stack([i[brute], j[brute]]))


# --- near misses and contact ---

def test_boxes_0p01_mm_apart_face_to_face():
    a = trimesh.creation.box(bounds=[[0, 0, 0], [10, 10, 10]])
    b = trimesh.creation.box(bounds=[[10.01, 2, 3], [20, 8, 9]])
    assert not is_self_intersecting(concatenated(a, b))
    assert is_self_intersecting(concatenated(a, b), tolerance_mm=0.02)
    touching = trimesh.creation.box(bounds=[[10.0, 2, 3], [20, 8, 9]])
    pairs = self_intersections(concatenated(a, touching))
    assert len(pairs) > 0 and (pairs[:, 0] < 12).all() and (pairs[:, 1] >= 12).all()


def test_box_edge_0p01_mm_above_face():
    """A box standing on an edge, turned about two axes, its lowest edge 0.01 mm above a face."""
    a = trimesh.creation.box(extents=[10.0, 10.0, 10.0])
    turn = trimesh.transformations.rotation_matrix(np.pi / 4, [1, 0, 0])
    twist = trimesh.transformations.rotation_matrix(0.3, [0, 0, 1])
    b = moved(trimesh.creation.box(extents=[4.0, 4.0, 4.0]), twist @ turn)
    for gap, found in [(0.01, False), (0.0, True), (-0.01, True)]:
        lift = 5.0 + gap - b.bounds[0, 2]
        mesh = concatenated(a, moved(b, shift([0.5, -0.5, lift])))
        assert is_self_intersecting(mesh) == found, gap


# --- invariance and edge cases ---

@pytest.mark.parametrize("seed", [0, 1])
def test_face_order_does_not_matter(seed):
    a = trimesh.creation.box(extents=[10.0, 10.0, 10.0])
    b = moved(trimesh.creation.icosphere(2, radius=4.0), shift([4, 3, 2]))
    mesh = concatenated(a, b)
    pairs = self_intersections(mesh)
    order = np.random.default_rng(seed).permutation(len(mesh.faces))
    shuffled = trimesh.Trimesh(mesh.vertices, mesh.faces[order], process=False)
    back = np.sort(order[self_intersections(shuffled)], axis=1)
    assert len(pairs) > 0
    assert pair_set(back) == pair_set(pairs)


def test_pairs_are_ordered_and_unique():
    mesh = offset(trimesh.creation.torus(30.0, 10.0, major_sections=32, minor_sections=16), 25.0)
    pairs = self_intersections(mesh)
    assert pairs.dtype == np.int64 and (pairs[:, 0] < pairs[:, 1]).all()
    assert len(pair_set(pairs)) == len(pairs)
    assert (np.lexsort((pairs[:, 1], pairs[:, 0])) == np.arange(len(pairs))).all()


def test_degenerate_and_empty_meshes():
    empty = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=int))
    assert self_intersections(empty).shape == (0, 2)
    # A zero-area face still counts as a segment: here it pierces the first triangle.
    vertices = [[0, 0, 0], [10, 0, 0], [0, 10, 0], [2, 2, -1], [2, 2, 1], [2, 2, 3]]
    mesh = trimesh.Trimesh(vertices, [[0, 1, 2], [3, 4, 5]], process=False)
    assert self_intersections(mesh).tolist() == [[0, 1]]
    with pytest.raises(ValueError):
        self_intersections(mesh, tolerance_mm=-1.0)


# --- narrow phase against the exact reference ---

def test_random_pairs_match_exact_reference():
    rng = np.random.default_rng(11)
    a, b = rng.uniform(0, 1, (2, 600, 3, 3))
    got = triangle_pairs_intersect(a, b, tolerance=0.0)
    want = np.array([exact_intersect(x, y) for x, y in zip(a, b)])
    assert 50 < want.sum() < 550
    assert (got == want).all()


def test_random_coplanar_pairs_match_exact_reference():
    rng = np.random.default_rng(12)
    a, b = rng.uniform(0, 1, (2, 600, 3, 3))
    a[:, :, 2] = b[:, :, 2] = 0.25
    got = triangle_pairs_intersect(a, b, tolerance=0.0)
    want = np.array([exact_intersect(x, y) for x, y in zip(a, b)])
    assert 50 < want.sum() < 550
    assert (got == want).all()


@pytest.mark.parametrize("gap, tolerance, found", [
    (0.0, 0.0, True), (1e-7, 1e-6, True), (2e-6, 1e-6, False), (0.01, 1e-6, False), (0.01, 0.011, True),
])
def test_tolerance_is_a_distance(gap, tolerance, found):
    """Triangles ``gap`` mm from a triangle: parallel above it, poking at it, and beside it in its plane."""
    a = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0]])
    parallel = a + [1.0, 1.0, gap]
    poking = np.array([[2.0, 2.0, gap], [3.0, 2.0, 5.0], [2.0, 3.0, 5.0]])
    beside = np.array([[-1.0, -gap, 0.0], [11.0, -gap, 0.0], [5.0, -10.0, 0.0]])
    others = np.stack([parallel, poking, beside])
    got = triangle_pairs_intersect(np.broadcast_to(a, others.shape), others, tolerance=tolerance)
    assert got.tolist() == [found, found, found]
