"""Shape capture: clean-up, parts, units and the anatomical frame."""

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from socketcad.anatomy.limb import CaptureOptions, load_limb
from socketcad.anatomy.measures import percent_levels
from socketcad.anatomy.samples import SAMPLES
from socketcad.errors import InputError
from socketcad.geometry import frame, io, measure, repair
from socketcad.geometry.units import choose_units

TT_SHAPES = ["openlimb-tt-mean", "openlimb-tt-102m", "openlimb-tt-102p", "openlimb-tt-1m20", "openlimb-tt-1p20"]


@pytest.fixture(scope="module")
def mean_limb():
    return load_limb("sample:openlimb-tt-mean")


def test_openlimb_mean_parts_side_and_frame(mean_limb):
    limb = mean_limb
    assert limb.level == "transtibial" and limb.side == "right"
    assert len(limb.bones) == 4  # tibia, fibula, patella, distal femur
    assert limb.skin.vertices[:, 2].min() == pytest.approx(0.0, abs=1e-9)
    brim = limb.skin.vertices[measure.brim_loop(limb.skin)]
    assert brim[:, 2].min() > 0.9 * limb.skin.vertices[:, 2].max()  # distal end down, brim up
    assert repair.capped_signed_volume(limb.skin) > 0  # outward normals
    patella = min(limb.bones.values(), key=lambda b: b.area)
    assert patella.centroid[1] > 30  # anterior is +y
    assert "patella" in " ".join(limb.notes)


def test_skin_is_told_apart_from_bones_by_containment(mean_limb):
    raw = io.read_mesh(SAMPLES["openlimb-tt-mean"].path)
    parts = repair.classify_parts(repair.split_parts(raw))
    assert len(parts.inner) == 4 and not parts.debris
    assert len(parts.shell.faces) == 19161  # the OpenLimb skin part, as in the source data
    closed_skin = measure.capped(mean_limb.skin)
    inside = [closed_skin.contains(bone.vertices[::40]).mean() for bone in mean_limb.bones.values()]
    assert sum(fraction > 0.95 for fraction in inside) >= 3, inside  # the distal femur leaves at the cut


def test_transfemoral_keeps_femur_and_hemipelvis():
    limb = load_limb("sample:openlimb-tf-mean")
    assert limb.level == "transfemoral"
    assert len(limb.bones) == 2
    # normalised to femur length, default 450 mm: a plausible transfemoral length
    assert 200 < limb.skin.vertices[:, 2].max() < 400


def test_scanner_debris_is_dropped_and_small_holes_filled():
    limb = load_limb("sample:openlimb-tt-102m")  # the mode shape carries 3 stray triangles
    assert any("debris" in note for note in limb.notes)
    assert len(measure_loops := repair.boundary_loops(limb.skin)) == 1, len(measure_loops)


@pytest.mark.parametrize("name", TT_SHAPES + ["openlimb-tf-mean"])
def test_captured_sample_skins_have_no_pleats_or_self_intersections(name):
    """Every offset (liner, wall) of a folded or crossing skin crosses itself. The mode shapes
    carry a face held by its corners and twisted holes at the distal end, the TF mean one pleat."""
    from socketcad.geometry import deform
    from socketcad.geometry.intersect import self_intersections

    skin = load_limb(f"sample:{name}").skin
    assert len(deform.inverted_faces(skin)) == 0
    assert len(self_intersections(skin)) == 0


def test_punched_hole_is_filled_without_changing_volume(tmp_path):
    scan = load_limb("sample:ampscan-tt-scan")
    centre = scan.skin.vertices[np.argmin(np.abs(scan.skin.vertices[:, 2] - 120))]
    far = np.linalg.norm(scan.skin.triangles_center - centre, axis=1) > 6.0
    holed = repair.submesh(scan.skin, far)
    path = tmp_path / "holed.stl"
    io.write_mesh(holed, path)
    limb = load_limb(path)
    assert len(repair.boundary_loops(limb.skin)) == 1
    assert any("filled 1 hole" in note for note in limb.notes)
    before = measure.enclosed_volume_mm3(scan.skin)
    assert measure.enclosed_volume_mm3(limb.skin) == pytest.approx(before, rel=0.002)


def test_normalised_shapes_scale_by_the_reference_bone_length():
    default = load_limb("sample:openlimb-tt-102m")
    half = load_limb("sample:openlimb-tt-102m", CaptureOptions(reference_length_mm=200))
    ratio = measure.enclosed_volume_mm3(default.skin) / measure.enclosed_volume_mm3(half.skin)
    assert ratio == pytest.approx(8.0, rel=1e-9)  # 400 mm default tibia, cubed


@pytest.mark.parametrize("seed", range(3))
def test_frame_and_measures_do_not_depend_on_the_scans_pose(tmp_path, seed):
    reference = load_limb("sample:ampscan-tt-scan")
    mesh = io.read_mesh(SAMPLES["ampscan-tt-scan"].path)
    rotation = Rotation.random(random_state=seed).as_matrix()
    moved = trimesh.Trimesh(mesh.vertices @ rotation.T + [100.0, -40.0, 7.0], mesh.faces, process=False)
    path = tmp_path / "moved.ply"
    io.write_mesh(moved, path)
    limb = load_limb(path)
    assert limb.skin.vertices[:, 2].max() == pytest.approx(reference.skin.vertices[:, 2].max(), abs=0.05)
    ours = [s.circumference_mm for s in percent_levels(limb, [0.1, 0.5, 0.9])]
    theirs = [s.circumference_mm for s in percent_levels(reference, [0.1, 0.5, 0.9])]
    assert ours == pytest.approx(theirs, rel=1e-3)


def test_given_anterior_and_side_are_used():
    limb = load_limb("sample:ampscan-tt-scan", CaptureOptions(anterior=(1.0, 0.0, 0.0), side="left"))
    assert limb.side == "left"
    assert limb.frame.rotation[1] @ [1.0, 0.0, 0.0] > 0.99
    assert "anterior: given" in limb.notes


def test_flip_side_mirrors_the_limb(mean_limb):
    flipped = load_limb("sample:openlimb-tt-mean", CaptureOptions(flip_side=True))
    assert flipped.side == "left"
    assert np.allclose(flipped.skin.vertices[:, 0], -mean_limb.skin.vertices[:, 0])
    assert measure.enclosed_volume_mm3(flipped.skin) == pytest.approx(
        measure.enclosed_volume_mm3(mean_limb.skin), rel=1e-12
    )
    assert repair.capped_signed_volume(flipped.skin) > 0


def test_anterior_from_an_oblique_brim_is_a_stated_heuristic():
    """Skin only: the highest brim point as anterior. Checked against the patella (bones)."""
    errors = []
    for name in TT_SHAPES:
        limb = load_limb(f"sample:{name}")  # frame y = anterior from the patella
        brim = limb.skin.vertices[measure.brim_loop(limb.skin)]
        direction = frame.anterior_from_brim(brim)
        errors.append(np.degrees(np.arccos(np.clip(direction @ [0.0, 1.0], -1, 1))))
    assert sum(error < 30 for error in errors) >= 4, errors


def test_aop_sample_carries_side_landmarks_and_axes():
    limb = load_limb("sample:ampscan-example-aop")
    assert limb.side == "right"
    assert set(limb.levels_mm) == {"TIB", "MPT", "TE"}
    assert limb.named_level("MPT") == pytest.approx(127.48, abs=0.01)


def test_isotropic_remesh_keeps_shape():
    before = load_limb("sample:ampscan-tt-scan")
    after = load_limb("sample:ampscan-tt-scan", CaptureOptions(remesh_edge_mm=3.0))
    edges = after.skin.edges_unique_length
    assert np.median(edges) == pytest.approx(3.0, rel=0.25)
    volume = measure.enclosed_volume_mm3
    assert volume(after.skin) == pytest.approx(volume(before.skin), rel=0.01)


@pytest.mark.parametrize(
    "extent, unit",
    [(260.0, "mm"), (26.0, "cm"), (0.26, "m"), (10.2, "in"), (900.0, "mm"), (120.0, "mm")],
)
def test_units_detected_from_limb_size(extent, unit):
    assert choose_units(extent).unit == unit


@pytest.mark.parametrize("extent", [26000.0, 2.6e-5, 2600.0 * 10])
def test_implausible_size_asks_for_units(extent):
    with pytest.raises(InputError, match="give `units`"):
        choose_units(extent, source="big.stl")


def test_explicit_units_are_checked_before_the_file_is_read(tmp_path):
    missing = tmp_path / "not-read.stl"  # does not exist: the unit error must come first
    with pytest.raises(InputError, match="unknown unit 'furlong'"):
        load_limb(missing, CaptureOptions(units="furlong"))


def test_explicit_units_that_give_an_unusual_size_are_kept_with_a_warning():
    assert choose_units(260.0, "mm").how == "given (mm)"
    odd = choose_units(260.0, "m")
    assert odd.scale_to_mm == 1000.0 and "WARNING" in odd.how and "260000 mm" in odd.how


@pytest.mark.parametrize("direction", [(np.nan, 1.0, 0.0), (0.0, 0.0, 0.0), (np.inf, 0.0, 0.0), (1.0, 2.0)])
def test_bad_anterior_direction_is_an_input_error(direction):
    with pytest.raises(InputError, match="anterior"):
        frame.perpendicular(np.asarray(direction), np.array([0.0, 0.0, 1.0]), "anterior")


def test_published_skin_with_faces_wound_against_their_neighbours_is_repaired_and_said_so():
    """OpenLimbTT's full-size mean skin as its authors publish it has 19 brim faces wound against their
    neighbours (its brim loop did not close: 'repair the mesh'). Rewound, it is the skin of the full limb
    file: the same volume."""
    skin = load_limb("sample:openlimb-tt-mean-skin")
    assert "rewound 19 face(s) wound against their neighbours" in skin.notes
    assert not skin.bones and not skin.anterior_known
    with_bones = load_limb("sample:openlimb-tt-mean")
    volume = measure.enclosed_volume_mm3(skin.skin) / 1000.0
    assert volume == pytest.approx(2175.5, abs=0.5)
    assert volume == pytest.approx(measure.enclosed_volume_mm3(with_bones.skin) / 1000.0, rel=1e-3)
