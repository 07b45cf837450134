"""A case as one archive, for a fabrication lab or another clinic: every record of the case and every file
they name, in a zip (``manifest.json`` + ``files/<sha256>``). Import checks the whole archive first (format,
sizes, every file against its hash, every record with the rules the store writes and reads it by, every
reference), then stores the files and inserts the records in one transaction, so a damaged or hostile
archive changes nothing. Record ids are renumbered; the audit trail keeps its original actors and times, and
gains one 'case.import' event."""

from __future__ import annotations

import hashlib
import json
import lzma
import math
import zipfile
import zlib
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, select
from sqlalchemy.exc import IntegrityError

from socketcad import __version__
from socketcad.anatomy.landmarks import MAX_COORDINATE_MM, known_landmarks
from socketcad.biomech.analysis import check_analysis_inputs
from socketcad.biomech.interface import InterfaceSummary
from socketcad.clinic.cases import METHODS, audit, check_case, check_length, find_case, utc
from socketcad.clinic.files import HASH_LENGTH
from socketcad.clinic.fitting import Adjustment, check_feedback, parse_adjustment
from socketcad.clinic.followup import ADVICE
from socketcad.clinic.models import (Analysis, AuditEvent, Case, Delivery, Evaluation, Fabrication, Fitting, FollowUp,
                                     LandmarkMove, Revision, Scan)
from socketcad.clinic.records import CHECKLIST, STAGES, evaluation_form
from socketcad.clinic.store import Store
from socketcad.design.components import load_catalogue
from socketcad.design.plan import plan_from_dict
from socketcad.design.socket import spec_from_dict
from socketcad.errors import InputError, printable, validated
from socketcad.geometry import io
from socketcad.geometry.units import UNITS

FORMAT = "socketcad-case"
VERSION = 1
# Record kinds in the order they are inserted (each refers only to kinds before it, or to itself).
KINDS = {"scans": Scan, "revisions": Revision, "evaluations": Evaluation, "fabrications": Fabrication,
         "fittings": Fitting, "deliveries": Delivery, "followups": FollowUp, "analyses": Analysis,
         "landmark_moves": LandmarkMove}
# Columns that name another record: column -> the kind it names.
REFERENCES = {"scan_id": "scans", "baseline_scan_id": "scans", "revision_id": "revisions", "parent_id": "revisions",
              "child_revision_id": "revisions"}
FILE_COLUMNS = ("file_hash", "socket_hash", "sheet_hash", "maps_hash")
# Nullable columns added after version 1 archives were first written: absent in an archive means null.
LATER_COLUMNS = {"scans": ("anterior",)}
# Kinds added after version 1 archives were first written: absent in an archive means none.
LATER_KINDS = ("analyses", "landmark_moves")
# Limits of an archive, far above a real case (a manifest of a few hundred KB, a few scans and sockets of at
# most a few hundred MB): a member is at most as large as the largest mesh file socketcad reads.
MAX_MEMBER_BYTES = io.MESH_FILE_MAX_BYTES  # 1 GiB
MAX_MANIFEST_BYTES = 64 * 2**20
MAX_TOTAL_BYTES = 8 * 2**30  # every member together, uncompressed
MAX_MEMBERS = 10_000
_CHUNK_BYTES = 2**20
# Compression methods Python's zipfile reads (others, e.g. PPMd 98, raise NotImplementedError).
COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
                zipfile.ZIP_LZMA: "lzma"}


def export_case(store: Store, reference: str, path: Path, *, actor: str) -> dict:
    """Write the case's archive to ``path`` (atomically); the manifest written."""
    with store.transaction() as db:
        case = find_case(db, reference)
        manifest = {"format": FORMAT, "version": VERSION, "socketcad": __version__, "exported_by": actor,
                    "case": {"reference": case.reference, "level": case.level, "side": case.side,
                             "created_at": utc(case.created_at)}}
        for kind, model in KINDS.items():
            rows = db.scalars(select(model).where(model.case_id == case.id).order_by(model.id))
            manifest[kind] = [_row(record) for record in rows]
        events = db.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.id))
        manifest["audit"] = [{"at": utc(e.at), "actor": e.actor, "action": e.action, "detail": e.detail} for e in events]
    digests = sorted({row[column] for kind in KINDS for row in manifest[kind] for column in FILE_COLUMNS if column in row})
    manifest["files"] = digests

    def write(temporary: Path) -> None:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
            for digest in digests:
                archive.writestr(f"files/{digest}", store.files.get(digest))

    io.write_atomic(Path(path), write)
    return manifest


def import_case(store: Store, path: Path, *, actor: str) -> Case:
    """Add the case in the archive at ``path``; InputError (one line naming the archive and the problem), with
    nothing stored, if the archive is damaged, over a limit, not a case archive, holds a record the store could
    not read back, or its reference is taken."""
    path = Path(path)
    checked = _read_archive(path)
    reference = checked.case["reference"]
    taken = InputError(f"{path}: case {reference!r} exists already in this store; nothing imported")
    with store.transaction() as db:
        if db.scalar(select(Case).where(Case.reference == reference)) is not None:
            raise taken
    with zipfile.ZipFile(path) as archive:
        for digest in checked.digests:
            data = b"".join(_chunks(path, archive, archive.getinfo(f"files/{digest}"), MAX_MEMBER_BYTES))
            if store.files.put(data) != digest:  # the archive changed since it was checked
                raise InputError(f"{path}: file {digest[:12]} changed while it was imported; import it again")
    try:
        return _insert(store, checked, path.name, actor)
    except IntegrityError:  # imported meanwhile by another process
        raise taken from None


@dataclass(frozen=True)
class _Checked:
    """An archive's content, every record checked and ready to insert (times parsed, old ids kept)."""

    case: dict
    records: dict[str, list[dict]]
    audit: list[dict]
    digests: list[str]
    exported_by: str | None


def _insert(store: Store, checked: _Checked, name: str, actor: str) -> Case:
    """The archive's records, renumbered, in one transaction."""
    with store.transaction() as db:
        case = Case(**checked.case)
        db.add(case)
        db.flush()
        new_ids: dict[str, dict[int, int]] = {kind: {} for kind in KINDS}
        for kind, model in KINDS.items():
            for row in checked.records[kind]:
                fields = {k: v for k, v in row.items() if k != "id"}
                for column, named in REFERENCES.items():
                    if fields.get(column) is not None:
                        fields[column] = new_ids[named][fields[column]]
                record = model(case_id=case.id, **fields)
                db.add(record)
                db.flush()
                new_ids[kind][row["id"]] = record.id
        for event in checked.audit:
            db.add(AuditEvent(case_id=case.id, **{**event, "detail": {**event["detail"], "imported": True}}))
        audit(db, "case.import", case.id, {"archive": name, "exported_by": checked.exported_by,
                                           "ids": {kind: {str(k): v for k, v in ids.items()} for kind, ids in new_ids.items()}}, actor)
    return case


def _read_archive(path: Path) -> _Checked:
    """The archive's content, every part checked; InputError naming the first fault."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise InputError(f"{path}: {len(members):,} members is over the {MAX_MEMBERS:,}-member limit of a case archive")
            twice = [name for name, count in Counter(m.filename for m in members).items() if count > 1]
            if twice:
                raise InputError(f"{path}: the archive holds {_name(twice[0])} more than once (which is meant is "
                                 "ambiguous); export the case again")
            if sum(m.file_size for m in members) > MAX_TOTAL_BYTES:
                raise InputError(f"{path}: its members are over the {_size(MAX_TOTAL_BYTES)} limit of a case archive")
            manifest = _manifest(path, archive)
            digests = _digests(path, manifest)
            for digest in digests:
                _check_file(path, archive, digest)
    except FileNotFoundError:
        raise InputError(f"{path}: no such archive") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a case archive") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError) as exc:
        reason = printable(exc)[:200]
        raise InputError(f"{path}: the archive is damaged or not a zip file ({reason}); export the case again") from None
    return _check_records(path, manifest, digests)


def _manifest(path: Path, archive: zipfile.ZipFile) -> dict:
    """The parsed manifest.json, of the right format and version."""
    try:
        info = archive.getinfo("manifest.json")
    except KeyError:
        raise InputError(f"{path}: the archive lacks manifest.json; it is not a whole case archive of socketcad") from None
    text = b"".join(_chunks(path, archive, info, MAX_MANIFEST_BYTES))
    try:
        manifest = json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{path}: manifest.json is not valid JSON; it is not the manifest of a case archive") from None
    except RecursionError:
        raise InputError(f"{path}: manifest.json nests too deep for the manifest of a case archive") from None
    except ValueError as exc:  # NaN or Infinity (_no_constant); Python refuses integers of over 4,300 digits
        reason = str(exc) if str(exc).startswith("holds ") else "holds an integer of over 4,300 digits"
        raise InputError(f"{path}: manifest.json {reason}, which no case record holds") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{path}: not a case archive of socketcad (its manifest names no format {FORMAT!r})")
    version = manifest.get("version")
    if type(version) is not int or version != VERSION:
        raise InputError(f"{path}: case archive version {printable(repr(version))[:40]} is not supported: this "
                         f"socketcad reads archives whose version is the number {VERSION}")
    return manifest


def _no_constant(name: str) -> None:
    raise ValueError(f"holds {name}, which is not a number")


def _digests(path: Path, manifest: dict) -> list[str]:
    """The manifest's list of files: SHA-256 hashes, each once."""
    digests = manifest.get("files")
    if not isinstance(digests, list) or len(digests) > MAX_MEMBERS:
        raise InputError(f"{path}: the manifest's 'files' is not a list of file hashes (at most {MAX_MEMBERS:,})")
    for digest in digests:
        if not _is_hash(digest):
            raise InputError(f"{path}: the manifest's 'files' holds {printable(repr(digest))[:40]}, which is not a "
                             "SHA-256 file hash")
    return list(dict.fromkeys(digests))


def _is_hash(value: object) -> bool:
    return isinstance(value, str) and len(value) == HASH_LENGTH and all(c in "0123456789abcdef" for c in value)


def _check_file(path: Path, archive: zipfile.ZipFile, digest: str) -> None:
    """The archive holds files/<digest> and its content has that hash (read in chunks, not kept)."""
    try:
        info = archive.getinfo(f"files/{digest}")
    except KeyError:
        raise InputError(f"{path}: the archive lacks files/{digest[:12]}; it is not a whole case archive of socketcad") from None
    hasher = hashlib.sha256()
    for chunk in _chunks(path, archive, info, MAX_MEMBER_BYTES):
        hasher.update(chunk)
    if hasher.hexdigest() != digest:
        raise InputError(f"{path}: file {digest[:12]} does not match its hash: the archive is damaged")


def _chunks(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> Iterator[bytes]:
    """A member's content in chunks, refused past ``cap`` bytes: by its header and, as headers can lie, by
    what it decompresses to."""
    name = _name(info.filename)
    over = InputError(f"{path}: member {name} is over the {_size(cap)} limit of a case archive member")
    if info.flag_bits & 0x1:
        raise InputError(f"{path}: member {name} is encrypted; export the case again without a password")
    if info.compress_type not in COMPRESSIONS:
        raise InputError(f"{path}: member {name} is compressed by method {info.compress_type}, which socketcad does "
                         f"not read ({', '.join(COMPRESSIONS.values())}); export the case again")
    if info.file_size > cap:
        raise over
    read = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK_BYTES):
                read += len(chunk)
                if read > cap:
                    raise over
                yield chunk
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, RuntimeError, NotImplementedError,
            ValueError) as exc:
        raise InputError(f"{path}: member {name} is damaged ({printable(exc)[:200]}); export the case again") from None


def _check_records(path: Path, manifest: dict, digests: list[str]) -> _Checked:
    """Every record of the manifest checked by the rules its kind is written by, and read back by ('case
    show', rebuilds); every reference to a record before it in the archive, or to a file in the archive."""
    facts = manifest.get("case")
    if not isinstance(facts, dict) or not {"reference", "level", "side", "created_at"} <= set(facts):
        raise InputError(f"{path}: the manifest's case record is incomplete")
    try:
        reference = check_case(facts["reference"], facts["level"], facts["side"])
    except InputError as exc:
        raise InputError(f"{path}: the case: {exc}") from None
    case = {"reference": reference, "level": facts["level"], "side": facts["side"],
            "created_at": _when(path, "case.created_at", facts["created_at"])}
    exported_by = manifest.get("exported_by")
    if exported_by is not None and (not isinstance(exported_by, str) or len(exported_by) > 64):
        raise InputError(f"{path}: the manifest's exported_by is not a name of at most 64 characters")
    seen: dict[str, set[int]] = {kind: set() for kind in KINDS}
    named: set[str] = set()
    records: dict[str, list[dict]] = {}
    for kind, model in KINDS.items():
        columns = {c.name for c in model.__table__.columns} - {"case_id"}
        rows = manifest.get(kind, [] if kind in LATER_KINDS else None)
        if not isinstance(rows, list):
            raise InputError(f"{path}: the manifest has no list of {kind}")
        records[kind] = []
        for number, row in enumerate(rows):
            if isinstance(row, dict):
                row = {**{column: None for column in LATER_COLUMNS.get(kind, ())}, **row}
            if not isinstance(row, dict) or set(row) != columns:
                raise InputError(f"{path}: {kind}[{number}] does not have the fields {', '.join(sorted(columns))}")
            where = f"{kind}[{number}]"
            fields = _columns(path, where, model, row)
            if fields["id"] in seen[kind]:
                raise InputError(f"{path}: {where}: id {fields['id']} is used twice in {kind}")
            for column, kind_named in REFERENCES.items():
                if fields.get(column) is not None and fields[column] not in seen[kind_named]:
                    raise InputError(f"{path}: {where} names {kind_named} {fields[column]}, which is not before it "
                                     "in the archive")
            for column in FILE_COLUMNS:
                if column in fields:
                    if fields[column] not in digests:
                        raise InputError(f"{path}: {where} names file {printable(fields[column])[:12]}, which the "
                                         "archive lacks")
                    named.add(fields[column])
            try:
                RULES[kind](fields, case["level"])
            except InputError as exc:
                raise InputError(f"{path}: {where}: {exc}") from None
            seen[kind].add(fields["id"])
            records[kind].append(fields)
    unnamed = [digest for digest in digests if digest not in named]
    if unnamed:
        raise InputError(f"{path}: file {unnamed[0][:12]} is named by no record of the archive; export the case again")
    return _Checked(case, records, _audit(path, manifest.get("audit")), digests, exported_by)


def _audit(path: Path, events: object) -> list[dict]:
    """The audit trail, each event checked like a record."""
    if not isinstance(events, list):
        raise InputError(f"{path}: the manifest has no audit trail")
    columns = {"at", "actor", "action", "detail"}
    checked = []
    for number, event in enumerate(events):
        if not isinstance(event, dict) or set(event) != columns:
            raise InputError(f"{path}: audit[{number}] does not have the fields {', '.join(sorted(columns))}")
        fields = _columns(path, f"audit[{number}]", AuditEvent, event)
        if not isinstance(fields["detail"], dict):
            raise InputError(f"{path}: audit[{number}].detail is not a mapping")
        checked.append(fields)
    return checked


def _columns(path: Path, where: str, model: type, row: dict) -> dict[str, Any]:
    """A row's values checked against its table's column types (and lengths, which SQLite does not enforce);
    times parsed. InputError naming the field."""
    fields: dict[str, Any] = {}
    for name, value in row.items():
        column = model.__table__.columns[name]
        kind = column.type
        source = f"{where}.{name}"
        if value is None:
            if not column.nullable or column.primary_key:
                raise InputError(f"{path}: {source} is missing (null)")
        elif isinstance(kind, DateTime):
            value = _when(path, source, value)
        elif isinstance(kind, Boolean):
            if type(value) is not bool:
                raise InputError(f"{path}: {source} is {_shown(value)}, not true or false")
        elif isinstance(kind, Integer):
            if type(value) is not int or not -2**63 <= value < 2**63:
                raise InputError(f"{path}: {source} is {_shown(value)}, not an integer")
        elif isinstance(kind, Float):
            if type(value) not in (int, float) or not math.isfinite(value):
                raise InputError(f"{path}: {source} is {_shown(value)}, not a finite number")
        elif isinstance(kind, String):
            if not isinstance(value, str):
                raise InputError(f"{path}: {source} is {_shown(value)}, not text")
            if kind.length is not None and len(value) > kind.length:
                raise InputError(f"{path}: {source}: {len(value):,} characters; at most {kind.length} fit")
        elif isinstance(kind, JSON):
            io.check_data_limits(value, f"{path}: {source}")
        fields[name] = value
    return fields


def _when(path: Path, source: str, text: object) -> datetime:
    """An ISO time, as UTC (a time without a zone is UTC, as the store writes them)."""
    try:
        if not isinstance(text, str):
            raise ValueError
        moment = datetime.fromisoformat(text)
        return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):
        raise InputError(f"{path}: {source} is {_shown(text)}, not an ISO time (e.g. 2024-05-01T09:30:00+00:00)") from None


def _shown(value: object) -> str:
    """A value from the archive in a message: escaped, and cut short."""
    text = printable(repr(value))
    return text if len(text) <= 40 else text[:37] + "..."


def _name(member: str) -> str:
    return _shown(member)[1:-1] if isinstance(member, str) else _shown(member)


def _size(limit: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if limit >= factor and limit % factor == 0:
            return f"{limit // factor} {unit}"
    return f"{limit:,} bytes"


# What each kind of record must hold beyond its column types: the rules it is written by (case-level checks).
def _scan(row: dict, level: str) -> None:
    if row["method"] not in METHODS:
        raise InputError(f"capture method {_shown(row['method'])} is not one of: {', '.join(METHODS)}")
    if row["units"] is not None and row["units"] not in UNITS:
        raise InputError(f"units {_shown(row['units'])} are not one of: {', '.join(UNITS)}")
    anterior = row["anterior"]
    if anterior is not None and (not isinstance(anterior, list) or len(anterior) != 3
                                 or not all(type(v) in (int, float) and math.isfinite(v) for v in anterior)
                                 or not any(anterior)):
        raise InputError("anterior is not a direction: three finite numbers, not all 0")


def _revision(row: dict, level: str) -> None:
    row["plan"] = plan_from_dict(row["plan"], "plan").model_dump(mode="json")
    row["spec"] = spec_from_dict(row["spec"], "spec").model_dump(mode="json")


def _evaluation(row: dict, level: str) -> None:
    form = evaluation_form(row["form"], level)
    if row["k_level"] != form.k_level:
        raise InputError(f"k_level {_shown(row['k_level'])} is not the form's {form.k_level}")
    row["form"] = form.model_dump(mode="json")


def _fabrication(row: dict, level: str) -> None:
    if row["stage"] not in STAGES:
        raise InputError(f"stage {_shown(row['stage'])} is not one of: {', '.join(STAGES)}")
    materials = [m.id for m in load_catalogue().materials]
    if row["material"] not in materials:
        raise InputError(f"material {_shown(row['material'])} is not in the catalogue; one of {', '.join(materials)}")


def _fitting(row: dict, level: str) -> None:
    if not 0 <= row["comfort"] <= 10:
        raise InputError(f"socket comfort score {row['comfort']} is outside 0-10")
    feedback = row["feedback"]
    if not isinstance(feedback, dict) or not all(isinstance(text, str) for text in feedback.values()):
        raise InputError("feedback is not a mapping of area -> text")
    check_feedback(feedback, level)
    for area, text in feedback.items():
        check_length(text, 500, f"the feedback on {area}")
    adjustments = row["adjustments"]
    fields = {"verb", "where", "amount"}
    if not isinstance(adjustments, list) or not all(isinstance(a, dict) and set(a) == fields for a in adjustments):
        raise InputError(f"adjustments is not a list of mappings with {', '.join(sorted(fields))}")
    for adjustment in adjustments:
        if not all(isinstance(adjustment[k], str) for k in ("verb", "where")) or type(adjustment["amount"]) not in (int, float):
            raise InputError("an adjustment's verb and where are text, its amount a number")
        parse_adjustment(str(Adjustment(**adjustment)), level)
    row["adjustments"] = [asdict(Adjustment(**a)) for a in adjustments]


def _delivery(row: dict, level: str) -> None:
    checklist = row["checklist"]
    if not isinstance(checklist, dict) or set(checklist) != set(CHECKLIST) or not all(
            isinstance(done, bool) for done in checklist.values()):
        raise InputError(f"checklist is not a mapping of {', '.join(CHECKLIST)} -> true or false")


def _followup(row: dict, level: str) -> None:
    if row["socks_ply"] < 0:
        raise InputError(f"socks_ply {row['socks_ply']} is negative")
    if row["advice"] not in ADVICE:
        raise InputError(f"advice {_shown(row['advice'])} is not one of: {', '.join(ADVICE)}")
    if not isinstance(row["result"], dict):
        raise InputError("result is not a mapping")


def _analysis(row: dict, level: str) -> None:
    summary = validated(InterfaceSummary, row["summary"], "summary", "an interface summary is a mapping")
    if summary.quick != row["quick"]:
        raise InputError(f"quick is {row['quick']} and its summary's {summary.quick}")
    number = check_analysis_inputs(row["body_mass_kg"], row["k_level"])
    if row["k_level"] != f"K{number}":
        raise InputError(f"k_level {_shown(row['k_level'])} is not a K-level as the store writes it (K0-K4)")
    row["summary"] = summary.model_dump(mode="json")


def _landmark_move(row: dict, level: str) -> None:
    if row["name"] not in known_landmarks(level):
        raise InputError(f"landmark {_shown(row['name'])} is not a {level} landmark")
    point = row["point_mm"]
    if not isinstance(point, list) or len(point) != 3 or not all(
            type(v) in (int, float) and math.isfinite(v) and abs(v) <= MAX_COORDINATE_MM for v in point):
        raise InputError(f"point_mm is not three finite numbers within +/-{MAX_COORDINATE_MM:g} mm")


RULES: dict[str, Callable[[dict, str], None]] = {
    "scans": _scan, "revisions": _revision, "evaluations": _evaluation, "fabrications": _fabrication,
    "fittings": _fitting, "deliveries": _delivery, "followups": _followup, "analyses": _analysis,
    "landmark_moves": _landmark_move}


def _row(record) -> dict:
    row = {}
    for column in record.__table__.columns:
        if column.name == "case_id":
            continue
        value = getattr(record, column.name)
        row[column.name] = utc(value) if isinstance(value, datetime) else value
    return row

