"""The pictures of each result, as report figures: the limb and its landmarks, the rectification's deviation
map, the socket with its trimline and openings, interface pressure and shear per load case (3D and
unrolled), and the follow-up change map and volume trend.

Every map states its units in its colour bar; 3D views are fixed in the limb frame (render.VIEWS), so two
limbs or two revisions are seen from the same side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import trimesh

from socketcad.anatomy.limb import Limb
from socketcad.biomech.interface import InterfaceMaps, InterfaceSummary
from socketcad.design.fabrication import FabricationSheet
from socketcad.report.document import Figure
from socketcad.report.plots import RegionMark, VolumePoint, unrolled_figure, volume_trend_figure
from socketcad.report.render import ColourScale, Layer, Marker, Picture, diverging_scale, render
from socketcad.report.unrolled import SurfaceSampling, angle_height, unroll_surface

__all__ = ["ANGLE_STEP_DEG", "CASE_TITLES", "HEIGHT_STEP_MM", "case_scale", "change_figures", "deviation_figures",
           "limb_figures", "loaded_cases", "pressure_figures", "shear_figures", "socket_figures", "socket_markers",
           "volume_figure"]

SKIN = (0.87, 0.74, 0.63)
BONE = (0.93, 0.91, 0.82)
PATELLA = (0.80, 0.20, 0.15)  # the patella picked out: it shows which side is anterior
SOCKET = (0.55, 0.68, 0.82)
CASE_TITLES = {"donning": "donning", "standing": "standing", "heel_strike": "heel strike",
               "stance_rotation": "stance rotation", "swing_pull_off": "swing pull-off"}
ANGLE_STEP_DEG, HEIGHT_STEP_MM = 3.0, 3.0  # the unrolled maps' cells
TRIM_SECTOR_DEG = 4.0  # a trimline point's height: the socket's highest point within this angle of it


def label(name: str) -> str:
    """A landmark's or region's name as a label: fibular_head -> fibular head, mpt -> MPT."""
    return name.upper() if len(name) <= 3 else name.replace("_", " ")


def _figures(pictures: Sequence[Picture], stem: str, caption: str) -> list[Figure]:
    return [Figure(f"{stem}-{p.view}", p.png, f"{caption} ({p.view} view)") for p in pictures]


def landmark_markers(limb: Limb) -> list[Marker]:
    return [Marker(label(mark.name), mark.point_mm, mark.normal) for mark in limb.landmarks.values()]


def limb_figures(limb: Limb, views: Sequence[str] = ("anterior", "lateral")) -> list[Figure]:
    """The limb (landmarks located) with its landmarks; its bones, if any, through a translucent skin with
    the patella in red."""
    skin = Layer(limb.skin.vertices, limb.skin.faces, colour=SKIN, opacity=0.35 if limb.bones else 1.0)
    bones = [Layer(bone.vertices, bone.faces, colour=PATELLA if name == "patella" else BONE)
             for name, bone in limb.bones.items()]
    said = "skin over its bones (patella red)" if limb.bones else "skin (the scan has no bones)"
    pictures = render([skin, *bones], views, limb.side, markers=landmark_markers(limb), title="limb")
    return _figures(pictures, "limb", f"The limb as captured, in its frame: {said}, with its landmarks")


def deviation_figures(limb: Limb, rectified: trimesh.Trimesh, deviation_mm: np.ndarray,
                      views: Sequence[str] = ("anterior", "posterior", "lateral", "medial")) -> list[Figure]:
    """The rectified shape coloured by its signed deviation from the limb (mm, + outwards: relief; -
    inwards: load), on a diverging scale centred on 0, with the limb's landmarks."""
    scale = diverging_scale(deviation_mm, "deviation mm (+ out)")
    layer = Layer(rectified.vertices, rectified.faces, scalars=deviation_mm)
    pictures = render([layer], views, limb.side, scale, landmark_markers(limb), title="rectification")
    return _figures(pictures, "rectification", "Rectification: signed deviation of the rectified shape from the "
                                               "scan, mm (red outwards: relief; blue inwards: loading)")


def socket_markers(solid: trimesh.Trimesh, sheet: FabricationSheet, side: str) -> list[Marker]:
    """Markers at the sheet's trimline points (the socket's top edge at each point's angle) and where each
    opening's axis leaves the wall."""
    vertices = np.asarray(solid.vertices)
    angle, height = angle_height(vertices, side)
    markers = []
    for point in sheet.trimline:
        near = np.abs((angle - point.angle_deg + 180.0) % 360.0 - 180.0) <= TRIM_SECTOR_DEG
        if near.any():
            top = np.flatnonzero(near)[np.argmax(height[near])]
            outward = np.array([vertices[top, 0], vertices[top, 1], 0.0])
            outward /= np.linalg.norm(outward) or 1.0
            markers.append(Marker(f"trim {label(point.name)}", vertices[top], outward))
    for opening in sheet.openings:
        if opening.start_mm is None or opening.direction is None:
            continue
        start, direction = np.asarray(opening.start_mm), np.asarray(opening.direction)
        along = (vertices - start) @ direction
        across = np.linalg.norm(vertices - start - np.outer(along, direction), axis=1)
        ring = across <= opening.diameter_mm / 2.0 + 1.5
        if ring.any():  # the far end of the hole through the wall, seen from outside
            exit_point = start + direction * (along[ring].max() if direction[2] < 0.5 else along[ring].min())
            normal = direction if direction[2] < 0.5 else -direction
            markers.append(Marker(f"{opening.name} {opening.diameter_mm:g} mm", exit_point, normal))
    return markers


def socket_figures(solid: trimesh.Trimesh, sheet: FabricationSheet, side: str,
                   views: Sequence[str] = ("anterior", "lateral", "posterior", "distal")) -> list[Figure]:
    """The socket with its trimline points and openings labelled."""
    pictures = render([Layer(solid.vertices, solid.faces, colour=SOCKET)], views, side,
                      markers=socket_markers(solid, sheet, side), title=f"{sheet.socket_type.upper()} socket")
    return _figures(pictures, "socket", f"The {sheet.stage} socket ({sheet.socket_type.upper()}, "
                                        f"{sheet.material.name}, wall {sheet.wall_thickness_mm:g} mm) with its "
                                        "trimline points and openings")


def case_scale(fields: dict[str, np.ndarray], cases: Sequence[str], cmap: str, title: str) -> ColourScale:
    """One scale for every load case's map of a field (0 to its highest value over ``cases``), so they compare."""
    return ColourScale(cmap, 0.0, max(float(fields[c].max()) for c in cases) or 1.0, title)


def _over_tolerance_markers(limb: Limb, maps: InterfaceMaps, summary: InterfaceSummary, case: str) -> list[Marker]:
    """A marker at the peak of each region over its tolerance in ``case``."""
    from socketcad.geometry.measure import vertex_normals

    normals = vertex_normals(limb.skin)
    pressure, markers = maps.pressure_kpa[case], []
    for index, region in enumerate(summary.cases[case].regions or []):
        if not region.over_tolerance:
            continue
        where = np.flatnonzero(maps.region_label == (index if region.region != "elsewhere" else -1))
        peak = where[np.argmax(pressure[where])]
        markers.append(Marker(f"{label(region.region)} {region.peak_kpa:.0f} > {region.tolerance_kpa:.0f} kPa",
                              limb.skin.vertices[peak], normals[peak]))
    return markers


def _region_shares(limb: Limb, maps: InterfaceMaps, count: int, angle_step_deg: float, height_step_mm: float,
                   sampling: SurfaceSampling) -> list[np.ndarray]:
    """Each of the first ``count`` tolerance regions' share (h, a) 0-1 of every unrolled cell (the regions are
    the same in every load case)."""
    return [np.nan_to_num(unroll_surface(limb.skin, (maps.region_label == index).astype(float), limb.side,
                                         angle_step_deg, height_step_mm, sampling).values) for index in range(count)]


def _region_marks(summary: InterfaceSummary, case: str, shares: list[np.ndarray]) -> list[RegionMark]:
    return [RegionMark(label(region.region), share, region.over_tolerance,
                       f"{label(region.region)} {region.peak_kpa:.0f} > {region.tolerance_kpa:.0f} kPa")
            for region, share in zip(summary.cases[case].regions or [], shares) if region.region != "elsewhere"]


def loaded_cases(summary: InterfaceSummary) -> list[str]:
    """The load cases with a load (not donning), in the order they ran."""
    return [case for case in summary.cases if case != "donning"]


def pressure_figures(limb: Limb, maps: InterfaceMaps, summary: InterfaceSummary,
                     views: Sequence[str] = ("anterior", "posterior"), angle_step_deg: float = ANGLE_STEP_DEG,
                     height_step_mm: float = HEIGHT_STEP_MM, sampling: SurfaceSampling | None = None) -> list[Figure]:
    """Per loaded case: the nodal pressure on the skin from ``views`` (one scale for all cases; the peak of
    each region over tolerance marked) and the sensel pressure unrolled (regions outlined: cyan over
    tolerance, white within). ``sampling``: the skin's for the unrolled grid, to share with shear_figures."""
    cases = loaded_cases(summary)
    if not cases:
        return []
    scale = case_scale(maps.pressure_kpa, cases, "inferno", "pressure kPa")
    sensel_scale = case_scale(maps.sensel_pressure_kpa, cases, "inferno", "sensel pressure kPa")
    sampling = sampling or SurfaceSampling.for_grid(limb.skin, angle_step_deg, height_step_mm)
    shares = _region_shares(limb, maps, len(summary.cases[cases[0]].regions or []), angle_step_deg, height_step_mm,
                            sampling)
    figures = []
    for case in cases:
        title = CASE_TITLES.get(case, case)
        layer = Layer(limb.skin.vertices, limb.skin.faces, scalars=maps.pressure_kpa[case])
        pictures = render([layer], views, limb.side, scale, _over_tolerance_markers(limb, maps, summary, case),
                          title=f"pressure, {title}")
        figures += _figures(pictures, f"pressure-{case}", f"Interface pressure, {title}: nodal values, kPa, one "
                                                          "scale for every load case; labelled: each region over "
                                                          "its tolerance, at its peak")
        field = unroll_surface(limb.skin, maps.sensel_pressure_kpa[case], limb.side, angle_step_deg,
                               height_step_mm, sampling)
        png = unrolled_figure(field, sensel_scale, _region_marks(summary, case, shares), f"sensel pressure, {title}")
        figures.append(Figure(f"pressure-{case}-unrolled", png,
                              f"Interface pressure, {title}, unrolled around the limb as a socket pressure-mapping "
                              "system lays out its sensors: sensel-averaged, kPa; outlines: tolerance regions "
                              "(cyan, solid: over tolerance; white, dashed: within)"))
    return figures


def shear_figures(limb: Limb, maps: InterfaceMaps, summary: InterfaceSummary, angle_step_deg: float = ANGLE_STEP_DEG,
                  height_step_mm: float = HEIGHT_STEP_MM, sampling: SurfaceSampling | None = None) -> list[Figure]:
    """Per loaded case: the interface shear (kPa) unrolled, one scale for all cases."""
    cases = loaded_cases(summary)
    if not cases:
        return []
    scale = case_scale(maps.shear_kpa, cases, "viridis", "shear kPa")
    sampling = sampling or SurfaceSampling.for_grid(limb.skin, angle_step_deg, height_step_mm)
    figures = []
    for case in cases:
        title = CASE_TITLES.get(case, case)
        field = unroll_surface(limb.skin, maps.shear_kpa[case], limb.side, angle_step_deg, height_step_mm, sampling)
        figures.append(Figure(f"shear-{case}-unrolled", unrolled_figure(field, scale, (), f"shear, {title}"),
                              f"Interface shear, {title}, unrolled: mean per cell, kPa, one scale for every case"))
    return figures


def change_figures(baseline: Limb, change_mm: np.ndarray, when: str,
                   views: Sequence[str] = ("anterior", "posterior")) -> list[Figure]:
    """A follow-up's change map on the baseline skin: signed deviation of the later scan (mm, + the limb
    grew), grey above the compared part (NaN)."""
    scale = diverging_scale(change_mm[np.isfinite(change_mm)], "change mm (+ grew)")
    layer = Layer(baseline.skin.vertices, baseline.skin.faces, scalars=change_mm)
    pictures = render([layer], views, baseline.side, scale, landmark_markers(baseline), title=f"follow-up {when}")
    return _figures(pictures, f"followup-{when}", f"Follow-up of {when}: change of the limb against the baseline "
                                                  "scan, mm (red: grew; blue: shrank; grey: not compared)")


def volume_figure(points: Sequence[VolumePoint]) -> Figure:
    """The volume trend over a case's follow-ups with the sock-ply advice (published sock volumes)."""
    from socketcad.clinic.followup import FABRICATION_ACCURACY_PCT, SOCK_VOLUME_PCT

    png = volume_trend_figure(list(points), FABRICATION_ACCURACY_PCT, SOCK_VOLUME_PCT)
    return Figure("volume-trend", png, "Limb volume at each follow-up against the baseline scan (%), with the "
                                       f"fabrication accuracy (±{FABRICATION_ACCURACY_PCT:g} %, Sanders 2007) and "
                                       "the volume one to three sock plies take up (Jasken & Hall 2018)")
