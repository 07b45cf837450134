"""Interface mechanics on the sample limb: tissue mesh, liner, CLI refusals."""

import numpy as np
import pytest

from socketcad.anatomy.limb import CaptureOptions, load_limb
from socketcad.biomech.mesh import (LINER, TISSUE, facet_indices, read_tissue, tissue_key, tissue_mesh, with_liner,
                                    write_tissue)
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
    the skin faces lie on the skin (within the 0.2 % envelope; near the cut, where fTetWild's envelope bends at
    the crease, within a fifth of an edge) and the rigid vertices on bone or the cut."""
    volume = volumes(tissue.points, tissue.tetrahedra)
    assert (volume > 0).all()
    top = tissue.top_mm
    body = solid.from_manifold(_below(tt_mean.skin, top)).volume
    bones = sum(solid.from_manifold(_below(b, top)).volume if not b.is_watertight else b.volume
                for b in tt_mean.bones.values() if b.vertices[:, 2].min() < top)
    assert abs(volume.sum() / (body - bones) - 1) < 0.01
    skin_points = tissue.points[np.unique(tissue.skin_faces)]
    _, to_skin = solid.closest_points(tt_mean.skin, skin_points)
    # fTetWild keeps its envelope except at the crease where the skin meets the flat cut: there a vertex
    # strayed 1.2 mm (2 envelopes) in 1 of 8 meshes, so within one edge of the cut the bound is 0.2 edge
    near_cut = skin_points[:, 2] > top - tissue.edge_mm
    assert to_skin[~near_cut].max() < 0.002 * np.linalg.norm(np.ptp(tt_mean.skin.vertices, axis=0)) + 1e-6
    assert to_skin[near_cut].max() < 0.2 * tissue.edge_mm
    rigid_points = tissue.points[tissue.rigid]
    at_cut = rigid_points[:, 2] > top - 1e-6
    assert at_cut.any() and (~at_cut).any()
    assert (tissue.rigid.sum() > 100) and not tissue.rigid[np.unique(tissue.skin_faces)].all()


def test_a_cached_tissue_mesh_is_read_back_whole(tt_mean, tissue, tmp_path):
    """A mesh in the cache under its limb's key comes back as it was, not meshed again (fTetWild never
    makes the same mesh twice, so equal arrays mean read); another
    edge length is another key; a damaged cache file counts as absent."""
    key = tissue_key(tt_mean, tissue.edge_mm)
    assert key != tissue_key(tt_mean, tissue.edge_mm + 1.0)
    write_tissue(tissue, tmp_path / f"tissue-{key}.npz")
    again = tissue_mesh(tt_mean, tissue.edge_mm, cache=tmp_path)
    for name in ("points", "tetrahedra", "skin_faces", "rigid"):
        assert np.array_equal(getattr(again, name), getattr(tissue, name)), name
    assert (again.top_mm, again.edge_mm) == (tissue.top_mm, tissue.edge_mm)
    assert again.notes[:len(tissue.notes)] == tissue.notes and "read from the cache" in again.notes[-1]
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes((tmp_path / f"tissue-{key}.npz").read_bytes()[:1000])
    assert read_tissue(damaged) is None and read_tissue(tmp_path / "absent.npz") is None


def test_disc_average_is_exact_for_a_linear_field():
    """On a flat grid (1 mm) the mean of a linear field over a disc centred on a vertex is its value
    there; a constant stays constant everywhere, the edges included; a lone spike spreads over the disc."""
    import trimesh

    from socketcad.biomech.interface import disc_average

    x, y = np.meshgrid(np.arange(41.0), np.arange(41.0))
    grid = trimesh.Trimesh(np.column_stack([x.ravel(), y.ravel(), np.zeros(x.size)]), _grid_faces(41), process=False)
    average = disc_average(grid, 5.0)
    field = 2.0 * grid.vertices[:, 0] - grid.vertices[:, 1]
    inner = np.all((grid.vertices[:, :2] >= 6) & (grid.vertices[:, :2] <= 34), axis=1)
    assert np.allclose((average @ field)[inner], field[inner], atol=1e-9)
    assert np.allclose(average @ np.ones(len(field)), 1.0)
    spike = np.zeros(len(field))
    spike[20 * 41 + 20] = 1.0
    assert 0.01 < (average @ spike).max() < 0.02  # 1 mm^2 over about pi 25 mm^2


def _grid_faces(n):
    index = np.arange(n * n).reshape(n, n)
    a, b, c, d = index[:-1, :-1].ravel(), index[:-1, 1:].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel()
    return np.vstack([np.column_stack([a, b, d]), np.column_stack([a, d, c])])


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
    assert "a build wrote, with its -sheet.json beside it" in result.stderr
    assert not (tmp_path / "out").exists()
