"""The pictures read back: not blank, the colour bar's ends are the data's extremes, a known field puts its
colour at a vertex's projected pixel, the anterior view of a limb in any pose shows its patella, and the
unrolled map of a known field on a cylinder gives the field back."""

import io as _io

import matplotlib
import numpy as np
import pytest
import trimesh
from PIL import Image
from scipy.spatial.transform import Rotation

from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import CaptureOptions, load_limb
from socketcad.anatomy.samples import SAMPLES
from socketcad.geometry import io
from socketcad.geometry.measure import vertex_normals
from socketcad.report.pictures import PATELLA, limb_figures
from socketcad.report.render import BACKGROUND, ColourScale, Layer, diverging_scale, render, view_direction
from socketcad.report.unrolled import angle_height, unroll_surface


@pytest.fixture(scope="module")
def posed_limb(tmp_path_factory):
    """The OpenLimbTT mean (with bones) written in a random rigid pose (tilted, spun, moved) and read back."""
    raw = io.read_mesh(SAMPLES["openlimb-tt-mean"].path)
    rotation = Rotation.from_euler("xyz", [23.0, -61.0, 137.0], degrees=True).as_matrix()
    path = tmp_path_factory.mktemp("posed") / "posed.ply"
    io.write_mesh(trimesh.Trimesh(raw.vertices @ rotation.T + [120.0, -85.0, 240.0], raw.faces, process=False), path)
    return locate_landmarks(load_limb(path, CaptureOptions()))


@pytest.fixture(scope="module")
def height_picture(posed_limb):
    skin = posed_limb.skin
    height = skin.vertices[:, 2]
    scale = ColourScale("viridis", float(height.min()), float(height.max()), "height mm")
    [picture] = render([Layer(skin.vertices, skin.faces, scalars=height)], ["lateral"], posed_limb.side, scale)
    return posed_limb, picture


def test_picture_is_not_blank_and_is_a_png(height_picture):
    _, picture = height_picture
    image = picture.image
    assert image.shape == (600, 800, 3)
    drawn = np.any(np.abs(image.astype(int) - np.array(BACKGROUND) * 255) > 10, axis=2)
    assert 0.08 < drawn.mean() < 0.7  # the limb fills part of the view, not none and not all
    assert np.array_equal(np.asarray(Image.open(_io.BytesIO(picture.png)).convert("RGB")), image)


def test_colour_bar_ends_are_the_data_extremes(height_picture):
    limb, picture = height_picture
    height = limb.skin.vertices[:, 2]
    assert (picture.scale.low, picture.scale.high) == (float(height.min()), float(height.max()))
    left, top, right, bottom = picture.bar_box()
    column = picture.image[top:bottom, left:right]
    # the bar's own pixels: those of the colour map; its top row shows the highest value, its bottom the lowest
    cmap = matplotlib.colormaps["viridis"]
    ends = np.round(255 * np.array([cmap(1.0)[:3], cmap(0.0)[:3]]))
    rows = [r for r in range(column.shape[0]) if np.min(np.abs(column[r].astype(int) - ends[0]).sum(axis=1)) < 30]
    lows = [r for r in range(column.shape[0]) if np.min(np.abs(column[r].astype(int) - ends[1]).sum(axis=1)) < 30]
    assert rows and lows and max(rows) < min(lows)  # top colour above bottom colour
    assert min(lows) - max(rows) > 0.5 * (bottom - top)  # they are the two ends, not neighbours


def _front_vertices(limb, picture, view, count=40, seed=3):
    """Vertices facing the camera and in front at their pixel: (indices, pixels)."""
    direction, _ = view_direction(view, limb.side)
    vertices = limb.skin.vertices
    facing = np.flatnonzero(vertex_normals(limb.skin) @ direction > 0.9)
    pixels = picture.pixels(vertices)
    depth = vertices @ direction
    chosen = []
    for index in np.random.default_rng(seed).permutation(facing):
        near = np.flatnonzero(np.abs(pixels - pixels[index]).max(axis=1) < 4)
        if depth[near].max() <= depth[index] + 0.5:  # nothing nearer the camera over that pixel
            chosen.append(index)
        if len(chosen) == count:
            break
    return np.array(chosen), pixels[chosen]


def test_known_field_colour_at_projected_vertices(height_picture):
    limb, picture = height_picture
    chosen, pixels = _front_vertices(limb, picture, "lateral")
    assert len(chosen) == 40
    expected = picture.scale.colours(limb.skin.vertices[chosen, 2])
    seen = picture.image[pixels[:, 1].astype(int), pixels[:, 0].astype(int)].astype(float)
    error = np.abs(seen - expected).max(axis=1)
    assert np.median(error) < 20 and (error < 40).mean() > 0.85
    # and the same pixels are not what a field upside down would show
    flipped = picture.scale.colours(picture.scale.high + picture.scale.low - limb.skin.vertices[chosen, 2])
    assert np.median(np.abs(seen - flipped).max(axis=1)) > 60


def _red_pixels(png: bytes) -> int:
    image = np.asarray(Image.open(_io.BytesIO(png)).convert("RGB")).astype(int)
    red = np.array(PATELLA) * 255
    return int((np.abs(image - red).max(axis=2) < 45).sum())


def test_anterior_view_shows_the_patella_whatever_the_pose(posed_limb):
    assert "patella" in posed_limb.bones
    figures = {f.name: f for f in limb_figures(posed_limb, ("anterior", "posterior", "lateral"))}
    anterior, posterior = _red_pixels(figures["limb-anterior"].png), _red_pixels(figures["limb-posterior"].png)
    assert anterior > 1500 and anterior > 4 * posterior
    # lateral: the patella is at the front, so its pixels lie towards the anterior side of the picture
    image = np.asarray(Image.open(_io.BytesIO(figures["limb-lateral"].png)).convert("RGB")).astype(int)
    columns = np.nonzero(np.abs(image - np.array(PATELLA) * 255).max(axis=2) < 45)[1]
    skin_columns = np.nonzero(np.abs(image - 255).max(axis=2) > 10)[1]
    # a right limb seen from lateral (+x), z up: anterior (+y) is on the viewer's right
    assert columns.mean() > skin_columns.mean()


def test_diverging_scale_is_centred_on_zero():
    scale = diverging_scale(np.array([-2.0, 0.5, 6.0]), "deviation mm")
    assert (scale.low, scale.high) == (-6.0, 6.0)
    middle = scale.colours(np.array([0.0]))[0]
    assert np.all(middle > 230)  # RdBu's centre is near white: no change reads as no colour


def _cylinder(radius=50.0, height=240.0, around=360, up=160):
    """A fine open cylinder about z, base at z = 0 (vertices on a grid of angle x height)."""
    theta = np.linspace(0, 2 * np.pi, around, endpoint=False)
    z = np.linspace(0, height, up)
    t, h = np.meshgrid(theta, z)
    vertices = np.column_stack([radius * np.cos(t).ravel(), radius * np.sin(t).ravel(), h.ravel()])
    i, j = np.meshgrid(np.arange(up - 1), np.arange(around), indexing="ij")
    a, b = i * around + j, i * around + (j + 1) % around
    c, d = a + around, b + around
    faces = np.vstack([np.column_stack([a.ravel(), b.ravel(), d.ravel()]), np.column_stack([a.ravel(), d.ravel(), c.ravel()])])
    return trimesh.Trimesh(vertices, faces, process=False)


def field(angle_deg, height_mm):
    """A pressure pattern: higher anterolaterally, rising with height, kPa."""
    return 60.0 + 25.0 * np.cos(np.radians(angle_deg - 40.0)) + 0.1 * height_mm


@pytest.mark.parametrize("side", ["right", "left"])
def test_unrolled_map_of_a_cylinder_reproduces_the_field(side):
    cylinder = _cylinder()
    angle, height = angle_height(cylinder.vertices, side)
    unrolled = unroll_surface(cylinder, field(angle, height), side, angle_step_deg=6.0, height_step_mm=6.0)
    a, h = np.meshgrid(unrolled.angles_deg, unrolled.heights_mm)
    assert np.isfinite(unrolled.values).all()
    error = np.abs(unrolled.values - field(a, h))
    assert error.max() < 1.5  # kPa, against a field ranging over 50 kPa; a cell's mean vs its centre's value
    # the axes are what they say: the peak at +40 degrees (anterolateral) whichever side
    assert abs(unrolled.angles_deg[np.argmax(unrolled.values[len(unrolled.heights_mm) // 2])] - 40.0) <= 6.0


def test_a_left_limbs_lateral_is_its_minus_x():
    points = np.array([[-10.0, 0.0, 5.0], [0.0, 10.0, 5.0], [0.0, -10.0, 5.0]])
    assert np.allclose(angle_height(points, "left")[0], [90.0, 0.0, -180.0])
    assert np.allclose(angle_height(points, "right")[0], [-90.0, 0.0, -180.0])
    assert np.allclose(view_direction("lateral", "left")[0], [-1.0, 0.0, 0.0])
