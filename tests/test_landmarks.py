"""Anatomical landmarks (issue 3, point 3) and bone names."""

import numpy as np
import pytest

from socketcad.anatomy.landmarks import (
    TRANSFEMORAL_LANDMARKS,
    TRANSTIBIAL_LANDMARKS,
    landmarks_from_bones,
    landmarks_from_skin,
    locate_landmarks,
    read_landmark_file,
)
from socketcad.anatomy.limb import CaptureOptions, load_limb, mirrored
from socketcad.errors import InputError

TT_SHAPES = ["openlimb-tt-mean", "openlimb-tt-102m", "openlimb-tt-102p", "openlimb-tt-1m20", "openlimb-tt-1p20"]
# Skin-only vs bone-derived, measured (mm; mean, 102m, 102p, 1m20, 1p20). The skin-only constants
# were measured on the mean shape only, so the mean's small figures are by construction and the
# 4 mode shapes are the test: mpt 4.2 6.6 8.1 1.2 7.6; tibial_tuberosity 7.5 7.6 3.9 6.6 6.5;
# tibial_crest 2.9 3.1 4.1 4.4 5.6; fibular_head 0.4 6.6 8.9 2.9 4.5; distal_tibia 0.2 2.1 6.9 2.5 3.7;
# flares (medial/lateral) 0.3/0.6 2.6/2.3 2.4/2.3 4.9/1.6 2.1/2.8; popliteal and hamstrings <= 5.1;
# distal_end 0 (defined on the skin in both).


@pytest.fixture(scope="module")
def tt_limbs():
    return {name: load_limb(f"sample:{name}") for name in TT_SHAPES}


@pytest.fixture(scope="module")
def mean_marked(tt_limbs):
    return locate_landmarks(tt_limbs["openlimb-tt-mean"])


@pytest.fixture(scope="module")
def scan():
    # Anterior of the AmpScan scan is file -y, found by inspecting its sections: a narrow
    # ridge (tibial crest) along the whole shaft and the patella bulge near the top both face -y.
    return load_limb("sample:ampscan-tt-scan", CaptureOptions(anterior=(0.0, -1.0, 0.0), side="right"))


def test_bones_carry_anatomical_names(tt_limbs):
    for limb in tt_limbs.values():
        assert set(limb.bones) == {"tibia", "fibula", "patella", "femur"}
        assert limb.side == "right"  # 1m20 was "unknown" when its fibula was taken for the patella
        assert limb.bones["patella"].centroid[1] > 30  # anterior
    tf = load_limb("sample:openlimb-tf-mean")
    assert set(tf.bones) == {"femur", "pelvis"}
    assert tf.bones["pelvis"].vertices[:, 2].min() > tf.bones["femur"].vertices[:, 2].min()


def test_locate_fills_every_transtibial_landmark_from_the_bones(mean_marked):
    assert set(mean_marked.landmarks) == set(TRANSTIBIAL_LANDMARKS)
    assert all(mark.how.startswith(("bones", "skin", "estimate")) for mark in mean_marked.landmarks.values())
    assert "estimate" in mean_marked.landmarks["medial_hamstring"].how
    assert mean_marked.named_level("mpt") == pytest.approx(mean_marked.landmarks["mpt"].point_mm[2])


def test_skin_only_landmarks_are_within_10_mm_of_the_bone_landmarks(tt_limbs):
    """Skin-only detection (use_bones=False) against the bones, on the OpenLimbTT mean and 4 modes.

    Not a tautology: the skin-only detector never looks at the bones. Its constants (MPT 0.43 x
    the knee's ML width below the patella bulge, tuberosity 25 mm below the MPT, the flares,
    fibular head and cut tibia at stated depths behind the skin) were measured on the mean shape
    only, so the 4 mode shapes are the real test; figures above.
    """
    distances = {}
    for name, limb in tt_limbs.items():
        bones = landmarks_from_bones(limb)
        skin = landmarks_from_skin(limb)
        assert set(skin) == set(bones) == set(TRANSTIBIAL_LANDMARKS)
        for mark in TRANSTIBIAL_LANDMARKS:
            distances[name, mark] = float(np.linalg.norm(skin[mark].point_mm - bones[mark].point_mm))
    assert max(distances.values()) < 10.0, {k: round(v, 1) for k, v in distances.items() if v >= 10}


def test_skin_only_on_the_ampscan_scan_finds_distal_end_and_mpt_level(scan):
    """References, and why:

    - distal end: the scan's lowest skin point (z = 0 by the frame's definition); the section
      at 2.5 mm is a small cap around the axis, so the end is on the axis.
    - MPT level: 189 mm. By inspection of the anterior profile (most anterior skin of each
      section): flat at 42-45 mm from 40 to 125 mm (tibial shaft), rising through the
      tuberosity and then steeply to a maximum of 66.8 mm at 232 mm, falling above: the
      patella centre (on the 5 OpenLimbTT shapes this maximum is within 4 mm of the patella's
      centroid). From the literature: patella about 42 mm tall (centre to inferior pole 21 mm)
      and patellar tendon about 45 mm long (Insall-Salvati ratio about 1), MPT at its middle:
      232 - 21 - 22 = 189 mm. This shares the patella-bulge idea with the detector (which uses
      0.43 x the knee's ML width instead of the literature lengths), so it is a check of the
      implementation and of the constants, not an independent measurement.
    """
    marked = locate_landmarks(scan, use_bones=False)
    assert abs(marked.landmarks["distal_end"].point_mm[2] - 0.0) < 15.0
    assert abs(marked.named_level("mpt") - 189.0) < 15.0
    assert "skin shape" in marked.landmarks["mpt"].how


def _on_skin_and_outward(limb):
    from trimesh.proximity import closest_point

    points = np.array([mark.point_mm for mark in limb.landmarks.values()])
    normals = np.array([mark.normal for mark in limb.landmarks.values()])
    _, distance, _ = closest_point(limb.skin, points)
    assert distance.max() < 0.5
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0)
    # outward: a step along the normal leaves the (capped) skin, a step against it enters it
    from socketcad.geometry import measure

    closed = measure.capped(limb.skin)
    inside_out = closed.contains(points + 2.0 * normals)
    inside_in = closed.contains(points - 2.0 * normals)
    assert not inside_out.any() and inside_in.all(), (inside_out, inside_in)


def test_landmarks_lie_on_the_skin_with_outward_unit_normals(mean_marked, scan):
    _on_skin_and_outward(mean_marked)
    _on_skin_and_outward(locate_landmarks(mean_marked, use_bones=False))
    _on_skin_and_outward(locate_landmarks(scan))


def test_file_overrides_replace_points_and_say_so(mean_marked, tmp_path):
    path = tmp_path / "marks.yaml"
    path.write_text("mpt: [0, 60, 150]\nfibular_head: [62, 0, 120]\n")
    overrides = read_landmark_file(path)
    marked = locate_landmarks(mean_marked, overrides)
    assert marked.landmarks["mpt"].how == "file"
    assert marked.landmarks["fibular_head"].how == "file"
    assert marked.landmarks["tibial_crest"].how.startswith("bones")
    assert np.linalg.norm(marked.landmarks["mpt"].point_mm - [0, 60, 150]) < 3.0  # snapped to the skin nearby
    json_path = tmp_path / "marks.json"
    json_path.write_text('{"mpt": [0, 80, 150]}')
    assert read_landmark_file(json_path) == {"mpt": [0.0, 80.0, 150.0]}


@pytest.mark.parametrize(
    "text, words",
    [
        ("patela: [0, 80, 150]\n", ["patela", "mpt"]),
        ("mpt: [0, 80]\n", ["mpt", "three numbers"]),
        ("mpt: [0, 80, abc]\n", ["mpt", "three numbers"]),
        ("- [0, 80, 150]\n", ["mapping"]),
        ("mpt: [0, 80\n", ["YAML"]),
    ],
)
def test_bad_landmark_files_say_what_is_wrong(mean_marked, tmp_path, text, words):
    path = tmp_path / "marks.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as error:
        locate_landmarks(mean_marked, read_landmark_file(path))
    message = str(error.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_transfemoral_landmark_names_differ(mean_marked):
    with pytest.raises(InputError, match="ischial_tuberosity"):
        locate_landmarks(mean_marked, {"ischial_tuberosity": [0, 0, 100]})


def test_mirrored_limb_has_mirrored_landmarks_and_lateral_stays_lateral(mean_marked):
    flipped = mirrored(mean_marked)
    for name, mark in mean_marked.landmarks.items():
        assert np.allclose(flipped.landmarks[name].point_mm, mark.point_mm * [-1, 1, 1])
        assert np.allclose(flipped.landmarks[name].normal, mark.normal * [-1, 1, 1])
    assert mean_marked.side == "right" and mean_marked.landmarks["fibular_head"].point_mm[0] > 30
    assert mean_marked.landmarks["lateral_tibial_flare"].point_mm[0] > mean_marked.landmarks["medial_tibial_flare"].point_mm[0]
    # the --flip-side limb, landmarks found afresh: fibular head and lateral flare on -x
    left = locate_landmarks(load_limb("sample:openlimb-tt-mean", CaptureOptions(flip_side=True)))
    assert left.side == "left" and left.landmarks["fibular_head"].point_mm[0] < -30
    assert left.landmarks["lateral_tibial_flare"].point_mm[0] < left.landmarks["medial_tibial_flare"].point_mm[0]
    assert left.landmarks["lateral_hamstring"].point_mm[0] < 0 < left.landmarks["medial_hamstring"].point_mm[0]
    for name, mark in left.landmarks.items():
        assert np.linalg.norm(mark.point_mm - flipped.landmarks[name].point_mm) < 1.0, name


def test_transfemoral_landmarks_from_bones_and_skin():
    limb = load_limb("sample:openlimb-tf-mean")
    marked = locate_landmarks(limb)
    assert set(marked.landmarks) == set(TRANSFEMORAL_LANDMARKS)
    marks = marked.landmarks
    pelvis_low = limb.bones["pelvis"].vertices[:, 2].min()
    # the sample's skin stops 16 mm below the ischium: the nearest skin point, said to be an estimate
    assert pelvis_low > limb.skin.vertices[:, 2].max()
    assert "above the skin" in marks["ischial_tuberosity"].how
    # the greater trochanter lies on the side away from the pelvis; perineum on the pelvis side
    femur = limb.bones["femur"].vertices
    medial = np.sign(limb.bones["pelvis"].vertices[:, 0].mean() - femur[femur[:, 2] > 250, 0].mean())
    assert np.sign(marks["perineum"].point_mm[0]) == medial
    assert np.sign(marks["greater_trochanter"].point_mm[0]) == -medial
    assert "estimate" in marks["perineum"].how
    assert "distal_end" in locate_landmarks(limb, use_bones=False).landmarks


def test_load_limb_does_not_locate_landmarks(mean_marked, tt_limbs):
    assert tt_limbs["openlimb-tt-mean"].landmarks == {}
    with pytest.raises(InputError, match="unknown level 'mpt'"):
        tt_limbs["openlimb-tt-mean"].named_level("mpt")
