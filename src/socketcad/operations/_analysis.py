"""Dynamic fitting (step 5): interface pressure and shear of a built socket on its limb."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from pydantic import Field

from socketcad.biomech.analysis import analyse_socket, check_analysis_inputs
from socketcad.biomech.interface import InterfaceSummary
from socketcad.biomech.mesh import DEFAULT_EDGE_MM
from socketcad.biomech.tolerance import DEFAULT_TRANSTIBIAL, read_tolerances
from socketcad.design.fabrication import output_paths, read_sheet
from socketcad.errors import InputError
from socketcad.geometry import io
from socketcad.operations._common import Capture, Progress, Request, Source, load, silent

__all__ = ["AnalyseRequest", "Analysis", "analyse"]


class AnalyseRequest(Request):
    source: Source  # the limb the socket was built for (a scan without bones gets the mean bones fitted)
    socket: Path  # the socket STL a build wrote, its -sheet.json beside it
    output: Path  # folder for interface-maps.npz and interface-summary.json
    capture: Capture = Capture()
    body_mass_kg: float = Field(80.0, allow_inf_nan=False)
    k_level: Union[int, str] = 3  # K0-K4: heel strike and swing loads
    tolerances: Optional[Path] = None  # regional tolerance table (YAML/JSON list) replacing the defaults
    edge_mm: float = Field(DEFAULT_EDGE_MM, gt=0, allow_inf_nan=False)  # tissue mesh edge length
    mesh_cache: Optional[Path] = None  # folder of kept tissue meshes; None: mesh anew
    quick: bool = False  # the preview: donning and standing on a coarse mesh, seconds instead of a minute


class Analysis(InterfaceSummary):
    """The interface summary, and the files written (maps, summary)."""

    written: dict[str, str] = {}


def analyse(request: AnalyseRequest, progress: Progress = silent) -> Analysis:
    """Predict interface pressure and shear: donning, standing, heel strike, stance rotation, swing pull-off."""
    check_analysis_inputs(request.body_mass_kg, request.k_level)  # refused before any work
    if request.quick and request.edge_mm != DEFAULT_EDGE_MM:
        raise InputError("`quick` sets its own tissue mesh: give `quick` or `edge_mm`, not both")
    tolerances = read_tolerances(request.tolerances) if request.tolerances is not None else DEFAULT_TRANSTIBIAL
    output = request.output
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a folder; give a folder for the maps")
    socket = request.socket
    sheet_path = output_paths(socket)["sheet"] if socket.suffix.lower() == ".stl" else None
    if sheet_path is None or not sheet_path.exists():
        raise InputError(f"{socket}: give the socket .stl a build wrote, with its -sheet.json beside it")
    sheet = read_sheet(sheet_path)
    limb = load(request.source, request.capture, progress)
    solid = io.read_mesh(socket)
    result = analyse_socket(limb, solid, sheet, request.body_mass_kg, request.k_level, tolerances, request.edge_mm,
                            request.mesh_cache, request.capture.force, str(socket), progress, request.quick)
    paths = result.save(output)
    return Analysis(**dict(result.summary()), written={kind: str(path) for kind, path in paths.items()})
