"""Interface analyses kept with a case's design revisions: `case analyze` (the quick preview, on the kept tissue
mesh of tests/data/tissue) stores the summary and the maps with the revision, `case show` lists it, the
stored analysis reads back whole, a revision without one is refused in one line, case archives carry them,
and a database made before analyses existed is migrated."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from sqlalchemy import create_engine

from conftest import in_process
from socketcad.anatomy.limb import load_limb
from socketcad.anatomy.samples import SAMPLES
from socketcad.biomech.interface import InterfaceSummary
from socketcad.clinic.analyses import latest_analysis
from socketcad.clinic.archive import export_case, import_case
from socketcad.clinic.cases import add_scan, check_store, design, history, new_case
from socketcad.clinic.models import Analysis, Revision, Scan
from socketcad.clinic.records import evaluate
from socketcad.clinic.store import Store
from socketcad.errors import InputError
from socketcad.operations import RevisionAnalysed, result_schemas, stored_analysis

LIMB = SAMPLES["openlimb-tt-mean"].path  # a right transtibial limb
SPEC = {"socket_type": "ptb", "liner": "silicone_locking_6", "closure": "pin_lock_icelock"}
KEPT_MESHES = Path(__file__).parent / "data" / "tissue"
TABLES = ("cases", "scans", "revisions", "evaluations", "analyses", "audit_events")
ACTOR = "prosthetist-c"


@dataclass
class Clinic:
    store: Store
    run: Callable  # the CLI in this process, on this store and cache
    cache: Path  # the tissue mesh cache: copies of the kept meshes
    analysed: RevisionAnalysed  # revision 1's quick analysis, as `case analyze --json` printed it
    bare_revision: int  # a revision of case B-1, which has no evaluation


def rows(store: Store, table: str) -> int:
    with sqlite3.connect(store.data_folder / "socketcad.db") as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture(scope="module")
def clinic(tmp_path_factory) -> Clinic:
    """Case A-1 (evaluated K3, one scan, a PTB revision and two copies of it, 2 and 3, made without a build) and
    case B-1 (a stand-in revision, no evaluation); revision 1 analysed by `case analyze --quick --json`."""
    data, cache = tmp_path_factory.mktemp("clinic-analysis"), tmp_path_factory.mktemp("cache")
    (cache / "tissue").mkdir()
    for kept in KEPT_MESHES.glob("tissue-*.npz"):
        shutil.copy(kept, cache / "tissue")
    store = Store(data)
    new_case(store, "A-1", "transtibial", "right", actor=ACTOR)
    evaluate(store, "A-1", {"k_level": "K3"}, actor=ACTOR)
    add_scan(store, "A-1", LIMB, actor=ACTOR)
    first = design(store, "A-1", "ptb", SPEC, actor=ACTOR)
    bare = new_case(store, "B-1", "transtibial", "right", actor=ACTOR)
    with store.transaction() as db:
        for _ in range(2):
            db.add(Revision(case_id=first.case_id, scan_id=first.scan_id, parent_id=first.id, plan=first.plan,
                            spec=first.spec, socket_hash=first.socket_hash, sheet_hash=first.sheet_hash,
                            note="the same design", created_by=ACTOR))
        scan = Scan(case_id=bare.id, file_hash=store.files.put(b"stand-in scan"), filename="limb.stl", method="scan",
                    units="mm")
        db.add(scan)
        db.flush()
        revision = Revision(case_id=bare.id, scan_id=scan.id, plan=first.plan, spec=first.spec, created_by=ACTOR,
                            socket_hash=store.files.put(b"stand-in socket"), sheet_hash=store.files.put(b"{}"))
        db.add(revision)
        db.flush()
        bare_revision = revision.id
    environment = dict(os.environ, SOCKETCAD_DATA=str(data), SOCKETCAD_USER=ACTOR, SOCKETCAD_CACHE=str(cache))
    environment.pop("SOCKETCAD_DB", None)
    run = in_process(environment)
    result = run("case", "analyze", "A-1", "1", "--quick", "--body-mass-kg", "80", "--json")
    assert result.returncode == 0, result.stderr
    analysed = RevisionAnalysed.model_validate(json.loads(result.stdout))
    return Clinic(store, run, cache, analysed, bare_revision)


def test_the_analysis_is_kept_with_the_revision(clinic):
    analysed, store = clinic.analysed, clinic.store
    assert (analysed.revision, analysed.quick, analysed.body_mass_kg, analysed.k_level) == (1, True, 80.0, "K3")
    assert list(analysed.summary.cases) == ["donning", "standing"] and analysed.summary.quick
    assert [p.case for p in analysed.peaks] == ["donning", "standing"]
    assert analysed.peaks[1].peak_pressure_kpa == analysed.summary.cases["standing"].peak_pressure_kpa > 0
    with store.transaction() as db:
        record = db.get(Analysis, analysed.id)
        assert (record.revision_id, record.quick, record.body_mass_kg, record.k_level, record.created_by) == (
            1, True, 80.0, "K3", ACTOR)
        assert InterfaceSummary.model_validate(record.summary) == analysed.summary
        assert store.files.has(record.maps_hash) and record.maps_hash == analysed.maps_hash
    assert sorted(p.name for p in (clinic.cache / "tissue").iterdir()) == sorted(
        p.name for p in KEPT_MESHES.glob("tissue-*.npz")), "the kept quick mesh was not used"
    assert check_store(store) == []
    schema = result_schemas()["RevisionAnalysed"]
    assert set(schema["required"]) >= {"id", "revision", "quick", "peaks", "summary"}


def test_case_show_lists_the_analysis(clinic):
    record = history(clinic.store, "A-1")
    [row] = [a for a in record.analyses if a.id == clinic.analysed.id]
    assert (row.revision, row.quick, row.body_mass_kg, row.k_level, row.by) == (1, True, 80.0, "K3", ACTOR)
    assert row.peaks == clinic.analysed.peaks
    assert "analysis.add" in [e.action for e in record.audit]
    shown = clinic.run("case", "show", "A-1")
    assert shown.returncode == 0, shown.stderr
    standing = clinic.analysed.summary.cases["standing"]
    assert (f"analysis {row.id} of revision 1: quick preview, 80 kg K3, " in shown.stdout
            and f"standing peak {standing.peak_pressure_kpa:g} kPa (sensel {standing.sensel_peak_kpa:g} kPa)"
            in shown.stdout), shown.stdout


def test_the_stored_analysis_reads_back_with_its_maps(clinic):
    stored = stored_analysis(clinic.store, "A-1", 1)
    assert stored.summary == clinic.analysed.summary
    assert (stored.quick, stored.body_mass_kg, stored.k_level, stored.created_by) == (True, 80.0, "K3", ACTOR)
    assert stored.created_at.tzinfo is not None
    vertices = len(load_limb(LIMB).skin.vertices)
    maps = stored.maps
    assert maps.vertices == vertices and maps.region_label.shape == (vertices,)
    for kind in (maps.pressure_kpa, maps.shear_kpa, maps.sensel_pressure_kpa):
        assert list(kind) == ["donning", "standing"] and all(values.shape == (vertices,) for values in kind.values())
    for name, case in stored.summary.cases.items():
        assert round(float(maps.pressure_kpa[name].max()), 1) == case.peak_pressure_kpa
        assert round(float(maps.sensel_pressure_kpa[name].max()), 1) == case.sensel_peak_kpa


def test_a_revision_without_an_analysis_is_refused_in_one_line(clinic):
    with pytest.raises(InputError) as refused:
        stored_analysis(clinic.store, "A-1", 2)
    assert str(refused.value) == "case 'A-1' revision 2 has no analysis: analyse the revision first"
    with pytest.raises(InputError, match="revision 99 is not a revision of case 'A-1'"):
        stored_analysis(clinic.store, "A-1", 99)
    with pytest.raises(InputError, match="is not a revision of case 'A-1'"):
        stored_analysis(clinic.store, "A-1", clinic.bare_revision)


def test_case_analyze_prints_the_peaks_and_the_newest_is_read(clinic):
    """Revision 3 (the same socket) analysed at K2, 70 kg: the peaks printed with their units; a newer record
    of the revision is the one read back."""
    result = clinic.run("case", "analyze", "A-1", "3", "--quick", "--body-mass", "70", "--k-level", "2")
    assert result.returncode == 0, result.stderr
    assert "revision 3: quick preview, 70 kg, K2" in result.stdout
    assert "Interface peaks by load case (kPa)" in result.stdout and "sensel peak kPa" in result.stdout
    assert "quick preview: donning and standing on a coarse tissue mesh" in result.stdout
    stored = stored_analysis(clinic.store, "A-1", 3)
    assert (stored.k_level, stored.body_mass_kg) == ("K2", 70.0)
    with clinic.store.transaction() as db:
        kept = db.get(Analysis, stored.id)
        db.add(Analysis(case_id=kept.case_id, revision_id=3, quick=True, body_mass_kg=90.0, k_level="K4",
                        summary=kept.summary, maps_hash=kept.maps_hash, created_by="someone-else"))
    with clinic.store.transaction() as db:
        newest = latest_analysis(db, clinic.store.files, 3)
    assert (newest.id, newest.body_mass_kg, newest.created_by) == (stored.id + 1, 90.0, "someone-else")
    assert stored_analysis(clinic.store, "A-1", 1).id == clinic.analysed.id


@pytest.mark.parametrize("args, message", [
    (("A-1", "99", "--body-mass", "80"), "revision 99 is not a revision of case 'A-1'"),
    (("NOPE", "1", "--body-mass", "80"), "no case 'NOPE'"),
    (("A-1", "1", "--quick"), "give the patient's body mass in kg (--body-mass)"),
    (("B-1", "{bare}", "--body-mass", "80"), "case 'B-1' has no evaluation to take the K-level from: give the K-level (--k-level K0-K4)"),
    (("A-1", "1", "--body-mass", "80", "--k-level", "K9"), "K9"),
    (("A-1", "1", "--body-mass", "-5"), "body mass"),
])
def test_bad_input_exits_2_in_one_line_and_changes_nothing(clinic, args, message):
    store = clinic.store
    before = {table: rows(store, table) for table in TABLES}
    files = sorted(p.name for p in store.files.root.glob("*/*"))
    result = clinic.run("case", "analyze", *[a.format(bare=clinic.bare_revision) for a in args])
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert {table: rows(store, table) for table in TABLES} == before
    assert sorted(p.name for p in store.files.root.glob("*/*")) == files


def test_analyses_cannot_be_changed(clinic):
    with sqlite3.connect(clinic.store.data_folder / "socketcad.db") as db:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE analyses SET body_mass_kg = 1")


@pytest.fixture(scope="module")
def archive(clinic, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("archive") / "A-1.zip"
    manifest = export_case(clinic.store, "A-1", path, actor=ACTOR)
    assert manifest["analyses"][0]["revision_id"] == 1 and manifest["analyses"][0]["maps_hash"] in manifest["files"]
    return path


def test_an_archive_carries_the_analyses_and_their_maps(clinic, archive, tmp_path):
    target = Store(tmp_path)
    import_case(target, archive, actor="lab")
    kept, imported = history(clinic.store, "A-1"), history(target, "A-1")
    assert [(a.revision, a.quick, a.k_level, a.peaks, a.maps_hash) for a in imported.analyses] == [
        (a.revision, a.quick, a.k_level, a.peaks, a.maps_hash) for a in kept.analyses]
    again, original = stored_analysis(target, "A-1", 1), stored_analysis(clinic.store, "A-1", 1)
    assert again.summary == original.summary
    assert np.array_equal(again.maps.region_label, original.maps.region_label)
    assert all(np.array_equal(again.maps.pressure_kpa[name], values)
               for name, values in original.maps.pressure_kpa.items())
    assert check_store(target) == []


def test_an_archive_from_before_analyses_imports(archive, tmp_path):
    """A version 1 archive written before analyses existed has no 'analyses' list: it imports, with none."""
    older = tmp_path / "older.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(older, "w") as copy:
        manifest = json.loads(source.read("manifest.json"))
        maps = {row["maps_hash"] for row in manifest.pop("analyses")}
        manifest["files"] = [digest for digest in manifest["files"] if digest not in maps]
        copy.writestr("manifest.json", json.dumps(manifest))
        for info in source.infolist():
            if info.filename.startswith("files/") and info.filename[len("files/"):] not in maps:
                copy.writestr(info, source.read(info))
    target = Store(tmp_path / "store")
    import_case(target, older, actor="lab")
    assert history(target, "A-1").analyses == [] and check_store(target) == []


@pytest.mark.parametrize("field, value, words", [
    ("quick", "yes", "analyses[0].quick is 'yes', not true or false"),
    ("quick", False, "analyses[0]: quick is False and its summary's True"),
    ("summary", {"cases": {}}, "analyses[0]: summary: "),
    ("k_level", "K9", "analyses[0]: "),
    ("k_level", "3", "analyses[0]: k_level '3' is not a K-level as the store writes it"),
    ("body_mass_kg", -5, "analyses[0]: "),
    ("revision_id", 99, "analyses[0] names revisions 99, which is not before it"),
])
def test_an_archive_with_a_bad_analysis_is_refused(archive, tmp_path, field, value, words):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(bad, "w") as copy:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "manifest.json":
                manifest = json.loads(content)
                manifest["analyses"][0][field] = value
                content = json.dumps(manifest).encode()
            copy.writestr(info, content)
    target = Store(tmp_path / "store")
    with pytest.raises(InputError) as refused:
        import_case(target, bad, actor="lab")
    assert str(refused.value).startswith(f"{bad}: ") and words in str(refused.value), str(refused.value)
    assert rows(target, "cases") == 0 and not list(target.files.root.glob("*/*"))


def test_a_database_from_before_analyses_is_migrated(tmp_path):
    """A store at migration 0003 (no analyses table) with a case in it: opening it adds the table, keeps the case."""
    from alembic import command
    from alembic.config import Config

    import socketcad.clinic.store as store_module

    config = Config()
    config.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    engine = create_engine(f"sqlite:///{tmp_path / 'socketcad.db'}")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.exec_driver_sql("INSERT INTO cases (reference, level, side, created_at) "
                                   "VALUES ('OLD-1', 'transtibial', 'left', '2024-05-01 09:30:00')")
    engine.dispose()
    with sqlite3.connect(tmp_path / "socketcad.db") as db:
        assert "analyses" not in {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    store = Store(tmp_path)
    assert history(store, "OLD-1").analyses == []
    with sqlite3.connect(tmp_path / "socketcad.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0005"
        assert db.execute("SELECT count(*) FROM analyses").fetchone()[0] == 0
