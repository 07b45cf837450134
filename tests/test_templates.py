"""Socket-type templates on real limbs (OpenLimbTT / OpenLimbTF means, landmarks from their bones)."""

import numpy as np
import pytest

from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import load_limb
from socketcad.design.plan import read_plan, write_plan
from socketcad.design.rectify import rectify, region_table
from socketcad.design.templates import TEMPLATES, TemplateInputs, template_plan, tsb_reduction_pct
from socketcad.errors import InputError
from socketcad.geometry import measure


@pytest.fixture(scope="module")
def tt():
    return locate_landmarks(load_limb("sample:openlimb-tt-mean"))


@pytest.fixture(scope="module")
def tf():
    return locate_landmarks(load_limb("sample:openlimb-tf-mean"))


def rows_by_label(result) -> dict[str, dict]:
    return {row["label"]: row for row in region_table(result)}


def test_ptb_bar_depth_and_fibular_head_relief(tt):
    inputs = TemplateInputs(bar_depth_mm=8.0)
    result = rectify(tt, template_plan("ptb", tt, inputs))
    rows = rows_by_label(result)
    bar = rows["patellar tendon bar"]
    assert bar["centre_deviation_mm"] == pytest.approx(-8.0, abs=0.5)
    assert bar["core_deviation_min_mm"] >= -8.5 and bar["core_deviation_max_mm"] <= -7.5
    fibula = rows["fibular head build-up"]
    assert fibula["centre_deviation_mm"] > 0  # outward
    assert fibula["centre_deviation_mm"] == pytest.approx(4.0, abs=0.5)
    # The bar sits over the patellar tendon: at the MPT landmark, facing forward.
    centre = result.local_effects[0].placement.centre_mm
    assert np.linalg.norm(centre - tt.landmarks["mpt"].point_mm) < 2.0


def test_tsb_with_a_6_mm_liner_reduces_circumferences_5_to_7_percent(tt):
    """Measured on the OpenLimbTT mean: circumferences at 20-90 % of length fall by 5.2-6.0 %
    (5.2 and 5.7 % at the levels of the fibular-head relief, 6.0 % elsewhere), the volume by 11.2 %."""
    assert tsb_reduction_pct(6.0) == 6.0
    result = rectify(tt, template_plan("tsb", tt, TemplateInputs(liner_thickness_mm=6.0)))
    levels = np.linspace(0.2, 0.9, 8) * tt.brim_low_mm
    before = measure.profile(tt.skin, levels)
    after = measure.profile(result.skin, levels)
    changes = [100 * (1 - a.circumference_mm / b.circumference_mm) for a, b in zip(after, before)]
    assert all(5.0 <= c <= 7.0 for c in changes), f"circumference reductions {np.round(changes, 2)} %"
    assert 10.0 <= -result.volume_change_pct <= 13.0, f"volume change {result.volume_change_pct:.1f} %"


def test_every_template_applies_to_its_level_deterministically(tt, tf):
    for name, (level, _) in TEMPLATES.items():
        limb = tt if level == "transtibial" else tf
        plan = template_plan(name, limb)
        assert plan.sources and plan.assumptions, name
        one, two = rectify(limb, plan), rectify(limb, plan)
        np.testing.assert_array_equal(one.skin.vertices, two.skin.vertices)
        assert -20.0 < one.volume_change_pct < 2.0, name


def test_template_of_the_wrong_level_is_refused(tf):
    with pytest.raises(InputError, match="template 'ptb' is for a transtibial limb"):
        template_plan("ptb", tf)
    with pytest.raises(InputError, match="unknown template 'ptbb'"):
        template_plan("ptbb", tf)


def test_sensitive_areas_from_the_evaluation_are_relieved(tt):
    plan = template_plan("ptb", tt, TemplateInputs(sensitive_areas=("mpt", "tibial_tuberosity")))
    kinds = {(m.kind, m.region.landmark) for m in plan.modifications if hasattr(m, "region")}
    assert ("push", "mpt") not in kinds and ("relief", "mpt") in kinds
    assert ("relief", "tibial_tuberosity") in kinds
    assert any("pressure-sensitive" in text for text in plan.assumptions)
    with pytest.raises(InputError, match="sensitive area 'knee' is not a transtibial landmark"):
        template_plan("ptb", tt, TemplateInputs(sensitive_areas=("knee",)))


def test_template_plans_are_editable_files(tt, tmp_path):
    plan = template_plan("kbm", tt)
    write_plan(plan, tmp_path / "kbm.yaml")
    assert read_plan(tmp_path / "kbm.yaml") == plan
