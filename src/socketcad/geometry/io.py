"""Read and write triangle meshes: STL (binary and ASCII), OBJ, PLY, OFF, 3MF.

One loader for every format. Everything that can be wrong with a file becomes an
``InputError`` with one line naming the file and the problem; a write never leaves a
half-written file behind (temp file in the same folder, then rename).

Coordinates come back exactly as stored in the file (no unit conversion here, see
``units.py``); vertices are float64 (n, 3), faces int64 (m, 3).
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
import tempfile
import zipfile
from xml.sax.saxutils import escape, quoteattr
from pathlib import Path
from typing import Callable, Iterator

import json

import numpy as np
import trimesh
import yaml

from socketcad.errors import InputError
from socketcad.geometry.formats import format_names

MESH_FORMATS = format_names(kind="surface")  # the formats read and written here (the registry: formats.py)
# A limb scan has 10^4-10^6 triangles; 4 million (a 200 MB binary STL) is the most the capture is meant
# for: clean-up and the frame hold several copies of every array.
MESH_MAX_FACES = 4_000_000
MESH_MIN_FACES = 4  # a tetrahedron: the smallest closed surface
MESH_FILE_MAX_BYTES = 1 << 30

_STL_HEADER_BYTES = 84
_STL_RECORD = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])


def file_format(path: Path, allowed: tuple[str, ...]) -> str:
    """The format named by a path's extension, lower case; InputError if not allowed."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in allowed:
        raise InputError(
            f"{Path(path).name}: unknown file type '.{suffix}'; use one of "
            + ", ".join("." + f for f in allowed)
        )
    return suffix


def read_bytes(path: Path) -> bytes:
    """The whole file, with clear errors for missing, unreadable and empty files."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a mesh file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None
    if not data:
        raise InputError(f"{path.name}: the file is empty; export the mesh again")
    return data


def _check_file_size(path: Path) -> None:
    if path.is_file() and path.stat().st_size > MESH_FILE_MAX_BYTES:
        raise InputError(f"{path.name}: {path.stat().st_size / 2**30:.1f} GiB is over the "
                         f"{MESH_FILE_MAX_BYTES >> 30} GiB limit of a mesh file; decimate the scan first")


def read_mesh(path: Path) -> trimesh.Trimesh:
    """Load a mesh file as one Trimesh (all parts together), in the file's own units.

    Vertices of STL's triangle soup are merged exactly (bit-identical coordinates).
    """
    path = Path(path)
    fmt = file_format(path, MESH_FORMATS)
    _check_file_size(path)
    data = read_bytes(path)
    if fmt == "stl":
        vertices, faces = _parse_stl(data, path.name)
    else:
        vertices, faces = _parse_with_trimesh(data, fmt, path.name)
    return mesh_from_arrays(vertices, faces, path.name)


def mesh_from_arrays(vertices: np.ndarray, faces: np.ndarray, source: str) -> trimesh.Trimesh:
    """A validated Trimesh from (n, 3) vertices and (m, 3) faces; InputError if unusable."""
    vertices, faces = np.asarray(vertices), np.asarray(faces)
    if vertices.size % 3 or (vertices.ndim == 2 and vertices.shape[1] != 3):
        raise InputError(f"{source}: vertices need three coordinates x y z; the file is corrupt or not 3-D")
    if faces.size % 3 or (faces.ndim == 2 and faces.shape[1] != 3):
        raise InputError(f"{source}: faces need three corners; the file is corrupt")
    vertices = vertices.astype(np.float64).reshape(-1, 3)
    faces = faces.astype(np.int64).reshape(-1, 3)
    if len(faces) == 0:
        raise InputError(f"{source}: the mesh has no faces (a point cloud?); export a triangle surface")
    if len(faces) < MESH_MIN_FACES:
        raise InputError(f"{source}: {len(faces)} faces cannot be a limb's surface (at least {MESH_MIN_FACES}); "
                         "export the whole scan")
    if len(faces) > MESH_MAX_FACES:
        raise _too_many_faces(source, len(faces))
    bad = ~np.isfinite(vertices).all(axis=1)
    if bad.any():
        raise InputError(
            f"{source}: {int(bad.sum())} vertices have NaN or infinite coordinates; "
            "repair or re-export the mesh"
        )
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError(f"{source}: faces refer to vertices that do not exist; the file is corrupt")
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False, validate=False)


def _too_many_faces(source: str, count: int) -> InputError:
    return InputError(f"{source}: {count:,} faces is over the {MESH_MAX_FACES:,}-face limit; "
                      "decimate the scan first (1 mm edges on a limb need about 2 x 10^5)")


def _parse_stl(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Binary or ASCII STL to (vertices, faces).

    Binary STL is read with numpy directly: trimesh's loader takes about 3 s for a
    million triangles here, this path about 0.8 s (see benchmarks/bench_capture.py).
    """
    if len(data) >= _STL_HEADER_BYTES:
        n_faces = int(np.frombuffer(data, dtype="<u4", count=1, offset=80)[0])
        expected = _STL_HEADER_BYTES + n_faces * _STL_RECORD.itemsize
        if len(data) >= expected and n_faces > MESH_MAX_FACES and not _looks_ascii(data):
            raise _too_many_faces(source, n_faces)
        # Some exporters pad the end of a binary file; accept trailing bytes, never missing ones.
        if len(data) >= expected and not _looks_ascii(data):
            records = np.frombuffer(data, dtype=_STL_RECORD, count=n_faces, offset=_STL_HEADER_BYTES)
            return merge_vertices(records["corners"].reshape(-1, 3))
    if _looks_ascii(data):
        return _parse_ascii_stl(data, source)
    if _is_text(data):
        raise InputError(f"{source}: not an STL file (plain text without 'solid ... facet'); export the mesh again")
    if len(data) < _STL_HEADER_BYTES:
        raise InputError(f"{source}: too short to be an STL file ({len(data)} bytes); export it again")
    n_faces = int(np.frombuffer(data, dtype="<u4", count=1, offset=80)[0])
    expected = _STL_HEADER_BYTES + n_faces * _STL_RECORD.itemsize
    raise InputError(
        f"{source}: truncated or corrupt binary STL: its header claims {n_faces:,} triangles "
        f"({expected:,} bytes) but the file has {len(data):,} bytes; export it again"
    )


def _looks_ascii(data: bytes) -> bool:
    head = data[:512].lstrip()
    return head[:5].lower() == b"solid" and b"facet" in data[:4096].lower()


def _is_text(data: bytes) -> bool:
    sample = data[:4096]
    return all(byte in b"\t\n\r" or 32 <= byte < 127 for byte in sample)


def _parse_ascii_stl(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        loaded = trimesh.exchange.stl.load_stl_ascii(io.BytesIO(data))
    except Exception as exc:  # trimesh raises several types for malformed text
        raise InputError(f"{source}: not a valid ASCII STL ({_short(exc)}); export it again") from None
    loaded = loaded[0] if isinstance(loaded, list) else loaded
    vertices = np.asarray(loaded.get("vertices", np.empty((0, 3))), dtype=np.float32)
    faces = np.asarray(loaded.get("faces", np.empty((0, 3))), dtype=np.int64)
    if faces.size == 0:
        return vertices.astype(np.float64), faces
    return merge_vertices(vertices[faces].reshape(-1, 3))


def _parse_with_trimesh(data: bytes, fmt: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        loaded = trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh", process=False)
    except Exception as exc:  # trimesh raises many types for malformed files
        raise InputError(f"{source}: not a valid {fmt.upper()} file ({_short(exc)}); export it again") from None
    if not isinstance(loaded, trimesh.Trimesh):
        raise InputError(f"{source}: holds no triangle mesh; export the surface as a mesh")
    return np.asarray(loaded.vertices), np.asarray(loaded.faces)


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:120] if text else type(exc).__name__) or type(exc).__name__


def merge_vertices(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge a triangle soup's bit-identical corners.

    corners: (3m, 3) float32, three per triangle. Returns float64 (n, 3) vertices and
    (m, 3) faces. Exact, and about 4x faster than trimesh's rounding merge: the
    96 bits of a corner are keyed in two 64-bit passes of np.unique.
    """
    corners = np.ascontiguousarray(corners, dtype=np.float32)
    # +0.0 and -0.0 are the same point; make their bits equal before keying.
    with np.errstate(invalid="ignore"):  # NaN corners: mesh_from_arrays names them
        corners = corners + np.float32(0.0)
    bits = corners.view(np.uint32).reshape(-1, 3).astype(np.uint64)
    _, xy_index = np.unique((bits[:, 0] << np.uint64(32)) | bits[:, 1], return_inverse=True)
    key = (xy_index.astype(np.uint64).ravel() << np.uint64(32)) | bits[:, 2]
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return corners[first].astype(np.float64), inverse.reshape(-1, 3).astype(np.int64)


# The written temp files of an all_or_none() block: (temp, target), renamed together at its end.
_PENDING: contextvars.ContextVar[list[tuple[Path, Path]] | None] = contextvars.ContextVar("pending", default=None)


@contextlib.contextmanager
def all_or_none() -> Iterator[None]:
    """Every file written by ``atomic_path`` inside the block appears at its end, or none does.

    Each output is written to a temp file beside it; only when the whole block has succeeded are the
    temps renamed onto their targets, one after another. A command that fails or is killed while it
    writes leaves none of its outputs; only a kill within the microseconds of the renames could.
    """
    if _PENDING.get() is not None:  # nested: the outer block decides
        yield
        return
    pending: list[tuple[Path, Path]] = []
    token = _PENDING.set(pending)
    try:
        yield
        for tmp, path in pending:
            os.replace(tmp, path)
    finally:
        _PENDING.reset(token)
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it onto ``path`` only if the block succeeds
    (inside ``all_or_none``: when that whole block succeeds)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name")
    if not path.parent.exists():
        raise InputError(f"{path}: the folder {path.parent} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    pending = _PENDING.get()
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        if pending is not None:
            pending.append((tmp_path, path))
            return
        os.replace(tmp_path, path)
    finally:
        if pending is None or (tmp_path, path) not in pending:
            tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``path`` only when it succeeded."""
    with atomic_path(path) as tmp:
        write(tmp)


def write_mesh(mesh: trimesh.Trimesh, path: Path, *, ascii_stl: bool = False, metadata: dict[str, str] | None = None) -> None:
    """Write a mesh (coordinates in mm) as STL, OBJ, PLY, OFF or 3MF, atomically.

    3MF files state millimetres as their unit and carry ``metadata`` (3MF names such as
    Title, Designer, Description, Application, CreationDate; others are prefixed socketcad:).
    """
    path = Path(path)
    fmt = file_format(path, MESH_FORMATS)
    file_type = "stl_ascii" if (fmt == "stl" and ascii_stl) else fmt

    def write(tmp: Path) -> None:
        if fmt == "3mf":
            tmp.write_bytes(three_mf_bytes(mesh, metadata or {}))
            return
        payload = mesh.export(file_type=file_type)
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        tmp.write_bytes(payload)

    write_atomic(path, write)


_3MF_NAMES = {"Title", "Designer", "Description", "Copyright", "LicenseTerms", "Rating", "CreationDate",
              "ModificationDate", "Application"}
_3MF_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="model" ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/></Types>')
_3MF_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Target="/3D/3dmodel.model" Id="rel0" '
    'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>')


def three_mf_bytes(mesh: trimesh.Trimesh, metadata: dict[str, str]) -> bytes:
    """A 3MF package (core spec 1.x, unit millimetre) of one mesh with metadata.

    Written here rather than with trimesh's exporter, which has no metadata and stamps
    random UUIDs: the same socket must give the same file, byte for byte.
    """
    entries = []
    for name, value in metadata.items():
        key = name if name in _3MF_NAMES else f"socketcad:{name}"
        entries.append(f"<metadata name={quoteattr(key)}>{escape(str(value))}</metadata>")
    vertices = "".join(f'<vertex x="{x:.6f}" y="{y:.6f}" z="{z:.6f}"/>' for x, y, z in np.asarray(mesh.vertices))
    triangles = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in np.asarray(mesh.faces))
    model = ('<?xml version="1.0" encoding="UTF-8"?>\n'
             '<model unit="millimeter" xml:lang="en-US" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02"'
             ' xmlns:socketcad="https://socketcad.org/3mf/2026">'
             + "".join(entries)
             + f'<resources><object id="1" type="model"><mesh><vertices>{vertices}</vertices>'
             f'<triangles>{triangles}</triangles></mesh></object></resources><build><item objectid="1"/></build></model>')
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("[Content_Types].xml", _3MF_CONTENT_TYPES), ("_rels/.rels", _3MF_RELS),
                           ("3D/3dmodel.model", model)):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))  # fixed: same bytes each time
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
    return buffer.getvalue()


DATA_FORMATS = ("yaml", "yml", "json")
# Limits of a record file (a plan, tape measures, landmarks, a spec, an evaluation): far above any real
# one (a plan is a few KB, 3 levels deep), low enough that a hostile file cannot exhaust memory or time.
DATA_FILE_MAX_BYTES = 4 * 2**20
DATA_MAX_DEPTH = 20  # levels of nested mappings and lists
DATA_MAX_VALUES = 200_000  # scalars, mappings and lists together (YAML aliases can repeat one a billion times)
DATA_MAX_DIGITS = 18  # an integer's digits: int64, and far below Python's 4,300-digit parsing limit


def read_data_file(path: str | Path, what: str) -> object:
    """Parsed YAML or JSON of a small record file (a plan, tape measures, landmarks).

    ``what`` names the record in errors. InputError (one line) for a missing, empty,
    binary, syntactically invalid or oversized file (the limits above); the caller checks
    the content's shape.
    """
    path = Path(path)
    fmt = file_format(path, DATA_FORMATS)
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path.name}: the file is empty; write the {what} into it (see README)")
    if path.is_file() and path.stat().st_size > DATA_FILE_MAX_BYTES:
        raise InputError(f"{path.name}: {path.stat().st_size:,} bytes is over the {DATA_FILE_MAX_BYTES // 2**20} MiB "
                         f"limit of a file of {what}; is it the right file?")
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path.name}: not a text file; {what} are YAML or JSON") from None
    kind = "JSON" if fmt == "json" else "YAML"
    try:
        parsed = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f"line {where.line + 1}: " if where is not None else ""
        reason = getattr(exc, "problem", None) or getattr(exc, "msg", None) or type(exc).__name__
        raise InputError(f"{path.name}: not valid {kind} ({line}{reason}); check the syntax") from None
    except RecursionError:
        raise InputError(f"{path.name}: nested deeper than the {DATA_MAX_DEPTH}-level limit of {what}") from None
    except ValueError:  # Python refuses to parse integers of over 4,300 digits
        raise InputError(f"{path.name}: holds an integer over the {DATA_MAX_DIGITS}-digit limit") from None
    check_data_limits(parsed, path.name, what)
    return parsed


def check_data_limits(data: object, source: str, what: str = "records") -> None:
    """InputError if parsed data nests deeper, holds more values or longer integers than the limits above.

    Iterative (a stack, not recursion), so any depth is checked without a RecursionError.
    """
    stack, values = [(data, 1)], 0
    while stack:
        value, depth = stack.pop()
        values += 1
        if depth > DATA_MAX_DEPTH:
            raise InputError(f"{source}: nested deeper than the {DATA_MAX_DEPTH}-level limit of {what}")
        if values > DATA_MAX_VALUES:
            raise InputError(f"{source}: holds over {DATA_MAX_VALUES:,} values, the limit of {what}; "
                             "is it the right file?")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**DATA_MAX_DIGITS:
            raise InputError(f"{source}: holds an integer over the {DATA_MAX_DIGITS}-digit limit")


def read_mapping_file(path: str | Path, what: str, example: str) -> dict:
    """A record file that must hold a mapping of fields; InputError naming what it holds instead.

    example: how the mapping starts, for the message (e.g. 'socket_type: tsb').
    """
    data = read_data_file(path, what)
    if not isinstance(data, dict):
        name = type(data).__name__
        held = {"NoneType": "nothing", "int": "a number", "float": "a number", "str": "text",
                "bool": "true or false"}.get(name, f"a {name}")
        raise InputError(f"{Path(path).name}: a file of {what} holds a mapping of fields ({example}), "
                         f"not {held}")
    return data
