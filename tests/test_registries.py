"""One registry per concept: socket types (design.socket_types) and mesh file formats (geometry.formats)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest
import trimesh
from pydantic import ValidationError

from socketcad.design import templates, trimline
from socketcad.design.socket import SocketSpec, spec_from_dict
from socketcad.design.socket_types import SOCKET_TYPES, SocketType, socket_type_names, socket_types_help
from socketcad.errors import InputError, every_error
from socketcad.geometry import formats, io


# --- socket types -------------------------------------------------------------------------------

def test_every_socket_type_has_a_template_and_a_trimline_and_nothing_else_has():
    names = tuple(SOCKET_TYPES)
    assert tuple(templates.TEMPLATES) == names
    assert tuple(trimline.DEFAULT_TRIMLINES) == names
    assert trimline.LEVEL_OF == {name: kind.level for name, kind in SOCKET_TYPES.items()}
    for name, (level, build) in templates.TEMPLATES.items():
        assert level == SOCKET_TYPES[name].level
        assert len(trimline.default_trimline(name).points) >= 4
    plan_makers = {obj for _, obj in inspect.getmembers(templates, inspect.isfunction)
                   if obj.__module__ == templates.__name__ and list(inspect.signature(obj).parameters) == ["limb", "inputs"]}
    assert plan_makers == {build for _, build in templates.TEMPLATES.values()}


def test_socket_type_registry_entries():
    assert all(isinstance(kind, SocketType) and kind.name == name for name, kind in SOCKET_TYPES.items())
    assert all(kind.level in ("transtibial", "transfemoral") and kind.title and "\n" not in kind.description
               for kind in SOCKET_TYPES.values())
    assert socket_type_names() == ("ptb", "tsb", "kbm", "ic", "quad", "subischial")
    assert socket_type_names("transtibial") == ("ptb", "tsb", "kbm")
    assert socket_type_names("transfemoral") == ("ic", "quad", "subischial")
    with pytest.raises(ValueError):
        socket_type_names("hip")
    with pytest.raises(Exception):
        SOCKET_TYPES["ptb"].name = "x"  # frozen


def test_socket_types_help_lists_every_name():
    text = socket_types_help()
    assert text == "ptb, tsb, kbm (transtibial); ic, quad, subischial (transfemoral)"
    assert all(name in text for name in SOCKET_TYPES)


def test_an_unknown_socket_type_is_one_line_naming_the_field():
    fields = {"socket_type": "bucket", "liner": "x", "closure": "y", "adapter": "z"}
    with pytest.raises(InputError) as error:
        spec_from_dict(fields)
    message = str(error.value)
    assert message.startswith("socket spec: socket_type: unknown socket type 'bucket'; use one of ")
    assert "\n" not in message and all(name in message for name in SOCKET_TYPES)
    with pytest.raises(ValidationError) as invalid:
        SocketSpec(**fields)
    worded = every_error(invalid.value)
    assert worded.startswith("socket_type: unknown socket type 'bucket'") and "\n" not in worded
    with pytest.raises(InputError, match="socket_type: unknown socket type 3"):
        spec_from_dict(fields | {"socket_type": 3})
    with pytest.raises(InputError, match="socket_type: unknown socket type 'PTB'"):
        spec_from_dict(fields | {"socket_type": "PTB"})  # names are exact, as before


def test_every_registered_socket_type_is_a_valid_spec_and_the_schema_lists_them():
    for name in SOCKET_TYPES:
        assert SocketSpec(socket_type=name, liner="x", closure="y", adapter="z").socket_type == name
    schema = SocketSpec.model_json_schema()["properties"]["socket_type"]
    assert schema["enum"] == list(SOCKET_TYPES) and schema["type"] == "string"


def test_help_registries_import_nothing_heavy():
    code = ("import sys; import socketcad.design.socket_types, socketcad.geometry.formats; "
            "print(sorted(m for m in ('trimesh', 'numpy', 'scipy', 'pydantic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- file formats -------------------------------------------------------------------------------

def test_formats_help_lists_every_name_in_registry_order():
    assert formats.format_names() == ("stl", "obj", "ply", "off", "3mf", "aop")
    assert formats.formats_help() == "STL, OBJ, PLY, OFF, 3MF, AOP"
    assert formats.formats_help(reading=False) == "STL, OBJ, PLY, OFF, 3MF, AOP"
    assert formats.formats_help(kind="surface") == "STL, OBJ, PLY, OFF, 3MF"
    assert all(f.title in formats.formats_help() for f in formats.FORMATS.values() if f.reads)
    assert all(f.title in formats.formats_help(False) for f in formats.FORMATS.values() if f.writes)
    assert io.MESH_FORMATS == formats.format_names(kind="surface")  # derived, one source


@pytest.mark.parametrize("name", [f.name for f in formats.FORMATS.values() if f.writes and f.kind == "surface"])
def test_every_surface_format_reads_back_what_it_writes(tmp_path, name):
    mesh = trimesh.creation.cylinder(radius=40.0, height=100.0, sections=24)
    path = tmp_path / f"limb.{name}"
    formats.FORMATS[name].write(mesh, path)
    back = formats.FORMATS[name].read(path)
    assert back.axes is None and back.side is None and back.levels_mm == {}
    assert len(back.mesh.faces) == len(mesh.faces)
    np.testing.assert_allclose(back.mesh.bounds, mesh.bounds, atol=1e-4)
    assert back.mesh.area == pytest.approx(mesh.area, rel=1e-5)
    again = formats.read_mesh_file(path)  # chosen by extension
    np.testing.assert_array_equal(again.mesh.vertices, back.mesh.vertices)


def test_aop_reads_back_what_it_writes_through_its_entry(tmp_path):
    mesh = trimesh.creation.cylinder(radius=40.0, height=100.0, sections=64)  # z long axis, through x = y = 0
    entry = formats.FORMATS["aop"]
    assert entry.cylindrical and entry.reads and entry.writes
    path = tmp_path / "limb.aop"
    entry.write(mesh, path, spokes=36, slice_mm=5.0, side="LEFT", comments=("registry test",))
    back = entry.read(path)
    assert back.side == "left"
    np.testing.assert_array_equal(back.axes[0], [0, 0, 1])
    np.testing.assert_array_equal(back.axes[1], [0, 1, 0])
    radii = np.linalg.norm(back.mesh.vertices[:, :2], axis=1)
    wall = radii > 1.0  # the distal fan's centre is on the axis
    assert np.all(np.abs(radii[wall] - 40.0) < 0.5)
    assert back.mesh.bounds[0, 2] == pytest.approx(-50.0, abs=5.0) and back.mesh.bounds[1, 2] == pytest.approx(50.0, abs=5.0)
    formats.write_mesh_file(mesh, tmp_path / "again.aop", spokes=36, slice_mm=5.0, side="LEFT", comments=("registry test",))
    assert (tmp_path / "again.aop").read_bytes() == path.read_bytes()


def test_unknown_formats_keep_their_messages(tmp_path):
    with pytest.raises(InputError, match=r"limb\.xyz: unknown file type '\.xyz'; use one of \.stl, \.obj, \.ply, \.off, \.3mf, \.aop"):
        formats.read_mesh_file(tmp_path / "limb.xyz")
    with pytest.raises(InputError, match="unknown file format 'xyz'"):
        formats.get_format("xyz")
    assert formats.get_format(".STL") is formats.FORMATS["stl"]
