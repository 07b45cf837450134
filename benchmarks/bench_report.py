"""Benchmark: the pictures and the whole design report of the sample limb's PTB socket.

The OpenLimbTT mean as shipped, its PTB template socket (pin lock, PETG), and its full interface analysis
(five load cases, on the kept tissue mesh of tests/data/tissue when it is there; not timed). Timed: each
kind of picture (per picture; the deviation map also on bench_socket's 207k-vertex skin, a fine scan's
size), and the whole report (every picture, the HTML page and its PDF, written).
Baseline, measured in the same run: one build of the same socket (this machine is noisy: compare ratios).
Target: the whole report under 20 s.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench_socket import big_smooth_limb
from timing import seconds

from socketcad.biomech.analysis import analyse_socket
from socketcad.design.fabrication import fabrication_sheet
from socketcad.design.pipeline import design_socket, prepared_limb
from socketcad.design.rectify import rectify
from socketcad.design.socket import SocketSpec, build_socket
from socketcad.design.templates import template_plan
from socketcad.operations._design import rectified
from socketcad.operations._common import Capture, load
from socketcad.report import pictures
from socketcad.report.document import write_report
from socketcad.report.plots import VolumePoint
from socketcad.report.reports import Design, design_report

TARGET_SECONDS = 20.0
SPEC = SocketSpec(socket_type="ptb", liner="silicone_locking_6", closure="pin_lock_icelock", adapter="lock_housing_4h",
                  material="petg", stage="test", k_level=3)
KEPT_MESHES = Path(__file__).resolve().parents[1] / "tests" / "data" / "tissue"


def main() -> int:
    console = Console(width=150)
    limb = prepared_limb(load("sample:openlimb-tt-mean", Capture()))
    plan = template_plan("ptb", limb)
    designed = design_socket(limb, SPEC, plan)
    build_s, _ = seconds(lambda: build_socket(designed.rectification.rectified_limb(), SPEC), 3)
    sheet = fabrication_sheet(designed.socket)
    console.print("analysing (not timed) ...")
    result = analyse_socket(limb, designed.socket.solid, sheet, 80.0, 3, cache=KEPT_MESHES if KEPT_MESHES.is_dir() else None)
    summary, maps = result.summary(), result.maps()
    solid, skin = designed.socket.solid, designed.rectification.skin
    trend = [VolumePoint(f"2026-0{i + 1}-01", change, 0, "none") for i, change in enumerate((0.0, -1.8, -3.5, -6.0))]
    kinds = {
        "limb with bones and landmarks": lambda: pictures.limb_figures(limb),
        "rectification deviation map": lambda: pictures.deviation_figures(limb, skin, designed.rectification.deviation_mm),
        "socket with trimline and openings": lambda: pictures.socket_figures(solid, sheet, limb.side),
        "pressure per case, 3D and unrolled": lambda: pictures.pressure_figures(limb, maps, summary),
        "shear per case, unrolled": lambda: pictures.shear_figures(limb, maps, summary),
        "follow-up change map": lambda: pictures.change_figures(limb, designed.rectification.deviation_mm, "visit"),
        "volume trend": lambda: [pictures.volume_figure(trend)],
    }
    table = Table(title=f"report pictures of the sample limb ({len(limb.skin.vertices):,} skin vertices), median of 2")
    for column in ("picture", "count", "s each", "each / socket build"):
        table.add_column(column, justify="right")
    for name, make in kinds.items():
        time_s, made = seconds(make, 2)
        each = time_s / len(made)
        table.add_row(name, str(len(made)), f"{each:.2f}", f"{each / build_s:.2f}")
    big = big_smooth_limb()  # a fine scan's size: does a picture's time grow with the vertices?
    big_rectification = rectify(big, template_plan("ptb", big))
    time_s, made = seconds(lambda: pictures.deviation_figures(big, big_rectification.skin,
                                                              big_rectification.deviation_mm), 2)
    table.add_row(f"deviation map, {len(big.skin.vertices):,}-vertex skin", str(len(made)), f"{time_s / len(made):.2f}",
                  f"{time_s / len(made) / build_s:.2f}")
    console.print(table)
    design = Design(limb, designed.rectification, rectified(designed.rectification, []), solid, sheet, (summary, maps))
    with tempfile.TemporaryDirectory() as folder:
        def whole():
            document = design_report(design, "BENCH-001")
            return document, write_report(document, Path(folder) / "r.html", Path(folder) / "r.pdf")

        report_s, (document, written) = seconds(whole, 2)
        size_mb = (written.html.stat().st_size + written.pdf.stat().st_size) / 1e6
    console.print(f"socket build {build_s:.2f} s (median of 3); whole report {report_s:.1f} s "
                  f"({len(document.figures)} pictures, {written.pages} PDF pages, HTML + PDF {size_mb:.1f} MB) = "
                  f"{report_s / build_s:.1f} socket builds")
    met = report_s < TARGET_SECONDS
    console.print(f"whole report {report_s:.1f} s (target < {TARGET_SECONDS:g} s): " + ("met" if met else "NOT met"))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
