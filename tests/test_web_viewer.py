"""The web front end's 3D viewer (frontend/src/viewer.js) in headless Chromium on software WebGL: a
cylinder with a scalar field is drawn, and the pixels read back from the canvas carry the colour map's
exact entries where the field's peak, minimum and a flat stretch project.

The test page (frontend/test-harness.html, never shipped) is built by `node frontend/build.mjs
--harness DIR` into a temporary folder and served from loopback; the shipped build is checked to hold
no test code. Needs frontend/node_modules (`make` runs npm ci)."""

from __future__ import annotations

import base64
import functools
import http.server
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from browser import ARGS, CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
FRONTEND = ROOT / "frontend"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is missing: "
                                "`make test` installs it")

# The cylinder: radius 50 mm, z 0..200 mm (z proximal), SEGMENTS vertices round each ring, a ring
# every 2 mm. Vertex ring * SEGMENTS + k sits at angle 2 pi k / SEGMENTS from +x: k = 64 is anterior (+y).
RADIUS, SEGMENTS, RINGS = 50.0, 256, 101
ANTERIOR = SEGMENTS // 4
PEAK, MINIMUM, FLAT = 80 * SEGMENTS + ANTERIOR, 20 * SEGMENTS + ANTERIOR, 50 * SEGMENTS + ANTERIOR  # z 160, 40, 100
SCALE = {"low": 10.0, "high": 110.0, "unit": "kPa", "colours": "viridis"}
BACKGROUND = (0xF3, 0xF4, 0xF6)  # the viewer's default background
SKIN = (0xD9, 0xB4, 0x9A)
TOLERANCE = 3  # per channel, 0..255


def cylinder(segments: int = SEGMENTS) -> tuple[np.ndarray, np.ndarray]:
    angle = 2 * np.pi * np.arange(segments) / segments
    z = 2.0 * np.arange(RINGS)
    positions = np.stack([np.broadcast_to(RADIUS * np.cos(angle), (RINGS, segments)),
                          np.broadcast_to(RADIUS * np.sin(angle), (RINGS, segments)),
                          np.broadcast_to(z[:, None], (RINGS, segments))], axis=-1).reshape(-1, 3)
    ring, k = np.meshgrid(np.arange(RINGS - 1), np.arange(segments), indexing="ij")
    a = ring * segments + k
    b = ring * segments + (k + 1) % segments
    c, d = a + segments, b + segments
    faces = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    return positions.astype(np.float32), faces.astype(np.uint32)


def field(positions: np.ndarray) -> np.ndarray:
    """50 kPa everywhere but two bumps 30 mm in radius: up to 120 at PEAK, down to 0 at MINIMUM."""
    def bump(centre: int) -> np.ndarray:
        d = np.linalg.norm(positions - positions[centre], axis=1) / 30.0
        return np.clip(1 - d ** 2, 0, None) ** 2
    return (50 + 70 * bump(PEAK) - 50 * bump(MINIMUM)).astype(np.float32)


def surface_json(positions: np.ndarray, faces: np.ndarray, values: np.ndarray | None, scale: dict | None) -> dict:
    """What the server sends (the viewer's decodeSurface reads it)."""
    b64 = lambda a: base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).decode()
    return {"vertex_count": len(positions), "face_count": len(faces), "positions_b64": b64(positions),
            "faces_b64": b64(faces), "values_b64": None if values is None else b64(values), "scale": scale}


@pytest.fixture(scope="module")
def harness_dir(tmp_path_factory) -> Path:
    assert (FRONTEND / "node_modules" / "three").is_dir(), "frontend/node_modules is missing: run `make` (npm ci)"
    out = tmp_path_factory.mktemp("harness") / "site"
    subprocess.run(["node", str(FRONTEND / "build.mjs"), "--harness", str(out)], check=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def server(harness_dir):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(harness_dir)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1000, "height": 700}, device_scale_factor=1)
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(server, wait_until="load")
    page.wait_for_function("window.harness !== undefined")
    yield page
    page.close()


def show(page, json: dict, side: str = "right", view: str = "anterior") -> None:
    """A fresh viewer on the page, the surface set, the view taken and rendered."""
    page.evaluate("""([json, side, view]) => {
        if (window.viewer) window.viewer.dispose();
        window.viewer = new harness.Viewer(document.getElementById('stage'), {side});
        window.picks = []; window.moves = [];
        viewer.onPick = (p, i) => picks.push([p, i]);
        viewer.onLandmarkMoved = (name, p) => moves.push([name, p]);
        viewer.setSurface(harness.decodeSurface(json));
        viewer.view(view);
        viewer.render();
    }""", [json, side, view])


def project(page, vertex: np.ndarray) -> dict:
    return page.evaluate("p => viewer.project(p)", [float(c) for c in vertex])


def colour_at(page, vertex: np.ndarray) -> list[int]:
    p = project(page, vertex)
    return page.evaluate("([x, y]) => harness.pixel(viewer, x, y)", [p["x"], p["y"]])


def assert_colour(actual, expected, what: str) -> None:
    assert max(abs(a - int(e)) for a, e in zip(actual, expected)) <= TOLERANCE, \
        f"{what}: the canvas has {list(actual)}, expected {[int(e) for e in expected]}"


@pytest.fixture(scope="module")
def limb():
    positions, faces = cylinder()
    return positions, faces, field(positions)


def test_field_colours_reach_the_canvas_exactly(page, limb):
    positions, faces, values = limb
    show(page, surface_json(positions, faces, values, SCALE))
    viridis = np.array(page.evaluate("harness.viridisBytes")).reshape(256, 4)[:, :3]
    # The pasted table is matplotlib's, rounded to bytes.
    import matplotlib
    assert np.array_equal(viridis, np.round(matplotlib.colormaps["viridis"](np.arange(256))[:, :3] * 255))

    drawn = page.evaluate("bg => harness.drawnFraction(viewer, bg)", list(BACKGROUND))
    assert 0.2 < drawn < 0.5, f"{drawn:.3f} of the canvas drawn"  # the cylinder covers about 0.27 of it
    # 120 kPa, above the scale's 110, is the top colour; 0 below its 10 the bottom; the flat 50 kPa
    # is t = 0.4, entry floor(0.4 * 256) = 102, as matplotlib's Colormap picks it.
    assert_colour(colour_at(page, positions[PEAK]), viridis[255], "the peak")
    assert_colour(colour_at(page, positions[MINIMUM]), viridis[0], "the minimum")
    assert_colour(colour_at(page, positions[FLAT]), viridis[102], "the flat stretch")
    # The colour bar: the high value and unit on top.
    legend = page.evaluate("""() => ({shown: getComputedStyle(viewer.legendElement).display !== 'none',
                                      text: viewer.legendElement.innerText})""")
    assert legend["shown"] and legend["text"].split("\n")[0] == "110 kPa" and legend["text"].split("\n")[-1] == "10 kPa"
    assert page.errors == []


def test_no_values_is_skin_and_no_legend(page, limb):
    positions, faces, _ = limb
    show(page, surface_json(positions, faces, None, None))
    assert_colour(colour_at(page, positions[PEAK]), SKIN, "the plain surface")
    assert page.evaluate("getComputedStyle(viewer.legendElement).display") == "none"
    assert page.errors == []


@pytest.mark.parametrize("side, lateral_k", [("right", 0), ("left", SEGMENTS // 2)])
def test_lateral_view_is_side_aware(page, limb, side, lateral_k):
    """The lateral side (+x right, -x left) faces the camera: its meridian projects mid-canvas."""
    positions, faces, values = limb
    show(page, surface_json(positions, faces, values, SCALE), side=side, view="lateral")
    p = project(page, positions[50 * SEGMENTS + lateral_k])
    assert abs(p["x"] - 400) < 1 and abs(p["y"] - 300) < 5
    show(page, surface_json(positions, faces, values, SCALE), side=side, view="distal")
    anterior, posterior = project(page, positions[ANTERIOR]), project(page, positions[SEGMENTS * 3 // 4])
    assert anterior["y"] < posterior["y"] - 100  # from below, anterior up
    assert page.errors == []


def test_section_perimeter(page, limb):
    positions, faces, values = limb
    show(page, surface_json(positions, faces, values, SCALE))
    perimeter = page.evaluate("viewer.setSection(101)")
    assert perimeter == pytest.approx(2 * SEGMENTS * RADIUS * np.sin(np.pi / SEGMENTS), rel=1e-5)
    assert page.evaluate("viewer.setSection(500)") == 0
    assert page.evaluate("viewer.setSection(null)") is None
    assert page.errors == []


def test_camera_kept_for_the_same_vertex_count(page, limb):
    positions, faces, values = limb
    json = surface_json(positions, faces, values, SCALE)
    show(page, json)
    before = project(page, positions[PEAK])
    page.focus("canvas")
    page.keyboard.press("+")  # keyboard zoom: the peak, above the centre, moves up
    zoomed = project(page, positions[PEAK])
    assert zoomed["y"] < before["y"] - 5
    page.evaluate("json => viewer.setSurface(harness.decodeSurface(json))", json)
    assert project(page, positions[PEAK]) == pytest.approx(zoomed)
    page.keyboard.press("ArrowLeft")  # keyboard orbit
    assert project(page, positions[PEAK])["x"] != pytest.approx(zoomed["x"])
    # A different shape is framed afresh.
    other, other_faces = cylinder(128)
    page.evaluate("json => viewer.setSurface(harness.decodeSurface(json))", surface_json(other, other_faces, None, None))
    assert project(page, positions[PEAK]) == pytest.approx(before, abs=0.5)
    assert page.errors == []


def test_pick_and_landmark_drag(page, limb):
    positions, faces, values = limb
    show(page, surface_json(positions, faces, values, SCALE))
    p = project(page, positions[PEAK])
    page.mouse.click(p["x"], p["y"])  # the canvas sits at the page's top left
    picks = page.evaluate("picks")
    assert len(picks) == 1 and picks[0][1] == PEAK and np.allclose(picks[0][0], positions[PEAK], atol=1.0)

    page.evaluate("p => { viewer.setLandmarks([{name: 'MPT', point_mm: p}], {editable: true}); viewer.render(); }",
                  positions[FLAT].tolist())
    start, end = project(page, positions[FLAT]), project(page, positions[PEAK])
    page.mouse.click(start["x"], start["y"])  # a click on a landmark neither moves it nor picks
    assert page.evaluate("[moves.length, picks.length]") == [0, 1]
    page.mouse.move(start["x"], start["y"])
    page.mouse.down()
    page.mouse.move(end["x"], end["y"], steps=5)
    page.mouse.up()
    moves = page.evaluate("moves")
    assert len(moves) == 1 and moves[0][0] == "MPT"
    assert np.allclose(moves[0][1], positions[PEAK], atol=1.0)  # dragged along the surface, not orbited
    assert page.evaluate("picks.length") == 1  # a drag is no pick
    assert project(page, positions[PEAK]) == pytest.approx(end)  # the camera did not move
    assert page.evaluate("document.querySelector('.viewer-landmark').textContent") == "MPT"
    assert page.errors == []


def test_shipped_build_has_no_test_code(tmp_path):
    assert shutil.which("node"), "node is missing"
    out = tmp_path / "static"
    subprocess.run(["node", str(FRONTEND / "build.mjs"), "--out", str(out)], check=True, timeout=120)
    assert sorted(p.name for p in out.iterdir()) == ["app.css", "app.js", "app.js.map", "index.html"]
    assert "harness" not in (out / "app.js").read_text()
    assert not list(tmp_path.glob(".static-build-*"))  # the build's temporary folder is gone
