"""Shape capture (step 2): the samples, the catalogue, measuring, converting, tape measures, landmarks."""

from __future__ import annotations

import csv
import io as _io
from pathlib import Path
from typing import Optional, Union

from pydantic import Field

from socketcad.anatomy.landmarks import locate_landmarks, read_landmark_file
from socketcad.anatomy.measures import LimbMeasures, measure_limb
from socketcad.anatomy.samples import SAMPLES
from socketcad.design.components import Catalogue, load_catalogue
from socketcad.geometry import formats, io, measure
from socketcad.operations._common import (Capture, LimbInfo, Progress, Request, Result, Source, check_output, limb_info,
                                          load, readable, silent, source_name)

__all__ = ["ConvertRequest", "Converted", "InspectRequest", "Inspection", "LandmarkRow", "Landmarks",
           "LandmarksRequest", "SampleInfo", "SampleList", "SectionRow", "TapeRequest", "TapeLimb", "catalogue", "convert", "inspect",
           "landmarks", "samples", "tape", "landmark_overrides"]


class SampleInfo(Result):
    name: str  # give it as sample:NAME
    level: str
    units: str
    kind: str  # limb or tape
    description: str
    licence: str


class SampleList(Result):
    samples: list[SampleInfo]


def samples() -> SampleList:
    """The sample limbs and tape measures shipped with socketcad."""
    return SampleList(samples=[SampleInfo(name=s.name, level=s.level, units=s.units, kind=s.kind,
                                          description=s.description, licence=s.licence) for s in SAMPLES.values()])


def catalogue() -> Catalogue:
    """The component catalogue: liners, closures, adapters and wall materials."""
    return load_catalogue()


class SectionRow(Result):
    level_mm: float  # above the distal end
    circumference_mm: float
    hull_circumference_mm: float
    area_mm2: float
    ap_width_mm: float
    ml_width_mm: float
    partial: bool  # above the lowest brim point: the cap closes part of it


class InspectRequest(Request):
    source: Source
    capture: Capture = Capture()
    step_mm: float = 10.0  # profile spacing
    start: str = "distal"  # where the profile's steps count from: distal, brim or a landmark (e.g. MPT)
    profile_csv: Optional[Path] = None  # also write the profile here (CSV)


class Inspection(LimbInfo):
    """A limb's measures: volume (brim capped), area, length and its cross-section profile."""

    volume_cm3: float
    surface_area_mm2: float
    length_mm: float
    brim_low_mm: Optional[float]
    profile_start: str
    profile_start_mm: float
    profile_step_mm: float
    profile: list[SectionRow]
    written: list[str] = []


def inspect(request: InspectRequest, progress: Progress = silent) -> Inspection:
    """Measure a residual limb: volume (brim capped), area, length and a cross-section profile."""
    if request.profile_csv is not None:
        check_output(request.profile_csv, ("csv",))
    limb = load(request.source, request.capture, progress)
    measures = measure_limb(limb, request.step_mm, request.start)
    if request.profile_csv is not None:
        write_profile_csv(measures, request.profile_csv)
    return Inspection(**limb_info(limb), **measures.as_dict(),
                      written=[str(request.profile_csv)] if request.profile_csv else [])


def write_profile_csv(measures: LimbMeasures, path: Path) -> None:
    """The profile as CSV (one row per level, units in the header), written atomically."""
    buffer = _io.StringIO()
    fields = ["level_mm", "from_start_mm", "circumference_mm", "hull_circumference_mm",
              "area_mm2", "ap_width_mm", "ml_width_mm", "partial"]
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for section in measures.profile:
        row = section.as_dict() | {"from_start_mm": section.level_mm - measures.start_mm}
        writer.writerow({key: (f"{row[key]:.3f}" if isinstance(row[key], float) else row[key]) for key in fields})
    io.write_atomic(path, lambda tmp: tmp.write_text(buffer.getvalue()))


class ConvertRequest(Request):
    source: Source
    target: Path  # the format by its extension; millimetres
    capture: Capture = Capture()
    keep_pose: bool = False  # keep the input's position and orientation (default: the anatomical frame)
    spokes: int = Field(72, ge=8, le=720)  # AOP output
    slice_mm: float = Field(2.0, gt=0, le=50)  # AOP output
    ascii_stl: bool = False


class Converted(LimbInfo):
    written: list[str]


def convert(request: ConvertRequest, progress: Progress = silent) -> Converted:
    """Convert a limb between formats, in millimetres, cleaned and in the anatomical frame."""
    from socketcad.anatomy.export import write_limb

    fmt = check_output(request.target, formats.format_names(reading=False))
    limb = load(request.source, request.capture, progress)
    write_limb(limb, request.target, fmt, keep_pose=request.keep_pose, spokes=request.spokes,
               slice_mm=request.slice_mm, ascii_stl=request.ascii_stl)
    return Converted(**limb_info(limb), written=[str(request.target)])


class TapeRequest(Request):
    measures: Source  # tape measures: YAML or JSON, or sample:NAME
    output: Path  # the limb surface to write (a surface format, mm)
    ascii_stl: bool = False


class TapeLimb(Result):
    level: str
    circumferences: int
    volume_cm3: float  # brim capped
    residual_length_mm: float
    reference: str
    distal_shape: str
    notes: list[str]
    written: list[str]


def tape(request: TapeRequest) -> TapeLimb:
    """Build a smooth limb surface from tape measures (circumferences, length, AP/ML widths)."""
    from socketcad.anatomy.tape import read_tape, tape_limb

    check_output(request.output, io.MESH_FORMATS)
    with readable(request.measures) as path:
        measures = read_tape(path)
    limb = tape_limb(measures, source_name(request.measures))
    io.write_mesh(limb.skin, request.output, ascii_stl=request.ascii_stl)
    return TapeLimb(level=measures.level, circumferences=len(measures.circumferences_mm),
                    volume_cm3=measure.enclosed_volume_mm3(limb.skin) / 1000.0,
                    residual_length_mm=measures.residual_length_mm, reference=measures.reference,
                    distal_shape=measures.distal_shape, notes=list(limb.notes), written=[str(request.output)])


LandmarkPoints = dict[str, tuple[float, float, float]]
"""Landmark overrides: name -> [x, y, z] in the limb frame, mm."""


def landmark_overrides(landmarks: Union[Path, LandmarkPoints, None]) -> LandmarkPoints | None:
    """Overrides as points: read from a YAML/JSON file, or as given."""
    if landmarks is None or isinstance(landmarks, dict):
        return landmarks
    return read_landmark_file(landmarks)


class LandmarksRequest(Request):
    source: Source
    capture: Capture = Capture()
    landmarks: Union[Path, LandmarkPoints, None] = None  # overrides (a YAML/JSON file, or points)
    skin_only: bool = False  # from the skin shape even when bones are present


class LandmarkRow(Result):
    name: str
    x_mm: float
    y_mm: float
    z_mm: float  # limb frame: z up from the distal end, y anterior, x right
    how: str


class Landmarks(LimbInfo):
    landmarks: list[LandmarkRow]


def landmarks(request: LandmarksRequest, progress: Progress = silent) -> Landmarks:
    """The anatomical landmarks of a limb (from bones, else the skin), each with how it was found."""
    overrides = landmark_overrides(request.landmarks)
    limb = locate_landmarks(load(request.source, request.capture, progress), overrides,
                            use_bones=not request.skin_only)
    rows = [LandmarkRow(name=m.name, x_mm=float(m.point_mm[0]), y_mm=float(m.point_mm[1]), z_mm=float(m.point_mm[2]),
                        how=m.how) for m in limb.landmarks.values()]
    return Landmarks(**limb_info(limb), landmarks=rows)
