"""A case as one archive, for a fabrication lab or another clinic: every record of the case and every file
they name, in a zip (``manifest.json`` + ``files/<sha256>``). Import checks the whole archive first (format,
every file against its hash, every record's references), then stores the files and inserts the records in
one transaction, so a damaged archive changes nothing. Record ids are renumbered; the audit trail keeps its
original actors and times, and gains one 'case.import' event."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from socketcad import __version__
from socketcad.clinic.cases import actor, audit, find_case, utc
from socketcad.clinic.files import sha256
from socketcad.clinic.models import (AuditEvent, Case, Delivery, Evaluation, Fabrication, Fitting, FollowUp, Revision,
                                     Scan)
from socketcad.clinic.store import Store
from socketcad.errors import InputError
from socketcad.geometry import io

FORMAT = "socketcad-case"
VERSION = 1
# Record kinds in the order they are inserted (each refers only to kinds before it, or to itself).
KINDS = {"scans": Scan, "revisions": Revision, "evaluations": Evaluation, "fabrications": Fabrication,
         "fittings": Fitting, "deliveries": Delivery, "followups": FollowUp}
# Columns that name another record: column -> the kind it names.
REFERENCES = {"scan_id": "scans", "baseline_scan_id": "scans", "revision_id": "revisions", "parent_id": "revisions",
              "child_revision_id": "revisions"}
FILE_COLUMNS = ("file_hash", "socket_hash", "sheet_hash")
# Nullable columns added after version 1 archives were first written: absent in an archive means null.
LATER_COLUMNS = {"scans": ("anterior",)}


def export_case(store: Store, reference: str, path: Path) -> dict:
    """Write the case's archive to ``path`` (atomically); the manifest written."""
    with store.transaction() as db:
        case = find_case(db, reference)
        manifest = {"format": FORMAT, "version": VERSION, "socketcad": __version__, "exported_by": actor(),
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


def import_case(store: Store, path: Path) -> Case:
    """Add the case in the archive at ``path``; InputError, with nothing changed, if the archive is damaged,
    not a case archive, or its reference is taken."""
    manifest, files = _read_archive(Path(path))
    facts = manifest["case"]
    taken = InputError(f"{path}: case {facts['reference']!r} exists already in this store; nothing imported")
    with store.transaction() as db:
        if db.scalar(select(Case).where(Case.reference == facts["reference"])) is not None:
            raise taken
    for data in files.values():
        store.files.put(data)
    try:
        return _insert(store, manifest, Path(path).name)
    except IntegrityError:  # imported meanwhile by another process
        raise taken from None


def _insert(store: Store, manifest: dict, name: str) -> Case:
    """The archive's records, renumbered, in one transaction."""
    facts = manifest["case"]
    with store.transaction() as db:
        case = Case(reference=facts["reference"], level=facts["level"], side=facts["side"],
                    created_at=_when(facts["created_at"]))
        db.add(case)
        db.flush()
        new_ids: dict[str, dict[int, int]] = {kind: {} for kind in KINDS}
        for kind, model in KINDS.items():
            for row in manifest[kind]:
                old = row["id"]
                fields = {k: v for k, v in row.items() if k not in ("id", "case_id")}
                for column, named in REFERENCES.items():
                    if fields.get(column) is not None:
                        fields[column] = new_ids[named][fields[column]]
                fields["created_at"] = _when(fields["created_at"])
                record = model(case_id=case.id, **fields)
                db.add(record)
                db.flush()
                new_ids[kind][old] = record.id
        for event in manifest["audit"]:
            db.add(AuditEvent(at=_when(event["at"]), actor=event["actor"], action=event["action"], case_id=case.id,
                              detail={**event["detail"], "imported": True}))
        audit(db, "case.import", case.id, {"archive": name, "exported_by": manifest.get("exported_by"),
                                           "ids": {kind: {str(k): v for k, v in ids.items()} for kind, ids in new_ids.items()}})
    return case


def _read_archive(path: Path) -> tuple[dict, dict[str, bytes]]:
    """The manifest and files of an archive, every part checked; InputError naming the first fault."""
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            files = {digest: archive.read(f"files/{digest}") for digest in manifest.get("files", [])}
    except FileNotFoundError:
        raise InputError(f"{path}: no such archive") from None
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path}: the archive is damaged or not a zip file ({exc}); export the case again") from None
    except KeyError as exc:
        raise InputError(f"{path}: the archive lacks {exc.args[0].split()[-1]}; it is not a whole socketcad case archive") from None
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise InputError(f"{path}: manifest.json is not a socketcad case manifest") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{path}: not a socketcad case archive (its manifest names no format {FORMAT!r})")
    if manifest.get("version") != VERSION:
        raise InputError(f"{path}: case archive version {manifest.get('version')} is not supported (this socketcad "
                         f"reads version {VERSION})")
    for digest, data in files.items():
        if sha256(data) != digest:
            raise InputError(f"{path}: file {digest[:12]} does not match its hash: the archive is damaged")
    _check_references(path, manifest, set(files))
    return manifest, files


def _check_references(path: Path, manifest: dict, digests: set[str]) -> None:
    """Every record is whole, and names files in the archive and records before it in the archive."""
    if not isinstance(manifest.get("case"), dict) or not {"reference", "level", "side", "created_at"} <= set(manifest["case"]):
        raise InputError(f"{path}: the manifest's case record is incomplete")
    seen: dict[str, set[int]] = {kind: set() for kind in KINDS}
    for kind, model in KINDS.items():
        columns = {c.name for c in model.__table__.columns} - {"case_id"}
        rows = manifest.get(kind)
        if not isinstance(rows, list):
            raise InputError(f"{path}: the manifest has no list of {kind}")
        for row in rows:
            if isinstance(row, dict):
                row.update({column: None for column in LATER_COLUMNS.get(kind, ()) if column not in row})
            if not isinstance(row, dict) or set(row) != columns:
                raise InputError(f"{path}: a record in {kind} does not have the fields {', '.join(sorted(columns))}")
            for column, named in REFERENCES.items():
                if row.get(column) is not None and row[column] not in seen[named]:
                    raise InputError(f"{path}: {kind} {row['id']} names {named} {row[column]}, which is not before it "
                                     "in the archive")
            for column in FILE_COLUMNS:
                if column in row and row[column] not in digests:
                    raise InputError(f"{path}: {kind} {row['id']} names file {str(row[column])[:12]}, which the archive lacks")
            seen[kind].add(row["id"])
    if not isinstance(manifest.get("audit"), list):
        raise InputError(f"{path}: the manifest has no audit trail")


def _row(record) -> dict:
    row = {}
    for column in record.__table__.columns:
        if column.name == "case_id":
            continue
        value = getattr(record, column.name)
        row[column.name] = utc(value) if isinstance(value, datetime) else value
    return row


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)
