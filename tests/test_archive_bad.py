"""Case archives that must be refused by 'socketcad case import': one InputError line naming the archive and
the problem, nothing stored (no row, no file), and nothing let in that 'case show' could not read back. Each
bad archive is a mutation of a good one exported from a real (cheaply made) case; all go into one store,
which is checked afterwards: every case shows, SQLite's integrity check passes, every stored file is named."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import warnings
import zipfile
from pathlib import Path
from typing import Callable

import pytest

from socketcad.clinic import archive as case_archive
from socketcad.clinic.archive import export_case, import_case
from socketcad.clinic.cases import check_store, history, new_case
from socketcad.clinic.fitting import fit
from socketcad.clinic.models import Fitting, FollowUp, Revision, Scan
from socketcad.clinic.records import deliver, evaluate, fabricate
from socketcad.clinic.store import Store
from socketcad.design.plan import plan_from_dict
from socketcad.design.socket import spec_from_dict
from socketcad.errors import InputError

TABLES = ("cases", "scans", "revisions", "evaluations", "fabrications", "fittings", "deliveries", "followups",
          "audit_events")
PLAN = {"schema_version": 1, "name": "ptb", "level": "transtibial", "modifications": []}
SPEC = {"socket_type": "ptb", "liner": "silicone_locking_6", "closure": "pin_lock_icelock", "adapter": "four_hole_43"}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """The archive of a case with every kind of record: two scans, a revision and its child, an evaluation,
    a fabrication, fittings (one with the adjustment that made the child), a delivery and a follow-up. The
    scans and sockets are stand-in bytes: import does not read them as shapes, and this takes milliseconds."""
    store = Store(tmp_path_factory.mktemp("source"))
    case = new_case(store, "G-1", "transtibial", "right", actor="clinic-a")
    evaluate(store, "G-1", {"k_level": "K3", "sensitive_areas": ["fibular_head"]}, actor="clinic-a")
    plan, spec = plan_from_dict(PLAN).model_dump(mode="json"), spec_from_dict(SPEC).model_dump(mode="json")
    with store.transaction() as db:
        scans = [Scan(case_id=case.id, file_hash=store.files.put(f"solid scan {n}".encode()), filename=f"limb{n}.stl",
                      method="scan", units="mm", anterior=None if n else [0.0, 1.0, 0.0]) for n in range(2)]
        db.add_all(scans)
        db.flush()
        parent = Revision(case_id=case.id, scan_id=scans[0].id, plan=plan, spec=spec, created_by="a",
                          socket_hash=store.files.put(b"solid socket 1"), sheet_hash=store.files.put(b"{}"))
        db.add(parent)
        db.flush()
        db.add(Revision(case_id=case.id, scan_id=scans[0].id, parent_id=parent.id, plan=plan, spec=spec, created_by="a",
                        socket_hash=store.files.put(b"solid socket 2"), sheet_hash=store.files.put(b"{ }")))
        db.add(FollowUp(case_id=case.id, scan_id=scans[1].id, baseline_scan_id=scans[0].id, socks_ply=1,
                        volume_change_pct=-2.5, advice="add socks", result={"advice": "add socks"}, created_by="a"))
    fabricate(store, "G-1", 1, "test", "petg", "lab A", actor="clinic-a")
    fit(store, "G-1", 1, 7, {"brim": "a little high"}, "even", [], actor="clinic-a")
    deliver(store, "G-1", 2, ["don_doff"], actor="clinic-a")
    with store.transaction() as db:  # a fitting whose adjustment made revision 2 (fit() would build a socket)
        db.add(Fitting(case_id=case.id, revision_id=1, comfort=5, feedback={}, gait="", child_revision_id=2,
                       adjustments=[{"verb": "relieve", "where": "fibular_head", "amount": 2.0}], created_by="a"))
    path = tmp_path_factory.mktemp("good") / "good.zip"
    export_case(store, "G-1", path, actor="clinic-a")
    return path


def members(path: Path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return [(info, archive.read(info)) for info in archive.infolist()]


def rewrite(good: Path, out: Path, manifest: Callable[[dict], object] | None = None, text: str | None = None,
            extra: list[tuple[zipfile.ZipInfo | str, bytes]] = (), change: Callable[[zipfile.ZipFile], None] | None = None) -> Path:
    """A copy of the good archive with its manifest changed (by ``manifest``, or replaced by ``text``), members
    added, and ``change`` applied to the written zip's directory before it is closed (headers that lie)."""
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as copy:
        warnings.simplefilter("ignore")  # 'Duplicate name'
        for info, data in members(good):
            if info.filename == "manifest.json":
                parsed = json.loads(data)
                if manifest is not None:
                    parsed = manifest(parsed) or parsed
                data = (text if text is not None else json.dumps(parsed)).encode()
            copy.writestr(info.filename, data)
        for name, data in extra:
            copy.writestr(name, data)
        if change is not None:
            change(copy)
    return out


def first_file(copy: zipfile.ZipFile) -> zipfile.ZipInfo:
    return next(info for info in copy.filelist if info.filename.startswith("files/"))


def setter(*keys_and_value):
    """A manifest change: the value at the path of keys set (or deleted, for DELETE)."""
    *keys, value = keys_and_value

    def change(manifest: dict) -> None:
        target = manifest
        for key in keys[:-1]:
            target = target[key]
        if value is DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return change


DELETE = object()
ZEROS = b"\0" * (2 * 2**20)


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def with_file(data: bytes) -> Callable[[dict], None]:
    """The first scan names a file of ``data``, listed in the manifest."""
    def change(manifest: dict) -> None:
        manifest["files"].append(digest_of(data))
        manifest["scans"][0]["file_hash"] = digest_of(data)
    return change


# name -> (rewrite's keyword arguments, limits to set, words the message must hold)
BAD = {
    "files_a_number": ({"manifest": setter("files", 5)}, {}, "'files' is not a list"),
    "files_a_string": ({"manifest": setter("files", "abc")}, {}, "'files' is not a list"),
    "case_created_at": ({"manifest": setter("case", "created_at", "yesterday")}, {}, "case.created_at is 'yesterday', not an ISO time"),
    "scan_created_at": ({"manifest": setter("scans", 0, "created_at", "2024-13-45")}, {}, "scans[0].created_at"),
    "list_as_id": ({"manifest": setter("scans", 0, "id", [1])}, {}, "scans[0].id is [1], not an integer"),
    "huge_id": ({"manifest": setter("scans", 0, "id", 10**30)}, {}, "not an integer"),
    "dict_as_method": ({"manifest": setter("scans", 0, "method", {"a": 1})}, {}, "scans[0].method is {'a': 1}, not text"),
    "audit_without_at": ({"manifest": setter("audit", 0, "at", DELETE)}, {}, "audit[0] does not have the fields action, actor, at, detail"),
    "audit_detail_list": ({"manifest": setter("audit", 0, "detail", [])}, {}, "audit[0].detail is not a mapping"),
    "plan_oops": ({"manifest": setter("revisions", 0, "plan", "oops")}, {}, "revisions[0]: plan: a plan is a mapping"),
    "spec_empty": ({"manifest": setter("revisions", 1, "spec", {})}, {}, "revisions[1]: spec: socket_type"),
    "level_banana": ({"manifest": setter("case", "level", "banana")}, {}, "level 'banana' is not one of"),
    "side_null": ({"manifest": setter("case", "side", None)}, {}, "side None is not one of: left, right"),
    "units_parsec": ({"manifest": setter("scans", 1, "units", "parsec")}, {}, "units 'parsec' are not one of"),
    "reference_5000": ({"manifest": setter("case", "reference", "R" * 5000)}, {}, "1-64 printable characters"),
    "reference_escape": ({"manifest": setter("case", "reference", "R-\x1b[31mred\x07")}, {}, "1-64 printable"),
    "version_string": ({"manifest": setter("version", "1")}, {}, "version '1' is not supported"),
    "note_too_long": ({"manifest": setter("revisions", 0, "note", "n" * 1001)}, {}, "at most 1000 fit"),
    "evaluation_form": ({"manifest": setter("evaluations", 0, "form", "sensitive_areas", ["elbow"])}, {}, "elbow"),
    "checklist_list": ({"manifest": setter("deliveries", 0, "checklist", [])}, {}, "checklist is not a mapping"),
    "adjustment": ({"manifest": setter("fittings", 1, "adjustments", [{"verb": "glue", "where": "x", "amount": 1}])},
                   {}, "is not understood"),
    "comfort_11": ({"manifest": setter("fittings", 0, "comfort", 11)}, {}, "comfort score 11 is outside 0-10"),
    "material": ({"manifest": setter("fabrications", 0, "material", "gold")}, {}, "material 'gold' is not in the catalogue"),
    "advice": ({"manifest": setter("followups", 0, "advice", "pray")}, {}, "advice 'pray' is not one of"),
    "parent_later": ({"manifest": setter("revisions", 0, "parent_id", 2)}, {}, "which is not before it"),
    "unnamed_file": ({"manifest": lambda m: m["files"].append(digest_of(b"stray")), "extra": [("files/" + digest_of(b"stray"), b"stray")]},
                     {}, "is named by no record"),
    "nested_5000": ({"text": '{"format": "socketcad-case", "version": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}"}, {},
                    "nests too deep"),
    "digits_5000": ({"text": '{"format": "socketcad-case", "version": 1, "x": 1' + "0" * 5000 + "}"}, {},
                    "manifest.json holds an integer of over 4,300 digits"),
    "plan_nested_100": ({"manifest": setter("revisions", 0, "plan", "sources", json.loads("[" * 100 + "]" * 100))}, {},
                        "nested deeper than the 20-level limit"),
    "infinity": ({"text": '{"format": "socketcad-case", "version": 1, "x": Infinity}'}, {}, "Infinity, which is not a number"),
    "two_manifests": ({"extra": [("manifest.json", b"{}")]}, {}, "holds manifest.json more than once"),
    "encrypted": ({"change": lambda z: setattr(first_file(z), "flag_bits", first_file(z).flag_bits | 0x1)}, {},
                  "is encrypted"),
    "method_98": ({"change": lambda z: setattr(first_file(z), "compress_type", 98)}, {}, "compressed by method 98"),
    "claims_4_5_gib": ({"change": lambda z: setattr(first_file(z), "file_size", 9 * 2**29)}, {},
                       "is over the 1 GiB limit of a case archive member"),
    "over_member_cap": ({"manifest": with_file(ZEROS), "extra": [("files/" + digest_of(ZEROS), ZEROS)]},
                        {"MAX_MEMBER_BYTES": 2**20}, "is over the 1 MiB limit"),
    "header_lies": ({"manifest": with_file(ZEROS), "extra": [("files/" + digest_of(ZEROS), ZEROS)],
                     "change": lambda z: setattr(z.filelist[-1], "file_size", 100)}, {"MAX_MEMBER_BYTES": 2**20},
                    "is damaged"),
    "manifest_over_cap": ({}, {"MAX_MANIFEST_BYTES": 1000}, "member manifest.json is over the 1,000 bytes limit"),
    "too_many_members": ({}, {"MAX_MEMBERS": 3}, "over the 3-member limit"),
}


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Store:
    """The one store every bad archive is imported into."""
    return Store(tmp_path_factory.mktemp("target"))


def stored(store: Store) -> tuple[dict[str, int], list[str]]:
    with sqlite3.connect(store.data_folder / "socketcad.db") as db:
        counts = {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}
    return counts, sorted(p.name for p in store.files.root.glob("*/*"))


@pytest.mark.parametrize("name", BAD)
def test_a_bad_archive_is_refused_in_one_line_and_stores_nothing(name, good, target, tmp_path, monkeypatch):
    changes, limits, words = BAD[name]
    bad = rewrite(good, tmp_path / f"{name}.zip", **changes)
    for limit, value in limits.items():
        monkeypatch.setattr(case_archive, limit, value)
    before = stored(target)
    with pytest.raises(InputError) as refused:
        import_case(target, bad, actor="clinic-b")
    message = str(refused.value)
    assert message.startswith(f"{bad}: ") and words in message, message
    assert "\n" not in message and "\x1b" not in message and len(message) < 1000, message
    assert stored(target) == before


def test_a_bad_archive_exits_2_with_one_line(good, target, cli, tmp_path, monkeypatch):
    bad = rewrite(good, tmp_path / "spec.zip", **BAD["spec_empty"][0])
    monkeypatch.setenv("SOCKETCAD_DATA", str(target.data_folder))
    result = cli("case", "import", bad)
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "socket_type" in result.stderr and "Traceback" not in result.stderr


def test_the_store_stays_whole_and_the_good_archive_imports(good, target, cli, monkeypatch):
    """After every refusal: the good archive imports, every case shows, the database is intact, and the
    file store holds exactly the files the records name."""
    import_case(target, good, actor="clinic-b")
    monkeypatch.setenv("SOCKETCAD_DATA", str(target.data_folder))
    with sqlite3.connect(target.data_folder / "socketcad.db") as db:
        references = [row[0] for row in db.execute("SELECT reference FROM cases")]
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        named = {row[0] for row in db.execute("SELECT file_hash FROM scans UNION SELECT socket_hash FROM revisions "
                                               "UNION SELECT sheet_hash FROM revisions")}
    assert references == ["G-1"]
    for reference in references:
        record = history(target, reference).model_dump()
        assert len(record["revisions"]) == 2 and len(record["fittings"]) == 2 and len(record["followups"]) == 1
        shown = cli("case", "show", reference)
        assert shown.code == 0, shown.stderr
    assert {p.name for p in target.files.root.glob("*/*")} == named
    assert check_store(target) == []


@pytest.mark.parametrize("reference", ["R" * 65, "R-\x1b[31mred", "R\n2", "  "])
def test_case_new_refuses_the_references_import_refuses(reference, tmp_path):
    with pytest.raises(InputError, match="1-64 printable characters"):
        new_case(Store(tmp_path), reference, "transtibial", "right", actor="clinic-a")
