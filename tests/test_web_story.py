"""One patient's seven steps through the web application's pages, in headless Chromium (Debian's, driven by
Playwright), against SQLite and against a throwaway PostgreSQL server: sign in, open a case, evaluate, upload the
AmpScan scan (a real scan without bones), move a landmark by dragging it, start from the TSB template and deepen a
relief, build, run the analysis and see its heat map, record a fitting whose adjustment makes revision 2, deliver,
upload a follow-up scan. After each step the store's records are read back; every page is photographed
(out/web-story/<backend>/, kept as test artefacts).

The heat map's pixel test reads the canvas back: the peak vertex, where it projects, shows the colour at the top
of the legend."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from sqlalchemy import select

from browser import ARGS, CHROMIUM
from postgres import postgres_server
from socketcad import operations as ops
from socketcad.anatomy.limb import CaptureOptions, load_limb
from socketcad.anatomy.samples import SAMPLES
from socketcad.clinic import models
from socketcad.clinic.store import Store

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is missing: "
                                "`make test` installs it")

ROOT = Path(__file__).resolve().parents[1]
SCAN = SAMPLES["ampscan-tt-scan"].path
ANTERIOR = "0,-1,0"  # the sample's recorded anterior (anatomy.samples): a clinic types it with the upload
USER, PASSWORD = "p.lindqvist", "a long enough password"
REFERENCE = "W-1"
VIRIDIS_TOP = (253, 231, 37)  # matplotlib's viridis(1.0)
SHOTS = ROOT / "out" / "web-story"
# this page's viewer (its canvas in the document, not the last page's) with its surface and landmarks drawn
VIEWER_READY = ("() => { const v = window.socketcadViewer; "
                "return v && v.canvas.isConnected && v.mesh && v._landmarks.length > 0; }")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(data: Path, url: str | None, cache: Path):
    """`socketcad serve` in its own process on a free loopback port; yields the base URL."""
    port = free_port()
    env = dict(os.environ, SOCKETCAD_CACHE=str(cache))
    env.pop("SOCKETCAD_DB", None)
    command = [sys.executable, "-c", "from socketcad.cli import main; main()", "serve", "--data", str(data),
               "--port", str(port), "--workers", "2", *(["--db", url] if url else [])]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def clinic(request, tmp_path_factory):
    """(base URL, the store the server uses, where to put screenshots) for one backend."""
    data = tmp_path_factory.mktemp(f"web-{request.param}")
    cache = tmp_path_factory.mktemp(f"web-cache-{request.param}")

    def start(url):
        store = Store(data, url)
        ops.add_user(store, ops.AddUserRequest(username=USER, password=PASSWORD, role="prosthetist",
                                               clinic="North clinic"), "test")
        with served(data, url, cache) as base:
            yield base, store, SHOTS / request.param
        store.close()

    if request.param == "sqlite":
        yield from start(None)
    else:
        with postgres_server() as url:
            yield from start(url)


def shrunken_followup(path: Path) -> None:
    """A later scan of the same limb, 3 % smaller in circumference distally, moved and tilted as a new scan is."""
    limb = load_limb(SCAN, CaptureOptions(anterior=(0.0, -1.0, 0.0)))
    skin = limb.skin.copy()
    height = skin.vertices[:, 2]
    taper = np.clip((120.0 - height) / 120.0, 0.0, 1.0)
    vertices = skin.vertices.copy()
    vertices[:, :2] *= (1.0 - 0.03 * taper)[:, None]
    skin.vertices = vertices
    motion = trimesh.transformations.rotation_matrix(np.radians(5.0), [0.2, 1.0, 0.1])
    motion[:3, 3] = [4.0, -2.0, 9.0]
    skin.apply_transform(motion)
    skin.export(path)


def records(store: Store, model, **where):
    with store.transaction() as db:
        case = db.scalar(select(models.Case).where(models.Case.reference == REFERENCE))
        query = select(model).where(model.case_id == case.id) if case is not None and hasattr(model, "case_id") \
            else select(model)
        return [row for row in db.scalars(query.order_by(model.id))
                if all(getattr(row, key) == value for key, value in where.items())]


def canvas_pixels(page) -> np.ndarray:
    """The viewer's WebGL canvas, read back (preserveDrawingBuffer), as an (h, w, 3) array in canvas pixels."""
    data = page.evaluate("() => window.socketcadViewer.canvas.toDataURL('image/png')")
    import base64
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))).convert("RGB"))


def on_screen(page, point) -> tuple[float, float]:
    """Where a limb-frame point (mm) projects, in page coordinates."""
    return tuple(page.evaluate("""(p) => { const v = window.socketcadViewer; const r = v.canvas.getBoundingClientRect();
        const q = v.project(p); return [r.left + q.x, r.top + q.y]; }""", list(point)))


def wait_status(page, text: str, timeout_s: float = 120) -> str:
    """The status line once it shows ``text`` (fails at once on an error shown there)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        shown = page.inner_text("#status")
        if text in shown:
            return shown
        assert "error" not in (page.get_attribute("#status", "class") or ""), shown
        time.sleep(0.25)
    raise AssertionError(f"status never showed {text!r}; it shows {page.inner_text('#status')!r}")


def test_seven_steps_in_the_browser(clinic, tmp_path):
    base, store, shots = clinic
    shots.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 950})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "401" not in m.text else None)
        def shot(name: str) -> None:
            page.evaluate("() => window.scrollTo(0, 0)")
            page.screenshot(path=str(shots / f"{name}.png"))

        # sign in, open a case
        page.goto(base)
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("form[aria-label='sign in'] button")
        page.wait_for_selector("form[aria-label='new case']")
        page.fill("form[aria-label='new case'] input[name=reference]", REFERENCE)
        page.select_option("form[aria-label='new case'] select[name=side]", "right")
        page.click("form[aria-label='new case'] button")
        page.wait_for_selector("form[aria-label=evaluation]")
        case = records(store, models.Case)
        assert [c.reference for c in case] == [REFERENCE] and case[0].side == "right" and case[0].clinic_id is not None

        # 1. evaluation
        page.select_option("select[name=k_level]", "K3")
        page.check("input[value=fibular_head]")
        page.fill("input[name=strength]", "knee_extension=5")
        page.fill("input[name=goals]", "walk to work")
        shot("1-evaluation")
        page.click("form[aria-label=evaluation] button[type=submit]")
        wait_status(page, "evaluation saved")
        (evaluation,) = records(store, models.Evaluation)
        assert evaluation.k_level == "K3" and evaluation.form["sensitive_areas"] == ["fibular_head"]
        assert evaluation.form["strength_mrc"] == {"knee_extension": 5} and evaluation.created_by == USER

        # 2. the scan: the real AmpScan file, its anterior typed in
        page.click("nav a:has-text('2 Scan')")
        page.set_input_files("form[aria-label='scan upload'] input[type=file]", str(SCAN))
        page.fill("input[name=anterior]", ANTERIOR)
        page.click("form[aria-label='scan upload'] button[type=submit]")
        page.wait_for_selector("#section-level")
        (scan,) = records(store, models.Scan)
        assert scan.anterior == [0.0, -1.0, 0.0] and scan.units == "mm" and scan.filename.endswith(".stl")

        # 2. landmarks: drag the tibial tuberosity 25 px down the limb; the section slider reads a circumference
        page.wait_for_function(VIEWER_READY)
        located = {row.name: row for row in ops.scan_view(store, REFERENCE, scan.id).landmarks}
        before = np.array(located["tibial_tuberosity"].point_mm)
        x, y = on_screen(page, before)
        page.mouse.move(x, y)
        page.mouse.down()
        for step in range(1, 6):
            page.mouse.move(x, y + 5 * step)
        page.mouse.up()
        wait_status(page, "tibial_tuberosity placed")
        (move,) = records(store, models.LandmarkMove)
        assert move.name == "tibial_tuberosity" and move.created_by == USER
        assert before[2] - move.point_mm[2] > 3.0, (before, move.point_mm)  # it went distally
        # or typed (the keyboard's way): the fibular head 4 mm up, snapped to the skin
        z_input = page.locator("input[aria-label='fibular_head z mm']")
        z_input.fill(str(round(located["fibular_head"].point_mm[2] + 4.0, 1)))
        page.locator("tr:has(input[aria-label='fibular_head z mm']) button").click()
        wait_status(page, "fibular_head placed")
        typed = records(store, models.LandmarkMove)[-1]
        assert typed.name == "fibular_head" and abs(typed.point_mm[2] - located["fibular_head"].point_mm[2] - 4.0) < 2.0
        page.fill("#section-level", "80")
        page.dispatch_event("#section-level", "input")
        page.wait_for_function("() => document.querySelector('#section-readout').textContent.includes('circumference')")
        assert "mm" in page.inner_text("#section-readout")
        shot("2-landmarks")

        # 3. rectification: the TSB template, then the fibular head relief deepened 2 -> 4 mm
        page.click("nav a:has-text('3 Rectification')")
        page.wait_for_selector("#modifications input[data-key=depth_mm]")
        page.select_option("select[name=template]", "tsb")
        page.click("button:has-text('Start from template')")
        relief = page.locator("input[aria-label='fibular head relief depth_mm']")
        relief.wait_for()
        page.wait_for_function("() => document.querySelector('#rectification-summary').textContent.includes('deviation')")
        # its handle on the limb, clicked, selects the row; the depth typed there
        page.click("button:has-text('lateral')")
        time.sleep(0.5)
        page.mouse.click(*on_screen(page, typed.point_mm))
        page.wait_for_function("() => document.activeElement.getAttribute('aria-label') === 'fibular head relief depth_mm'")
        page.keyboard.type("4")
        page.wait_for_function("() => JSON.parse(localStorage.getItem(Object.keys(localStorage).find(k => k.endsWith(':plan'))))"
                               ".modifications.some(m => m.label === 'fibular head relief' && m.depth_mm === 4)")
        page.wait_for_function("() => document.querySelector('#rectification-summary').textContent.includes('deviation')")
        # the browser closed mid-edit loses nothing: the draft comes back
        page.reload()
        page.locator("input[aria-label='fibular head relief depth_mm']").wait_for()
        page.wait_for_function("() => document.querySelector(\"input[aria-label='fibular head relief depth_mm']\").value === '4'")
        page.wait_for_function("() => document.querySelector('#rectification-summary').textContent.includes('deviation')")
        time.sleep(1.0)
        shot("3-rectification")
        page.click("button:has-text('Use this plan for the socket')")

        # 4. the test socket: the selection rules' proposal, then the build as a job
        page.wait_for_selector("form[aria-label=socket]")
        page.click("#propose")
        page.wait_for_selector("#reasons li")
        page.click("form[aria-label=socket] button[type=submit]")
        wait_status(page, "socket built and saved", 180)
        (revision,) = records(store, models.Revision)
        relief_row = next(m for m in revision.plan["modifications"] if m.get("label") == "fibular head relief")
        assert relief_row["depth_mm"] == 4 and revision.created_by == USER
        assert revision.plan["landmarks"]["tibial_tuberosity"] == pytest.approx(move.point_mm)  # the placed landmarks
        assert revision.plan["landmarks"]["fibular_head"] == pytest.approx(typed.point_mm)
        page.wait_for_selector(".downloads a[href$='socket.stl']")
        shot("4-socket")

        # 5. the analysis: a background job with its progress, then the heat map
        page.click("nav a:has-text('5 Analysis')")
        page.fill("input[name=body_mass_kg]", "78")
        page.click("form[aria-label=analysis] button[type=submit]")
        page.wait_for_selector(".job progress")
        wait_status(page, "analysis saved", 420)
        page.wait_for_function("() => window.socketcadAnalysis && document.querySelector('#regions tbody tr')")
        (analysis,) = records(store, models.Analysis)
        assert analysis.revision_id == revision.id and analysis.body_mass_kg == 78 and analysis.created_by == USER
        pixel_test(page)
        shot("5-analysis")
        # the report of the revision (its pictures and the analysis), offered as a download from the socket page
        page.click("nav a:has-text('4 Socket')")
        link = page.locator(".downloads a:has-text('report (PDF)')")
        link.wait_for()
        with page.expect_download(timeout=120_000) as download:
            link.click()
        pdf = Path(download.value.path()).read_bytes()
        assert pdf[:5] == b"%PDF-" and download.value.suggested_filename == f"{REFERENCE}-r{revision.id}-report.pdf"
        # 4. the trimline raised 10 mm at its first point: the build makes a child revision with that spec
        raise_input = page.locator("input[aria-label^='trimline']").first
        point = raise_input.get_attribute("aria-label").split()[1]
        raise_input.fill("10")
        page.click("form[aria-label=socket] button[type=submit]")
        page.wait_for_function("() => document.querySelector('.downloads h3').textContent.startsWith('Revision 2')",
                               timeout=180_000)
        trimmed = records(store, models.Revision)[-1]
        assert trimmed.parent_id == revision.id and trimmed.spec["trim_offsets_mm"] == {point: 10.0}

        # 5. fitting: feedback by clicking the limb, an adjustment that makes revision 2
        page.click("nav a:has-text('5 Fitting')")
        page.wait_for_function(VIEWER_READY)
        page.click("button:has-text('lateral')")
        time.sleep(0.5)
        page.mouse.click(*on_screen(page, typed.point_mm))  # where the fibular head was placed
        page.wait_for_selector("#feedback .row")
        page.locator("#feedback .row input").first.fill("pressure after 10 minutes")
        page.click("button:has-text('Add adjustment')")
        page.fill("#adjustments input[name=where]", "fibular_head")
        page.fill("#adjustments input[name=amount]", "1")
        shot("5-fitting")
        page.click("form[aria-label=fitting] button[type=submit]")
        wait_status(page, "revision", 180)
        (fitting,) = records(store, models.Fitting)
        assert fitting.child_revision_id is not None and fitting.created_by == USER
        assert list(fitting.feedback) == ["fibular_head"]  # the region clicked on the limb
        assert fitting.revision_id == trimmed.id and len(records(store, models.Revision)) == 3
        # the revision tree, and the diff of 1 -> 2 with its deviation map on the model
        page.wait_for_selector("#revision-tree li:has-text('child of')")
        page.select_option("select[name=first]", str(revision.id))
        page.select_option("select[name=second]", str(fitting.child_revision_id))
        page.click("button:has-text('Compare')")
        page.wait_for_selector("#diff li")
        assert "fibular_head" in page.inner_text("#diff") and "(+1 mm outward)" in page.inner_text("#diff")
        assert page.evaluate("() => window.socketcadViewer.legendElement.style.display") != "none"
        shot("5-diff")

        # 6-7. definitive socket, delivery, follow-up
        page.click("nav a:has-text('6-7')")
        page.wait_for_selector("form[aria-label=fabrication]")
        page.fill("form[aria-label=fabrication] input[name=lab]", "Lab North")
        page.click("form[aria-label=fabrication] button[type=submit]")
        wait_status(page, "fabrication recorded")
        page.wait_for_selector("form[aria-label=delivery]")
        for box in page.locator("form[aria-label=delivery] input[type=checkbox]").all():
            box.check()
        page.click("form[aria-label=delivery] button[type=submit]")
        wait_status(page, "every item taught")
        (fabrication,) = records(store, models.Fabrication)
        (delivery,) = records(store, models.Delivery)
        assert fabrication.stage == "definitive" and fabrication.revision_id == fitting.child_revision_id
        assert all(delivery.checklist.values()) and delivery.revision_id == fitting.child_revision_id
        later = tmp_path / "later.stl"
        shrunken_followup(later)
        page.wait_for_selector("form[aria-label=follow-up]")
        page.set_input_files("form[aria-label=follow-up] input[type=file]", str(later))
        page.click("form[aria-label=follow-up] button[type=submit]")
        wait_status(page, "follow-up saved", 120)
        (followup,) = records(store, models.FollowUp)
        assert followup.volume_change_pct < -1.0 and followup.created_by == USER
        assert "volume" in page.inner_text("#followup-result")
        page.wait_for_function("() => document.querySelector('#change-note').textContent.includes('shrank')")
        shot("7-followup")

        # the audit trail: every change under the signed-in user's name
        page.click("nav a:has-text('Audit trail')")
        page.wait_for_selector("#audit tbody tr")
        shot("audit")
        actions = {event.action for event in records(store, models.AuditEvent) if event.actor == USER}
        assert {"case.new", "evaluation.add", "scan.add", "landmark.move", "revision.save", "analysis.add",
                "fitting.add", "delivery.add", "followup.add"} <= actions, actions
        assert not errors, errors
        browser.close()


def pixel_test(page) -> None:
    """The heat map is not blank, and at the peak vertex it shows the legend's top colour (viridis' top)."""
    peak = page.evaluate("() => window.socketcadAnalysis.peak_point_mm")
    # look at the peak along its surface normal (lit squarely, so it shows its colour unshaded), markers aside
    page.evaluate("""(peak) => {
        const v = window.socketcadViewer, g = v.mesh.geometry, p = g.attributes.position.array, n = g.attributes.normal.array;
        let best = 0, distance = Infinity;
        for (let i = 0; i < p.length / 3; i++) {
            const d = (p[3*i] - peak[0]) ** 2 + (p[3*i+1] - peak[1]) ** 2 + (p[3*i+2] - peak[2]) ** 2;
            if (d < distance) { distance = d; best = i; }
        }
        const normal = [n[3*best], n[3*best+1], Math.max(-0.8, Math.min(0.8, n[3*best+2]))];
        v.setMarkers([]); v.viewFrom(normal); v.render(); }""", peak)
    pixels = canvas_pixels(page)
    background = pixels[2, 2]
    drawn = np.any(np.abs(pixels.astype(int) - background.astype(int)) > 8, axis=-1).mean()
    assert 0.05 < drawn < 0.9, drawn
    scale = page.evaluate("() => window.devicePixelRatio")
    x, y = on_screen(page, peak)
    box = page.evaluate("() => { const r = window.socketcadViewer.canvas.getBoundingClientRect(); return [r.left, r.top]; }")
    col, row = int(round((x - box[0]) * scale)), int(round((y - box[1]) * scale))
    near = pixels[max(row - 1, 0):row + 2, max(col - 1, 0):col + 2].reshape(-1, 3).astype(int)
    error = np.abs(near - np.array(VIRIDIS_TOP)).max(axis=1).min()
    assert error <= 12, near.tolist()
    legend = page.locator(".viewer-legend").screenshot()
    top = np.asarray(Image.open(io.BytesIO(legend)).convert("RGB"))
    bar = top[:, top.shape[1] // 2]
    assert np.abs(bar.astype(int) - np.array(VIRIDIS_TOP)).max(axis=1).min() <= 12  # the legend's top is that colour
