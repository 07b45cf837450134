"""The clinic's rules without a database: fitting adjustments as plan deltas, the revision diff's wording,
and the sock advice against the published sock volumes."""

from __future__ import annotations

import pytest

from socketcad.clinic.diff import plan_changes
from socketcad.clinic.fitting import adjusted_plan, parse_adjustment
from socketcad.clinic.followup import sock_advice
from socketcad.design.plan import SCHEMA_VERSION, plan_from_dict
from socketcad.errors import InputError


def plan(*modifications):
    return plan_from_dict({"schema_version": SCHEMA_VERSION, "level": "transtibial", "modifications": list(modifications)})


def local(kind, landmark, depth, falloff=15.0):
    return {"kind": kind, "label": landmark, "depth_mm": depth,
            "region": {"landmark": landmark, "width_mm": 30, "height_mm": 30, "falloff_mm": falloff}}


def adjusted(base, *spoken):
    return adjusted_plan(base, [parse_adjustment(text, "transtibial") for text in spoken], "fitting 1")


def depths(result):
    return {(m.region.landmark, m.kind): m.depth_mm for m in result.modifications if hasattr(m, "region")}


def test_a_relief_deepens_the_relief_at_its_landmark_and_a_push_lessens_it():
    base = plan(local("relief", "fibular_head", 4.0), local("push", "mpt", 8.0))
    assert depths(adjusted(base, "relieve fibular_head 2mm")) == {("fibular_head", "relief"): 6.0, ("mpt", "push"): 8.0}
    assert depths(adjusted(base, "push fibular_head 1")) == {("fibular_head", "relief"): 3.0, ("mpt", "push"): 8.0}


def test_relieving_more_than_a_push_turns_it_into_a_relief_and_exactly_as_much_removes_it():
    base = plan(local("push", "mpt", 3.0))
    assert depths(adjusted(base, "relieve mpt 5")) == {("mpt", "relief"): 2.0}
    assert depths(adjusted(base, "relieve mpt 3")) == {}


def test_a_landmark_without_a_modification_gets_a_new_one_and_a_steep_one_a_wider_falloff():
    result = adjusted(plan(local("relief", "fibular_head", 6.0, falloff=15.0)), "push popliteal 2",
                      "relieve fibular_head 6")
    assert depths(result) == {("fibular_head", "relief"): 12.0, ("popliteal", "push"): 2.0}
    fibular = next(m for m in result.modifications if m.region.landmark == "fibular_head")
    assert fibular.region.falloff_mm >= 22.5  # 12 mm deep within the plan's steepest slope (1.875 x 12 mm)
    assert "fitting 1: relieve fibular_head 6 mm" in fibular.label


def test_a_proximal_reduction_tapers_from_the_brim_to_mid_length():
    result = adjusted(plan(), "reduce proximal 1.5%")
    (reduction,) = result.modifications
    assert [(p.level_pct, p.reduction_pct) for p in reduction.profile] == [(50.0, 0.0), (100.0, 1.5)]


@pytest.mark.parametrize("spoken, message", [
    ("relieve knee 2", "relieve takes a transtibial landmark"),
    ("reduce upper 1", "reduce takes proximal, distal or all"),
    ("relieve fibular_head 2%", "and millimetres"),
    ("relieve fibular_head 0", "changes nothing"),
    ("sand fibular_head 2", "is not understood"),
])
def test_an_adjustment_outside_the_grammar_is_refused(spoken, message):
    with pytest.raises(InputError, match=message):
        parse_adjustment(spoken, "transtibial")


def test_a_delta_beyond_the_plan_limits_is_refused():
    with pytest.raises(InputError, match="reductions add up"):
        adjusted(plan(), "reduce all 15", "reduce all 6")


def test_the_diff_names_each_change():
    before = plan(local("relief", "fibular_head", 4.0), local("push", "mpt", 8.0)).as_dict()
    after = adjusted(plan_from_dict(before), "relieve fibular_head 2", "reduce distal 1").as_dict()
    lines = plan_changes(before, after)
    assert lines[0] == "fibular_head: relief 4 mm -> relief 6 mm (+2 mm outward)"
    assert lines[1].startswith("added reduction 'fitting 1: reduce distal 1 %'") and len(lines) == 2
    assert plan_changes(before, before) == []


@pytest.mark.parametrize("change_pct, worn, advice, words", [
    (-0.9, 0, "none", "within the fabrication accuracy of +/-1.1 %"),
    (1.0, 0, "none", "within the fabrication accuracy"),
    (-3.0, 0, "add socks", "wear 1 ply in all (add 1); 1-ply takes up 5.2 %"),
    (-6.0, 0, "add socks", "wear 2 ply in all (add 2); 2-ply takes up 7.2 %"),
    (-9.0, 1, "add socks", "wear 3 ply in all (add 2)"),
    (-4.0, 2, "none", "taken up by the 2 ply now worn"),
    (-11.0, 0, "new socket", "beyond what socks take up (3-ply 10.4 %"),
    (2.5, 3, "new socket", "socks cannot take up growth"),
])
def test_sock_advice_follows_the_published_sock_volumes(change_pct, worn, advice, words):
    given, reasons = sock_advice(change_pct, worn)
    assert given == advice and words in " ".join(reasons)
    if change_pct > 0 and worn:
        assert "take off the 3 ply" in " ".join(reasons)


def test_a_scan_compared_with_itself_changed_nothing():
    """The baseline against a fresh reading of the same file: no volume change, an exact registration
    (point-to-plane ICP; point-to-point stopped 0.16 mm off, a 0.24 % volume error), no advice."""
    from socketcad.anatomy.landmarks import locate_landmarks
    from socketcad.anatomy.limb import load_limb
    from socketcad.clinic.followup import compare

    result = compare(locate_landmarks(load_limb("sample:openlimb-tt-mean")), load_limb("sample:openlimb-tt-mean"), 0).model_dump()
    print("self-comparison:", result["volume_change_pct"], "%, RMS", result["registration_rms_mm"], "mm")
    assert abs(result["volume_change_pct"]) < 0.05 and result["registration_rms_mm"] < 0.01
    assert result["advice"] == "none" and all(abs(row["mean_mm"]) < 0.05 for row in result["regions"])
    assert all(abs(row["change_pct"]) < 0.05 for row in result["circumferences"])


def test_a_transfemoral_follow_up_registers_on_the_pelvic_level_and_measures_the_loss(tmp_path):
    """The transfemoral mean limb, 6 % circumference loss at the distal end tapering to none 60 mm below the
    ischial tuberosity, moved and tilted, skin only: the loss below the ischial level is measured as built."""
    import numpy as np
    import trimesh

    from socketcad.anatomy.landmarks import locate_landmarks
    from socketcad.anatomy.limb import CaptureOptions, load_limb
    from socketcad.clinic.followup import _volume_below, compare

    baseline = locate_landmarks(load_limb("sample:openlimb-tf-mean"))
    skin = baseline.skin.copy()
    ischial = baseline.named_level("ischial_tuberosity")
    taper = np.clip((ischial - 60.0 - skin.vertices[:, 2]) / (ischial - 60.0), 0.0, 1.0)
    skin.vertices = skin.vertices * np.column_stack([1 - 0.06 * taper, 1 - 0.06 * taper, np.ones(len(taper))])
    built = 100.0 * (_volume_below(skin, ischial) / _volume_below(baseline.skin, ischial) - 1.0)
    motion = trimesh.transformations.rotation_matrix(np.radians(3.0), [1.0, 0.2, 0.1])
    motion[:3, 3] = [2.0, 5.0, -6.0]
    skin.apply_transform(motion)
    skin.export(tmp_path / "later.stl")
    later = load_limb(tmp_path / "later.stl", CaptureOptions(level="transfemoral", side=baseline.side))
    result = compare(baseline, later, 0).model_dump()
    print(f"transfemoral follow-up: built {built:.2f} %, measured {result['volume_change_pct']} %")
    assert abs(result["volume_change_pct"] - built) < 0.1 and result["registration_rms_mm"] < 0.1
    assert result["compared_below_mm"] == round(ischial, 1) and result["advice"] == "add socks"
