"""Step 5, dynamic fitting: a fitting session of a revision's socket, and the adjustments asked for there
turned into a plan delta that makes the child revision.

Adjustments are what a prosthetist says at a fitting, in a small fixed grammar:

    relieve LANDMARK MM     e.g. "relieve fibular_head 2"    more build-up (the cavity grows there)
    push LANDMARK MM        e.g. "push patellar_tendon 1"     more load (the cavity shrinks there)
    reduce WHERE PCT        e.g. "reduce proximal 1"          circumferential reduction, WHERE: proximal,
                                                             distal or all (negative: enlarge)

A relief and a push at one landmark are one quantity with opposite signs: relieving where the plan pushes
lessens the push first. Amounts are changes to the parent's plan, not totals, as a fitting is said.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import asdict, dataclass

from socketcad.anatomy.landmarks import known_landmarks
from socketcad.clinic.cases import audit, check_length, design, find_case, revision_of
from socketcad.clinic.models import Fitting, Revision
from socketcad.clinic.store import Store
from socketcad.design.plan import RectificationPlan, plan_from_dict
from socketcad.errors import InputError
from socketcad.geometry.deform import SMOOTHERSTEP_MAX_SLOPE

VERBS = ("relieve", "push", "reduce")
# Reduction profiles (level %: reduction as a fraction of the asked %): 0 % is the distal end, 100 % the brim.
REDUCTION_SPANS = {"proximal": ((50.0, 0.0), (100.0, 1.0)), "distal": ((0.0, 1.0), (50.0, 0.0)),
                   "all": ((0.0, 1.0), (100.0, 1.0))}
# A new local modification where the plan has none at the landmark: socketcad's assumption, stated in the plan.
NEW_REGION = {"width_mm": 40.0, "height_mm": 40.0, "falloff_mm": 15.0}
FEEDBACK_AREAS = ("brim", "general")  # besides the level's landmarks
GRAMMAR = "relieve LANDMARK MM, push LANDMARK MM, or reduce proximal|distal|all PCT"


@dataclass(frozen=True)
class Adjustment:
    """One change asked for at a fitting: verb, where (landmark or span), amount (mm or %)."""

    verb: str
    where: str
    amount: float

    def __str__(self) -> str:
        return f"{self.verb} {self.where} {self.amount:g} {'%' if self.verb == 'reduce' else 'mm'}"


def parse_adjustment(text: str, level: str) -> Adjustment:
    """An adjustment from its spoken form (see the module docstring); InputError saying the grammar."""
    match = re.fullmatch(r"\s*(\w+)\s+(\w+)\s+([-+]?\d+(?:\.\d+)?)\s*(mm|%)?\s*", text)
    if match is None or match[1] not in VERBS:
        raise InputError(f"adjustment {text!r} is not understood; say {GRAMMAR}")
    verb, where, amount, unit = match[1], match[2], float(match[3]), match[4]
    if verb == "reduce":
        if where not in REDUCTION_SPANS or unit == "mm":
            raise InputError(f"adjustment {text!r}: reduce takes proximal, distal or all, and a percentage")
    elif where not in known_landmarks(level) or unit == "%":
        raise InputError(f"adjustment {text!r}: {verb} takes a {level} landmark ({', '.join(known_landmarks(level))}) "
                         "and millimetres")
    if amount == 0:
        raise InputError(f"adjustment {text!r} changes nothing")
    return Adjustment(verb, where, amount)


def adjusted_plan(plan: RectificationPlan, adjustments: list[Adjustment], label: str) -> RectificationPlan:
    """The parent's plan with the adjustments applied; every change is labelled with ``label`` (the fitting)."""
    data = plan.as_dict()
    modifications = copy.deepcopy(data["modifications"])
    for adjustment in adjustments:
        if adjustment.verb == "reduce":
            span = REDUCTION_SPANS[adjustment.where]
            modifications.append({"kind": "reduction", "label": f"{label}: {adjustment}", "profile": [
                {"level_pct": level, "reduction_pct": share * adjustment.amount} for level, share in span]})
        else:
            outward = adjustment.amount if adjustment.verb == "relieve" else -adjustment.amount
            _move_outwards(modifications, adjustment.where, outward, f"{label}: {adjustment}")
    assumption = f"new regions from fittings are {NEW_REGION['width_mm']:g} x {NEW_REGION['height_mm']:g} mm (socketcad's assumption)"
    assumptions = data.get("assumptions", []) + ([assumption] if assumption not in data.get("assumptions", []) else [])
    return plan_from_dict({**data, "modifications": modifications, "assumptions": assumptions},
                          f"the plan after {label}")


def _move_outwards(modifications: list[dict], landmark: str, outward_mm: float, label: str) -> None:
    """Change the plan's surface displacement at ``landmark`` by ``outward_mm`` (relief +, push -): the
    local modification centred on it takes the change, flipping from push to relief when it passes zero."""
    centred = [m for m in modifications if m["kind"] in ("push", "relief") and m["region"]["landmark"] == landmark
               and not any(m["region"].get(k) for k in ("proximal_mm", "anterior_mm", "lateral_mm", "facing"))]
    if not centred:
        region = {"landmark": landmark, **NEW_REGION}
        modification = {"kind": "push", "label": label, "depth_mm": 0.0, "region": region}
        modifications.append(modification)
    else:
        modification = centred[0]
    signed = (modification["depth_mm"] if modification["kind"] == "relief" else -modification["depth_mm"]) + outward_mm
    if abs(signed) < 1e-9:
        modifications.remove(modification)
        return
    modification["kind"] = "relief" if signed > 0 else "push"
    modification["depth_mm"] = round(abs(signed), 6)
    modification["label"] = label if not modification.get("label") else f"{modification['label']}; {label}"
    steepest = math.ceil(SMOOTHERSTEP_MAX_SLOPE * abs(signed))  # the plan's slope limit 1: falloff >= 1.875 depth
    modification["region"]["falloff_mm"] = max(modification["region"].get("falloff_mm", 15.0), float(steepest))


def check_feedback(feedback: dict[str, str], level: str) -> None:
    areas = known_landmarks(level) + FEEDBACK_AREAS
    for area in feedback:
        if area not in areas:
            raise InputError(f"feedback area '{area}' is not one of: {', '.join(areas)}")


def fit(store: Store, reference: str, revision_id: int, comfort: int, feedback: dict[str, str], gait: str,
        adjustments: list[str], *, actor: str) -> tuple[Fitting, Revision | None]:
    """Record a fitting of a revision. Adjustments make its child revision (same scan and spec, the plan
    adjusted), saved in one transaction with the fitting; without adjustments there is no child."""
    if not 0 <= comfort <= 10:
        raise InputError(f"socket comfort score {comfort} is outside 0-10 (0 most uncomfortable, 10 most comfortable)")
    with store.transaction() as db:
        case = find_case(db, reference)
        parent = revision_of(db, case, revision_id)
        level, number = case.level, len(case.fittings) + 1
    check_feedback(feedback, level)
    check_length(gait, 2000, "the gait notes")
    for area, text in feedback.items():
        check_length(text, 500, f"the feedback on {area}")
    asked = [parse_adjustment(text, level) for text in adjustments]
    record = Fitting(case_id=0, revision_id=revision_id, comfort=comfort, feedback=dict(feedback), gait=gait,
                     adjustments=[asdict(a) for a in asked], created_by=actor)

    def save(db, child: Revision | None) -> None:
        record.case_id = child.case_id if child is not None else find_case(db, reference).id
        record.child_revision_id = child.id if child is not None else None
        db.add(record)
        db.flush()
        audit(db, "fitting.add", record.case_id, {"fitting": record.id, "revision": revision_id, "comfort": comfort,
                                                  "adjustments": [str(a) for a in asked],
                                                  "child_revision": record.child_revision_id}, actor)

    if not asked:
        with store.transaction() as db:
            save(db, None)
        return record, None
    label = f"fitting {number} of revision {revision_id}"
    plan = adjusted_plan(plan_from_dict(parent.plan, f"revision {revision_id} plan"), asked, label)
    child = design(store, reference, plan, parent.spec, parent.scan_id, revision_id,
                   note=f"{label}: " + "; ".join(map(str, asked)), also=save, actor=actor)
    return record, child
