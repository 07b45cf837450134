"""Property-based tests (hypothesis) of every reader and every data-file model.

The property is the promise of errors.InputError: whatever a file holds, a reader returns a value or
raises InputError (one line, naming the file); never another exception. Examples are derandomized
(the same inputs on every run) and their number is stated per reader in EXAMPLES.
"""

from __future__ import annotations

import io as _io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socketcad.anatomy.landmarks import read_landmark_file
from socketcad.anatomy.limb import CaptureOptions, load_limb
from socketcad.anatomy.samples import SAMPLES
from socketcad.anatomy.tape import parse_tape, read_tape
from socketcad.clinic.records import evaluation_form
from socketcad.design.plan import plan_from_dict, read_plan
from socketcad.design.socket import spec_from_dict
from socketcad.errors import InputError, SocketcadError
from socketcad.geometry import aop, io

# Examples per reader: enough to hit each mutation kind many times, few enough for the suite (~1 min).
EXAMPLES = {"mesh bytes": 150, "mesh limb": 40, "aop": 150, "data file": 200, "model": 200}


def fuzz_settings(kind: str):
    return settings(max_examples=EXAMPLES[kind], derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def refused_or_read(read, *args):
    """Call ``read``; a SocketcadError must be one line; any other exception fails the test."""
    try:
        return read(*args)
    except SocketcadError as exc:
        assert "\n" not in str(exc) and str(exc), repr(exc)
        return None


# ------------------------------------------------------------------ byte mutations of a valid file

@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """``seed`` with a few random edits: byte flips, cuts, repeated or deleted chunks, inserted text."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["flip", "truncate", "repeat", "delete", "insert"]))
        if edit == "flip":
            data[at] = draw(st.integers(0, 255))
        elif edit == "truncate":
            del data[at:]
        elif edit == "repeat":
            size = draw(st.integers(1, 400))
            data[at:at] = data[at:at + size] * draw(st.integers(1, 5))
        elif edit == "delete":
            del data[at:at + draw(st.integers(1, 400))]
        else:
            data[at:at] = draw(st.sampled_from([b"nan", b"inf", b"-1e308", b"1e308", b"9" * 400, b"\x00",
                                                b"\x1b[31m", b" ", b"\n", b"-", b"facet", b"f 1 2", b"v 1"]))
    return bytes(data)


def limb_like_mesh() -> trimesh.Trimesh:
    """A small residual-limb-shaped surface: a capsule 300 mm long, 100 mm across (about 1,300 faces)."""
    return trimesh.creation.capsule(height=200.0, radius=50.0, count=[24, 24])


def seed_files(folder: Path) -> dict[str, Path]:
    mesh = limb_like_mesh()
    paths = {}
    for fmt, file_type in (("stl", "stl"), ("stl-ascii", "stl_ascii"), ("obj", "obj"), ("ply", "ply"),
                           ("off", "off")):
        path = folder / f"seed-{fmt}.{fmt.split('-')[0]}"
        payload = mesh.export(file_type=file_type)
        path.write_bytes(payload.encode() if isinstance(payload, str) else payload)
        paths[fmt] = path
    paths["3mf"] = folder / "seed.3mf"
    paths["3mf"].write_bytes(io.three_mf_bytes(mesh, {}))
    return paths


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("seeds")
    return {kind: path.read_bytes() for kind, path in seed_files(folder).items()}


MESH_KINDS = ("stl", "stl-ascii", "obj", "ply", "off", "3mf")


@pytest.mark.parametrize("kind", MESH_KINDS)
def test_mesh_reader_reads_or_refuses_mutated_files(kind, seeds, tmp_path):
    path = tmp_path / f"x.{kind.split('-')[0]}"

    @fuzz_settings("mesh bytes")
    @given(data=st.data())
    def check(data):
        path.write_bytes(data.draw(mutated(seeds[kind])))
        mesh = refused_or_read(io.read_mesh, path)
        if mesh is not None:
            assert mesh.vertices.shape[1] == 3 and np.isfinite(mesh.vertices).all()
            assert mesh.faces.min() >= 0 and mesh.faces.max() < len(mesh.vertices)

    check()


@st.composite
def edited_mesh(draw, mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """``mesh`` with a few shape edits that a reader passes but the capture must survive or refuse."""
    vertices, faces = mesh.vertices.copy(), mesh.faces.copy()
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(st.sampled_from(["drop", "duplicate", "move", "scale", "thin", "loose", "flip", "weld"]))
        if edit == "drop":
            faces = faces[rng.random(len(faces)) > draw(st.floats(0.01, 0.99))]
        elif edit == "duplicate":
            faces = np.vstack([faces, faces[rng.random(len(faces)) < 0.5]])
        elif edit == "move":
            chosen = rng.random(len(vertices)) < draw(st.floats(0.001, 0.5))
            vertices[chosen] += rng.normal(size=(int(chosen.sum()), 3)) * 10.0 ** draw(st.integers(0, 9))
        elif edit == "scale":
            vertices *= 10.0 ** draw(st.floats(-3, 3))
        elif edit == "thin":
            vertices[:, draw(st.integers(0, 2))] *= 10.0 ** draw(st.floats(-9, -1))
        elif edit == "loose":
            count = draw(st.integers(1, 12_000))
            loose = rng.random((3 * count, 3)) * 300.0
            faces = np.vstack([faces, len(vertices) + np.arange(3 * count).reshape(-1, 3)])
            vertices = np.vstack([vertices, loose])
        elif edit == "flip":
            chosen = rng.random(len(faces)) < draw(st.floats(0.01, 1.0))
            faces[chosen] = faces[chosen][:, ::-1]
        else:
            chosen = rng.integers(0, len(vertices), size=draw(st.integers(1, 200)))
            vertices[chosen] = vertices[chosen[0]]
    return trimesh.Trimesh(vertices, faces.reshape(-1, 3), process=False, validate=False)


@pytest.mark.parametrize("kind", ("stl", "obj", "ply"))
def test_limb_capture_reads_or_refuses_edited_meshes(kind, tmp_path):
    """The whole capture (units, clean-up, frame, plausibility) on meshes with holes, debris, folds..."""
    path = tmp_path / f"x.{kind}"
    write(limb_like_mesh(), path)
    assert load_limb(path, CaptureOptions(units="mm")).skin.is_watertight  # the seed is a limb
    outcomes = []

    @fuzz_settings("mesh limb")
    @given(mesh=edited_mesh(limb_like_mesh()), force=st.booleans())
    def check(mesh, force):
        if len(mesh.faces) == 0:
            return
        write(mesh, path)
        outcomes.append(refused_or_read(load_limb, path, CaptureOptions(force=force)) is not None)

    check()
    assert any(outcomes) and not all(outcomes), outcomes  # the edits both pass and fail the capture


def test_aop_reader_reads_or_refuses_mutated_files(tmp_path):
    seed = SAMPLES["ampscan-example-aop"].path.read_bytes()
    path = tmp_path / "x.aop"

    @fuzz_settings("aop")
    @given(data=st.data())
    def check(data):
        path.write_bytes(data.draw(mutated(seed)))
        refused_or_read(aop.read_aop, path)

    check()


# ------------------------------------------------------------------ data files and their models

scalars = (st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats(allow_nan=True)
           | st.text(max_size=20) | st.sampled_from(["push", "relief", "tsb", "K3", "transtibial", "left", "mpt"]))
plain_data = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                          | st.dictionaries(st.text(max_size=12) | st.sampled_from(
                              ["schema_version", "modifications", "kind", "region", "landmark", "depth_mm",
                               "socket_type", "liner", "trim_offsets_mm", "k_level", "circumferences_mm"]),
                              inner, max_size=6), max_leaves=30)


def valid_plan() -> dict:
    return {"schema_version": 1, "name": "fuzz", "modifications": [
        {"kind": "push", "region": {"landmark": "mpt", "width_mm": 40, "height_mm": 30}, "depth_mm": 4},
        {"kind": "reduction", "profile": [{"level_pct": 0, "reduction_pct": 3}, {"level_pct": 100, "reduction_pct": 5}]}]}


def valid_spec() -> dict:
    return {"socket_type": "tsb", "liner": "silicone_locking_6", "closure": "pin_lock_icelock", "adapter": "lock_housing_4h",
            "trim_offsets_mm": {"posterior": -5.0}}


def valid_tape() -> dict:
    return yaml.safe_load(SAMPLES["ampscan-tt-tape"].path.read_text())


@st.composite
def edited(draw, record: dict):
    """``record`` with one field (at any depth) replaced by arbitrary data."""
    record = json.loads(json.dumps(record))
    node = record
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        if not isinstance(node[key], (dict, list)) or draw(st.booleans()):
            node[key] = draw(plain_data)
            break
        node = node[key]
    return record


MODELS = {
    "plan": (plan_from_dict, valid_plan),
    "spec": (spec_from_dict, valid_spec),
    "tape": (parse_tape, valid_tape),
    "evaluation": (lambda data: evaluation_form(data, "transtibial"), lambda: {"k_level": "K3", "strength_mrc": {"knee": 4}}),
}


@pytest.mark.parametrize("name", MODELS)
def test_models_validate_or_refuse_arbitrary_data(name):
    parse, valid = MODELS[name]
    assert parse(valid()) is not None  # the seed itself is valid: the edits below are what is tested

    @fuzz_settings("model")
    @given(data=st.one_of(plain_data, edited(valid())))
    def check(data):
        refused_or_read(parse, data)

    check()


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("suffix", ("yaml", "json"))
def test_data_files_read_or_refuse_mutated_text(suffix, tmp_path):
    seed = (yaml.safe_dump(valid_plan()) if suffix == "yaml" else json.dumps(valid_plan())).encode()
    path = tmp_path / f"plan.{suffix}"

    @fuzz_settings("data file")
    @given(data=st.data())
    def check(data):
        path.write_bytes(data.draw(mutated(seed)))
        refused_or_read(read_plan, path)
        refused_or_read(read_landmark_file, path)
        refused_or_read(read_tape, path)

    check()


@pytest.mark.parametrize("text, says", [
    ("[" * 5000 + "]" * 5000, "nested deeper than the 20-level limit"),
    (json.dumps(nested(30)), "nested deeper than the 20-level limit"),
    ('{"schema_version": ' + "9" * 5000 + "}", "integer over the 18-digit limit"),
    ('{"schema_version": ' + "9" * 19 + "}", "integer over the 18-digit limit"),
])
def test_deep_and_huge_json_is_refused_by_its_limit(text, says, tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(text)
    with pytest.raises(InputError, match=says):
        read_plan(path)


def test_yaml_nesting_and_alias_bombs_are_refused(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("a: " + "[" * 600 + "]" * 600)
    with pytest.raises(InputError, match="nested deeper"):
        read_plan(path)
    # Nine levels of ten aliases each: 10^9 values when walked, a few hundred bytes on disk.
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path.write_text("\n".join(lines))
    with pytest.raises(InputError, match="over 200,000 values"):
        read_plan(path)


@pytest.mark.parametrize("held, says", [("null", "not nothing"), ("[1, 2]", "not a list"), ("5", "not a number"),
                                        ("2026-01-01", "not a date"), ("!!set {a: null}", "not a set")])
def test_a_spec_that_is_not_a_mapping_says_what_it_holds(held, says, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(held)
    with pytest.raises(InputError, match=says):
        io.read_mapping_file(path, "socket spec", "socket_type: tsb")


@pytest.mark.parametrize("offset", [float("nan"), 1e308, -1e308, 151.0])
def test_trim_offsets_out_of_range_are_refused(offset):
    with pytest.raises(InputError, match="trim_offsets_mm"):
        spec_from_dict({**valid_spec(), "trim_offsets_mm": {"posterior": offset}})


def test_plans_and_profiles_have_a_size_limit():
    push = valid_plan()["modifications"][0]
    with pytest.raises(InputError, match="modifications: List should have at most 100 items"):
        plan_from_dict({"schema_version": 1, "modifications": [push] * 5000})
    profile = [{"level_pct": i / 1000, "reduction_pct": 1} for i in range(100_000)]
    with pytest.raises(InputError, match="profile: List should have at most 50 items"):
        plan_from_dict({"schema_version": 1, "modifications": [{"kind": "reduction", "profile": profile}]})


@pytest.mark.parametrize("point", [[0, 0, -9223372036854775809], [1e308, 0, 0], [0, 0, 2001]])
def test_landmarks_far_outside_the_frame_are_refused(point, tmp_path):
    path = tmp_path / "marks.yaml"
    path.write_text(yaml.safe_dump({"mpt": point}))
    with pytest.raises(InputError, match=r"within \+/-2000|over the 18-digit limit"):
        read_landmark_file(path)


def test_a_landmark_off_the_skin_is_refused():
    from socketcad.anatomy.landmarks import locate_landmarks

    limb = load_limb("sample:openlimb-tt-mean")
    with pytest.raises(InputError, match="mm off the skin"):
        locate_landmarks(limb, {"mpt": [0, 0, 1500]})


# ------------------------------------------------------------------ shapes that are no limb surface

def write(mesh: trimesh.Trimesh, path: Path, file_type: str | None = None) -> Path:
    payload = mesh.export(file_type=file_type or path.suffix[1:])
    path.write_bytes(payload.encode() if isinstance(payload, str) else payload)
    return path


def test_shapes_that_are_no_surface_are_refused_in_one_line(tmp_path):
    capsule = limb_like_mesh()
    flat = trimesh.Trimesh(capsule.vertices * [1, 1, 0], capsule.faces, process=False)
    rng = np.random.default_rng(7)
    loose = trimesh.Trimesh(rng.random((30_000, 3)).repeat(3, axis=0).reshape(-1, 3) * 200
                            + rng.random((90_000, 3)), np.arange(90_000).reshape(-1, 3), process=False)
    far = trimesh.Trimesh(capsule.vertices + [1e9, 0, 0], capsule.faces, process=False)
    cases = {
        "one face": (write(trimesh.Trimesh(capsule.vertices[:3], [[0, 1, 2]]), tmp_path / "one.stl"), "at least 4"),
        "flat": (write(flat, tmp_path / "flat.stl"), "the shape is flat"),
        "loose triangles": (write(loose, tmp_path / "loose.ply"), "30,000 separate pieces"),
        "offset by 1e9": (write(far, tmp_path / "far.stl", "stl_ascii"), "reaches 1.0e\\+09 mm from the origin"),
    }
    (tmp_path / "v2.obj").write_text("v 0 0\nv 1 0\nv 0 1\n" + "f 1 2 3\n" * 30)
    cases["two coordinates"] = (tmp_path / "v2.obj", "three coordinates")
    for name, (path, says) in cases.items():
        with pytest.raises(InputError, match=says) as caught:
            load_limb(path, CaptureOptions(units="mm", force=True))
        assert path.name in str(caught.value) and "\n" not in str(caught.value), name
