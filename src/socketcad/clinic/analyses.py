"""Interface analyses kept with the design revisions of a case. A revision's socket is analysed on its limb
as the revision was designed (its scan read as stored, with the plan's facts), by
socketcad.biomech.analysis; the summary is kept as a record and the per skin vertex maps
(interface-maps.npz) in the file store by hash, the file first, then the record and its audit event in one
transaction. Like every record an analysis is never changed: analysing again adds a newer one."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Callable

import trimesh
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from socketcad.biomech.analysis import analyse_socket, check_analysis_inputs
from socketcad.biomech.interface import InterfaceMaps, InterfaceResult, InterfaceSummary, read_maps
from socketcad.clinic.cases import audit, facts_of, find_case, read_limb, revision_of
from socketcad.clinic.files import FileStore, read_kept
from socketcad.clinic.models import Analysis, Case
from socketcad.clinic.store import Store
from socketcad.design.fabrication import FabricationSheet, read_sheet
from socketcad.design.pipeline import prepared_limb
from socketcad.design.plan import plan_from_dict
from socketcad.errors import InputError
from socketcad.geometry import io

__all__ = ["StoredAnalysis", "analyse_revision", "analysis_inputs", "latest_analysis", "stored_socket"]


class StoredAnalysis(BaseModel):
    """An analysis kept with a revision: who ran it and when (UTC), the load cases' body mass (kg) and K-level,
    whether it was the quick preview, its summary (kPa, mm, N), and its per skin vertex maps (``maps``: read
    from the file store, checked against their hash, when first asked for)."""

    model_config = ConfigDict(frozen=True)
    id: int
    revision: int
    quick: bool
    body_mass_kg: float
    k_level: str  # K0-K4
    summary: InterfaceSummary
    maps_hash: str
    maps_path: Path  # the maps file in the file store (interface-maps.npz, named by its hash)
    created_by: str
    created_at: datetime

    @cached_property
    def maps(self) -> InterfaceMaps:
        """Region label and per case pressure, shear and sensel pressure (kPa), one value per skin vertex;
        InputError if the file is missing or its content changed."""
        read_kept(self.maps_path, self.maps_hash)
        return read_maps(self.maps_path, self.summary)


def analysis_inputs(case: Case, body_mass_kg: float | None, k_level: object | None) -> tuple[float, int]:
    """The body mass (kg) and K-level (0-4) to analyse the case with: as given, else the K-level of its newest
    evaluation (the evaluation form records no body mass); InputError naming the field to give."""
    if body_mass_kg is None:
        raise InputError("give the patient's body mass in kg (`body_mass_kg`): the evaluation does not record it")
    if k_level is None:
        if not case.evaluations:
            raise InputError(f"case {case.reference!r} has no evaluation to take the K-level from: give the "
                             "K-level (`k_level` K0-K4)")
        k_level = case.evaluations[-1].k_level
    return float(body_mass_kg), check_analysis_inputs(body_mass_kg, k_level)


def analyse_revision(store: Store, reference: str, revision_id: int, body_mass_kg: float | None = None,
                     k_level: object | None = None, quick: bool = False, mesh_cache: Path | None = None,
                     progress: Callable[[str], None] = lambda stage: None, *, actor: str) -> Analysis:
    """Analyse the socket of revision ``revision_id`` of the case on its limb (the load cases for
    ``body_mass_kg`` and ``k_level``, defaults per ``analysis_inputs``) and keep the result. ``quick``: the
    preview, donning and standing on a coarse mesh. ``mesh_cache``: folder of kept tissue meshes (None: mesh
    anew). Bad input raises InputError before any work and changes nothing."""
    with store.transaction() as db:
        case = find_case(db, reference)
        revision = revision_of(db, case, revision_id)
        body_mass_kg, number = analysis_inputs(case, body_mass_kg, k_level)
        scan = (store.files.get(revision.scan.file_hash), *facts_of(revision.scan))
        socket_stl, sheet_json = store.files.get(revision.socket_hash), store.files.get(revision.sheet_hash)
        plan = plan_from_dict(revision.plan, f"revision {revision_id} plan")
        level, side = case.level, case.side
    progress("reading the limb")
    limb = prepared_limb(read_limb(*scan, level=level, side=side), plan)  # as the revision was designed
    solid, sheet = stored_socket(socket_stl, sheet_json)
    result = analyse_socket(limb, solid, sheet, body_mass_kg, number, cache=mesh_cache,
                            where=f"case {reference!r} revision {revision_id}", step=progress, quick=quick)
    summary = result.summary()
    maps_hash = store.files.put(_maps_bytes(result))
    with store.transaction() as db:
        case = find_case(db, reference)
        record = Analysis(case_id=case.id, revision_id=revision_id, quick=quick, body_mass_kg=body_mass_kg,
                          k_level=f"K{number}", summary=summary.model_dump(mode="json"), maps_hash=maps_hash,
                          created_by=actor)
        db.add(record)
        db.flush()
        audit(db, "analysis.add", case.id, {"analysis": record.id, "revision": revision_id, "quick": quick,
                                            "body_mass_kg": body_mass_kg, "k_level": record.k_level,
                                            "maps_hash": maps_hash}, actor)
    return record


def latest_analysis(db: Session, files: FileStore, revision_id: int) -> StoredAnalysis | None:
    """The newest analysis of revision ``revision_id`` (its maps in ``files``), or None if it has none."""
    record = db.scalar(select(Analysis).where(Analysis.revision_id == revision_id).order_by(Analysis.id.desc())
                       .limit(1))
    return None if record is None else stored(record, files)


def stored(record: Analysis, files: FileStore) -> StoredAnalysis:
    """A stored analysis record as read back (its summary validated; its maps in ``files``)."""
    when = record.created_at
    return StoredAnalysis(id=record.id, revision=record.revision_id, quick=record.quick,
                          body_mass_kg=record.body_mass_kg, k_level=record.k_level,
                          summary=InterfaceSummary.model_validate(record.summary), maps_hash=record.maps_hash,
                          maps_path=files.path(record.maps_hash), created_by=record.created_by,
                          created_at=when if when.tzinfo else when.replace(tzinfo=timezone.utc))


def stored_socket(socket_stl: bytes, sheet_json: bytes) -> tuple[trimesh.Trimesh, FabricationSheet]:
    """A stored socket solid (limb frame, mm) and its fabrication sheet, read as a build's files are."""
    with tempfile.TemporaryDirectory() as folder:
        socket, sheet = Path(folder) / "socket.stl", Path(folder) / "socket-sheet.json"
        socket.write_bytes(socket_stl)
        sheet.write_bytes(sheet_json)
        return io.read_mesh(socket), read_sheet(sheet)


def _maps_bytes(result: InterfaceResult) -> bytes:
    """The interface-maps.npz an analysis writes, as bytes."""
    with tempfile.TemporaryDirectory() as folder:
        return result.save(Path(folder))["maps"].read_bytes()
