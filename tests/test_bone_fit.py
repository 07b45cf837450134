"""Mean bones fitted into a limb without bones: checked against OpenLimb limbs whose own bones are
known, and refused where they cannot be placed."""

from dataclasses import replace

import numpy as np
import pytest
import trimesh

from socketcad.anatomy.bone_fit import MIN_COVER_MM, _least_cover_mm, with_mean_bones
from socketcad.anatomy.limb import CaptureOptions, load_limb
from socketcad.errors import InputError


def skin_only(limb):
    return replace(limb, bones={})


@pytest.mark.parametrize("sample", ["openlimb-tt-1p20", "openlimb-tt-1m20", "openlimb-tt-102p"])
def test_fitted_bones_lie_near_the_limbs_own(sample):
    """OpenLimb shape modes (long, short, wide limbs): the fitted tibia and fibula surfaces lie on average
    within 5 mm of the limb's own bones (measured 2.3-4.7 mm), under at least the minimum tissue cover."""
    limb = load_limb(f"sample:{sample}", CaptureOptions())
    fitted = with_mean_bones(skin_only(limb))
    for name in ("tibia", "fibula"):
        _, distance, _ = trimesh.proximity.closest_point(fitted.bones[name], limb.bones[name].vertices)
        assert distance.mean() < 5.0, f"{sample} {name}: mean distance {distance.mean():.1f} mm to its own bone"
    assert _least_cover_mm(fitted.bones, fitted) >= MIN_COVER_MM
    assert "OpenLimbTT mean bones fitted" in fitted.notes[-1]


def test_a_left_limb_gets_mirrored_bones():
    right = load_limb("sample:openlimb-tt-mean", CaptureOptions())
    left = load_limb("sample:openlimb-tt-mean", CaptureOptions(flip_side=True))
    fitted = with_mean_bones(skin_only(left))
    fibula_x = fitted.bones["fibula"].vertices[:, 0].mean()
    assert np.sign(fibula_x) == -np.sign(right.bones["fibula"].vertices[:, 0].mean())
    assert np.isclose(fibula_x, left.bones["fibula"].vertices[:, 0].mean(), atol=0.5)


def test_a_scan_is_drawn_in_until_the_bones_are_covered():
    """The AmpScan scan: its width ratios (0.82) would put the mean bones too close to its skin, so they
    are drawn in towards the axis (to 0.75) until they lie MIN_COVER_MM under it."""
    scan = load_limb("sample:ampscan-tt-scan", CaptureOptions(side="right"))
    fitted = with_mean_bones(scan)
    assert _least_cover_mm(fitted.bones, fitted) >= MIN_COVER_MM
    assert set(fitted.bones) == {"tibia", "fibula", "patella", "femur"}


def test_unknown_side_is_refused():
    scan = load_limb("sample:ampscan-tt-scan", CaptureOptions())
    with pytest.raises(InputError, match="give `side` left or right"):
        with_mean_bones(scan)


def test_a_scan_without_bones_gets_a_tissue_mesh_and_says_so():
    """Interface mechanics on a scan: the tissue mesh is built around the fitted bones, and its notes
    (carried into the analysis summary) say the bones are the fitted mean."""
    from socketcad.biomech.mesh import tissue_mesh

    scan = load_limb("sample:ampscan-tt-scan", CaptureOptions(side="right"))
    tissue = tissue_mesh(scan, edge_mm=14.0)
    assert any("OpenLimbTT mean bones fitted" in note for note in tissue.notes)
    assert tissue.rigid.any() and not tissue.rigid.all()
    assert len(tissue.skin_faces) > 1000
