"""What a case report reads from the store: one revision's scan, plan, spec, socket and sheet, the newest
evaluation, and the follow-ups with their scans (the change map is recomputed from the stored transform)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from socketcad.anatomy.limb import Limb
from socketcad.clinic.analyses import stored_socket
from socketcad.clinic.cases import facts_of, find_case, read_limb, revision_of
from socketcad.clinic.followup import FollowUpComparison
from socketcad.clinic.models import Scan
from socketcad.clinic.records import EvaluationForm
from socketcad.clinic.store import Store
from socketcad.design.fabrication import FabricationSheet
from socketcad.design.plan import RectificationPlan, plan_from_dict
from socketcad.errors import InputError
from socketcad.geometry.measure import signed_deviation

__all__ = ["FollowUpMaterial", "RevisionMaterial", "change_map", "followup_material", "revision_material"]


@dataclass(frozen=True)
class RevisionMaterial:
    """One revision as stored: the limb it was designed on (read as it was), its plan, socket and sheet."""

    revision: int
    limb: Limb
    plan: RectificationPlan
    socket: trimesh.Trimesh
    sheet: FabricationSheet
    evaluation: EvaluationForm | None  # the case's newest


@dataclass(frozen=True)
class FollowUpMaterial:
    """A follow-up: its date (ISO, UTC), comparison, and the baseline and later limbs as read."""

    date: str
    comparison: FollowUpComparison
    baseline: Limb
    later: Limb


def _limb(store: Store, scan: Scan, level: str, side: str) -> Limb:
    return read_limb(store.files.get(scan.file_hash), *facts_of(scan), level=level, side=side)


def revision_material(store: Store, reference: str, revision_id: int | None) -> RevisionMaterial:
    """Revision ``revision_id`` of the case (None: its newest), read back from the store."""
    with store.transaction() as db:
        case = find_case(db, reference)
        if revision_id is None:
            if not case.revisions:
                raise InputError(f"case {reference!r} has no design revision yet: design one first")
            revision_id = case.revisions[-1].id
        revision = revision_of(db, case, revision_id)
        scan, level, side = revision.scan, case.level, case.side
        plan = plan_from_dict(revision.plan, f"revision {revision_id} plan")
        socket_stl, sheet_json = store.files.get(revision.socket_hash), store.files.get(revision.sheet_hash)
        evaluation = EvaluationForm(**case.evaluations[-1].form) if case.evaluations else None
        limb = _limb(store, scan, level, side)
    return RevisionMaterial(revision_id, limb, plan, *stored_socket(socket_stl, sheet_json), evaluation)


def followup_material(store: Store, reference: str) -> list[FollowUpMaterial]:
    """The case's follow-ups in time order, each with its scans read back."""
    with store.transaction() as db:
        case = find_case(db, reference)
        found, limbs = [], {}
        for record in case.followups:
            for scan_id in (record.baseline_scan_id, record.scan_id):
                if scan_id not in limbs:
                    limbs[scan_id] = _limb(store, db.get(Scan, scan_id), case.level, case.side)
            found.append(FollowUpMaterial(record.created_at.strftime("%Y-%m-%d"),
                                          FollowUpComparison.model_validate(record.result),
                                          limbs[record.baseline_scan_id], limbs[record.scan_id]))
    return found


def change_map(baseline: Limb, later: Limb, comparison: FollowUpComparison) -> np.ndarray:
    """(n,) mm on the baseline skin: the later skin's signed deviation (+ grew) after the comparison's
    registration; NaN above the part compared."""
    moved = later.skin.copy()
    moved.apply_transform(np.asarray(comparison.transform))
    change = signed_deviation(baseline.skin, moved)
    return np.where(baseline.skin.vertices[:, 2] < comparison.compared_below_mm, change, np.nan)
