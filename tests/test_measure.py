"""Exact measures: closed forms, invariance, and the published sample values."""

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from shapes import cone, cylinder_with_dome, polygon_area
from socketcad.anatomy.limb import CaptureOptions, load_limb
from socketcad.anatomy.measures import measure_limb, percent_levels
from socketcad.geometry import measure, repair


@pytest.fixture(scope="module")
def scan():
    return load_limb("sample:ampscan-tt-scan")


def test_openlimb_mean_skin_volume_matches_published():
    limb = load_limb("sample:openlimb-tt-mean")
    volume_cm3 = measure.enclosed_volume_mm3(limb.skin) / 1000
    assert volume_cm3 == pytest.approx(2174, rel=0.01), volume_cm3


def test_ampscan_volume_and_perimeters_match_published(scan):
    volume_cm3 = measure.enclosed_volume_mm3(scan.skin) / 1000
    assert volume_cm3 == pytest.approx(1643, rel=0.01), volume_cm3
    got = [s.circumference_mm for s in percent_levels(scan, [0.1, 0.5, 0.9])]
    for value, published in zip(got, [203, 285, 371]):
        assert value == pytest.approx(published, rel=0.01), got


def test_ampscan_perimeters_in_the_scanners_own_axis_match_closely():
    """The published perimeters were taken along the scan's own z axis: --keep-axis."""
    limb = load_limb("sample:ampscan-tt-scan", CaptureOptions(keep_axis=True))
    got = [s.circumference_mm for s in percent_levels(limb, [0.1, 0.5, 0.9])]
    for value, published in zip(got, [203, 285, 371]):
        assert value == pytest.approx(published, rel=0.003), got


def _rigid(mesh, seed):
    rng = np.random.default_rng(seed)
    rotation = Rotation.random(random_state=seed).as_matrix()
    vertices = mesh.vertices @ rotation.T + rng.uniform(-500, 500, 3)
    return trimesh.Trimesh(vertices, mesh.faces, process=False)


@pytest.mark.parametrize("seed", range(5))
def test_volume_invariant_under_rigid_motion_and_winding(scan, seed):
    reference = measure.enclosed_volume_mm3(scan.skin)
    moved = _rigid(scan.skin, seed)
    reversed_winding = trimesh.Trimesh(moved.vertices, moved.faces[:, ::-1], process=False)
    renumbered = _renumbered(reversed_winding, seed)
    for mesh in (moved, reversed_winding, renumbered):
        assert measure.enclosed_volume_mm3(mesh) == pytest.approx(reference, rel=1e-6)
    oriented, changed = repair.orient_outward(renumbered)
    assert changed and repair.capped_signed_volume(oriented) == pytest.approx(reference, rel=1e-6)


def _renumbered(mesh, seed):
    """The same surface with vertices numbered in another order (the brim loop is traced
    from another start vertex) and faces shuffled."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(mesh.vertices))
    new_index = np.empty_like(order)
    new_index[order] = np.arange(len(order))
    faces = new_index[mesh.faces][rng.permutation(len(mesh.faces))]
    return trimesh.Trimesh(mesh.vertices[order], faces, process=False)


def test_reversed_brim_loop_gives_the_same_volume():
    """A tube open at both ends: two loops, each capped; reversing everything changes nothing."""
    radius = 40.0
    tube = cylinder_with_dome(radius, 150)
    keep = tube.vertices[tube.faces].min(axis=1)[:, 2] >= radius - 1e-9  # drop the dome: a second opening
    tube = repair.submesh(tube, keep)
    loops = repair.boundary_loops(tube)
    assert len(loops) == 2
    volume = repair.capped_signed_volume(tube)
    flipped = trimesh.Trimesh(tube.vertices, tube.faces[:, ::-1], process=False)
    assert repair.capped_signed_volume(flipped) == pytest.approx(-volume, rel=1e-9)
    assert repair.capped_signed_volume(_renumbered(flipped, 3)) == pytest.approx(-volume, rel=1e-9)
    prism = polygon_area(radius, len(loops[0])) * np.ptp(tube.vertices[:, 2])
    assert volume == pytest.approx(prism, rel=1e-9)


@pytest.mark.parametrize("radius, height", [(50.0, 200.0), (30.0, 120.0)])
def test_capped_cone_matches_closed_form(radius, height):
    mesh = cone(radius, height, edge=1.0)
    exact = np.pi * radius**2 * height / 3
    assert measure.enclosed_volume_mm3(mesh) == pytest.approx(exact, rel=0.005)
    levels = np.array([0.2, 0.5, 0.8]) * height
    for section in measure.profile(mesh, levels):
        r = radius * section.level_mm / height
        assert section.circumference_mm == pytest.approx(2 * np.pi * r, rel=0.005)
        assert section.area_mm2 == pytest.approx(np.pi * r**2, rel=0.005)
        assert section.ap_width_mm == pytest.approx(2 * r, rel=0.005)


def test_cylinder_with_hemispherical_end_matches_closed_form():
    radius, length = 45.0, 200.0
    mesh = cylinder_with_dome(radius, length, edge=1.0)
    exact = np.pi * radius**2 * length + 2 / 3 * np.pi * radius**3
    assert measure.enclosed_volume_mm3(mesh) == pytest.approx(exact, rel=0.005)
    for section in measure.profile(mesh, [10.0, 30.0, 100.0, 200.0]):
        h = section.level_mm
        r = np.sqrt(radius**2 - (radius - h) ** 2) if h < radius else radius
        assert section.circumference_mm == pytest.approx(2 * np.pi * r, rel=0.005), h
        assert section.ml_width_mm == pytest.approx(2 * r, rel=0.005), h


def test_profile_marks_levels_above_the_lowest_brim_point():
    limb = load_limb("sample:openlimb-tt-mean")  # oblique proximal cut
    measures = measure_limb(limb, step_mm=10)
    brim_low = limb.brim_low_mm
    assert brim_low < measures.length_mm - 5
    for section in measures.profile:
        assert section.partial == (section.level_mm > brim_low)


def test_profile_from_a_named_level_steps_from_it():
    limb = load_limb("sample:ampscan-example-aop")
    mpt = limb.named_level("MPT")
    measures = measure_limb(limb, step_mm=10, start="MPT")
    offsets = np.array([s.level_mm - mpt for s in measures.profile])
    assert np.any(np.isclose(offsets, 0.0))
    assert np.allclose(np.round(offsets / 10), offsets / 10)


def test_sections_by_level_match_one_mask_per_level():
    """Faces found by binary search per face equal the plain mask per level, in any level order."""
    rng = np.random.default_rng(3)
    z = rng.uniform(0, 100, (5000, 3))
    z[:10] = 50.0  # faces lying exactly on a level are cut by none (z_low < h fails)
    z_low, z_high = z.min(axis=1), z.max(axis=1)
    heights = np.array([70.0, 10.0, 50.0, 50.0, 99.5, -1.0, 30.0])
    found = measure._faces_by_level(z_low, z_high, heights)
    for height, faces in zip(heights, found):
        np.testing.assert_array_equal(faces, np.flatnonzero((z_low < height) & (z_high >= height)))


def test_edge_key_sort_packed_and_plain_paths_agree():
    rng = np.random.default_rng(4)
    keys = rng.integers(0, 1000, 20000, dtype=np.int64)
    packed_order, packed_keys = repair._argsort_with_keys(keys, 1000)
    plain_order, plain_keys = repair._argsort_with_keys(keys, 2**62)  # too wide to pack
    np.testing.assert_array_equal(packed_keys, np.sort(keys))
    np.testing.assert_array_equal(plain_keys, packed_keys)
    np.testing.assert_array_equal(keys[packed_order], packed_keys)
    np.testing.assert_array_equal(keys[plain_order], plain_keys)


def test_edge_census_finds_boundary_and_flipped_faces(scan):
    skin = scan.skin
    boundary, consistent = repair.edge_census(skin)
    assert consistent
    loop = measure.brim_loop(skin)
    assert len(boundary) == sum(len(loop) for loop in repair.boundary_loops(skin)) and len(loop) > 50
    flipped = skin.faces.copy()
    flipped[7] = flipped[7, ::-1]
    assert not repair.edge_census(trimesh.Trimesh(skin.vertices, flipped, process=False))[1]
