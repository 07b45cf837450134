"""Socket-type templates: a starting RectificationPlan for a limb's level and the evaluation.

Regions are anchored on the limb's landmarks, so one template fits every limb of its level;
the limb itself is passed for its level (and for templates that will adapt sizes to it).

A template is where a prosthetist starts, not where they stop: every value is in the
plan it returns, named and editable. Depths follow the indicative ranges in DOMAIN.md
(PTB bar 5-12 mm; build-ups 3-6 mm over the fibular head, tibial crest and distal
tibia); TSB reductions follow the liner manufacturer's guidance (Jasken & Hall 2018).
Region sizes are this project's assumptions, stated in each plan's ``assumptions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from socketcad.anatomy.limb import Limb
from socketcad.anatomy.landmarks import known_landmarks
from socketcad.design.plan import SCHEMA_VERSION, RectificationPlan, plan_from_dict
from socketcad.design.socket_types import SOCKET_TYPES
from socketcad.errors import InputError

# Alpha liner guidance: 3 mm liner 3-5 %, 6 mm 5-7 %, 9 mm 7-9 % circumferential reduction.
TSB_LINER_MM = (3.0, 6.0, 9.0)
TSB_REDUCTION_PCT = (4.0, 6.0, 8.0)  # the middle of each published range
SENSITIVE_RELIEF_MM = 3.0

SOURCE_DOMAIN = "indicative depths: PTB bar 5-12 mm; build-ups 3-6 mm (socketcad DOMAIN.md, 'indicative')"
SOURCE_TSB = ("TSB circumferential reduction by liner thickness: 3 mm 3-5 %, 6 mm 5-7 %, 9 mm 7-9 % "
              "(Jasken & Hall 2018, JPO 30:140)")
ASSUME_SIZES = "region sizes and falloffs are socketcad's assumptions for an adult limb; adjust to the patient"


@dataclass(frozen=True)
class TemplateInputs:
    """What a template needs from the evaluation (clinic records hold the full evaluation)."""

    liner_thickness_mm: float = 6.0
    sensitive_areas: tuple[str, ...] = ()  # landmark names the evaluation marks pressure-sensitive
    bar_depth_mm: float = 8.0  # PTB/KBM patellar tendon bar

    def __post_init__(self):
        if not 0.0 <= self.liner_thickness_mm <= 12.0:
            raise InputError(f"liner thickness {self.liner_thickness_mm:g} mm is outside 0-12 mm")
        if not 3.0 <= self.bar_depth_mm <= 12.0:
            raise InputError(f"bar depth {self.bar_depth_mm:g} mm is outside the indicative 3-12 mm")


def _region(landmark: str, width: float, height: float, falloff: float, **shift) -> dict:
    return {"landmark": landmark, "width_mm": width, "height_mm": height, "falloff_mm": falloff, **shift}


def _push(label: str, depth: float, region: dict) -> dict:
    return {"kind": "push", "label": label, "depth_mm": depth, "region": region}


def _relief(label: str, depth: float, region: dict) -> dict:
    return {"kind": "relief", "label": label, "depth_mm": depth, "region": region}


def tsb_reduction_pct(liner_thickness_mm: float) -> float:
    """Circumferential reduction (%) for a liner thickness, interpolated in the published table."""
    return float(np.interp(liner_thickness_mm, TSB_LINER_MM, TSB_REDUCTION_PCT))


def _ptb_modifications(inputs: TemplateInputs) -> list[dict]:
    return [
        _push("patellar tendon bar", inputs.bar_depth_mm, _region("mpt", 30, 12, 2.5 * inputs.bar_depth_mm)),
        _push("medial tibial flare", 4.0, _region("medial_tibial_flare", 25, 40, 15)),
        _push("popliteal counter-pressure", 5.0, _region("popliteal", 40, 25, 20)),
        _relief("fibular head build-up", 4.0, _region("fibular_head", 30, 30, 12)),
        _relief("tibial crest build-up", 3.0, _region("tibial_crest", 12, 60, 10)),
        _relief("distal tibia build-up", 4.0, _region("distal_tibia", 30, 30, 15)),
        _relief("medial hamstring channel", 3.0, _region("medial_hamstring", 12, 40, 10)),
        _relief("lateral hamstring channel", 3.0, _region("lateral_hamstring", 12, 40, 10)),
    ]


def ptb(limb: Limb, inputs: TemplateInputs) -> dict:
    """Patellar-tendon-bearing: load the tendon, flare and popliteal area; relieve bony prominences."""
    return {
        "name": "PTB", "level": "transtibial", "modifications": _ptb_modifications(inputs),
        "sources": [SOURCE_DOMAIN, "PTB principles: Radcliffe & Foort 1961, The patellar-tendon-bearing below-knee prosthesis"],
        "assumptions": [ASSUME_SIZES, "no global reduction: PTB loads chosen areas, not the whole surface"],
    }


def tsb(limb: Limb, inputs: TemplateInputs) -> dict:
    """Total-surface-bearing: circumferential reduction by liner thickness, light distal taper, small reliefs."""
    reduction = tsb_reduction_pct(inputs.liner_thickness_mm)
    return {
        "name": "TSB", "level": "transtibial",
        "modifications": [
            {"kind": "reduction", "label": f"TSB reduction for a {inputs.liner_thickness_mm:g} mm liner",
             "profile": [{"level_pct": 0, "reduction_pct": reduction / 2},
                         {"level_pct": 20, "reduction_pct": reduction},
                         {"level_pct": 100, "reduction_pct": reduction}]},
            _relief("fibular head relief", 2.0, _region("fibular_head", 30, 30, 12)),
            _relief("distal tibia relief", 2.0, _region("distal_tibia", 30, 30, 15)),
        ],
        "sources": [SOURCE_TSB, SOURCE_DOMAIN],
        "assumptions": [ASSUME_SIZES, f"{reduction:.1f} % is the middle of the published range for the liner; "
                        "halved at the distal end (distal tissue is loaded, not compressed)"],
    }


def kbm(limb: Limb, inputs: TemplateInputs) -> dict:
    """Kondylen-Bettung Muenster (supracondylar): PTB plus medial and lateral supracondylar wedges."""
    plan = ptb(limb, inputs)
    plan["name"] = "KBM"
    plan["modifications"] += [
        _push("medial supracondylar wedge", 5.0, _region("medial_tibial_flare", 30, 30, 15, proximal_mm=45)),
        _push("lateral supracondylar wedge", 3.0, _region("lateral_tibial_flare", 30, 30, 15, proximal_mm=45)),
    ]
    plan["sources"] = plan["sources"] + ["KBM suspension over the femoral condyles: Kuhn 1966"]
    plan["assumptions"] = plan["assumptions"] + [
        "wedges 45 mm above the tibial flares (above the femoral epicondyles); on scans that end lower "
        "they sit at the top of the scan and the socket's medial/lateral walls carry them (socket builder)"]
    return plan


def ischial_containment(limb: Limb, inputs: TemplateInputs) -> dict:
    """Transfemoral ischial(-ramal) containment: narrow ML, femur held in adduction, ischium contained."""
    return {
        "name": "IC", "level": "transfemoral",
        "modifications": [
            {"kind": "reduction", "label": "circumferential reduction",
             "profile": [{"level_pct": 0, "reduction_pct": 2}, {"level_pct": 25, "reduction_pct": 4},
                         {"level_pct": 100, "reduction_pct": 4}]},
            _push("lateral femoral stabilisation", 5.0, _region("greater_trochanter", 50, 80, 25, proximal_mm=-90)),
            _relief("ischial tuberosity and ramus (contained)", 4.0, _region("ischial_tuberosity", 30, 30, 12)),
            _relief("adductor longus channel", 4.0, _region("adductor_longus", 20, 40, 12)),
            _relief("distal femur build-up", 3.0, _region("distal_femur", 30, 30, 15)),
        ],
        "sources": ["ischial containment principles: Sabolich 1985 (CAT-CAM), Long 1985 (normal shape-normal alignment)",
                    SOURCE_DOMAIN],
        "assumptions": [ASSUME_SIZES, "4 % circumferential reduction is an estimate for a gel liner",
                        "the ML narrowing proper is the socket's wall shape (socket builder), not the model's"],
    }


def quadrilateral(limb: Limb, inputs: TemplateInputs) -> dict:
    """Transfemoral quadrilateral: ischial seat held by an anterior Scarpa's push; channels relieved."""
    return {
        "name": "quadrilateral", "level": "transfemoral",
        "modifications": [
            {"kind": "reduction", "label": "circumferential reduction",
             "profile": [{"level_pct": 0, "reduction_pct": 1}, {"level_pct": 25, "reduction_pct": 3},
                         {"level_pct": 100, "reduction_pct": 3}]},
            _push("ischial seat (posterior wall)", 5.0,
                  {**_region("ischial_tuberosity", 80, 30, 20), "facing": "posterior"}),
            _push("Scarpa's triangle (anterior counter-pressure)", 8.0,
                  {**_region("ischial_tuberosity", 60, 40, 25, proximal_mm=-30), "facing": "anterior"}),
            _relief("adductor longus channel", 4.0, _region("adductor_longus", 20, 40, 12)),
            _relief("greater trochanter relief", 3.0, _region("greater_trochanter", 30, 30, 12)),
            _relief("distal femur build-up", 3.0, _region("distal_femur", 30, 30, 15)),
        ],
        "sources": ["quadrilateral socket: Radcliffe 1955 (UC Berkeley)", SOURCE_DOMAIN],
        "assumptions": [ASSUME_SIZES, "depths are estimates within the indicative 3-12 mm"],
    }


def subischial(limb: Limb, inputs: TemplateInputs) -> dict:
    """Transfemoral subischial (NU-FlexSIV style): compression by reduction, no ischial features."""
    reduction = tsb_reduction_pct(inputs.liner_thickness_mm) + 2.0
    return {
        "name": "subischial", "level": "transfemoral",
        "modifications": [
            {"kind": "reduction", "label": "compression reduction",
             "profile": [{"level_pct": 0, "reduction_pct": reduction / 2}, {"level_pct": 25, "reduction_pct": reduction},
                         {"level_pct": 100, "reduction_pct": reduction}]},
            _relief("adductor longus channel", 3.0, _region("adductor_longus", 20, 40, 12)),
            _relief("distal femur build-up", 3.0, _region("distal_femur", 30, 30, 15)),
        ],
        "sources": ["NU-FlexSIV technique: Fatone & Caldwell 2017, Prosthet Orthot Int 41:237", SOURCE_TSB],
        "assumptions": [ASSUME_SIZES, f"{reduction:.1f} % = the TSB liner reduction + 2 % for compression "
                        "suspension: an estimate", "trim lines below the ischium are the socket builder's"],
    }


# The plan-making function of each registered socket type (design.socket_types); levels come from the registry.
_BUILDERS: dict[str, Callable[[Limb, TemplateInputs], dict]] = {
    "ptb": ptb, "tsb": tsb, "kbm": kbm, "ic": ischial_containment, "quad": quadrilateral, "subischial": subischial,
}
if set(_BUILDERS) != set(SOCKET_TYPES):
    raise RuntimeError(f"templates {sorted(_BUILDERS)} do not match the socket types {sorted(SOCKET_TYPES)}")

TEMPLATES: dict[str, tuple[str, Callable[[Limb, TemplateInputs], dict]]] = {
    name: (kind.level, _BUILDERS[name]) for name, kind in SOCKET_TYPES.items()
}


def template_plan(name: str, limb: Limb, inputs: TemplateInputs = TemplateInputs()) -> RectificationPlan:
    """The named template's plan for ``limb``, with the evaluation's sensitive areas relieved."""
    key = name.lower()
    if key not in TEMPLATES:
        raise InputError(f"unknown template '{name}'; use one of {', '.join(TEMPLATES)}")
    level, build = TEMPLATES[key]
    limb.require_anterior(f"the modifications of template '{key}'")
    if limb.level in ("transtibial", "transfemoral") and limb.level != level:
        raise InputError(f"template '{key}' is for a {level} limb but this limb is {limb.level}; "
                         f"use one of {', '.join(k for k, (lv, _) in TEMPLATES.items() if lv == limb.level)}")
    plan = build(limb, inputs)
    _relieve_sensitive(plan, inputs.sensitive_areas, level)
    side = {"side": limb.side} if limb.side in ("left", "right") else {}
    return plan_from_dict({"schema_version": SCHEMA_VERSION, **side, **plan}, f"template {key}")


def _relieve_sensitive(plan: dict, sensitive: tuple[str, ...], level: str) -> None:
    """Relieve each sensitive landmark; a push planned on it becomes a relief (and says so)."""
    known = known_landmarks(level)
    for name in sensitive:
        if name not in known:
            raise InputError(f"sensitive area '{name}' is not a {level} landmark; use one of {', '.join(known)}")
        pushed = [m for m in plan["modifications"] if m["kind"] == "push" and m["region"]["landmark"] == name
                  and not any(m["region"].get(k) for k in ("proximal_mm", "anterior_mm", "lateral_mm", "facing"))]
        relieved = [m for m in plan["modifications"] if m["kind"] == "relief" and m["region"]["landmark"] == name]
        for modification in pushed:
            plan["modifications"].remove(modification)
            plan["assumptions"].append(f"'{modification['label']}' dropped: {name} is pressure-sensitive")
        if not relieved:
            plan["modifications"].append(
                _relief(f"{name} relief (sensitive area)", SENSITIVE_RELIEF_MM, _region(name, 30, 30, 12)))
