"""Rectification engine: regions, modifications, plans and their errors, on closed-form shapes."""

import numpy as np
import pytest
import trimesh

from shapes import cylinder_with_dome
from socketcad.anatomy.landmarks import Landmark
from socketcad.anatomy.limb import Limb
from socketcad.design.plan import plan_from_dict, read_plan, write_plan
from socketcad.design.rectify import rectify, region_table
from socketcad.errors import InputError
from socketcad.geometry import measure
from socketcad.geometry.frame import Frame
from socketcad.geometry.units import UnitChoice

RADIUS, LENGTH = 50.0, 200.0


def cylinder_limb(edge: float = 1.0) -> Limb:
    """A 50 mm-radius cylinder on a hemispherical end (a limb-sized closed form), two landmarks."""
    skin = cylinder_with_dome(RADIUS, LENGTH, edge=edge)
    anterior = Landmark("mpt", np.array([0.0, RADIUS, 150.0]), np.array([0.0, 1.0, 0.0]), "test")
    lateral = Landmark("fibular_head", np.array([RADIUS, 0.0, 150.0]), np.array([1.0, 0.0, 0.0]), "test")
    return Limb(skin=skin, bones={}, level="transtibial", side="right", frame=Frame(np.eye(3), np.zeros(3)),
                units=UnitChoice("mm", 1.0, "test"), source="cylinder",
                landmarks={"mpt": anterior, "fibular_head": lateral})


def plan(*modifications, **extra) -> dict:
    return {"schema_version": 1, "modifications": list(modifications), **extra}


def push(depth=6.0, landmark="mpt", width=40.0, height=20.0, falloff=30.0, **region) -> dict:
    return {"kind": "push", "depth_mm": depth,
            "region": {"landmark": landmark, "width_mm": width, "height_mm": height, "falloff_mm": falloff, **region}}


def max_dihedral_deg(vertices, faces) -> float:
    return float(np.degrees(trimesh.Trimesh(vertices, faces, process=False).face_adjacency_angles.max()))


@pytest.fixture(scope="module")
def cylinder():
    return cylinder_limb()


def test_push_on_a_cylinder_is_exact_at_the_centre_zero_outside_and_creaseless(cylinder):
    depth, half_width, half_height, falloff = 6.0, 20.0, 10.0, 30.0
    result = rectify(cylinder, plan_from_dict(plan(push(depth))))
    before, after = cylinder.skin.vertices, result.skin.vertices
    radial_change = np.hypot(*after[:, :2].T) - np.hypot(*before[:, :2].T)
    centre = result.local_effects[0].placement.centre_vertex
    assert radial_change[centre] == pytest.approx(-depth, abs=0.05)
    assert result.deviation_mm[centre] == pytest.approx(-depth, abs=0.05)
    # Outside the falloff ellipse, measured exactly along the cylinder (arc around, length along).
    around = RADIUS * np.angle(np.exp(1j * (np.arctan2(before[:, 1], before[:, 0]) - np.pi / 2)))
    along = before[:, 2] - 150.0
    outside = (around / (half_width + falloff)) ** 2 + (along / (half_height + falloff)) ** 2 > 1.0
    assert np.abs(after - before)[outside].max() < 0.01
    assert max_dihedral_deg(after, cylinder.skin.faces) < max_dihedral_deg(before, cylinder.skin.faces) + 5.0


def test_relief_moves_outwards_and_pushes_add(cylinder):
    result = rectify(cylinder, plan_from_dict(plan(
        push(3.0, width=20, falloff=15), push(2.0, width=20, falloff=15),
        {"kind": "relief", "depth_mm": 4.0,
         "region": {"landmark": "fibular_head", "width_mm": 20, "height_mm": 20, "falloff_mm": 15}})))
    table = {row["index"]: row for row in region_table(result)}
    assert table[0]["centre_deviation_mm"] == pytest.approx(-5.0, abs=0.05)  # two pushes on one spot add
    assert table[2]["centre_deviation_mm"] == pytest.approx(4.0, abs=0.05)
    assert table[2]["target_mm"] == 4.0 and table[0]["target_mm"] == -3.0


def test_plan_order_does_not_change_the_result(cylinder):
    mods = [push(4.0), {"kind": "reduction", "profile": [{"level_pct": 0, "reduction_pct": 0},
                                                        {"level_pct": 100, "reduction_pct": 5}]},
            {"kind": "distal", "elongation_mm": 5.0, "length_mm": 40.0}]
    one = rectify(cylinder, plan_from_dict(plan(*mods))).skin.vertices
    other = rectify(cylinder, plan_from_dict(plan(*mods[::-1]))).skin.vertices
    np.testing.assert_allclose(one, other, atol=1e-9)


@pytest.mark.parametrize("reduction_pct", [3.0, 6.0, 9.0])
def test_uniform_reduction_scales_every_circumference_and_the_volume(cylinder, reduction_pct):
    result = rectify(cylinder, plan_from_dict(plan(
        {"kind": "reduction", "profile": [{"level_pct": 50, "reduction_pct": reduction_pct}]})))
    levels = np.arange(10.0, 240.0, 10.0)
    before = measure.profile(cylinder.skin, levels)
    after = measure.profile(result.skin, levels)
    for b, a in zip(before, after):
        change = 100.0 * (1.0 - a.circumference_mm / b.circumference_mm)
        assert change == pytest.approx(reduction_pct, abs=0.2), f"at {b.level_mm} mm"
    expected = 100.0 * (1.0 - (1.0 - reduction_pct / 100.0) ** 2)
    assert -result.volume_change_pct == pytest.approx(expected, abs=0.3)


def test_tapered_reduction_follows_its_profile(cylinder):
    result = rectify(cylinder, plan_from_dict(plan(
        {"kind": "reduction", "profile": [{"level_pct": 0, "reduction_pct": 0}, {"level_pct": 100, "reduction_pct": 5}]})))
    length = cylinder.brim_low_mm
    for fraction in (0.25, 0.5, 0.75):
        level = fraction * length
        b, a = measure.profile(cylinder.skin, [level])[0], measure.profile(result.skin, [level])[0]
        assert 100 * (1 - a.circumference_mm / b.circumference_mm) == pytest.approx(5 * fraction, abs=0.2)


def test_distal_elongation_lengthens_by_the_given_amount_and_keeps_the_top(cylinder):
    result = rectify(cylinder, plan_from_dict(plan({"kind": "distal", "elongation_mm": 8.0, "length_mm": 60.0})))
    assert result.skin.vertices[:, 2].min() == pytest.approx(-8.0, abs=1e-9)
    top = cylinder.skin.vertices[:, 2] > 60.0
    np.testing.assert_array_equal(result.skin.vertices[top], cylinder.skin.vertices[top])


def test_flare_opens_the_brim_smoothly(cylinder):
    result = rectify(cylinder, plan_from_dict(plan({"kind": "flare", "flare_mm": 5.0, "height_mm": 30.0})))
    radius = np.hypot(*result.skin.vertices[:, :2].T)
    z = cylinder.skin.vertices[:, 2]
    top = z.max()
    assert radius[np.isclose(z, top)].min() == pytest.approx(RADIUS + 5.0, abs=1e-6)
    original = np.hypot(*cylinder.skin.vertices[:, :2].T)
    assert np.abs(radius - original)[z < top - 30.0].max() < 1e-6
    assert max_dihedral_deg(result.skin.vertices, cylinder.skin.faces) < max_dihedral_deg(
        cylinder.skin.vertices, cylinder.skin.faces) + 5.0


def test_smoothing_keeps_volume_and_the_brim(cylinder):
    bumpy = rectify(cylinder, plan_from_dict(plan(push(3.0, width=5, height=5, falloff=6))))
    bumpy_limb = bumpy.rectified_limb()
    smoothed = rectify(bumpy_limb, plan_from_dict(plan({"kind": "smooth", "iterations": 10})))
    assert smoothed.volume_change_pct == pytest.approx(0.0, abs=0.01)
    brim = measure.brim_loop(bumpy_limb.skin)
    np.testing.assert_array_equal(smoothed.skin.vertices[brim], bumpy_limb.skin.vertices[brim])
    assert max_dihedral_deg(smoothed.skin.vertices, cylinder.skin.faces) < max_dihedral_deg(
        bumpy_limb.skin.vertices, cylinder.skin.faces)


def test_plan_round_trips_through_yaml_and_json(tmp_path):
    data = plan(push(5.0), {"kind": "smooth", "iterations": 3}, name="mine", sources=["test"])
    original = plan_from_dict(data)
    for name in ("plan.yaml", "plan.json"):
        write_plan(original, tmp_path / name)
        assert read_plan(tmp_path / name) == original


@pytest.mark.parametrize("data, message", [
    pytest.param(plan(push(landmark="knee_cap")), r"modifications\[0\]\.region\.landmark: unknown landmark 'knee_cap'",
                 id="unknown-landmark"),
    pytest.param(plan({"kind": "reduction", "profile": [{"level_pct": 10, "reduction_pct": -25}]}),
                 r"modifications\[0\]\.profile\[0\]\.reduction_pct: .*-10", id="negative-reduction-beyond-10"),
    pytest.param(plan({"kind": "reduction", "profile": [{"level_pct": 10, "reduction_pct": 25}]}),
                 r"modifications\[0\]\.profile\[0\]\.reduction_pct: .*20", id="reduction-over-20"),
    pytest.param({**plan(push()), "schema_version": 2}, r"schema_version: .*version 2 is not supported",
                 id="wrong-schema-version"),
    pytest.param(plan(push(depth=-3)), r"modifications\[0\]\.depth_mm: .*greater than 0", id="negative-depth"),
    pytest.param(plan(push(depth=10, falloff=5)), r"falloff_mm", id="too-steep"),
    pytest.param(plan({"kind": "pushh"}), r"modifications\[0\]: .*'pushh'", id="unknown-kind"),
    pytest.param(plan(push(colour="red")), r"modifications\[0\]\.region\.colour: .*not permitted", id="unknown-field"),
    pytest.param({"modifications": []}, r"schema_version: Field required", id="no-version"),
    pytest.param(plan(push(proximal_mm=float("inf"))), r"modifications\[0\]\.region\.proximal_mm: .*finite", id="infinite-shift"),
    pytest.param(plan(*[{"kind": "reduction", "profile": [{"level_pct": 50, "reduction_pct": 15}]}] * 2),
                 r"reductions add up to 30", id="stacked-reductions"),
    pytest.param(plan(*[{"kind": "distal", "elongation_mm": -19, "length_mm": 40}] * 2), r"fold", id="stacked-distal"),
])
def test_bad_plans_name_the_field(data, message):
    with pytest.raises(InputError, match=message):
        plan_from_dict(data, "plan.yaml")


def test_overlapping_push_and_relief_contradict(cylinder):
    relief = {"kind": "relief", "depth_mm": 3.0,
              "region": {"landmark": "mpt", "proximal_mm": 5.0, "width_mm": 30, "height_mm": 20, "falloff_mm": 10}}
    with pytest.raises(InputError, match=r"modifications\[0\] \(push at mpt\) and modifications\[1\] \(relief at mpt\) overlap"):
        rectify(cylinder, plan_from_dict(plan(push(), relief)))


def test_a_landmark_the_limb_lacks_is_named(cylinder):
    with pytest.raises(InputError, match=r"modifications\[0\]\.region\.landmark: 'popliteal' has not been located"):
        rectify(cylinder, plan_from_dict(plan(push(landmark="popliteal"))))


def test_normals_carried_through_reduction_and_distal_shaping_match_recomputed_ones(cylinder):
    from socketcad.design.rectify import _global_map, skin_normals
    from socketcad.geometry.deform import vertex_normals

    mods = plan_from_dict(plan(
        {"kind": "reduction", "profile": [{"level_pct": 0, "reduction_pct": 2}, {"level_pct": 60, "reduction_pct": 8}]},
        {"kind": "distal", "elongation_mm": 10.0, "length_mm": 60.0})).modifications
    vertices, carried = _global_map(cylinder.skin.vertices, [(0, mods[0])], [(1, mods[1])],
                                    cylinder.brim_low_mm, skin_normals(cylinder.skin))
    recomputed = vertex_normals(cylinder.skin, vertices)
    angle = np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", carried, recomputed), -1, 1)))
    assert np.percentile(angle, 99) < 0.05 and angle.max() < 1.0  # measured: 0.005 and 0.57 deg (apex)


def test_stacked_pushes_beyond_25_mm_are_refused(cylinder):
    with pytest.raises(InputError, match=r"add up to 30.0 mm"):
        rectify(cylinder, plan_from_dict(plan(*[push(10.0, falloff=30)] * 3)))
