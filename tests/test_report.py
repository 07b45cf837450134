"""The design report: the demo's, and `socketcad report` from files: it opens in headless Chromium with no
error and every picture loaded; its PDF's pages and text hold the case reference, the socket type and the
peak pressures; bad inputs give one line, exit 2 and no report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pypdf import PdfReader

from socketcad import operations as ops
from browser import open_page

KEPT_MESHES = Path(__file__).parent / "data" / "tissue"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, ops.demo(ops.DemoRequest(out=out, mesh_cache=KEPT_MESHES))


def pdf_pages(path: Path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


def test_demo_writes_its_report_with_every_output(demo):
    out, result = demo
    assert result.report == str(out / "report.html")
    assert {str(out / name) for name in ("report.html", "report.pdf", "analysis/interface-maps.npz")} <= set(result.written)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_demo_report_opens_in_chromium_with_every_picture(demo):
    out, _ = demo
    page = open_page(out / "report.html")
    assert page.errors == []
    assert page.images >= 14 and page.broken_images == []
    assert "DEMO-001" in page.title and "DEMO-001" in page.text
    for section in ("Shape capture", "Rectification", "Socket and fabrication sheet", "Wall strength",
                    "Dynamic fitting: interface pressure and shear"):
        assert section in page.text


def test_demo_pdf_pages_and_text(demo):
    out, result = demo
    summary = json.loads((out / "analysis" / "interface-summary.json").read_text())
    pages = pdf_pages(out / "report.pdf")
    text = "\n".join(pages)
    assert "DEMO-001" in pages[0] and all("DEMO-001" in page for page in pages)  # on every page's header
    assert "PTB" in text and result.sheet.socket_type == "ptb"
    for case in ("standing",):
        assert f"{summary['cases'][case]['peak_pressure_kpa']:.0f}" in text
    # each section with pictures begins a page, in order; the first page holds the facts and the evaluation
    starts = [next((i for i, page in enumerate(pages) if page.startswith(title)), None)
              for title in ("Shape capture", "Rectification", "Socket and fabrication sheet",
                            "Dynamic fitting: interface pressure and shear")]
    assert None not in starts and starts == sorted(starts) and starts[0] >= 1, starts
    assert len(pages) >= starts[-1] + 1


def test_report_from_files(cli, demo, tmp_path):
    out, _ = demo
    html = tmp_path / "reports" / "R-17.html"
    result = cli("report", "sample:openlimb-tt-mean", out / "socket.stl", "--template", "ptb", "--analysis",
                 out / "analysis", "--reference", "R-17", "-o", html, "--json")
    assert result.code == 0, result.stderr
    written = json.loads(result.stdout)
    assert written["html"] == str(html) and written["pdf"] == str(html.with_suffix(".pdf"))
    assert written["pages"] == len(PdfReader(html.with_suffix(".pdf")).pages) >= 5
    assert written["figures"] == 14
    assert "R-17" in html.read_text()


def _no_report(folder: Path) -> bool:
    return not folder.exists() or not list(folder.iterdir())


@pytest.mark.parametrize("problem", ["missing socket", "missing analysis", "not html", "another limb's analysis",
                                     "template and plan"])
def test_bad_input_gives_one_line_and_no_report(cli, demo, tmp_path, problem):
    out, _ = demo
    target = tmp_path / "reports"
    args = {"source": "sample:openlimb-tt-mean", "socket": out / "socket.stl", "-o": target / "r.html"}
    extra: list = ["--analysis", out / "analysis"]
    if problem == "missing socket":
        args["socket"] = tmp_path / "none.stl"
    elif problem == "missing analysis":
        extra = ["--analysis", tmp_path / "no-analysis"]
    elif problem == "not html":
        args["-o"] = target / "r.pdf"
    elif problem == "another limb's analysis":
        args["source"] = "sample:ampscan-tt-scan"
        extra += ["--side", "right", "--force"]  # past the sheet's check: the maps do not fit this skin
    else:
        extra += ["--template", "ptb", "--plan", tmp_path / "plan.yaml"]
    result = cli("report", args["source"], args["socket"], "-o", args["-o"], *extra)
    assert result.code == 2, (result.code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert _no_report(target)


def test_a_reference_with_markup_is_shown_as_text():
    from io import BytesIO

    from socketcad.report.document import Report, Section, html_text, pdf_bytes

    reference = 'A"B</style><script>x</script>'
    html = html_text(Report("Socket design report", reference, "", (Section("Part", ("text",)),)))
    assert "<script>" not in html and "&lt;/style&gt;&lt;script&gt;" in html
    pdf, pages = pdf_bytes(html)
    [page] = PdfReader(BytesIO(pdf)).pages
    assert pages == 1 and f"Socket design report - {reference}" in page.extract_text()  # the running header
