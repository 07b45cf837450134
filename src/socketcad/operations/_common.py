"""What every operation shares: request and result bases, progress, file inputs and the capture options."""

from __future__ import annotations

import math
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Callable, Iterator, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from socketcad.anatomy.limb import CaptureOptions, Limb, load_limb
from socketcad.errors import InputError, every_error, printable
from socketcad.geometry import io

Progress = Callable[[str], None]
"""Called with the name of each stage as it starts (a progress bar's label); never required."""


def silent(stage: str) -> None:
    """The default progress: nothing."""


class Request(BaseModel):
    """An operation's input. Built from bad values it raises InputError naming each field (one line)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **data):
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise InputError(every_error(exc)) from None


class Result(BaseModel):
    """An operation's output: plain data with units in the field names; its JSON schema is published."""

    model_config = ConfigDict(frozen=True)


class Upload(BaseModel):
    """A file's contents as received (a web upload): its name (the suffix names the format) and bytes."""

    model_config = ConfigDict(frozen=True)
    filename: str = Field(min_length=1, max_length=255)
    data: bytes

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        # The name only names the format and is shown back: no folders, so no request reaches the file system.
        if Path(name).name != name or name in (".", "..") or not name.isprintable():
            raise ValueError("a file name without folders")
        return name


Source = Union[Upload, str, Path]
"""A file: a path, ``sample:NAME`` or an Upload."""


@contextmanager
def readable(source: Source) -> Iterator[str | Path]:
    """A path (or sample:NAME) the readers take; an Upload is written to a private temporary folder first,
    and errors name the upload, not the temporary file."""
    if not isinstance(source, Upload):
        yield source
        return
    if Path(source.filename).name != source.filename or source.filename in ("", ".", ".."):  # built unvalidated
        raise InputError(f"upload {printable(source.filename)!r}: give a file name without folders")
    with tempfile.TemporaryDirectory(prefix="socketcad-upload-") as folder:
        path = Path(folder) / source.filename
        path.write_bytes(source.data)
        try:
            yield path
        except InputError as exc:
            raise InputError(str(exc).replace(str(path), source.filename)) from None


def source_name(source: Source) -> str:
    return source.filename if isinstance(source, Upload) else str(source)


def _direction(value):
    """X,Y,Z as text (a form, a command line) or three numbers; three finite numbers, not all 0."""
    if value is None:
        return None
    try:
        vector = tuple(float(part) for part in (value.split(",") if isinstance(value, str) else value))
    except (TypeError, ValueError):
        vector = ()
    if len(vector) != 3 or not all(math.isfinite(v) for v in vector) or not any(vector):
        shown = value if isinstance(value, str) else ",".join(map(str, value)) if isinstance(value, (list, tuple)) \
            else repr(value)
        raise ValueError(f"'{shown}' is not a direction: give three finite numbers X,Y,Z, not all 0")
    return vector


Direction = Annotated[tuple[float, float, float], BeforeValidator(_direction)]
"""A direction in file coordinates (mm frame of the file): three finite numbers, not all 0, or 'X,Y,Z' text."""


class Capture(Request):
    """How a limb file is read (anatomy.limb.CaptureOptions); every field optional."""

    units: Optional[str] = None  # mm, cm, m, in; tibia/femur for OpenLimb's normalised shapes; detected if None
    reference_length_mm: Optional[float] = Field(None, gt=0, allow_inf_nan=False)  # intact tibia/femur length
    side: Optional[str] = None  # left or right; detected from bones or the file if None
    flip_side: bool = False  # mirror the limb to the other side
    anterior: Optional[Direction] = None  # anterior direction in file coordinates, X,Y,Z
    keep_axis: bool = False  # the file's +z is the long axis (scanner-aligned)
    level: Optional[str] = None  # transtibial or transfemoral; guessed from the bones if None
    force: bool = False  # go on with a shape outside the human range (wrong units, not a limb)
    clean: bool = True  # drop debris, fill small holes; False: every part as read
    remesh_edge_mm: Optional[float] = Field(None, gt=0, allow_inf_nan=False)  # isotropic remesh of the skin

    def options(self) -> CaptureOptions:
        return CaptureOptions(**self.model_dump())


def load(source: Source, capture: Capture, progress: Progress = silent) -> Limb:
    """The limb in ``source``, read as ``capture`` says."""
    with readable(source) as path:
        limb = load_limb(path, capture.options(), progress)
    if isinstance(source, Upload):
        limb.source = source.filename
    return limb


class LimbInfo(Result):
    """What was read: the limb's source, level, side, units and bones, and how each was found."""

    source: str
    level: str
    side: str
    units: str
    bones: list[str]
    notes: list[str]
    validated: str


def limb_info(limb: Limb) -> dict:
    """The LimbInfo fields of ``limb`` (to build a result that extends LimbInfo)."""
    return dict(source=limb.source, level=limb.level, side=limb.side, units=limb.units.unit, bones=sorted(limb.bones),
                notes=list(limb.notes),
                validated="volume, area and sections are exact for the triangle surface (divergence theorem, "
                          "planar sections); axis, anterior and side are estimates, each note says how it was found")


def check_output(path: Path, allowed: tuple[str, ...], what: str = "output") -> str:
    """An output path's format, checked before any slow work: a known extension; its folder is made."""
    fmt = io.file_format(path, allowed)
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission
        raise InputError(f"{path}: cannot make the folder {folder} ({exc.strerror}); give another {what} path") from None
    return fmt
