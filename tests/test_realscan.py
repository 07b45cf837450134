"""The wall strength check and the interface analysis on sockets of the bone-less AmpScan scan (issue 18:
both ended in 'the wall folds' / 'wall prisms fold over' on it). The FE wall's rim directions are now
smoothed too, and the liner is grown along normals smoothed until no prism folds.

The analysis runs on the tissue mesh kept in tests/data/tissue (the OpenLimbTT mean bones fitted;
tests/data/make_tissue_mesh.py makes it): fTetWild's meshes differ from run to run. Every load case
converges on both sockets (issue 21; before it the PTB swing pull-off did not). About three minutes a
socket on two shared cores: the TSB one runs with the suite, the PTB one is marked slow: 'make test-slow'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import CaptureOptions, load_limb
from socketcad.biomech.wall import socket_wall_strength
from socketcad.design.rectify import rectify
from socketcad.design.socket import SocketSpec, build_socket
from socketcad.design.templates import template_plan

SYSTEMS = {"ptb": dict(liner="silicone_locking_6", closure="pin_lock_icelock", adapter="lock_housing_4h"),
           "tsb": dict(liner="silicone_seal_in_6", closure="seal_in_suction", adapter="four_hole_43")}


@pytest.fixture(scope="module")
def scan():
    return locate_landmarks(load_limb("sample:ampscan-tt-scan", CaptureOptions(side="right")))


@pytest.fixture(scope="module")
def sockets(scan):
    return {kind: build_socket(rectify(scan, template_plan(kind, scan)).rectified_limb(),
                               SocketSpec(socket_type=kind, **system)) for kind, system in SYSTEMS.items()}


@pytest.mark.parametrize("kind", SYSTEMS)
def test_wall_strength_completes_on_the_scan_with_its_solver_reported(sockets, kind):
    strength = socket_wall_strength(sockets[kind], 80.0).model_dump()
    for case in ("heel_strike", "push_off"):
        row = strength[case]
        print(kind, case, row["peak_von_mises_mpa"], "MPa", row["max_deflection_mm"], "mm", row["solver"])
        assert 1.0 < row["peak_von_mises_mpa"] < 60.0 and 0.1 < row["max_deflection_mm"] < 20.0
        assert np.isfinite(row["safety_factor"])
        # CG to its tolerance, or the exact sparse LU it falls back to (the PTB wall: CG past 300 iterations)
        assert "iterations to relative residual" in row["solver"] or row["solver"].startswith("sparse LU")


@pytest.fixture(scope="module")
def tissue(scan, tmp_path_factory):
    """The kept tissue mesh, read through a copy of its folder (a missing one would be made there, not here)."""
    import shutil

    from socketcad.anatomy.bone_fit import with_mean_bones
    from socketcad.biomech.mesh import DEFAULT_EDGE_MM, tissue_key, tissue_mesh

    name = f"tissue-{tissue_key(with_mean_bones(scan), DEFAULT_EDGE_MM)}.npz"
    kept = Path(__file__).parent / "data" / "tissue" / name
    if not kept.exists():
        pytest.fail(f"{kept} is missing: the scan, the bone fit or the meshing changed; run "
                    "tests/data/make_tissue_mesh.py and commit its file")
    folder = tmp_path_factory.mktemp("tissue")
    shutil.copy(kept, folder / name)
    mesh = tissue_mesh(scan, cache=folder)
    assert any(note.startswith("tissue mesh read from the cache") for note in mesh.notes)
    return mesh


@pytest.mark.parametrize("kind", [pytest.param("ptb", marks=pytest.mark.slow), "tsb"])
def test_interface_analysis_converges_on_the_scan_in_every_case(scan, sockets, tissue, kind):
    from socketcad.biomech.interface import Materials, analyse_interface
    from socketcad.design import components

    socket = sockets[kind]
    liner = components.load_catalogue().liner(SYSTEMS[kind]["liner"])
    result = analyse_interface(scan, socket.inner, liner.thickness_mm, socket.closure.kind, 80.0, 3,
                               Materials(liner_youngs_kpa=liner.elastic_modulus_kpa, friction=liner.friction_skin),
                               tissue=tissue)
    cases = result.summary().model_dump()["cases"]
    assert set(cases) == {"donning", "standing", "heel_strike", "stance_rotation", "swing_pull_off"}
    for name, case in cases.items():
        print(kind, name, case["converged"], case["residual_ratio"], case["peak_pressure_kpa"], "kPa")
        assert case["converged"] and 0 <= case["residual_ratio"] < 0.05 and case["newton_iterations"] >= 1, (kind, name)
    walking = {name: cases[name]["sensel_peak_kpa"] for name in ("heel_strike", "stance_rotation")}
    # DOMAIN.md's walking range, 50-250 kPa (stance rotation gave 255-372 kPa, and 701 on one mesh, when its
    # convergence test let it stop 2 iterations in: issue 21)
    assert all(50.0 <= peak <= 250.0 for peak in walking.values()), f"{kind} walking sensel peaks kPa: {walking}"
