"""Component catalogue: liners, closures (suspension), distal adapters and wall materials as data.

The catalogue is packaged YAML (``catalogue.yaml``); each value names its source or says
"assumption". ``propose_system`` turns the evaluation into a liner, closure and adapter with
one plain-language reason per rule that fired; ``check_compatibility`` refuses pairings that
cannot work. Rules follow common prosthetic practice (DOMAIN.md); those marked "(project
assumption)" in their reason are this project's judgement, to be checked by the prosthetist.
The closure is decided by the first rule that applies, in this order (donning ability first):

- limited hand dexterity: pin lock (transtibial) or lanyard (transfemoral); no seal-in or sleeve.
- K0-K1: pin lock or lanyard, the simplest systems to don.
- fragile or grafted skin: suction (sleeve, or seal-in for transfemoral) with a soft gel liner,
  no pin pulling on the distal end; no elevated vacuum on compromised skin (project assumption).
- maturing limb: pin lock or lanyard, which tolerate the many sock changes.
- fluctuating volume: elevated vacuum for K3-K4 with sound skin (vacuum limits the daily volume
  loss, Board et al. 2001, POI 25:202), else pin lock or lanyard; seal-in suction takes no socks.
- short transtibial limb (< SHORT_TRANSTIBIAL_MM, project assumption): elevated vacuum for K3-K4,
  else supracondylar (KBM) wedges for medio-lateral stability.
- otherwise K4: elevated vacuum; K2-K3: seal-in suction.
- liner: soft gel 9 mm for fragile/grafted skin; silicone for scars (it moves with the skin) and
  for K3-K4; gel for K0-K2 comfort. Adapter: lock housing for a pin lock, 4-hole for
  transfemoral (slide adapter for knee placement), pyramid plate for transtibial.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from socketcad.errors import InputError, validated

Level = Literal["transtibial", "transfemoral"]
LinerKind = Literal["locking", "cushion", "seal_in"]
ClosureKind = Literal["pin_lock", "lanyard", "suction_seal_in", "suction_sleeve", "elevated_vacuum", "supracondylar"]
AdapterKind = Literal["four_hole", "pyramid", "pin_lock_housing"]

SHORT_TRANSTIBIAL_MM = 100.0  # project assumption: between 20 % of a 400 mm tibia and the quoted 5 in
BOLT_TOLERANCE_MM = 0.01  # data check: holes on the stated bolt circle, pattern symmetric
K_LEVELS = (0, 1, 2, 3, 4)


def k_level_number(value: object) -> int:
    """A mobility grade as written anywhere (3, "3", "K3", "k3") -> 0-4; ValueError naming the forms."""
    text = str(value).strip().upper().removeprefix("K") if not isinstance(value, bool) else ""
    if text.isdigit() and int(text) in K_LEVELS:
        return int(text)
    raise ValueError(f"K-level {value!r} is not one of K0-K4 (K3 and 3 both work)")


def parse_k_level(value: object) -> int:
    """``k_level_number`` for user input: InputError instead of ValueError."""
    try:
        return k_level_number(value)
    except ValueError as exc:
        raise InputError(str(exc)) from None


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Liner(_Record):
    """A liner: the 'second skin' rolled over the limb."""

    id: str
    name: str
    material: Literal["silicone", "silicone_gel", "tpe", "polyurethane"]
    thickness_mm: float = Field(gt=0, le=12)
    kind: LinerKind
    distal_pin: bool  # distal pin/umbrella for a pin lock or lanyard attachment
    friction_skin: float = Field(gt=0, le=2)  # static coefficient against skin
    elastic_modulus_kpa: float = Field(gt=0, le=5000)
    source: str

    @model_validator(mode="after")
    def _pin_on_locking_liners(self):
        if self.distal_pin != (self.kind == "locking"):
            raise ValueError("distal_pin: locking liners have a distal pin (or attachment) and other kinds do not")
        return self


class Closure(_Record):
    """A closure (suspension) system and the space it needs in and below the socket."""

    id: str
    name: str
    kind: ClosureKind
    liner_kinds: tuple[LinerKind, ...] = Field(min_length=1)
    needs_distal_pin: bool
    distal_clearance_mm: float = Field(ge=0, le=80)  # liner end to socket floor
    lock_housing_diameter_mm: float | None = Field(default=None, gt=0)
    lock_housing_height_mm: float | None = Field(default=None, gt=0)
    pin_channel_diameter_mm: float | None = Field(default=None, gt=0)
    valve_port_diameter_mm: float | None = Field(default=None, gt=0)  # through the distal wall
    strap_exit_width_mm: float | None = Field(default=None, gt=0)  # lanyard strap through the wall
    levels: tuple[Level, ...] = Field(min_length=1)
    source: str


class Adapter(_Record):
    """A distal adapter. Hole centres (x, y) mm in the limb frame: y anterior, origin on the axis."""

    id: str
    name: str
    kind: AdapterKind
    bolt_pattern_mm: tuple[tuple[float, float], ...] = Field(min_length=3)
    bolt_circle_diameter_mm: float = Field(gt=0, le=150)
    bolt_hole_diameter_mm: float = Field(gt=0, le=20)
    plate_diameter_mm: float = Field(gt=0, le=200)
    plate_thickness_mm: float = Field(gt=0, le=50)
    build_height_mm: float = Field(gt=0, le=150)
    mass_g: float = Field(gt=0, le=2000)
    source: str

    @model_validator(mode="after")
    def _symmetric_on_circle(self):
        radius = self.bolt_circle_diameter_mm / 2
        for x, y in self.bolt_pattern_mm:
            hole = f"bolt_pattern_mm: hole ({x:g}, {y:g})"
            if abs((x * x + y * y) ** 0.5 - radius) > BOLT_TOLERANCE_MM:
                raise ValueError(f"{hole} is off the {self.bolt_circle_diameter_mm:g} mm bolt circle")
            if not any(abs(x + u) <= BOLT_TOLERANCE_MM and abs(y + v) <= BOLT_TOLERANCE_MM
                       for u, v in self.bolt_pattern_mm):
                raise ValueError(f"{hole} has no partner opposite it across the axis")
        if self.plate_diameter_mm < self.bolt_circle_diameter_mm + self.bolt_hole_diameter_mm:
            raise ValueError("plate_diameter_mm: the plate must be wider than the bolt circle and its holes")
        return self


class WallMaterial(_Record):
    """A socket wall material with default wall thickness by K-level."""

    id: str
    name: str
    youngs_modulus_mpa: float = Field(gt=0)
    poisson: float = Field(gt=0, lt=0.5)
    strength_mpa: float = Field(gt=0)  # use for a safety factor
    strength_basis: str  # e.g. printed, across layers (Z)
    density_g_cm3: float = Field(gt=0)
    test_socket: bool  # suitable for a check socket
    thickness_mm_by_k_level: dict[int, float]
    distal_buildup_mm: float = Field(ge=0, le=10)
    source: str

    @field_validator("thickness_mm_by_k_level")
    @classmethod
    def _every_k_level(cls, table: dict[int, float]) -> dict[int, float]:
        if tuple(sorted(table)) != K_LEVELS:
            raise ValueError("give a thickness for each K-level 0, 1, 2, 3 and 4")
        if any(not 1.0 <= mm <= 12.0 for mm in table.values()):
            raise ValueError("wall thicknesses must be within 1-12 mm")
        return dict(sorted(table.items()))


class Catalogue(_Record):
    """Every component socketcad knows, with lookups by id."""

    schema_version: Literal[1]
    liners: tuple[Liner, ...] = Field(min_length=1)
    closures: tuple[Closure, ...] = Field(min_length=1)
    adapters: tuple[Adapter, ...] = Field(min_length=1)
    materials: tuple[WallMaterial, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self):
        seen: set[str] = set()
        for part in (*self.liners, *self.closures, *self.adapters, *self.materials):
            if part.id in seen:
                raise ValueError(f"id '{part.id}' is used twice; every component needs its own id")
            seen.add(part.id)
        return self

    def liner(self, id: str) -> Liner:
        return _lookup(self.liners, id, "liner")

    def closure(self, id: str) -> Closure:
        return _lookup(self.closures, id, "closure")

    def adapter(self, id: str) -> Adapter:
        return _lookup(self.adapters, id, "adapter")

    def material(self, id: str) -> WallMaterial:
        return _lookup(self.materials, id, "material")


def _lookup(parts: tuple, id: str, what: str):
    for part in parts:
        if part.id == id:
            return part
    raise InputError(f"unknown {what} '{id}'; known {what}s: {', '.join(part.id for part in parts)}")


def catalogue_from_dict(data: object, source: str = "catalogue") -> Catalogue:
    """Validate plain data as a catalogue; InputError naming the first bad field."""
    return validated(Catalogue, data, source, "a catalogue is a mapping with liners, closures, adapters and materials")


@cache
def load_catalogue() -> Catalogue:
    """The packaged catalogue (socketcad/design/catalogue.yaml), read once."""
    text = resources.files("socketcad.design").joinpath("catalogue.yaml").read_text(encoding="utf-8")
    return catalogue_from_dict(yaml.safe_load(text), "catalogue.yaml")


def wall_thickness_mm(material: WallMaterial | str, k_level: int) -> float:
    """Default wall thickness (mm) of a material (object or catalogue id) for a K-level."""
    if isinstance(material, str):
        material = load_catalogue().material(material)
    if k_level not in K_LEVELS:
        raise InputError(f"k_level {k_level} is not a K-level; use 0, 1, 2, 3 or 4")
    return material.thickness_mm_by_k_level[k_level]


class SelectionInputs(_Record):
    """What the evaluation says about the patient, as component selection needs it."""

    level: Level
    k_level: int = Field(ge=0, le=4)
    residual_length_mm: float = Field(gt=0, le=600)
    skin_condition: Literal["intact", "fragile", "scarred", "grafted", "adherent_scar"]
    volume_stability: Literal["stable", "fluctuating", "maturing"]
    hand_dexterity: Literal["good", "limited"]
    activity_notes: str | None = None


def selection_from_dict(data: object, source: str = "selection") -> SelectionInputs:
    """Validate plain data as selection inputs; InputError naming the first bad field."""
    return validated(SelectionInputs, data, source, "selection inputs are a mapping (level, k_level, residual_length_mm, ...)")


class Proposal(_Record):
    """A compatible liner, closure and adapter, with the reason for each rule that chose them."""

    liner: Liner
    closure: Closure
    adapter: Adapter
    reasons: tuple[str, ...]


def _closure_kind(inputs: SelectionInputs, reasons: list[str]) -> str:
    """The closure kind for the evaluation; the first rule that applies decides."""
    tt = inputs.level == "transtibial"
    lock = "pin_lock" if tt else "lanyard"
    lock_words = "a pin lock" if tt else "a lanyard (no pin to align in a long transfemoral socket)"
    fragile = inputs.skin_condition in ("fragile", "grafted")
    sound = inputs.skin_condition in ("intact", "scarred")
    if inputs.hand_dexterity == "limited":
        reasons.append(f"limited hand dexterity: {lock_words} is easier to don than a seal-in liner or a suction sleeve")
        return lock
    if inputs.k_level <= 1:
        reasons.append(f"K{inputs.k_level}: {lock_words} is the simplest system to don and check")
        return lock
    if fragile:
        reasons.append(f"{inputs.skin_condition} skin: suction spreads suspension over the whole liner instead of a pin "
                       "pulling on the distal end; no elevated vacuum on compromised skin (project assumption)")
        return "suction_sleeve" if tt else "suction_seal_in"
    if inputs.volume_stability == "maturing":
        reasons.append(f"maturing limb: {lock_words} tolerates the sock changes of the first months; "
                       "suction needs a stable volume")
        return lock
    if inputs.volume_stability == "fluctuating":
        if inputs.k_level >= 3 and sound:
            reasons.append("fluctuating volume in an active user: elevated vacuum limits the daily volume loss "
                           "(Board et al. 2001) and holds the limb without socks")
            return "elevated_vacuum"
        reasons.append(f"fluctuating volume: {lock_words} tolerates socks; seal-in suction does not")
        return lock
    if tt and inputs.residual_length_mm < SHORT_TRANSTIBIAL_MM:
        short = f"short residual limb (< {SHORT_TRANSTIBIAL_MM:g} mm, project assumption)"
        if inputs.k_level >= 3 and sound:
            reasons.append(f"{short}, K{inputs.k_level}: elevated vacuum holds the short lever with the least pistoning")
            return "elevated_vacuum"
        reasons.append(f"{short}: supracondylar (KBM) wedges add the medio-lateral stability and suspension "
                       "a short lever lacks")
        return "supracondylar"
    if inputs.k_level == 4 and sound:
        reasons.append("K4, stable volume: elevated vacuum gives the firmest suspension for high-impact activity")
        return "elevated_vacuum"
    reasons.append(f"stable volume, good dexterity, K{inputs.k_level}: seal-in suction, no distal traction, "
                   "good rotational control and no socks to manage")
    return "suction_seal_in"


def _choose_liner(inputs: SelectionInputs, closure: Closure, catalogue: Catalogue, reasons: list[str]) -> Liner:
    """The liner of a kind the closure takes, by skin condition and K-level."""
    target_mm = 6.0
    if inputs.skin_condition in ("fragile", "grafted"):
        materials = ("tpe", "silicone_gel")
        target_mm = 9.0
        reasons.append(f"{inputs.skin_condition} skin: soft gel liner (TPE or silicone gel), 9 mm where made, "
                       "to cushion and spread pressure with the least shear")
    elif inputs.skin_condition in ("scarred", "adherent_scar"):
        materials = ("silicone",)
        reasons.append(f"{inputs.skin_condition.replace('_', ' ')}: silicone liner; it grips and moves with the skin "
                       "(friction 0.61, Zhang & Mak 1999), so the scar is not sheared")
    elif inputs.k_level >= 3:
        materials = ("silicone",)
        reasons.append(f"K{inputs.k_level}: silicone liner, stiffer than gel, limits pistoning (project assumption)")
    else:
        materials = ("tpe", "silicone_gel", "silicone")
        reasons.append(f"K{inputs.k_level}, intact skin: gel liner for comfort (project assumption)")
    candidates = [liner for liner in catalogue.liners if liner.kind in closure.liner_kinds
                  and (liner.distal_pin or not closure.needs_distal_pin)]
    if not candidates:
        raise InputError(f"the catalogue has no liner that closure '{closure.id}' can take "
                         f"({'/'.join(closure.liner_kinds)}); add one")

    def rank(liner: Liner) -> tuple:
        material = materials.index(liner.material) if liner.material in materials else len(materials)
        return (material, closure.liner_kinds.index(liner.kind), abs(liner.thickness_mm - target_mm),
                -liner.thickness_mm, liner.id)

    liner = min(candidates, key=rank)
    if liner.material not in materials:
        reasons.append(f"no {' or '.join(materials)} {'/'.join(closure.liner_kinds)} liner in the catalogue: "
                       f"using '{liner.id}' ({liner.material})")
    return liner


def default_adapter(closure: Closure, level: str, catalogue: Catalogue | None = None,
                    reasons: list[str] | None = None) -> Adapter:
    """The adapter the selection rule gives a ``closure`` at ``level``, its reason appended to ``reasons``:
    a lock housing under a pin lock, else a 4-hole adapter (transfemoral) or a pyramid plate (transtibial).
    The one rule for a spec that names no adapter."""
    catalogue = catalogue or load_catalogue()
    reasons = [] if reasons is None else reasons
    if closure.kind == "pin_lock":
        kind = "pin_lock_housing"
        reasons.append("pin lock: a lock-housing adapter carries the lock body under the socket floor")
    elif level == "transfemoral":
        kind = "four_hole"
        reasons.append("transfemoral: a 4-hole socket adapter takes a slide adapter for anterior-posterior knee "
                       "placement (Ottobock C-Leg instructions: 4R118, 10-25 mm)")
    else:
        kind = "pyramid"
        reasons.append("transtibial without a lock: a pyramid plate bolted to the socket floor (project assumption)")
    adapters = sorted((a for a in catalogue.adapters if a.kind == kind), key=lambda a: a.id)
    if not adapters:
        raise InputError(f"the catalogue has no {kind} adapter; add one")
    return adapters[0]


def propose_system(inputs: SelectionInputs, catalogue: Catalogue | None = None) -> Proposal:
    """Liner, closure and adapter for the evaluation, with reasons; deterministic."""
    catalogue = catalogue or load_catalogue()
    reasons: list[str] = []
    kind = _closure_kind(inputs, reasons)
    closures = sorted((c for c in catalogue.closures if c.kind == kind and inputs.level in c.levels), key=lambda c: c.id)
    if not closures:
        raise InputError(f"the catalogue has no {kind} closure for {inputs.level} limbs; add one")
    closure = closures[0]
    liner = _choose_liner(inputs, closure, catalogue, reasons)
    adapter = default_adapter(closure, inputs.level, catalogue, reasons)
    check_compatibility(liner, closure, adapter, inputs.level)
    return Proposal(liner=liner, closure=closure, adapter=adapter, reasons=tuple(reasons))


_LINER_WORDS = {"locking": "a locking liner", "cushion": "a cushion liner", "seal_in": "a seal-in liner"}
_CLOSURES_FOR = {"locking": "a pin lock or lanyard closure", "seal_in": "a seal-in suction or elevated vacuum closure",
                 "cushion": "a suction sleeve, elevated vacuum or supracondylar closure"}


def check_compatibility(liner: Liner, closure: Closure, adapter: Adapter, level: str) -> None:
    """InputError, one line naming both parts, if liner, closure, adapter and level cannot work together.

    Rules: the closure serves the limb's level (supracondylar: transtibial only); the liner is of a
    kind the closure takes, with a distal pin where it needs one; a pin lock needs a pin-lock housing
    adapter wide enough for its lock body, and a lock housing is used only with a pin lock (an empty
    lock bore would leak air from a suction socket and add build height for nothing).
    """
    if level not in closure.levels or (closure.kind == "supracondylar" and level != "transtibial"):
        raise InputError(f"closure '{closure.id}' serves {' and '.join(closure.levels)} limbs; this limb is {level}: "
                         "choose a closure for its level")
    if liner.kind not in closure.liner_kinds or (closure.needs_distal_pin and not liner.distal_pin):
        takes = " or ".join(_LINER_WORDS[k] for k in closure.liner_kinds)
        is_ = _LINER_WORDS[liner.kind]
        if closure.needs_distal_pin:
            takes, is_ = f"{takes} with a distal pin", f"{is_} {'with' if liner.distal_pin else 'without'} one"
        raise InputError(f"closure '{closure.id}' needs {takes}; liner '{liner.id}' is {is_}: choose "
                         f"{' or '.join(_LINER_WORDS[k] for k in closure.liner_kinds)} or {_CLOSURES_FOR[liner.kind]}")
    if closure.kind == "pin_lock" and adapter.kind != "pin_lock_housing":
        raise InputError(f"closure '{closure.id}' needs a lock housing under the socket floor; adapter '{adapter.id}' "
                         f"is a {adapter.kind} adapter that cannot hold a lock: choose a pin_lock_housing adapter")
    if adapter.kind == "pin_lock_housing" and closure.kind != "pin_lock":
        raise InputError(f"adapter '{adapter.id}' is a pin-lock housing; closure '{closure.id}' has no pin to lock: "
                         "choose a four_hole or pyramid adapter")
    if closure.lock_housing_diameter_mm and closure.lock_housing_diameter_mm > adapter.plate_diameter_mm:
        raise InputError(f"closure '{closure.id}' has a {closure.lock_housing_diameter_mm:g} mm lock body; adapter "
                         f"'{adapter.id}' is only {adapter.plate_diameter_mm:g} mm wide: choose a wider lock housing")
