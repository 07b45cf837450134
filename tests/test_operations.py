"""The operations layer (issue 20): the seven steps through the library alone, typed results with a published
schema that every --json output validates against, and a command line that is only a shell."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import jsonschema
import pytest
import trimesh

import socketcad
from socketcad import operations as ops
from socketcad.anatomy.samples import SAMPLES
from socketcad.clinic.store import Store
from socketcad.errors import InputError
from socketcad.settings import Settings

CLI = Path(socketcad.__file__).parent / "cli.py"
LIMB = SAMPLES["openlimb-tt-mean"].path
PTB = ops.SpecFields(liner="silicone_locking_6", closure="pin_lock_icelock")


def audit_actions(store: Store, reference: str) -> list[tuple[str, str]]:
    return [(event.action, event.actor) for event in ops.case_history(store, reference).audit]


def test_seven_steps_through_the_operations_alone(tmp_path):
    """Evaluation, capture (an upload's bytes), template design, test socket, fitting (child revision), definitive
    socket, delivery, follow-up: every step one operation call in this process, its record checked in the store,
    every audit event under the actor passed."""
    store = Store(tmp_path / "data")
    steps: list[str] = []
    # 1. evaluation
    opened = ops.new_case(store, ops.NewCaseRequest(reference="O-1", level="transtibial", side="right"), "pt-a")
    assert (opened.reference, opened.side) == ("O-1", "right")
    evaluation = ops.evaluate(store, ops.EvaluateRequest(reference="O-1", fields={
        "k_level": 2, "sensitive_areas": ["fibular_head"], "strength_mrc": {"knee_extension": 5}}), "pt-a")
    assert evaluation.k_level == "K2" and evaluation.sensitive_areas == ["fibular_head"]
    # 2. shape capture: the scan arrives as bytes, as a web upload would
    upload = ops.Upload(filename="limb.stl", data=LIMB.read_bytes())
    scan = ops.add_scan(store, ops.AddScanRequest(reference="O-1", source=upload), "pt-a", steps.append)
    assert ops.case_history(store, "O-1").scans[0].filename == "limb.stl" and scan.units == "mm"
    # 3. rectification by template and 4. the test socket
    first = ops.save_design(store, ops.DesignRequest(reference="O-1", template="ptb", spec=PTB), "pt-a", steps.append)
    history = ops.case_history(store, "O-1")
    assert [(r.id, r.parent, r.k_level, r.template) for r in history.revisions] == [(first.id, None, 2, "PTB")]
    made = ops.fabricate(store, ops.FabricateRequest(reference="O-1", revision=first.id, stage="test",
                                                     material="petg", lab="in-house"), "pt-a")
    assert ops.case_history(store, "O-1").fabrications[0].id == made.id
    # 5. dynamic fitting: the adjustment makes revision 2
    fitting = ops.fit(store, ops.FitRequest(reference="O-1", revision=first.id, comfort=5,
                                            feedback={"fibular_head": "pressure after 10 min"},
                                            adjustments=["relieve fibular_head 2"]), "pt-a", steps.append)
    assert fitting.child is not None and fitting.child.parent == first.id
    changes = ops.diff(store, ops.DiffRequest(reference="O-1", first=first.id, second=fitting.child.id))
    assert any(line.startswith("fibular_head:") and "(+2 mm outward)" in line for line in changes.plan)
    assert {row.region: row for row in changes.regions}["fibular head"].most_gained_mm > 1.5
    rebuilt = ops.rebuild(store, fitting.child.id)
    assert rebuilt.identical and rebuilt.rebuilt_hash == fitting.child.socket_hash
    # 6. definitive socket and 7. delivery and follow-up (the same limb, moved as a new scan would be)
    ops.fabricate(store, ops.FabricateRequest(reference="O-1", revision=fitting.child.id, stage="definitive",
                                              material="carbon_laminate", lab="Lab North"), "pt-a")
    delivered = ops.deliver(store, ops.DeliverRequest(reference="O-1", revision=fitting.child.id,
                                                      taught=["don_doff", "care"]), "pt-b")
    assert delivered.checklist["don_doff"] and not delivered.checklist["skin_inspection"]
    assert any("skin inspection" in warning for warning in delivered.warnings)
    later = trimesh.load(LIMB)
    later.apply_translation([2.0, -3.0, 5.0])
    follow = ops.follow_up(store, ops.FollowUpRequest(
        reference="O-1", source=ops.Upload(filename="later.stl", data=trimesh.exchange.stl.export_stl(later))),
        "pt-b", steps.append)
    assert abs(follow.volume_change_pct) < 0.2 and follow.advice == "none" and follow.registration_rms_mm < 0.1
    assert ops.case_history(store, "O-1").followups[0].advice == "none"
    assert [action for action, _ in audit_actions(store, "O-1")] == [
        "case.new", "evaluation.add", "scan.add", "revision.save", "fabrication.add", "revision.save", "fitting.add",
        "fabrication.add", "delivery.add", "scan.add", "followup.add"]
    actors = dict(audit_actions(store, "O-1"))
    assert actors["case.new"] == "pt-a" and actors["delivery.add"] == actors["followup.add"] == "pt-b"
    assert "building the socket" in steps and "registering the scans and comparing" in steps
    # the whole case to a lab, imported under the lab's name
    exported = ops.export_case(store, "O-1", tmp_path / "O-1.zip", "pt-a")
    assert exported.revisions == 2
    lab = Store(tmp_path / "lab")
    assert ops.import_case(lab, tmp_path / "O-1.zip", "lab-tech").reference == "O-1"
    assert audit_actions(lab, "O-1")[-1] == ("case.import", "lab-tech")
    assert [c.reference for c in ops.cases(lab).cases] == ["O-1"]


def test_a_request_with_bad_fields_is_one_input_error_naming_each_field():
    with pytest.raises(InputError, match=r"anterior: '1,2' is not a direction"):
        ops.Capture(anterior="1,2")
    with pytest.raises(InputError, match=r"^revision: .*valid integer.*; comfort: .*valid integer"):
        ops.FitRequest(reference="X", revision="two", comfort="high")
    with pytest.raises(InputError, match="give exactly one of `template` or `plan`"):
        ops.RectifyRequest(source="sample:openlimb-tt-mean", output=Path("x.stl"))
    with pytest.raises(ValueError, match="a file name without folders"):
        ops.Upload(filename="../../etc/passwd", data=b"x")


def test_an_upload_name_never_reaches_the_file_system(tmp_path):
    """An Upload built without validation (model_construct) is refused where it would be written."""
    hostile = ops.Upload.model_construct(filename="../../escaped.stl", data=LIMB.read_bytes())
    with pytest.raises(InputError, match="a file name without folders"):
        ops.inspect(ops.InspectRequest(source=hostile))
    assert not (tmp_path.parent.parent / "escaped.stl").exists()


def test_an_upload_error_names_the_upload_not_the_temporary_file(tmp_path):
    with pytest.raises(InputError) as caught:
        ops.inspect(ops.InspectRequest(source=ops.Upload(filename="scan.stl", data=b"solid x\nendsolid x\n")))
    assert str(caught.value).startswith("scan.stl") and "socketcad-upload-" not in str(caught.value)


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {})
    assert (tmp_path / "out" / "socket-sheet.json").exists()


def test_settings_are_read_once_from_the_environment_given(tmp_path):
    settings = Settings.from_environment({"SOCKETCAD_DATA": str(tmp_path), "SOCKETCAD_USER": "pt-a",
                                          "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert settings.data_folder == tmp_path and settings.actor == "pt-a" and settings.database_url is None
    assert settings.tissue_cache == tmp_path / "cache" / "socketcad" / "tissue"
    assert Settings.from_environment({"USER": "login", "SOCKETCAD_DB": "postgresql://h/db"}).actor == "login"


def test_the_public_api_is_the_operations(tmp_path):
    assert set(ops.__all__) - {"result_schemas", "silent"} <= set(socketcad.__all__)
    for name in ops.__all__:
        assert getattr(socketcad, name) is getattr(ops, name), name
    assert callable(socketcad.inspect) and socketcad.Settings is Settings


# ---- the schema and --json --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schemas():
    return ops.result_schemas()


def json_of(run) -> dict:
    assert run.code == 0, run.stderr
    return json.loads(run.stdout)


def test_socketcad_schema_publishes_every_result(cli, schemas):
    published = json_of(cli("schema"))
    assert published == json.loads(json.dumps(schemas))
    for name in ("SocketBuilt", "Analysis", "CaseHistory", "FollowUpSaved", "RevisionDiff", "Inspection"):
        assert published[name]["type"] == "object", name
    assert json_of(cli("schema", "Rectified"))["title"] == "Rectified"
    refused = cli("schema", "Nothing")
    assert refused.code == 2 and "no result called 'Nothing'" in refused.stderr


def test_every_json_output_validates_against_its_schema(cli, schemas, tmp_path):
    """The capture and design commands here; analyze in test_interface_limb; the clinic's in test_clinic_story."""
    limb = "sample:openlimb-tt-mean"
    outputs = {
        "SampleList": cli("samples", "--json"),
        "Catalogue": cli("catalogue", "--json"),
        "Inspection": cli("inspect", limb, "--json", "--csv", tmp_path / "profile.csv"),
        "TapeLimb": cli("tape", "sample:ampscan-tt-tape", "-o", tmp_path / "tape.stl", "--json"),
        "Landmarks": cli("landmarks", limb, "--json"),
        "Converted": cli("convert", limb, tmp_path / "limb.ply", "--json"),
        "Rectified": cli("rectify", limb, "--template", "ptb", "-o", tmp_path / "r.stl", "--json"),
        "SocketBuilt": cli("build", limb, "--template", "ptb", "--liner", "silicone_locking_6", "--closure",
                           "pin_lock_icelock", "-o", tmp_path / "s.stl", "--json"),
    }
    for name, run in outputs.items():
        data = json_of(run)
        jsonschema.validate(data, schemas[name])
        with pytest.raises(jsonschema.ValidationError):  # the check can fail: a required field taken away
            jsonschema.validate({k: v for k, v in data.items() if k != next(iter(schemas[name]["required"]))},
                                schemas[name])
    built = json_of(outputs["SocketBuilt"])
    assert built["written"]["sheet"].endswith("s-sheet.json") and built["adapter"]["id"] == "lock_housing_4h"


def test_clinic_json_outputs_validate(cli, schemas, tmp_path, monkeypatch):
    monkeypatch.setenv("SOCKETCAD_DATA", str(tmp_path))
    assert cli("case", "new", "J-1", "--level", "transtibial", "--side", "right").code == 0
    assert cli("case", "new", "J-2", "--level", "transtibial", "--side", "left").code == 0
    scan = json_of(cli("scan", "add", "J-1", "sample:openlimb-tt-mean", "--json"))  # a sample, as README says
    assert scan["id"] == 1 and scan["units"] == "mm"
    refused = cli("scan", "add", "J-2", "sample:openlimb-tt-mean")  # a right limb for a left case
    assert refused.code == 2 and "reads as a right limb" in refused.stderr
    jsonschema.validate(json_of(cli("case", "list", "--json")), schemas["CaseList"])
    jsonschema.validate(json_of(cli("case", "show", "J-1", "--json")), schemas["CaseHistory"])


# ---- the command line is a shell ----------------------------------------------------------------------------------


def cli_tree() -> ast.Module:
    return ast.parse(CLI.read_text())


def test_the_cli_imports_only_socketcads_public_names_typer_and_rich():
    public = set(socketcad.__all__)
    for node in ast.walk(cli_tree()):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                assert root in sys.stdlib_module_names or root in ("typer", "rich"), alias.name
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module == "socketcad":
                assert {alias.name for alias in node.names} <= public, [a.name for a in node.names]
            else:
                root = module.split(".")[0]
                assert node.level == 0 and (root in sys.stdlib_module_names or root in ("typer", "rich", "__future__")), module


def command_functions() -> list[ast.FunctionDef]:
    def is_command(decorator) -> bool:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        return isinstance(target, ast.Attribute) and target.attr == "command"
    return [node for node in cli_tree().body if isinstance(node, ast.FunctionDef)
            and any(is_command(d) for d in node.decorator_list)]


def test_every_command_function_is_short():
    """Its body (after the signature and docstring) parses, calls one operation and prints: under 25 lines."""
    functions = command_functions()
    assert len(functions) >= 25
    for function in functions:
        body = function.body[1:] if isinstance(function.body[0], ast.Expr) else function.body
        lines = body[-1].end_lineno - body[0].lineno + 1
        assert lines <= 25, f"{function.name}: {lines} lines"
        calls = {node.func.attr for node in ast.walk(function) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
                 and node.func.value.id == "ops" and node.func.attr[0].islower()}
        assert len(calls - {"open_store"}) <= 1, f"{function.name} calls {calls}"


def test_a_library_field_name_is_shown_as_the_flag(cli, tmp_path):
    run = cli("rectify", "sample:ampscan-tt-scan", "--template", "ptb", "-o", tmp_path / "r.stl")
    assert run.code == 2 and "give --level / --side, or the point in --landmarks" in run.stderr, run.stderr
    assert "`" not in run.stderr


def test_result_models_state_units_in_field_names(schemas):
    """Numbers carry their unit in their name (or are counts, ids, ratios or flags)."""
    unitless = {"id", "index", "revision", "revisions", "files", "scans", "scan", "baseline_scan", "parent", "first",
                "second", "dofs", "elements", "vertices", "comfort", "k_level", "newton_iterations",
                "residual_ratio", "peak_to_mean", "circumferences", "socks_ply_worn", "mean",
                "most_inward", "most_outward", "child_revision", "safety_factor", "poisson", "friction", "spokes",
                "schema_version", "revision_id", "socks_ply", "friction_skin", "self_intersecting_face_pairs",
                "pages", "figures", "analysis", "vertex_count", "face_count",
                "low", "high"}  # a colour Scale's ends, in the unit its `unit` field names (mm or kPa)
    units = ("_mm", "_mm2", "_mm3", "_cm2", "_cm3", "_kpa", "_mpa", "_n", "_deg", "_pct", "_g", "_kg", "_s",
             "_seconds", "seconds", "_mpa_per_mm", "_g_cm3", "_kpa_per_mm", "_nmm")
    problems = []
    for name, schema in schemas.items():
        for model, definition in [(name, schema), *schema.get("$defs", {}).items()]:
            for field, spec in definition.get("properties", {}).items():
                if spec.get("type") in ("number", "integer") and field not in unitless and not field.endswith(units):
                    problems.append(f"{model}.{field}")
    assert not problems, problems


def test_nothing_in_an_operation_prints(capsys, tmp_path):
    ops.landmarks(ops.LandmarksRequest(source="sample:openlimb-tt-mean"))
    ops.samples()
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""


def test_the_doctest_of_the_operations_runs():
    import doctest

    assert doctest.testmod(ops, raise_on_error=True).attempted == 3

