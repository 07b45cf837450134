"""Off-screen pictures of limb and socket surfaces in the limb frame, from fixed anatomical views.

The renderer is VTK through pyvista, the field's standard for mesh pictures (AmpScan and pytetwild use it
too): with no display it renders through EGL on Mesa's software rasteriser (llvmpipe), so nothing needs a
screen or a GPU. The camera is orthographic and lit by one headlight: a surface facing the camera shows
its colour-map colour exactly (the tests read it back), and lengths read the same everywhere in a view.

Views are fixed in the limb frame (z proximal, y anterior, x lateral for a right limb: geometry.frame),
so the same view of two scans in different poses looks the same.
"""

from __future__ import annotations

import io as _io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["VIEWS", "ColourScale", "Layer", "Marker", "Picture", "diverging_scale", "render", "view_direction"]

if not os.environ.get("DISPLAY"):  # no screen: EGL on Mesa, not VTK's X window (which warns, then falls back)
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

# view -> (direction from the limb to the camera, up), limb frame, for a right limb (x lateral)
VIEWS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "anterior": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "posterior": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "lateral": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "medial": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "distal": ((0.0, 0.0, -1.0), (0.0, 1.0, 0.0)),  # from below, anterior up
}
BACKGROUND = (1.0, 1.0, 1.0)
NO_DATA = (0.75, 0.75, 0.75)  # grey where a map has no value (NaN)
BAR = {"position_x": 0.86, "position_y": 0.12, "width": 0.08, "height": 0.76}  # colour bar, fraction of the image


def view_direction(view: str, side: str) -> tuple[np.ndarray, np.ndarray]:
    """(direction from the limb to the camera, up), unit (3,) each in the limb frame; a left limb's x is
    medial, so its lateral and medial views swap."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}: one of {', '.join(VIEWS)}")
    direction, up = (np.asarray(v, dtype=float) for v in VIEWS[view])
    if side == "left":
        direction = direction * [-1.0, 1.0, 1.0]
    return direction, up


@dataclass(frozen=True)
class ColourScale:
    """How values map to colours: a matplotlib colour map over [low, high], and the bar's title with units."""

    cmap: str
    low: float
    high: float
    title: str  # with units, e.g. "pressure kPa"

    def colours(self, values: np.ndarray) -> np.ndarray:
        """(n,) values -> (n, 3) RGB 0-255 as the picture shows them (clipped to the scale)."""
        import matplotlib

        span = (self.high - self.low) or 1.0
        unit = np.clip((np.asarray(values, dtype=float) - self.low) / span, 0.0, 1.0)
        return np.round(255.0 * matplotlib.colormaps[self.cmap](unit)[:, :3])


def diverging_scale(values: np.ndarray, title: str, cmap: str = "RdBu_r") -> ColourScale:
    """A scale centred on 0 that holds every value: +/- the largest magnitude (blue in, red out)."""
    bound = float(np.abs(values).max()) or 1.0
    return ColourScale(cmap, -bound, bound, title)


@dataclass(frozen=True)
class Layer:
    """A triangle surface to draw: vertices (n, 3) mm in the limb frame, faces (m, 3); coloured by
    ``scalars`` (n,) on the picture's scale, or in one ``colour`` (RGB 0-1)."""

    vertices: np.ndarray
    faces: np.ndarray
    scalars: np.ndarray | None = None
    colour: tuple[float, float, float] = (0.85, 0.78, 0.70)
    opacity: float = 1.0


@dataclass(frozen=True)
class Marker:
    """A labelled point: (3,) mm in the limb frame, and its outward normal (3,) (labels only where it faces
    the camera, so hidden landmarks do not clutter a view)."""

    label: str
    point_mm: np.ndarray
    normal: np.ndarray


@dataclass(frozen=True, eq=False)
class Picture:
    """A rendered view: RGB image (h, w, 3) uint8, its PNG, the scale (None: plain colours), and the
    projection of limb-frame points to pixels."""

    view: str
    image: np.ndarray
    scale: ColourScale | None
    world_to_ndc: np.ndarray = field(repr=False)  # (4, 4) limb frame -> normalised device coordinates

    @property
    def png(self) -> bytes:
        from PIL import Image

        buffer = _io.BytesIO()
        Image.fromarray(self.image).save(buffer, format="PNG")
        return buffer.getvalue()

    def pixels(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) limb-frame mm -> (n, 2) pixel (column, row), row 0 at the top."""
        homogeneous = np.column_stack([np.asarray(points, dtype=float), np.ones(len(points))]) @ self.world_to_ndc.T
        ndc = homogeneous[:, :2] / homogeneous[:, 3:4]
        height, width = self.image.shape[:2]
        return np.column_stack([(ndc[:, 0] + 1.0) / 2.0 * width, (1.0 - ndc[:, 1]) / 2.0 * height])

    def bar_box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) pixels of the colour bar's frame (bar, ticks and title inside)."""
        height, width = self.image.shape[:2]
        left, bottom = BAR["position_x"] * width, (1.0 - BAR["position_y"]) * height
        return (int(left), int(bottom - BAR["height"] * height), int(left + BAR["width"] * width), int(bottom))


def render(layers: Sequence[Layer], views: Sequence[str], side: str, scale: ColourScale | None = None,
           markers: Sequence[Marker] = (), size: tuple[int, int] = (800, 600), title: str = "") -> list[Picture]:
    """Pictures of ``layers`` (limb frame, mm) from each of ``views``: coloured by ``scale`` with a colour
    bar, the ``markers`` that face the camera labelled, ``title`` and the view's name at the top left;
    ``size`` (width, height) pixels. One scene serves every view (only the camera and labels change)."""
    import pyvista as pv

    plotter = pv.Plotter(off_screen=True, window_size=size, lighting="none")
    try:
        plotter.set_background(BACKGROUND)
        plotter.add_light(pv.Light(light_type="headlight", intensity=1.0))
        for layer in layers:
            _add_layer(plotter, layer, scale)
        if scale is not None:
            plotter.add_scalar_bar(title=scale.title, vertical=True, n_labels=5, fmt="%.1f", color="black",
                                   title_font_size=16, label_font_size=14, **BAR)
        everything = np.vstack([layer.vertices for layer in layers])
        low, high = everything.min(axis=0), everything.max(axis=0)
        centre, reach = (low + high) / 2.0, float(np.linalg.norm(high - low))
        plotter.enable_parallel_projection()
        return [_picture(plotter, view, side, scale, markers, centre, reach, title) for view in views]
    finally:
        plotter.close()


def _add_layer(plotter, layer: Layer, scale: ColourScale | None) -> None:
    import pyvista as pv

    faces = np.column_stack([np.full(len(layer.faces), 3), layer.faces]).ravel()
    mesh = pv.PolyData(np.asarray(layer.vertices, dtype=float), faces)
    options = dict(opacity=layer.opacity, smooth_shading=True, split_sharp_edges=True, specular=0.0, ambient=0.0,
                   diffuse=1.0)
    if layer.scalars is not None and scale is not None:
        mesh.point_data["values"] = np.asarray(layer.scalars, dtype=float)
        plotter.add_mesh(mesh, scalars="values", cmap=scale.cmap, clim=(scale.low, scale.high), nan_color=NO_DATA,
                         show_scalar_bar=False, **options)
    else:
        plotter.add_mesh(mesh, color=layer.colour, **options)


def _picture(plotter, view: str, side: str, scale: ColourScale | None, markers: Sequence[Marker],
             centre: np.ndarray, reach: float, title: str) -> Picture:
    direction, up = view_direction(view, side)
    camera = plotter.camera
    camera.focal_point = tuple(centre)
    camera.position = tuple(centre + 3.0 * reach * direction)
    camera.up = tuple(up)
    plotter.reset_camera()
    camera.zoom(0.82 if scale is not None else 0.9)  # room for the bar and labels
    shown = [m for m in markers if float(np.dot(m.normal, direction)) > 0.2]
    added = [plotter.add_text(f"{title} - {view}" if title else view, position="upper_left", font_size=11,
                              color="black")]
    if shown:
        where = np.array([m.point_mm for m in shown], dtype=float)
        labels = [m.label for m in shown]
        added.append(plotter.add_points(where, color="black", point_size=9, render_points_as_spheres=True))
        added.append(plotter.add_point_labels(_label_anchors(plotter, where, labels, direction, up, centre), labels,
                                              font_size=13, point_size=1, shape_opacity=0.6, always_visible=True,
                                              show_points=False))
    image = plotter.screenshot(None, return_img=True)
    renderer = plotter.renderer
    matrix = renderer.GetActiveCamera().GetCompositeProjectionTransformMatrix(renderer.GetTiledAspectRatio(), -1.0, 1.0)
    for actor in added:
        plotter.remove_actor(actor)
    return Picture(view=view, image=np.ascontiguousarray(image[:, :, :3]), scale=scale,
                   world_to_ndc=np.array([[matrix.GetElement(i, j) for j in range(4)] for i in range(4)]))


def _label_anchors(plotter, points: np.ndarray, labels: list[str], direction: np.ndarray, up: np.ndarray,
                   centre: np.ndarray) -> np.ndarray:
    """Where each label starts (limb frame, mm): beside its point, away from the middle of the view, so
    that labels do not cross the limb (one on the left half ends at its point)."""
    right = np.cross(up, direction)  # the viewer's right
    mm_per_pixel = 2.0 * plotter.camera.parallel_scale / plotter.window_size[1]
    width_mm = (np.array([len(text) for text in labels]) * 6.6 + 12.0) * mm_per_pixel  # about 6.6 px a character
    leftwards = (points - centre) @ right < 0
    return points + np.outer(np.where(leftwards, -width_mm, 5.0 * mm_per_pixel), right)
