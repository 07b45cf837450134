"""Offsets over creases narrower than the offset, and the capture repairs their inputs need."""

import numpy as np
import pytest
import trimesh

from shapes import cylinder_with_dome
from socketcad.geometry import deform, repair, solid
from socketcad.geometry.intersect import self_intersections


def creased_limb(depth_mm: float = 6.0, half_width_mm: float = 4.0) -> trimesh.Trimesh:
    """A 40 mm cylinder on a domed end with a V crease at z = 80 mm over its lateral quarter
    (fading out over 45 degrees each side), like the OpenLimbTF mean's distal thigh: a
    concave curvature radius (zero at the bottom of the V) far below a 10 mm offset."""
    limb = cylinder_with_dome(40.0, 120.0, edge=0.75)
    x, y, z = limb.vertices.T
    angle = np.arctan2(y, x)
    across = np.clip(1.0 - np.abs(z - 80.0) / half_width_mm, 0.0, None)
    along = np.clip(1.0 - np.abs(angle) / np.radians(45.0), 0.0, None)
    radius = np.hypot(x, y)
    inward = depth_mm * across * along
    scale = np.where(radius > 0, (radius - inward) / np.maximum(radius, 1e-12), 1.0)
    return trimesh.Trimesh(np.column_stack([x * scale, y * scale, z]), limb.faces, process=False)


def test_plain_normal_offset_of_the_groove_crosses_itself():
    """The case the bridging exists for: without it, the wall's outer surface is not a solid's."""
    limb = creased_limb()
    plain = limb.vertices + 10.0 * deform.vertex_normals(limb)
    assert len(self_intersections(trimesh.Trimesh(plain, limb.faces, process=False))) > 0


def test_offset_bridges_a_crease_narrower_than_the_distance():
    limb = creased_limb()
    offset = solid.offset_surface(limb, 10.0, chords_outside=True)
    assert len(self_intersections(trimesh.Trimesh(offset, limb.faces, process=False))) == 0
    _, gap = solid.closest_points(limb, offset)
    assert gap.min() >= 10.0 - 1e-3  # never thinner than asked
    _, centre_gap = solid.closest_points(limb, offset[limb.faces].mean(axis=1))
    assert centre_gap.min() >= 10.0 - 0.05  # faces too, not only vertices (a wall may be 0.1 mm short)
    crease = (np.abs(limb.vertices[:, 2] - 80.0) < 2.0) & (np.abs(np.arctan2(limb.vertices[:, 1], limb.vertices[:, 0])) < 0.3)
    radius = np.linalg.norm(offset[crease, :2], axis=1)
    # The bridge spans the crease's mouth near the cylinder's offset, 50 mm, not its bottom's (44 mm).
    assert radius.min() >= 49.0
    # Away from the crease the offset is the exact one.
    far = (np.abs(limb.vertices[:, 2] - 80.0) > 25.0) & (limb.vertices[:, 2] > 45.0)
    assert np.linalg.norm(offset[far, :2], axis=1) == pytest.approx(50.0, abs=0.02)


def test_offset_of_a_smooth_limb_is_exact_and_not_bridged():
    limb = cylinder_with_dome(40.0, 120.0)
    offset = solid.offset_surface(limb, 5.0)
    _, gap = solid.closest_points(limb, offset)
    assert gap == pytest.approx(5.0, abs=1e-6)


def test_out_to_offset_moves_points_along_their_direction_only():
    plane = trimesh.Trimesh([[-50, -50, 0], [50, -50, 0], [50, 50, 0], [-50, 50, 0]], [[0, 1, 2], [0, 2, 3]], process=False)
    points = np.array([[0.0, 0.0, 2.0], [10.0, 0.0, 7.0]])
    slanted = np.array([[0.6, 0.0, 0.8], [0.0, 0.0, 1.0]])
    moved = solid.out_to_offset(plane, points, slanted, 5.0)
    assert moved[0] == pytest.approx([0.0 + 0.6 * 3.75, 0.0, 5.0])  # 3 mm short at 0.8 per mm along the ray
    assert moved[1] == pytest.approx(points[1])  # already far enough: stays


def dome_grid(n: int = 41, size_mm: float = 40.0) -> trimesh.Trimesh:
    """A gently domed square grid (z = -(x^2 + y^2) / 400), normals up."""
    x, y = np.meshgrid(np.linspace(-size_mm / 2, size_mm / 2, n), np.linspace(-size_mm / 2, size_mm / 2, n))
    vertices = np.column_stack([x.ravel(), y.ravel(), -(x.ravel() ** 2 + y.ravel() ** 2) / 400.0])
    index = np.arange(n * n).reshape(n, n)
    a, b, c, d = index[:-1, :-1].ravel(), index[:-1, 1:].ravel(), index[1:, 1:].ravel(), index[1:, :-1].ravel()
    faces = np.vstack([np.column_stack([a, b, c]), np.column_stack([a, c, d])])
    return trimesh.Trimesh(vertices, faces, process=False)


def test_a_crescent_hole_is_patched_without_folds():
    """A fan to the centroid of a crescent reaches outside it and folds; the triangulated patch does not."""
    grid = dome_grid()
    centre = grid.triangles_center[:, :2]
    crescent = (np.linalg.norm(centre, axis=1) < 10.0) & (np.linalg.norm(centre - [6.0, 0.0], axis=1) > 8.0)
    holed = repair.submesh(grid, ~crescent)
    filled, count = repair.fill_holes(holed, max_perimeter=200.0)
    assert count == 1 and len(repair.boundary_loops(filled)) == 1  # the outer edge only
    assert len(deform.inverted_faces(filled)) == 0
    hole = sorted(repair.boundary_loops(holed), key=lambda lp: repair.loop_perimeter(holed.vertices, lp))[0]
    fan = trimesh.Trimesh(np.vstack([holed.vertices, holed.vertices[hole].mean(axis=0)]),
                          np.vstack([holed.faces, repair.cap_faces(hole, len(holed.vertices))]), process=False)
    assert len(deform.inverted_faces(fan)) > 0


def test_figure_eight_loop_is_split_at_its_repeated_vertex():
    loops = repair.simple_loops(np.array([0, 1, 2, 3, 4, 2, 5]))
    assert sorted(map(list, loops)) == [[0, 1, 2, 5], [2, 3, 4]]


def test_a_pleat_is_faired_into_the_surface_around():
    grid = dome_grid()
    middle = 20 * 41 + 20
    folded = grid.vertices.copy()
    folded[middle, 0] += 2.5  # past its neighbour 1 mm away: the faces around it turn over
    pleated = trimesh.Trimesh(folded, grid.faces, process=False)
    assert len(deform.inverted_faces(pleated)) > 0
    faired, found, left = deform.unfold_pleats(pleated)
    assert found > 0 and left == 0
    assert np.abs(faired.vertices - grid.vertices).max() < 0.1  # back on the dome, near where it was


def test_a_face_held_by_its_corners_only_is_dropped():
    grid = dome_grid(n=5)
    extra = np.array([[0, 12, 24]])  # three grid vertices, none of its edges in the grid
    mesh = trimesh.Trimesh(grid.vertices, np.vstack([grid.faces, extra]), process=False)
    cleaned, dropped = repair.drop_dangling_faces(mesh)
    assert dropped == 1 and len(cleaned.faces) == len(grid.faces)


def test_a_shell_is_split_clear_of_its_vertices():
    """A vertex a hair below the splitting plane leaves slivers that the booleans make touch
    (2 crossing face pairs on the benchmark socket before): the plane moves up a little."""
    limb = cylinder_with_dome(40.0, 60.0)
    ring = limb.vertices[:, 2]
    height = float(ring[np.argmin(np.abs(ring - 70.0))]) + 1e-4  # 0.1 um above a ring of vertices
    outer = solid.offset_surface(limb, 4.0)
    lower, upper, seam = solid.split_shell(limb.vertices, limb.faces, outer, height)
    plane = float(upper.vertices[seam, 2].min())
    assert np.abs(np.concatenate([limb.vertices[:, 2], outer[:, 2]]) - plane).min() >= solid.SPLIT_CLEARANCE_MM
    assert plane - height < 1.0
    joined = solid.rejoined(lower, upper, seam)
    assert joined.is_watertight and len(self_intersections(joined)) == 0


def test_closest_faces_answers_every_point_when_a_vertex_has_no_face():
    """A point whose nearest vertex belongs to no face (a tet mesh's inner vertex beside its skin
    faces) still gets its nearest face: once it silently dropped out of the answer."""
    box = trimesh.creation.box()
    mesh = trimesh.Trimesh(np.vstack([box.vertices, [[0.0, 0.0, 0.45]]]), box.faces, process=False)
    closest, distance, face = solid.closest_faces(mesh, np.array([[0.0, 0.0, 0.4], [2.0, 0.0, 0.0]]))
    assert len(face) == 2
    assert np.allclose(distance, [0.1, 1.5])
    assert np.allclose(closest, [[0.0, 0.0, 0.5], [0.5, 0.0, 0.0]])
