"""The clinical records around the design: the evaluation (step 1), fabrication of a revision (steps 4 and 6),
delivery with its education checklist and follow-ups (step 7). Each is validated, then saved with its audit event in
one transaction; bad input raises InputError and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from socketcad.anatomy.landmarks import known_landmarks
from socketcad.anatomy.samples import sample_path
from socketcad.clinic.cases import (audit, check_length, facts_of, find_case, keep_scan, read_limb, revision_of,
                                   scan_of)
from socketcad.clinic.models import Delivery, Evaluation, Fabrication, FollowUp, Scan
from socketcad.clinic.store import Store
from socketcad.design.components import k_level_number
from socketcad.errors import InputError, validated
from socketcad.geometry import io

K_LEVELS = ("K0", "K1", "K2", "K3", "K4")
STAGES = ("test", "definitive")
# What a new socket user is taught at delivery (DOMAIN.md, step 7).
CHECKLIST = {
    "don_doff": "donning and doffing the liner and socket",
    "socks_liners": "sock plies: when to add or remove socks; liner wear and replacement",
    "skin_inspection": "daily skin inspection (mirror), what redness that does not fade means",
    "care": "cleaning the liner and socket; when to come back",
}


class EvaluationForm(BaseModel):
    """Step 1, as the prosthetist records it. Free text where the clinic writes prose; grades where they are
    graded: strength on the MRC scale 0-5 by muscle group, range of motion in degrees by motion."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    k_level: Literal[K_LEVELS]  # type: ignore[valid-type]

    @field_validator("k_level", mode="before")
    @classmethod
    def _k_level(cls, value):  # one rule for the grade, however written: K3, k3, 3
        return f"K{k_level_number(value)}"

    mobility_grade: Literal["MG1", "MG2", "MG3", "MG4"] | None = None
    history: str = Field(default="", max_length=4000)  # cause and date of amputation, comorbidities
    limb_condition: str = Field(default="", max_length=2000)  # shape, maturity, volume stability, oedema
    skin: str = Field(default="", max_length=2000)  # integrity, scars, grafts
    strength_mrc: dict[str, int] = Field(default_factory=dict, max_length=50)
    range_of_motion_deg: dict[str, float] = Field(default_factory=dict, max_length=50)
    sensitive_areas: list[str] = Field(default_factory=list, max_length=50)  # landmark names
    lifestyle: str = Field(default="", max_length=2000)
    goals: str = Field(default="", max_length=2000)


def evaluation_form(data: dict, level: str) -> EvaluationForm:
    """Validate an evaluation for a limb of ``level``: grades in range, sensitive areas known landmarks."""
    form = validated(EvaluationForm, data, "evaluation", "an evaluation is a mapping of fields")
    for group, grade in form.strength_mrc.items():
        if not 0 <= grade <= 5:
            raise InputError(f"evaluation: strength of {group} is {grade}; the MRC scale is 0-5")
    for motion, degrees in form.range_of_motion_deg.items():
        if not -30 <= degrees <= 180:
            raise InputError(f"evaluation: range of motion {motion} {degrees:g} deg is outside -30..180 deg")
    known = known_landmarks(level)
    for area in form.sensitive_areas:
        if area not in known:
            raise InputError(f"evaluation: sensitive area '{area}' is not a {level} landmark; use one of {', '.join(known)}")
    return form


def evaluate(store: Store, reference: str, data: dict, *, actor: str) -> Evaluation:
    """Record an evaluation of the case. The newest one's sensitive areas are relieved by the templates."""
    with store.transaction() as db:
        case = find_case(db, reference)
        form = evaluation_form(data, case.level)
        record = Evaluation(case_id=case.id, k_level=form.k_level, form=form.model_dump(mode="json"),
                            created_by=actor)
        db.add(record)
        db.flush()
        audit(db, "evaluation.add", case.id, {"evaluation": record.id, "k_level": form.k_level}, actor)
    return record


def fabricate(store: Store, reference: str, revision_id: int, stage: str, material: str, lab: str,
              note: str = "", *, actor: str) -> Fabrication:
    """Record a socket made from a revision: a test (check) socket or the definitive one, its wall material
    (a catalogue id) and the lab that made it."""
    from socketcad.design.components import load_catalogue

    if stage not in STAGES:
        raise InputError(f"stage {stage!r} is not one of: {', '.join(STAGES)}")
    materials = {m.id: m for m in load_catalogue().materials}
    if material not in materials:
        raise InputError(f"material {material!r} is not in the catalogue; use one of {', '.join(materials)}")
    if not lab.strip():
        raise InputError("name the lab that made the socket (`lab`)")
    check_length(lab.strip(), 128, "the lab's name")
    check_length(note, 1000, "the note")
    with store.transaction() as db:
        case = find_case(db, reference)
        revision_of(db, case, revision_id)
        record = Fabrication(case_id=case.id, revision_id=revision_id, stage=stage, material=material,
                             lab=lab.strip(), note=note, created_by=actor)
        db.add(record)
        db.flush()
        audit(db, "fabrication.add", case.id, {"fabrication": record.id, "revision": revision_id, "stage": stage,
                                               "material": material}, actor)
    return record


def deliver(store: Store, reference: str, revision_id: int, taught: list[str], note: str = "", *,
            actor: str) -> tuple[Delivery, list[str]]:
    """Record the delivery of a revision's socket and which checklist items were taught; returns the record
    and the warnings a prosthetist should see (items not taught, no definitive fabrication on record)."""
    unknown = [item for item in taught if item not in CHECKLIST]
    if unknown:
        raise InputError(f"checklist item {unknown[0]!r} is not one of: {', '.join(CHECKLIST)}")
    check_length(note, 1000, "the note")
    warnings = [f"not taught yet: {CHECKLIST[item]}" for item in CHECKLIST if item not in taught]
    with store.transaction() as db:
        case = find_case(db, reference)
        revision_of(db, case, revision_id)
        if not any(f.revision_id == revision_id and f.stage == "definitive" for f in case.fabrications):
            warnings.append(f"no definitive fabrication of revision {revision_id} is on record")
        record = Delivery(case_id=case.id, revision_id=revision_id, checklist={i: i in taught for i in CHECKLIST},
                          note=note, created_by=actor)
        db.add(record)
        db.flush()
        audit(db, "delivery.add", case.id, {"delivery": record.id, "revision": revision_id,
                                            "not_taught": [i for i in CHECKLIST if i not in taught]}, actor)
    return record, warnings


def follow_up(store: Store, reference: str, path: Path, socks_ply: int, baseline_scan_id: int | None = None,
              units: str | None = None, *, actor: str) -> FollowUp:
    """Keep a follow-up scan and its comparison with the baseline (default: the scan of the newest delivered
    revision, else the case's first scan): volume change, regional and circumference changes, sock advice."""
    from socketcad.clinic.followup import compare

    path = sample_path(path)
    data = io.read_bytes(path)
    with store.transaction() as db:
        case = find_case(db, reference)
    later = read_limb(data, path.name, units, case=case)  # outside the write lock: reading a limb takes seconds
    with store.transaction() as db:
        case = find_case(db, reference)
        if baseline_scan_id is None:
            delivered = [revision_of(db, case, d.revision_id).scan_id for d in case.deliveries]
            if not delivered and not case.scans:
                raise InputError(f"case {reference!r} has no scan to compare with: add a scan of the limb first")
            baseline = delivered[-1] if delivered else case.scans[0].id
        else:
            baseline = scan_of(db, case, baseline_scan_id).id
        base = db.get(Scan, baseline)
        base_facts = (store.files.get(base.file_hash), *facts_of(base))
        level, side = case.level, case.side
    result = compare(read_limb(*base_facts, level=level, side=side), later, socks_ply)
    with store.transaction() as db:
        case = find_case(db, reference)
        scan = keep_scan(db, store, case, data, path.name, "scan", later, actor=actor)
        record = FollowUp(case_id=case.id, scan_id=scan.id, baseline_scan_id=baseline, socks_ply=socks_ply,
                          volume_change_pct=result.volume_change_pct, advice=result.advice,
                          result=result.model_dump(mode="json"),
                          created_by=actor)
        db.add(record)
        db.flush()
        audit(db, "followup.add", case.id, {"followup": record.id, "scan": scan.id, "baseline": baseline,
                                            "volume_change_pct": record.volume_change_pct, "advice": record.advice},
              actor)
    return record
