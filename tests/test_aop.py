"""AOP (AAOP cylindrical shape) files: parsing, writing, errors, and mesh conversion."""

from __future__ import annotations

import errno
import re
import time
from pathlib import Path

import gpytoolbox
import numpy as np
import pytest
import trimesh

import socketcad.anatomy
from socketcad.errors import GeometryError, InputError
from socketcad.geometry.aop import (
    AopLandmark,
    AopShape,
    aop_to_mesh,
    format_aop,
    mesh_to_aop,
    parse_aop,
    read_aop,
    write_aop,
)

SAMPLES = Path(socketcad.anatomy.__file__).parent / "samples"
EXAMPLE = SAMPLES / "ampscan-example.aop"
SCAN = SAMPLES / "ampscan-tt-scan.stl"
ENDINGS = {"CR": "\r", "LF": "\n", "CRLF": "\r\n"}


@pytest.fixture(scope="module")
def example() -> AopShape:
    return read_aop(EXAMPLE)


def example_lines() -> list[str]:
    """The example file's lines, without the empty one after the last line break."""
    lines = re.split(r"\r\n|\r|\n", EXAMPLE.read_bytes().decode("latin-1"))
    return lines[:-1] if lines[-1] == "" else lines


def assert_same_shape(a: AopShape, b: AopShape, atol: float = 1e-3) -> None:
    assert a.side == b.side
    assert a.comments == b.comments
    assert a.landmarks == b.landmarks
    np.testing.assert_allclose(a.spoke_angles_deg, b.spoke_angles_deg, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.slice_heights_mm, b.slice_heights_mm, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.radii_mm, b.radii_mm, rtol=0, atol=atol)


def cylinder_shape(radius: float, angles_deg, heights_mm) -> AopShape:
    angles, heights = np.asarray(angles_deg, float), np.asarray(heights_mm, float)
    return AopShape("NONE", angles, heights, np.full((len(heights), len(angles)), radius))


# ------------------------------------------------------------------------- parsing


def test_example_counts_side_and_landmarks(example):
    assert (example.n_spokes, example.n_slices, example.radii_mm.size) == (72, 68, 4896)
    assert example.side == "RIGHT"
    assert [lm.name for lm in example.landmarks] == ["TIB", "MPT", "TE"]
    mpt = example.landmarks[1]
    assert mpt.heights_mm == (127.48,)
    assert len(example.landmarks[0].values) == 2
    # The second 'AAOP1' is a comment; the example ends its lines with CR.
    assert example.comments == ("AAOP1", "Example AOP File")
    assert example.line_ending == "\r"
    np.testing.assert_allclose(example.spoke_angles_deg, np.arange(72) * 5.0)
    assert example.slice_heights_mm[0] == 0 and example.slice_heights_mm[-1] == 201


def test_example_radii_are_slice_by_slice_distal_first(example):
    lines = example_lines()
    raw = np.array(lines[-example.radii_mm.size :], dtype=float)
    np.testing.assert_array_equal(example.radii_mm, raw.reshape(example.n_slices, example.n_spokes))


def test_spoke_zero_is_anterior_patellar_tendon_dip_at_mpt_height(example):
    """The PTB dip on spoke 0 lies at the MPT landmark's height (third value)."""
    heights = example.slice_heights_mm
    mpt_height = example.landmarks[1].heights_mm[0]
    window = (heights > mpt_height - 25) & (heights < mpt_height + 25)
    dip = heights[window][np.argmin(example.radii_mm[window, 0])]
    assert abs(dip - mpt_height) <= 3.0, f"radius dip of spoke 0 at {dip} mm, MPT at {mpt_height} mm"


def test_regular_slice_spacing_is_read():
    text = "\n".join(["AAOP1", "END COMMENTS", "CYLINDRICAL", "LEFT", "0", "4", "90", "3", "2.5"])
    text += "\n" + "\n".join(str(10 + i) for i in range(12)) + "\n"
    shape = parse_aop(text)
    np.testing.assert_allclose(shape.slice_heights_mm, [0, 2.5, 5.0])
    np.testing.assert_allclose(shape.spoke_angles_deg, [0, 90, 180, 270])
    np.testing.assert_allclose(shape.radii_mm, np.arange(10, 22).reshape(3, 4))
    assert (shape.side, shape.landmarks, shape.comments, shape.line_ending) == ("LEFT", (), (), "\n")


# ------------------------------------------------------------------ writing, round trip


@pytest.mark.parametrize("name", ["CR", "LF", "CRLF"])
def test_round_trip_with_each_line_ending(example, tmp_path, name):
    ending = ENDINGS[name]
    path = tmp_path / "round.aop"
    write_aop(example, path, line_ending=name)
    data = path.read_bytes()
    breaks = len(re.findall(rb"\r\n|\r|\n", data))
    assert data.count(ending.encode()) == breaks > 4896
    assert data.endswith(ending.encode())
    again = read_aop(path)
    assert again.line_ending == ending
    assert_same_shape(again, example)
    assert parse_aop(format_aop(example, ending)).line_ending == ending


def test_default_line_ending_is_the_one_read_else_crlf(example):
    assert "\n" not in format_aop(example)  # read with CR, written with CR
    made = cylinder_shape(40.0, [0, 120, 240], [0, 5])
    text = format_aop(made)
    assert text.count("\r\n") == text.count("\n") == text.count("\r") > 0


def test_regular_spokes_are_written_as_a_spacing(example):
    lines = format_aop(example, "\n").split("\n")
    at = lines.index(str(example.n_spokes))
    assert lines[at + 1] == "5"
    assert lines[at + 2] == str(example.n_slices)


def test_irregular_spoke_angles_are_written_explicitly_and_round_trip():
    angles = [10.0, 55.5, 100.0, 181.25, 250.0, 300.0]
    heights = [3.0, 7.5, 20.0]
    rng = np.random.default_rng(1)
    radii = rng.uniform(20, 60, size=(len(heights), len(angles)))
    landmarks = (AopLandmark("FH", ((1.5, -2.25, 7.5),)),)
    shape = AopShape("LEFT", angles, heights, radii, landmarks, ("made by a test",))
    text = format_aop(shape, "LF")
    lines = text.split("\n")
    at = lines.index(str(len(angles)))
    assert lines[at + 1] == "0"
    assert [float(v) for v in lines[at + 2 : at + 2 + len(angles)]] == angles
    assert_same_shape(parse_aop(text), shape)


def test_format_reproduces_the_example_text_except_name_padding(example):
    original = example_lines()
    written = format_aop(example).split("\r")[:-1]
    assert len(written) == len(original)
    differing = [(a, b) for a, b in zip(original, written) if a != b]
    assert all(a.strip() == b for a, b in differing), differing[:5]


# ---------------------------------------------------------------------- bad input


def _spokes_at(lines: list[str]) -> int:
    """Index of the number-of-spokes line (the first count followed by a spacing)."""
    end = lines.index("CYLINDRICAL")
    return next(i for i in range(end, len(lines)) if lines[i] == "72" and lines[i + 1] == "5")


def _case(lines, index, new=None, delete=False, insert=None):
    lines = list(lines)
    if delete:
        del lines[index]
    elif insert is not None:
        lines.insert(index, insert)
    else:
        lines[index] = new
    return lines


def _bad_cases():
    """name -> (lines of a broken file, 1-based line the error must name, fragment)."""
    lines = example_lines()
    n = len(lines)
    spokes = _spokes_at(lines)
    first_height = spokes + 4
    first_radius = n - 4896
    comment_end = lines.index("END COMMENTS")
    cyl = lines.index("CYLINDRICAL")
    tib_count = lines.index("TIB ") + 1
    cases = {
        "not AAOP1": (_case(lines, 0, "SOLID"), 1, "AAOP1"),
        "no END COMMENTS": (_case(lines, comment_end, delete=True), 2, "END COMMENTS"),
        "not CYLINDRICAL": (_case(lines, cyl, "SPHERICAL"), cyl + 1, "CYLINDRICAL"),
        "unknown side": (_case(lines, cyl + 1, "UP"), cyl + 2, "side"),
        "landmark count not a number": (_case(lines, cyl + 2, "three"), cyl + 3, "landmarks"),
        "wrong landmark point count": (_case(lines, tib_count, "3"), tib_count + 8, "point count"),
        "zero spokes": (_case(lines, spokes, "0"), spokes + 1, "spokes"),
        "negative spoke spacing": (_case(lines, spokes + 1, "-5"), spokes + 2, "spacing"),
        "spokes not a full turn": (_case(lines, spokes + 1, "4"), spokes + 2, "full turn"),
        "negative slice count": (_case(lines, spokes + 2, "-68"), spokes + 3, "slices"),
        "negative slice spacing": (_case(lines, spokes + 3, "-3"), spokes + 4, "spacing"),
        "height not a number": (_case(lines, first_height + 5, "12,5"), first_height + 6, "height"),
        "heights not increasing": (
            _case(lines, first_height + 10, lines[first_height + 8]),
            first_height + 11,
            "increase",
        ),
        "a height missing": (
            _case(lines, first_height + 3, delete=True),
            first_radius,
            "slice heights",
        ),
        "radius not a number": (_case(lines, first_radius + 100, "abc"), first_radius + 101, "radius"),
        "radius empty": (_case(lines, first_radius + 100, ""), first_radius + 101, "empty line"),
        "radius negative": (_case(lines, first_radius + 7, "-1.5"), first_radius + 8, "negative"),
        "radius not finite": (_case(lines, first_radius + 7, "nan"), first_radius + 8, "finite"),
        "a radius missing": (_case(lines, first_radius + 1000, delete=True), n, "found 4895"),
        "extra number at the end": (_case(lines, n, insert="12.5"), n + 1, "extra"),
        "truncated header": (lines[: spokes + 1], spokes + 2, "end of the file"),
    }
    return cases


BAD_CASES = _bad_cases()


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_malformed_input_names_file_and_line(name):
    lines, line_no, fragment = BAD_CASES[name]
    with pytest.raises(InputError) as caught:
        parse_aop("\r".join(lines) + "\r", source="scan.aop")
    message = str(caught.value)
    assert message.startswith(f"scan.aop line {line_no}: "), message
    assert fragment in message, message
    assert "\n" not in message and "\r" not in message


def test_missing_radius_message_gives_the_counts():
    lines, line_no, _ = BAD_CASES["a radius missing"]
    with pytest.raises(InputError, match=r"expected 4896 radii \(68 slices x 72 spokes\), found 4895"):
        parse_aop("\n".join(lines), source="scan.aop")


def test_explicit_angles_errors():
    head = ["AAOP1", "END COMMENTS", "CYLINDRICAL", "NONE", "0", "4", "0"]
    tail = ["1", "0", "5", "10", "10", "10", "10"]
    with pytest.raises(InputError, match=r"^x.aop line 10: .*increase"):
        parse_aop("\n".join(head + ["0", "90", "90", "270"] + tail), "x.aop")
    with pytest.raises(InputError, match=r"^x.aop line 11: .*less than 360"):
        parse_aop("\n".join(head + ["0", "90", "180", "360"] + tail), "x.aop")
    # One angle short: the slice count is taken as the 4th angle and is out of order.
    with pytest.raises(InputError, match=r"^x.aop line 11: .*spoke angles"):
        parse_aop("\n".join(head + ["0", "90", "180"] + tail), "x.aop")


def test_empty_file_and_missing_file(tmp_path):
    empty = tmp_path / "empty.aop"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"^empty.aop line 1: "):
        read_aop(empty)
    with pytest.raises(InputError, match="no such file"):
        read_aop(tmp_path / "absent.aop")


def test_read_names_the_file(tmp_path):
    lines, line_no, _ = BAD_CASES["radius negative"]
    path = tmp_path / "patient.aop"
    path.write_bytes("\r\n".join(lines).encode())
    with pytest.raises(InputError, match=rf"^patient.aop line {line_no}: "):
        read_aop(path)


def test_failed_write_leaves_nothing_behind(example, tmp_path, monkeypatch):
    def half_then_disk_full(self, data):
        with open(self, "wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_disk_full)
    with pytest.raises(InputError, match="cannot be written"):
        write_aop(example, tmp_path / "out.aop")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_file(example, tmp_path, monkeypatch):
    target = tmp_path / "out.aop"
    target.write_bytes(b"previous")

    def fail(*args, **kwargs):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(InputError):
        write_aop(example, target)
    assert target.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [target]


def test_write_into_missing_folder_is_an_input_error(example, tmp_path):
    with pytest.raises(InputError):
        write_aop(example, tmp_path / "nope" / "out.aop")


def test_shape_validation():
    with pytest.raises(InputError, match="shape"):
        AopShape("NONE", [0, 120, 240], [0, 1], np.ones((2, 2)))
    with pytest.raises(InputError, match="side"):
        AopShape("UP", [0, 120, 240], [0], np.ones((1, 3)))
    with pytest.raises(InputError, match=">= 0"):
        AopShape("NONE", [0, 120, 240], [0], -np.ones((1, 3)))
    with pytest.raises(InputError, match="increase"):
        AopShape("NONE", [0, 120, 240], [1, 0], np.ones((2, 3)))


# -------------------------------------------------------------------- AOP -> mesh


def test_mesh_follows_the_angle_convention():
    shape = cylinder_shape(10.0, [0, 90, 180, 270], [0, 4])
    mesh = aop_to_mesh(shape)
    vertices = np.asarray(mesh.vertices)
    np.testing.assert_allclose(vertices[0], [0, 10, 0], atol=1e-12)  # spoke 0: anterior +y
    np.testing.assert_allclose(vertices[1], [-10, 0, 0], atol=1e-12)  # 90 deg: -x
    np.testing.assert_allclose(vertices[4 + 3], [10, 0, 4], atol=1e-12)  # slice 1, 270 deg
    np.testing.assert_allclose(vertices[-1], [0, 0, 0])  # distal centre


def test_mesh_is_closed_distally_open_at_the_brim_and_faces_outward(example):
    mesh = aop_to_mesh(example)
    n = example.n_spokes
    assert len(mesh.vertices) == example.radii_mm.size + 1
    assert len(mesh.faces) == 2 * (example.n_slices - 1) * n + n
    # The only open edges are the top ring's.
    edges = np.sort(mesh.edges, axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    open_edges = np.unique(edges, axis=0)[counts == 1]
    top = set(range((example.n_slices - 1) * n, example.n_slices * n))
    assert len(open_edges) == n and set(open_edges.ravel()) == top
    capped = _capped(mesh, example)
    assert capped.is_watertight and capped.is_winding_consistent
    assert capped.volume > 0


def test_cylinder_mesh_volume_matches_prism():
    n, radius, height = 24, 30.0, 50.0
    shape = cylinder_shape(radius, np.arange(n) * 360.0 / n, [0, 10, height])
    volume = _capped(aop_to_mesh(shape), shape).volume
    expected = 0.5 * n * radius**2 * np.sin(2 * np.pi / n) * height
    assert volume == pytest.approx(expected, rel=1e-9)


def _capped(mesh: trimesh.Trimesh, shape: AopShape) -> trimesh.Trimesh:
    """The AOP mesh with its brim closed by a fan to the top centre, facing +z."""
    n, top = shape.n_spokes, (shape.n_slices - 1) * shape.n_spokes
    centre = len(mesh.vertices)
    j = np.arange(n)
    lid = np.column_stack([np.full(n, centre), top + j, top + (j + 1) % n])
    vertices = np.vstack([mesh.vertices, [0, 0, shape.slice_heights_mm[-1]]])
    return trimesh.Trimesh(vertices, np.vstack([mesh.faces, lid]), process=False)


# -------------------------------------------------------------------- mesh -> AOP


def test_example_through_mesh_and_back_keeps_radii(example):
    mesh = aop_to_mesh(example)
    again = mesh_to_aop(mesh, n_spokes=example.n_spokes, slice_heights_mm=example.slice_heights_mm)
    change = np.abs(again.radii_mm - example.radii_mm)
    report = f"radius change mean {change.mean():.2e} mm, max {change.max():.2e} mm"
    assert change.mean() < 0.05, report
    assert change.max() < 0.05, report
    print(report)


def test_irregular_spokes_through_mesh_and_back():
    angles = np.array([0.0, 40.0, 95.0, 150.0, 200.0, 260.0, 330.0])
    heights = np.array([0.0, 4.0, 9.0, 15.0])
    radii = 30 + 5 * np.sin(np.radians(angles))[None] + heights[:, None]
    shape = AopShape("NONE", angles, heights, radii)
    again = mesh_to_aop(aop_to_mesh(shape), spoke_angles_deg=angles, slice_heights_mm=heights)
    np.testing.assert_allclose(again.radii_mm, radii, atol=1e-4)


def capsule(radius: float = 50.0, length: float = 200.0) -> trimesh.Trimesh:
    """Cylinder with a hemispherical distal end on the z axis, tip at z = 0, open top."""
    mesh = trimesh.creation.capsule(height=length, radius=radius, count=[256, 128])
    mesh.apply_translation([0, 0, -mesh.bounds[0, 2]])
    below_top = mesh.triangles_center[:, 2] < radius + length
    return trimesh.Trimesh(mesh.vertices, mesh.faces[below_top], process=False)


def test_capsule_radii_and_default_slices():
    radius, length = 50.0, 200.0
    shape = mesh_to_aop(capsule(radius, length))
    heights = shape.slice_heights_mm
    np.testing.assert_allclose(np.diff(heights), 2.0)
    assert heights[0] < 2.0 and heights[-1] > radius + length - 2.0
    cylinder = heights >= radius
    error = np.abs(shape.radii_mm[cylinder] - radius)
    assert error.max() < 0.05, f"cylinder radius off by up to {error.max():.4f} mm"
    dome = heights < radius
    expected = np.sqrt(radius**2 - (radius - heights[dome]) ** 2)
    assert np.abs(shape.radii_mm[dome] - expected[:, None]).max() < 0.05


def test_farthest_hit_is_taken():
    outer = trimesh.creation.cylinder(radius=50, height=100, sections=144)
    inner = trimesh.creation.cylinder(radius=30, height=100, sections=144)
    both = trimesh.util.concatenate([outer, inner])
    both.apply_translation([0, 0, 50])
    shape = mesh_to_aop(both, slice_heights_mm=[10, 50, 90])
    assert np.abs(shape.radii_mm - 50).max() < 0.05


def test_missed_spoke_raises_geometry_error():
    mesh = capsule()
    with pytest.raises(GeometryError, match="misses"):
        mesh_to_aop(mesh, slice_heights_mm=[10, 400])
    off_axis = mesh.copy()
    off_axis.apply_translation([80, 0, 0])
    with pytest.raises(GeometryError):
        mesh_to_aop(off_axis)


def test_mesh_to_aop_is_fast_on_a_million_triangles():
    mesh = trimesh.creation.capsule(height=250, radius=50, count=[1024, 512])
    mesh.apply_translation([0, 0, -mesh.bounds[0, 2]])
    assert len(mesh.faces) >= 1_000_000
    start = time.perf_counter()
    shape = mesh_to_aop(mesh)
    seconds = time.perf_counter() - start
    assert seconds < 2.0, f"mesh_to_aop took {seconds:.2f} s on {len(mesh.faces):,} triangles"
    cylinder = (shape.slice_heights_mm >= 50) & (shape.slice_heights_mm <= 300)
    assert np.abs(shape.radii_mm[cylinder] - 50).max() < 0.01


# ------------------------------------------------------------ scan -> AOP -> mesh


def pca_aligned(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Long axis (first principal direction of the surface) on z, brim up, axis
    through the area centroid, distal end at z = 0."""
    areas = mesh.area_faces
    centroid = areas @ mesh.triangles_center / areas.sum()
    spread = (mesh.triangles_center - centroid) * np.sqrt(areas)[:, None]
    axes = np.linalg.svd(spread, full_matrices=False)[2]
    open_edges = trimesh.grouping.group_rows(mesh.edges_sorted, require_count=1)
    brim = mesh.vertices[mesh.edges[open_edges].ravel()].mean(axis=0)
    z = axes[0] if np.dot(brim - centroid, axes[0]) > 0 else -axes[0]
    x = axes[1]
    rotation = np.vstack([x, np.cross(z, x), z])
    vertices = (mesh.vertices - centroid) @ rotation.T
    vertices[:, 2] -= vertices[:, 2].min()
    return trimesh.Trimesh(vertices, mesh.faces, process=False)


def assert_aop_follows_scan(skin: trimesh.Trimesh) -> None:
    """Scan -> AOP (defaults) -> mesh: mean distance of scan vertices to it < 0.25 mm."""
    start = time.perf_counter()
    shape = mesh_to_aop(skin)
    seconds = time.perf_counter() - start
    rebuilt = aop_to_mesh(shape)
    # Above the top slice (the band under the brim) the AOP holds nothing to compare.
    vertices = np.asarray(skin.vertices)
    kept = vertices[vertices[:, 2] <= shape.slice_heights_mm[-1]]
    assert len(kept) > 0.9 * len(vertices)
    squared = gpytoolbox.squared_distance(kept, rebuilt.vertices, rebuilt.faces, use_cpp=True)[0]
    distance = np.sqrt(squared)
    report = (
        f"scan -> AOP -> mesh: mean {distance.mean():.3f} mm, max {distance.max():.3f} mm over "
        f"{len(kept)} of {len(vertices)} vertices; {shape.n_slices} slices from "
        f"{shape.slice_heights_mm[0]:.2f} to {shape.slice_heights_mm[-1]:.2f} mm; "
        f"mesh_to_aop {seconds * 1000:.0f} ms"
    )
    assert distance.mean() < 0.25, report
    print(report)


def test_ampscan_scan_aligned_here_round_trips_within_a_quarter_mm():
    assert_aop_follows_scan(pca_aligned(trimesh.load(SCAN, force="mesh")))


def test_ampscan_limb_via_load_limb_round_trips_within_a_quarter_mm():
    from socketcad.anatomy.limb import load_limb

    limb = load_limb("sample:ampscan-tt-scan")
    assert_aop_follows_scan(limb.skin)
