"""One patient's seven steps through the CLI, against SQLite and against a real PostgreSQL server: evaluation,
scan, design, test socket, fitting whose adjustments make the next revision, diff, definitive socket,
delivery, follow-up with sock advice, rebuild, and the case carried to a lab as an archive."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import trimesh
from pypdf import PdfReader
from sqlalchemy.exc import DBAPIError

from browser import open_page
from conftest import in_process
from postgres import postgres_server
from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import load_limb
from socketcad.anatomy.samples import SAMPLES
from socketcad.operations import result_schemas
from socketcad.clinic.followup import _volume_below
from socketcad.clinic.store import Store

LIMB = SAMPLES["openlimb-tt-mean"].path
KEPT_MESHES = Path(__file__).parent / "data" / "tissue"
SCHEMAS = result_schemas()  # a right transtibial limb
SHRINK = 0.04  # circumferential, at the distal end, tapering to none 30 mm below the mid-patellar tendon


def shrunken_scan(path, mirrored: bool = False) -> float:
    """Write a follow-up scan of the sample limb (skin only, as a scanner gives it) that lost volume distally,
    moved and tilted as a new scan would be; the expected volume change % below MPT + 20 mm."""
    limb = locate_landmarks(load_limb(LIMB))
    skin = limb.skin.copy()
    mpt = limb.named_level("mpt")
    taper = np.clip((mpt - 30.0 - skin.vertices[:, 2]) / (mpt - 30.0), 0.0, 1.0)
    vertices = skin.vertices.copy()
    vertices[:, :2] *= (1.0 - SHRINK * taper)[:, None]
    skin.vertices = vertices
    expected = 100.0 * (_volume_below(skin, mpt + 20.0) / _volume_below(limb.skin, mpt + 20.0) - 1.0)
    motion = trimesh.transformations.rotation_matrix(np.radians(4.0), [0.3, 1.0, 0.2])
    motion[:3, 3] = [3.0, -4.0, 7.0]
    skin.apply_transform(motion)
    if mirrored:
        skin = trimesh.Trimesh(skin.vertices * [-1.0, 1.0, 1.0], skin.faces[:, ::-1], process=False)
    skin.export(path)
    return expected


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def clinic(request, tmp_path_factory):
    """(run the CLI, data folder, database URL or None) for one backend."""
    data = tmp_path_factory.mktemp(f"clinic-{request.param}")

    cache = tmp_path_factory.mktemp(f"cache-{request.param}")
    shutil.copytree(KEPT_MESHES, cache / "tissue")  # the kept tissue meshes: an analysis without a minute of meshing

    def runner(url):
        env = dict(os.environ, SOCKETCAD_DATA=str(data), SOCKETCAD_USER="prosthetist-b", SOCKETCAD_CACHE=str(cache))
        env.pop("SOCKETCAD_DB", None)
        if url:
            env["SOCKETCAD_DB"] = url

        command = in_process(env)  # the real entry point, in this process

        def run(*args, check=True):
            result = command(*args)
            assert not check or result.returncode == 0, f"{args}: {result.stderr}"
            return result
        return run

    if request.param == "sqlite":
        yield runner(None), data, None
    else:
        with postgres_server() as url:
            yield runner(url), data, url


def test_seven_steps_of_one_patient(clinic, tmp_path):
    run, data, url = clinic
    # 1. evaluation
    def run_json(result: str, *args):
        """A command's --json output, checked against its result's published schema."""
        data = json.loads(run(*args, "--json").stdout)
        jsonschema.validate(data, SCHEMAS[result])
        return data

    assert run_json("CaseOpened", "case", "new", "S-1", "--level", "transtibial", "--side", "right")["side"] == "right"
    run_json("EvaluationSaved", "evaluate", "S-1", "--k-level", "K2", "--sensitive", "fibular_head", "--strength",
             "knee_extension=5", "--rom", "knee_flexion=120", "--skin", "intact, incision healed", "--goals",
             "walk to work")
    # 2. shape capture, 3. rectification by template, 4. test socket
    run_json("ScanKept", "scan", "add", "S-1", LIMB)
    run_json("RevisionSaved", "design", "S-1", "--template", "ptb", "--liner", "silicone_locking_6", "--closure",
             "pin_lock_icelock")
    run_json("FabricationSaved", "fabricate", "S-1", "1", "--stage", "test", "--material", "petg", "--lab", "in-house")
    # 5. dynamic fitting: adjustments make revision 2, a child of 1
    fitted = run("fit", "S-1", "1", "--comfort", "5", "--feedback", "fibular_head=pressure after 10 min",
                 "--gait", "short stance on the prosthesis", "--adjust", "relieve fibular_head 2",
                 "--adjust", "reduce proximal 1%")
    assert "revision 2 (child of 1)" in fitted.stdout
    difference = json.loads(run("diff", "S-1", "1", "2", "--json", "--map", tmp_path / "map.ply").stdout)
    jsonschema.validate(difference, SCHEMAS["RevisionDiff"])  # every --json output follows its published schema
    print("diff 1 -> 2:", difference["plan"], difference["deviation_mm"])
    assert any(line.startswith("fibular_head:") and "(+2 mm outward)" in line for line in difference["plan"])
    assert any(line.startswith("added reduction") for line in difference["plan"]) and difference["spec"] == []
    regions = {row["region"]: row for row in difference["regions"]}
    assert regions["fibular head"]["most_gained_mm"] > 1.5  # 2 mm more room at its centre
    assert regions["proximal third"]["mean_mm"] < -0.1 and abs(regions["distal third"]["mean_mm"]) < 0.1
    assert len(trimesh.load(tmp_path / "map.ply").vertices) > 1000
    assert run_json("FittingSaved", "fit", "S-1", "2", "--comfort", "8", "--gait", "symmetric")["child"] is None
    # 6. definitive socket, 7. delivery and follow-up
    run("fabricate", "S-1", "2", "--stage", "definitive", "--material", "carbon_laminate", "--lab", "Lab North")
    delivered = run_json("DeliverySaved", "deliver", "S-1", "2", *[a for item in ("don_doff", "socks_liners",
                                                                              "skin_inspection", "care")
                                                                 for a in ("--taught", item)])
    assert delivered["warnings"] == [] and all(delivered["checklist"].values())
    expected = shrunken_scan(tmp_path / "later.stl")
    result = json.loads(run("followup", "S-1", tmp_path / "later.stl", "--socks-ply", "0", "--json").stdout)
    jsonschema.validate(result, SCHEMAS["FollowUpSaved"])
    print(f"follow-up: volume {result['volume_change_pct']} % (built {expected:.2f} %), registration RMS "
          f"{result['registration_rms_mm']} mm, advice {result['advice']}: {result['reasons']}")
    assert abs(result["volume_change_pct"] - expected) < 0.1
    assert result["registration_rms_mm"] < 0.1 and result["advice"] == "add socks"
    distal, proximal = result["circumferences"][0], result["circumferences"][-1]
    assert distal["change_pct"] < -2.0 and abs(proximal["change_pct"]) < 0.3
    # every revision rebuilds bit-identical; the history holds every step and who did it
    assert "identical" in run("rebuild", "2").stdout and run_json("Rebuilt", "rebuild", "1")["identical"]
    record = json.loads(run("case", "show", "S-1", "--json").stdout)
    jsonschema.validate(record, SCHEMAS["CaseHistory"])
    assert [(r["id"], r["parent"]) for r in record["revisions"]] == [(1, None), (2, 1)]
    assert [f["child_revision"] for f in record["fittings"]] == [2, None]
    assert [f["stage"] for f in record["fabrications"]] == ["test", "definitive"]
    assert record["deliveries"][0]["checklist"] == dict.fromkeys(("don_doff", "socks_liners", "skin_inspection", "care"), True)
    assert record["followups"][0]["advice"] == "add socks" and record["evaluations"][0]["k_level"] == "K2"
    assert [r["k_level"] for r in record["revisions"]] == [2, 2]  # the evaluated grade sets the wall
    assert [e["action"] for e in record["audit"]] == [
        "case.new", "evaluation.add", "scan.add", "revision.save", "fabrication.add", "revision.save", "fitting.add",
        "fitting.add", "fabrication.add", "delivery.add", "scan.add", "followup.add"]
    assert {e["actor"] for e in record["audit"]} == {"prosthetist-b"}
    # the case goes to a lab as one archive; the lab rebuilds the definitive socket bit-identical
    assert run_json("CaseExported", "case", "export", "S-1", "-o", tmp_path / "S-1.zip")["revisions"] == 2
    lab = dict(os.environ, SOCKETCAD_DATA=str(tmp_path / "lab"), SOCKETCAD_USER="lab-technician")
    lab.pop("SOCKETCAD_DB", None)
    cli = in_process(lab)
    assert cli("case", "import", tmp_path / "S-1.zip").returncode == 0
    copied = json.loads(cli("case", "show", "S-1", "--json").stdout)
    assert [r["socket_hash"] for r in copied["revisions"]] == [r["socket_hash"] for r in record["revisions"]]
    assert copied["audit"][-1]["action"] == "case.import" and copied["audit"][-1]["actor"] == "lab-technician"
    assert len(copied["audit"]) == len(record["audit"]) + 1
    rebuilt = cli("rebuild", "2")
    assert rebuilt.returncode == 0 and "identical" in rebuilt.stdout, rebuilt.stderr


def test_case_report_of_the_story(clinic, tmp_path):
    """The seven steps' case reported from the store (after test_seven_steps_of_one_patient, on its store)."""
    run, data, url = clinic
    if url:
        pytest.skip("the report reads the store through the same records on either backend: SQLite's run shows it")
    html = tmp_path / "reports" / "S-1-r2.html"
    refused = run("case", "report", "S-1", "--revision", "2", "-o", html, check=False)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "revision 2 has no analysis" in refused.stderr
    assert not html.parent.exists() or not list(html.parent.iterdir())  # nothing half-written
    analysed = json.loads(run("case", "analyze", "S-1", "2", "--quick", "--body-mass", "80", "--json").stdout)
    written = json.loads(run("case", "report", "S-1", "--revision", "2", "-o", html, "--json").stdout)
    jsonschema.validate(written, SCHEMAS["ReportWritten"])
    page = open_page(html)
    assert page.errors == [] and page.broken_images == [] and page.images == written["figures"] >= 14
    for part in ("Evaluation", "walk to work", "Fitting history and revision tree", "revision 2", "Follow-up",
                 "add socks", "Lab North"):
        assert part in page.text, part
    pages = [p.extract_text() for p in PdfReader(html.with_suffix(".pdf")).pages]
    assert len(pages) == written["pages"] and all("S-1" in text for text in pages)
    text = "\n".join(pages)
    assert "PTB" in text and "case S-1" in text.replace("Revision 2 of case S-1", "case S-1")
    standing = analysed["summary"]["cases"]["standing"]
    assert f"{standing['peak_pressure_kpa']:.0f}" in text and f"{standing['sensel_peak_kpa']:.0f}" in text
    # the follow-up's pictures: its change map and the volume trend
    assert {"followup-", "volume-trend"} <= {name[:9] if name.startswith("followup-") else name
                                             for name in _figure_names(html)}


def _figure_names(html) -> set[str]:
    import re

    return set(re.findall(r'<figure id="([^"]+)"', html.read_text()))


def test_the_database_refuses_to_change_saved_records(clinic):
    """Revisions, clinical records and the audit trail are append-only in the database itself (triggers),
    on either backend."""
    _, data, url = clinic
    store = Store(data, url)
    for statement in ("UPDATE revisions SET note = 'x'", "UPDATE fittings SET comfort = 10",
                      "UPDATE followups SET advice = 'none'", "UPDATE audit_events SET actor = 'x'",
                      "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            with store.engine.begin() as connection:
                connection.exec_driver_sql(statement)
    store.close()
