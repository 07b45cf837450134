"""RectificationPlan: the prosthetist's modifications of a limb, as plain, versioned data.

A plan is a set, not a sequence: rectify() applies each kind of modification in one
fixed order (circumferential reductions, distal shaping, local pushes and reliefs,
brim flare, smoothing), and modifications of one kind combine commutatively (reductions
multiply, displacements add), so listing them in another order gives the same shape
(two smoothing steps are the one exception: they differ by thousandths of a millimetre).

Sign convention: a **push** (pressure, load a tolerant area) moves the model's surface
inwards by ``depth_mm``; a **relief** (build-up over a sensitive area) moves it outwards.
Reductions are circumferential, as prosthetists state them: 5 % makes every
circumference 5 % shorter (so the cross-section area about 10 % smaller).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from socketcad.anatomy.landmarks import MAX_COORDINATE_MM, known_landmarks
from socketcad.anatomy.regions import FACING_VECTORS
from socketcad.errors import validated
from socketcad.geometry import io
from socketcad.geometry.deform import SMOOTHERSTEP_MAX_SLOPE

SCHEMA_VERSION = 1
FACINGS = tuple(FACING_VECTORS)
MAX_REDUCTION_PCT = 20.0  # beyond any published socket reduction (TSB 3-9 %, DOMAIN.md)
MAX_ENLARGEMENT_PCT = 10.0
MAX_SLOPE = 1.0  # steepest falloff allowed: 45 degrees
# Sizes far above any clinical plan (a template has 3-12 modifications, a reduction 3-8 points) that keep a
# hostile plan from taking minutes: each modification is a pass over the whole skin.
MAX_MODIFICATIONS = 100
MAX_PROFILE_POINTS = 50
MAX_TEXT = 2000  # characters of a label, source or assumption
MAX_NOTES = 100  # sources or assumptions


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Region(_Record):
    """Where a local modification acts: around a landmark, optionally shifted (mm)."""

    landmark: str
    facing: Literal[FACINGS] | None = None  # type: ignore[valid-type]  # on the skin at the landmark's level
    proximal_mm: float = Field(default=0.0, ge=-400, le=400)
    anterior_mm: float = Field(default=0.0, ge=-400, le=400)
    lateral_mm: float = Field(default=0.0, ge=-400, le=400)
    width_mm: float = Field(gt=0, le=300)  # around the limb
    height_mm: float = Field(gt=0, le=400)  # along the limb
    falloff_mm: float = Field(default=15.0, ge=3, le=100)
    angle_deg: float = Field(default=0.0, ge=-180, le=180)


class _Local(_Record):
    label: str | None = None
    region: Region
    depth_mm: float = Field(gt=0, le=25)

    @model_validator(mode="after")
    def _not_too_steep(self):
        slope = SMOOTHERSTEP_MAX_SLOPE * self.depth_mm / self.region.falloff_mm
        if slope > MAX_SLOPE:
            raise ValueError(
                f"depth {self.depth_mm:g} mm over a {self.region.falloff_mm:g} mm falloff would slope "
                f"{slope:.1f}:1; make region.falloff_mm at least {SMOOTHERSTEP_MAX_SLOPE * self.depth_mm:.0f} mm"
            )
        return self


class Push(_Local):
    """Load a pressure-tolerant area: the surface moves inwards by depth_mm in the core."""

    kind: Literal["push"]


class Relief(_Local):
    """Relieve a pressure-sensitive area (build-up): the surface moves outwards by depth_mm."""

    kind: Literal["relief"]


class ReductionPoint(_Record):
    level_pct: float = Field(ge=0, le=100)  # 0 distal end, 100 lowest brim point
    reduction_pct: float = Field(ge=-MAX_ENLARGEMENT_PCT, le=MAX_REDUCTION_PCT)


class Reduction(_Record):
    """Circumferential reduction (%) along the length, interpolated smoothly (PCHIP) between points."""

    kind: Literal["reduction"]
    label: str | None = None
    profile: list[ReductionPoint] = Field(min_length=1, max_length=MAX_PROFILE_POINTS)

    @field_validator("profile")
    @classmethod
    def _increasing_levels(cls, profile: list[ReductionPoint]) -> list[ReductionPoint]:
        levels = [point.level_pct for point in profile]
        if any(b <= a for a, b in zip(levels, levels[1:])):
            raise ValueError("level_pct must increase from one point to the next")
        return profile


class Distal(_Record):
    """Distal end shaping: lengthen (+) or flatten/shorten (-) the end, blended over length_mm."""

    kind: Literal["distal"]
    label: str | None = None
    elongation_mm: float = Field(ge=-30, le=30)
    length_mm: float = Field(default=40.0, ge=10, le=150)

    @model_validator(mode="after")
    def _no_fold(self):
        if SMOOTHERSTEP_MAX_SLOPE * abs(self.elongation_mm) > 0.9 * self.length_mm:
            raise ValueError(
                f"elongation_mm {self.elongation_mm:g} over length_mm {self.length_mm:g} would fold the "
                f"distal end; use length_mm of at least {SMOOTHERSTEP_MAX_SLOPE * abs(self.elongation_mm) / 0.9:.0f}"
            )
        return self


class Flare(_Record):
    """Brim flare: the surface turns outwards by flare_mm at the brim, blended over height_mm below it."""

    kind: Literal["flare"]
    label: str | None = None
    flare_mm: float = Field(gt=0, le=20)
    height_mm: float = Field(default=25.0, ge=5, le=100)


class Smooth(_Record):
    """Volume-keeping Taubin smoothing, everywhere or in a region."""

    kind: Literal["smooth"]
    label: str | None = None
    iterations: int = Field(default=5, ge=1, le=50)
    region: Region | None = None


Modification = Annotated[Union[Push, Relief, Reduction, Distal, Flare, Smooth], Field(discriminator="kind")]
KINDS = ("push", "relief", "reduction", "distal", "flare", "smooth")


class RectificationPlan(_Record):
    """A named, versioned set of modifications, with the sources and assumptions behind it."""

    schema_version: int
    name: str = Field(default="custom", max_length=200)
    level: Literal["transtibial", "transfemoral"] | None = None
    side: Literal["left", "right"] | None = None  # the limb it was made for; None: either
    modifications: list[Modification] = Field(default_factory=list, max_length=MAX_MODIFICATIONS)
    sources: list[Annotated[str, Field(max_length=MAX_TEXT)]] = Field(default_factory=list, max_length=MAX_NOTES)
    assumptions: list[Annotated[str, Field(max_length=MAX_TEXT)]] = Field(default_factory=list, max_length=MAX_NOTES)
    # Landmarks the prosthetist placed by hand (name -> [x, y, z], limb frame, mm): they replace the located ones
    # before the regions are placed, so moving a landmark is a decision kept with the plan, like a modification.
    landmarks: dict[str, tuple[float, float, float]] = Field(default_factory=dict, max_length=50)

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version != SCHEMA_VERSION:
            raise ValueError(f"version {version} is not supported (this socketcad reads version {SCHEMA_VERSION})")
        return version

    @model_validator(mode="after")
    def _known_landmarks(self):
        known = known_landmarks(self.level or "unknown")
        for index, modification in enumerate(self.modifications):
            region = getattr(modification, "region", None)
            if region is not None and region.landmark not in known:
                raise ValueError(
                    f"modifications[{index}].region.landmark: unknown landmark '{region.landmark}'; "
                    f"use one of {', '.join(known)}"
                )
        for name, point in self.landmarks.items():
            if name not in known:
                raise ValueError(f"landmarks.{name}: unknown landmark; use one of {', '.join(known)}")
            if max(map(abs, point)) > MAX_COORDINATE_MM:
                raise ValueError(f"landmarks.{name}: each coordinate within +/-{MAX_COORDINATE_MM:g} mm")
        return self

    @model_validator(mode="after")
    def _combined_limits(self):
        """Limits that modifications of one kind must respect together, as they add up."""
        reductions = [m for m in self.modifications if isinstance(m, Reduction)]
        largest = sum(max(p.reduction_pct for p in m.profile) for m in reductions)
        smallest = sum(min(p.reduction_pct for p in m.profile) for m in reductions)
        if largest > MAX_REDUCTION_PCT or smallest < -MAX_ENLARGEMENT_PCT:
            raise ValueError(f"modifications: the reductions add up to {smallest:g}..{largest:g} %; together they "
                             f"must stay within -{MAX_ENLARGEMENT_PCT:g}..{MAX_REDUCTION_PCT:g} %")
        fold = sum(SMOOTHERSTEP_MAX_SLOPE * abs(m.elongation_mm) / m.length_mm
                   for m in self.modifications if isinstance(m, Distal))
        if fold > 0.9:
            raise ValueError("modifications: the distal modifications together would fold the distal end; "
                             "use one, or longer length_mm")
        return self

    def as_dict(self) -> dict:
        """Plain data, each modification's kind first (files read top-down)."""
        data = self.model_dump(mode="json", exclude_none=True)
        if not data["landmarks"]:
            del data["landmarks"]
        data["modifications"] = [{"kind": m.pop("kind"), **m} for m in data["modifications"]]
        return data


def plan_from_dict(data: object, source: str = "plan") -> RectificationPlan:
    """Validate plain data as a plan; InputError naming the first bad field."""
    return validated(RectificationPlan, data, source, "a plan is a mapping with schema_version and modifications", KINDS)


def read_plan(path: str | Path) -> RectificationPlan:
    """A plan from a YAML or JSON file."""
    data = io.read_data_file(path, "rectification plans")
    return plan_from_dict(data, str(path))


def write_plan(plan: RectificationPlan, path: str | Path) -> None:
    """Write a plan as YAML (or JSON for .json), atomically."""
    path = Path(path)
    fmt = io.file_format(path, io.DATA_FORMATS)
    data = plan.as_dict()
    text = json.dumps(data, indent=2) + "\n" if fmt == "json" else yaml.safe_dump(data, sort_keys=False)
    io.write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
