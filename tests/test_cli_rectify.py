"""`socketcad rectify` and `socketcad landmarks` end to end, bad input included."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
import yaml

TT = "sample:openlimb-tt-mean"


def test_rectify_with_a_template_writes_surface_deviation_map_and_plan(cli, tmp_path):
    out, report, plan = tmp_path / "rectified.stl", tmp_path / "dev.csv", tmp_path / "ptb.yaml"
    run = cli("rectify", TT, "--template", "ptb", "-o", out, "--report", report, "--save-plan", plan, "--json")
    assert run.code == 0, run.stderr
    data = json.loads(run.stdout)
    bar = next(row for row in data["modifications"] if row["label"] == "patellar tendon bar")
    assert bar["centre_deviation_mm"] == pytest.approx(-8.0, abs=0.5)
    assert data["sources"] and data["assumptions"] and "validated" in data
    rectified = trimesh.load(out)
    deviation = np.loadtxt(report, delimiter=",", skiprows=1)
    assert deviation.shape == (len(rectified.vertices), 5)
    assert deviation[:, 4].min() == pytest.approx(data["deviation_min_mm"], abs=1e-3)
    # The saved plan, edited and run again, is applied as written.
    edited = yaml.safe_load(plan.read_text())
    edited["modifications"][0]["depth_mm"] = 6.0
    plan.write_text(yaml.safe_dump(edited))
    again = cli("rectify", TT, "--plan", plan, "-o", out, "--json")
    assert again.code == 0, again.stderr
    bar = next(row for row in json.loads(again.stdout)["modifications"] if row["label"] == "patellar tendon bar")
    assert bar["centre_deviation_mm"] == pytest.approx(-6.0, abs=0.5)


@pytest.mark.parametrize("plan_text, message", [
    pytest.param("schema_version: 2\nmodifications: []\n", "schema_version: version 2 is not supported", id="version"),
    pytest.param("schema_version: 1\nmodifications:\n- kind: push\n  depth_mm: 5\n  region: {landmark: knee, width_mm: 20, height_mm: 20}\n",
                 r"modifications[0].region.landmark: unknown landmark 'knee'", id="landmark"),
    pytest.param("- just\n- a list\n", "a plan is a mapping", id="not-a-mapping"),
    pytest.param("schema_version: [1\n", "not valid YAML", id="bad-yaml"),
])
def test_bad_plans_exit_2_with_one_line_and_leave_no_output(cli, tmp_path, plan_text, message):
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_text)
    out = tmp_path / "rectified.stl"
    run = cli("rectify", TT, "--plan", plan, "-o", out)
    assert run.code == 2
    assert len(run.stderr.strip().splitlines()) == 1 and message in run.stderr, run.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["plan.yaml"]


@pytest.mark.parametrize("args, message", [
    pytest.param(["--template", "ptb", "--plan", "x.yaml"], "exactly one of --template", id="both"),
    pytest.param([], "exactly one of --template", id="neither"),
    pytest.param(["--template", "quad"], "template 'quad' is for a transfemoral limb", id="wrong-level"),
    pytest.param(["--template", "ptb", "--sensitive", "kneecap"], "sensitive area 'kneecap'", id="bad-sensitive"),
    pytest.param(["--template", "ptb", "--liner-mm", "40"], "liner thickness 40 mm", id="bad-liner"),
    pytest.param(["--plan", "x.yaml", "--liner-mm", "3"], "--liner-mm, --bar-mm and --sensitive shape a template; with a plan, edit the plan", id="template-option-with-plan"),
])
def test_bad_rectify_options_exit_2(cli, tmp_path, args, message):
    out = tmp_path / "rectified.stl"
    run = cli("rectify", TT, *args, "-o", out)
    assert run.code == 2 and message in run.stderr, run.stderr
    assert not out.exists()


def test_landmarks_command_lists_every_landmark_with_how_it_was_found(cli, tmp_path):
    run = cli("landmarks", TT, "--json")
    assert run.code == 0, run.stderr
    found = {row["name"]: row for row in json.loads(run.stdout)["landmarks"]}
    assert {"mpt", "fibular_head", "distal_end"} <= set(found)
    assert found["mpt"]["how"].startswith("bones")
    override = tmp_path / "marks.yaml"
    override.write_text(yaml.safe_dump({"mpt": [0.0, 60.0, 100.0]}))
    moved = {row["name"]: row for row in json.loads(cli("landmarks", TT, "--landmarks", override, "--json").stdout)["landmarks"]}
    assert moved["mpt"]["how"] == "file"
    override.write_text(yaml.safe_dump({"kneecap": [0.0, 60.0, 100.0]}))
    bad = cli("landmarks", TT, "--landmarks", override)
    assert bad.code == 2 and "kneecap" in bad.stderr
