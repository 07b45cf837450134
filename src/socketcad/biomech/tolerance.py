"""Regional pressure tolerance of the transtibial residual limb: where the socket may press, and how hard.

Each region is an ellipse on the skin around a landmark (socketcad.anatomy.regions), with the largest
interface pressure (kPa) it is taken to tolerate in walking. The classes follow the clinical consensus in
DOMAIN.md (PTB loads the patellar tendon, the medial tibial flare and the popliteal area; relieves the
fibular head, tibial crest and distal tibia). The kPa values are this project's indicative defaults, set
from the published walking peaks (50-250 kPa, Safari & Meier 2015; Dumbleton 2009): tolerant regions at
the top of that range, soft tissue in the middle, bony prominences at its lower part. They are not
measured pain thresholds: edit them for the patient (``read_tolerances``). The skin is labelled by
region with socketcad.anatomy.regions.region_map, ranked by ``tolerance_kpa``: where regions overlap,
the least tolerant wins.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from socketcad.errors import InputError, validated
from socketcad.geometry import io

SOURCE = ("indicative defaults from the published transtibial walking peaks 50-250 kPa (Safari & Meier 2015; "
          "Dumbleton 2009) and the PTB load/relief classes; not measured pain thresholds, edit per patient")


class RegionTolerance(BaseModel):
    """One region: an ellipse (mm) around a landmark and its tolerated walking pressure (kPa)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    landmark: str
    width_mm: float = Field(gt=0, le=200)
    height_mm: float = Field(gt=0, le=300)
    tolerance_kpa: float = Field(gt=0, le=2000)
    kind: str = Field(pattern="^(tolerant|intermediate|sensitive)$")


DEFAULT_TRANSTIBIAL = (
    RegionTolerance(name="patellar tendon", landmark="mpt", width_mm=30, height_mm=15, tolerance_kpa=250, kind="tolerant"),
    RegionTolerance(name="medial tibial flare", landmark="medial_tibial_flare", width_mm=30, height_mm=40,
                    tolerance_kpa=220, kind="tolerant"),
    RegionTolerance(name="popliteal", landmark="popliteal", width_mm=50, height_mm=30, tolerance_kpa=200, kind="tolerant"),
    RegionTolerance(name="fibular head", landmark="fibular_head", width_mm=30, height_mm=30, tolerance_kpa=100,
                    kind="sensitive"),
    RegionTolerance(name="tibial crest", landmark="tibial_crest", width_mm=15, height_mm=60, tolerance_kpa=100,
                    kind="sensitive"),
    RegionTolerance(name="distal tibia", landmark="distal_tibia", width_mm=30, height_mm=30, tolerance_kpa=100,
                    kind="sensitive"),
)
ELSEWHERE = RegionTolerance(name="elsewhere", landmark="-", width_mm=1, height_mm=1, tolerance_kpa=150, kind="intermediate")


def read_tolerances(path: Path) -> tuple[RegionTolerance, ...]:
    """A tolerance table from YAML/JSON: a list of regions (fields as RegionTolerance)."""
    data = io.read_data_file(path, "tolerance table")
    if not isinstance(data, list) or not data:
        raise InputError(f"{path}: a tolerance table is a list of regions")
    return tuple(validated(RegionTolerance, entry, f"{path}: region {number}", "a region is a mapping of fields")
                 for number, entry in enumerate(data, start=1))
