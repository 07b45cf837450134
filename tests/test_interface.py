"""Interface mechanics on the sample limb: tissue mesh, liner, CLI refusals."""

import numpy as np
import pytest

from socketcad.anatomy.limb import CaptureOptions, load_limb
from socketcad.biomech.mesh import LINER, TISSUE, facet_indices, tissue_mesh, with_liner
from socketcad.geometry import solid


@pytest.fixture(scope="module")
def tt_mean():
    return load_limb("sample:openlimb-tt-mean", CaptureOptions())


@pytest.fixture(scope="module")
def tissue(tt_mean, tmp_path_factory):
    import os

    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        mesh = tissue_mesh(tt_mean)
        assert os.listdir(".") == []  # nothing left in the working folder
    finally:
        os.chdir(here)
    return mesh


def volumes(points, tetrahedra):
    a, b, c, d = (points[tetrahedra[:, k]] for k in range(4))
    return np.einsum("ij,ij->i", np.cross(b - a, c - a), d - a) / 6.0


def test_tissue_mesh_fills_skin_less_bones(tt_mean, tissue):
    """The tetrahedra fill the skin's volume below the cut less the bones (within 1 %), all positive;
    the skin faces lie on the skin (within the 0.2 % envelope) and the rigid vertices on bone or the cut."""
    volume = volumes(tissue.points, tissue.tetrahedra)
    assert (volume > 0).all()
    top = tissue.top_mm
    body = solid.from_manifold(_below(tt_mean.skin, top)).volume
    bones = sum(solid.from_manifold(_below(b, top)).volume if not b.is_watertight else b.volume
                for b in tt_mean.bones.values() if b.vertices[:, 2].min() < top)
    assert abs(volume.sum() / (body - bones) - 1) < 0.01
    skin_points = tissue.points[np.unique(tissue.skin_faces)]
    _, to_skin = solid.closest_points(tt_mean.skin, skin_points)
    assert to_skin.max() < 0.002 * np.linalg.norm(np.ptp(tt_mean.skin.vertices, axis=0)) + 1e-6
    rigid_points = tissue.points[tissue.rigid]
    at_cut = rigid_points[:, 2] > top - 1e-6
    assert at_cut.any() and (~at_cut).any()
    assert (tissue.rigid.sum() > 100) and not tissue.rigid[np.unique(tissue.skin_faces)].all()


def test_liner_layer_is_positive_and_even(tissue):
    limb_mesh = with_liner(tissue, 6.0)
    points, tetrahedra = limb_mesh.mesh.p.T, limb_mesh.mesh.t.T
    assert (volumes(points, tetrahedra) > 0).all()
    assert set(np.unique(limb_mesh.material)) == {TISSUE, LINER}
    gap = np.linalg.norm(points[limb_mesh.outer_faces] - points[limb_mesh.skin_faces], axis=2)
    assert np.allclose(gap, 6.0)
    assert len(facet_indices(limb_mesh.mesh, limb_mesh.outer_faces)) == len(limb_mesh.outer_faces)


def _below(mesh, level):
    from socketcad.biomech.mesh import _closed_below

    return _closed_below(mesh, level)


@pytest.mark.parametrize("extra, message", [
    (["--body-mass", "-3"], "body mass"),
    (["--k-level", "7"], "K-level"),
])
def test_analyze_refuses_bad_loads(cli, tmp_path, extra, message):
    result = cli("analyze", "sample:openlimb-tt-mean", tmp_path / "s.stl", "-o", tmp_path / "out", *extra)
    assert result.code == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_analyze_needs_a_built_socket(cli, tmp_path):
    (tmp_path / "s.stl").write_text("solid x\nendsolid x\n")
    result = cli("analyze", "sample:openlimb-tt-mean", tmp_path / "s.stl", "-o", tmp_path / "out")
    assert result.code == 2, result.stderr
    assert "socketcad build" in result.stderr
    assert not (tmp_path / "out").exists()
