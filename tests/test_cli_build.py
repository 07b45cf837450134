"""`socketcad build` end to end, bad input included (issue 4)."""

from __future__ import annotations

import json

import pytest
import trimesh

from socketcad.design.components import default_adapter, load_catalogue

TT = "sample:openlimb-tt-mean"
SUCTION = ("--liner", "silicone_seal_in_6", "--closure", "seal_in_suction")


def test_build_writes_socket_3mf_aop_and_sheet(cli, tmp_path):
    out = tmp_path / "socket.stl"
    run = cli("build", TT, "--template", "tsb", *SUCTION, "--material", "pla", "--k-level", "2",
              "--trim", "posterior=10", "-o", out, "--json")
    assert run.code == 0, run.stderr
    sheet = json.loads(run.stdout)
    # no --adapter: the selection rule's, the one rule for a default (a pyramid plate under a transtibial suction socket)
    rule = default_adapter(load_catalogue().closure("seal_in_suction"), "transtibial")
    assert sheet["socket_type"] == "tsb" and sheet["adapter"]["id"] == rule.id == "pyramid_plate_m6"
    assert sheet["wall_thickness_mm"] == 4.2  # PLA at K2, from the catalogue
    assert next(p for p in sheet["trimline"] if p["name"] == "posterior")["offset_mm"] == 10.0
    assert {p.name for p in tmp_path.iterdir()} == {"socket.stl", "socket.3mf", "socket-inner.aop", "socket-sheet.json"}
    solid = trimesh.load(out)
    assert solid.is_watertight
    assert sheet["material_volume_cm3"] == pytest.approx(solid.volume / 1000, rel=0.01)


def test_build_with_strength_reports_iso_load_cases_and_what_is_estimated(cli, tmp_path):
    run = cli("build", TT, "--template", "tsb", *SUCTION, "--material", "pla", "--k-level", "2",
              "--strength", "--body-mass", "75", "-o", tmp_path / "socket.stl", "--json")
    assert run.code == 0, run.stderr
    strength = json.loads(run.stdout)["wall_strength"]
    assert strength["iso_10328_level"].startswith("P4")  # 75 kg: up to 80 kg
    for case in ("heel_strike", "push_off"):
        row = strength[case]
        assert row["force_n"] > 0 and row["peak_von_mises_mpa"] > 0 and row["max_deflection_mm"] > 0
        assert row["safety_factor"] == pytest.approx(strength["material_strength_mpa"] / row["peak_von_mises_mpa"], rel=0.02)
    assert "estimate" not in strength["validated"] and "not modelled" in strength["estimates"]
    sheet = json.loads((tmp_path / "socket-sheet.json").read_text())
    assert sheet["wall_strength"] == strength


def test_build_with_strength_refuses_an_implausible_body_mass_before_building(cli, tmp_path):
    run = cli("build", TT, "--template", "tsb", *SUCTION, "--strength", "--body-mass", "-3", "-o", tmp_path / "s.stl")
    assert run.code == 2 and "body mass" in run.stderr.lower()
    assert not any(tmp_path.iterdir())


def test_build_from_a_spec_file_with_option_overrides(cli, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("socket_type: ptb\nliner: silicone_locking_6\nclosure: pin_lock_icelock\nwall_thickness_mm: 5\n")
    run = cli("build", TT, "--template", "ptb", "--spec", spec, "--wall-mm", "6", "-o", tmp_path / "s.stl", "--json")
    assert run.code == 0, run.stderr
    sheet = json.loads(run.stdout)
    assert sheet["wall_thickness_mm"] == 6.0 and sheet["adapter"]["name"].startswith("Pin-lock housing")


@pytest.mark.parametrize("args, words", [
    pytest.param(("--liner", "tpe_cushion_6", "--closure", "pin_lock_icelock"), "needs a locking liner", id="incompatible"),
    pytest.param((*SUCTION, "--trim", "anterior=150"), "above the model's brim; lower it (", id="trimline above the brim"),
    pytest.param((*SUCTION, "--wall-mm", "-2"), "wall_thickness_mm: -2 mm is outside", id="negative wall"),
    pytest.param((*SUCTION, "--trim", "posterior"), "--trim 'posterior' is not NAME=VALUE", id="bad trim"),
    pytest.param(("--liner", "kevlar", "--closure", "seal_in_suction"), "unknown liner 'kevlar'", id="unknown liner"),
    pytest.param((*SUCTION, "--type", "quad"), "'quad' is a transfemoral socket", id="other level"),
    pytest.param((*SUCTION, "--k-level", "9"), "k_level", id="k-level"),
])
def test_bad_builds_exit_2_with_one_line_and_write_nothing(cli, tmp_path, args, words):
    run = cli("build", TT, "--template", "ptb", *args, "-o", tmp_path / "socket.stl")
    assert run.code == 2
    assert words in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert list(tmp_path.iterdir()) == []


def test_build_needs_an_stl_output(cli, tmp_path):
    run = cli("build", TT, "--template", "ptb", *SUCTION, "-o", tmp_path / "socket.obj")
    assert run.code == 2 and "written as .stl" in run.stderr
