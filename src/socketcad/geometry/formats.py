"""The mesh file formats socketcad reads and writes: one registry, from which readers, writers and help read.

``FORMATS`` maps a format's name (its file extension, lower case) to a ``FileFormat``; its order
is the order help texts and error messages list them in. Surface formats (STL, OBJ, PLY, OFF,
3MF) are read and written by ``geometry.io``; AOP, a cylindrical shape (radii on spokes and
slices), by ``geometry.aop``. This module imports nothing heavy at import time (the readers and
writers are imported when called), so help texts built from it are cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal

from socketcad.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import trimesh

Kind = Literal["surface", "cylindrical"]


@dataclass(frozen=True)
class MeshFile:
    """What a mesh file gives: the mesh, in the file's own units, and what the file states beyond it.

    axes: (long axis, anterior) unit vectors if the file fixes them (AOP: z and y), else None.
    side: 'left' or 'right' if the file says, else None. levels_mm: landmark heights above the
    distal end (AOP landmarks), else empty.
    """

    mesh: "trimesh.Trimesh"
    axes: tuple | None = None
    side: str | None = None
    levels_mm: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FileFormat:
    """One mesh file format.

    name: the file extension, lower case, without the dot ('stl'). title: how help texts name it
    ('STL'). kind: 'surface' (any triangle mesh, all parts) or 'cylindrical' (AOP: one surface
    sampled on spokes round the long axis, so it is written from the skin in the anatomical frame).
    """

    name: str
    title: str
    description: str
    reads: bool = True
    writes: bool = True
    kind: Kind = "surface"
    _read: Callable[[Path], MeshFile] | None = field(default=None, repr=False, compare=False)
    _write: Callable[..., None] | None = field(default=None, repr=False, compare=False)

    @property
    def extension(self) -> str:
        return "." + self.name

    @property
    def cylindrical(self) -> bool:
        return self.kind == "cylindrical"

    def read(self, path: str | Path) -> MeshFile:
        """Read ``path`` as this format; InputError (one line naming the file) if it cannot be."""
        if not self.reads or self._read is None:
            raise ValueError(f"socketcad does not read {self.title} files")
        return self._read(Path(path))

    def write(self, mesh: "trimesh.Trimesh", path: str | Path, **options) -> None:
        """Write ``mesh`` (mm) to ``path`` as this format, atomically.

        Surface formats take ``ascii_stl`` and ``metadata`` (see io.write_mesh); AOP takes
        ``spokes``, ``slice_mm``, ``side`` ('LEFT', 'RIGHT' or 'NONE') and ``comments``
        (see aop.mesh_to_aop); the mesh must then be in the anatomical frame.
        """
        if not self.writes or self._write is None:
            raise ValueError(f"socketcad does not write {self.title} files")
        self._write(mesh, Path(path), **options)


def _read_surface(path: Path) -> MeshFile:
    from socketcad.geometry import io

    return MeshFile(io.read_mesh(path))


def _write_surface(mesh, path: Path, *, ascii_stl: bool = False, metadata: dict[str, str] | None = None) -> None:
    from socketcad.geometry import io

    io.write_mesh(mesh, path, ascii_stl=ascii_stl, metadata=metadata)


def _read_aop(path: Path) -> MeshFile:
    """An AOP shape as a mesh; its frame is the anatomical one (z long axis, y anterior)."""
    import numpy as np

    from socketcad.geometry import aop

    shape = aop.read_aop(path)
    distal = float(shape.slice_heights_mm[0])
    return MeshFile(
        aop.aop_to_mesh(shape),
        axes=(np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])),
        side={"RIGHT": "right", "LEFT": "left"}.get(shape.side.upper()),
        levels_mm={lm.name: float(lm.heights_mm[0]) - distal for lm in shape.landmarks if len(lm.heights_mm)},
    )


def _write_aop(mesh, path: Path, *, spokes: int = 72, slice_mm: float = 2.0, side: str = "NONE",
               comments: tuple[str, ...] = (), line_ending: str | None = None) -> None:
    from socketcad.geometry import aop

    shape = aop.mesh_to_aop(mesh, n_spokes=spokes, slice_spacing_mm=slice_mm, side=side, comments=comments)
    aop.write_aop(shape, path, line_ending)


FORMATS: dict[str, FileFormat] = {f.name: f for f in (
    FileFormat("stl", "STL", "stereolithography triangles, binary or ASCII", _read=_read_surface, _write=_write_surface),
    FileFormat("obj", "OBJ", "Wavefront OBJ", _read=_read_surface, _write=_write_surface),
    FileFormat("ply", "PLY", "Stanford polygon file", _read=_read_surface, _write=_write_surface),
    FileFormat("off", "OFF", "Object File Format", _read=_read_surface, _write=_write_surface),
    FileFormat("3mf", "3MF", "3D Manufacturing Format, in millimetres, with metadata",
               _read=_read_surface, _write=_write_surface),
    FileFormat("aop", "AOP", "AAOP cylindrical shape (O&P CAD interchange): the skin only, in the anatomical frame",
               kind="cylindrical", _read=_read_aop, _write=_write_aop),
)}


def format_names(reading: bool | None = None, *, kind: Kind | None = None) -> tuple[str, ...]:
    """Format names (extensions, lower case) in registry order.

    reading: True only those socketcad reads, False only those it writes, None all.
    kind: only 'surface' or only 'cylindrical' formats, if given.
    """
    return tuple(f.name for f in FORMATS.values()
                 if (reading is None or (f.reads if reading else f.writes)) and (kind is None or f.kind == kind))


def formats_help(reading: bool = True, *, kind: Kind | None = None) -> str:
    """The formats read (or, reading=False, written) for help texts: 'STL, OBJ, PLY, OFF, 3MF, AOP'."""
    return ", ".join(FORMATS[name].title for name in format_names(reading, kind=kind))


def get_format(name: str) -> FileFormat:
    """The registered format called ``name`` (case-insensitive, a leading dot allowed); InputError otherwise."""
    key = str(name).lower().lstrip(".")
    if key not in FORMATS:
        raise InputError(f"unknown file format '{name}'; use one of {', '.join(FORMATS)}")
    return FORMATS[key]


def path_format(path: str | Path, reading: bool = True, *, kind: Kind | None = None) -> FileFormat:
    """The format of a path's extension; InputError 'unknown file type' listing the allowed extensions."""
    from socketcad.geometry import io

    return FORMATS[io.file_format(Path(path), format_names(reading, kind=kind))]


def read_mesh_file(path: str | Path) -> MeshFile:
    """Read any registered format, chosen by the path's extension."""
    return path_format(path, reading=True).read(path)


def write_mesh_file(mesh: "trimesh.Trimesh", path: str | Path, **options) -> None:
    """Write any registered format, chosen by the path's extension (options: see FileFormat.write)."""
    path_format(path, reading=False).write(mesh, path, **options)


def sniff_format(data: bytes) -> str | None:
    """The format a file's first bytes show ('stl', 'ply', 'off', '3mf', 'aop', 'obj'), or None when they show
    none. A binary STL is known by its length (84 bytes + 50 per triangle its header counts), so a file of any
    other format whose 80-byte header happens to read as a count is not taken for one."""
    head = data[:512]
    if head.startswith(b"PK\x03\x04"):
        return "3mf"  # a zip: 3MF is the one zipped format
    if head.startswith(b"ply") and head[3:4] in (b"\n", b"\r"):
        return "ply"
    if head.startswith(b"AAOP"):
        return "aop"
    if len(data) >= 84 and 84 + 50 * int.from_bytes(data[80:84], "little") == len(data):
        return "stl"
    text = head.lstrip()
    if text.startswith(b"solid") and b"facet" in data[:4096]:
        return "stl"
    if text.startswith((b"OFF", b"COFF", b"NOFF")):
        return "off"
    lines = [line.strip() for line in data[:4096].splitlines()]
    if any(line.startswith((b"v ", b"f ")) for line in lines) and not any(b"\x00" in line for line in lines):
        return "obj"
    return None
