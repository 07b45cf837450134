"""Flat figures (matplotlib, Agg: no screen): the unrolled pressure map with its regional flags, and the
limb's volume over a case's follow-ups with the sock-ply advice."""

from __future__ import annotations

import io as _io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from socketcad.report.render import ColourScale
from socketcad.report.unrolled import UnrolledMap

__all__ = ["RegionMark", "VolumePoint", "unrolled_figure", "volume_trend_figure"]

ANGLE_TICKS = {-180: "posterior", -90: "medial", 0: "anterior", 90: "lateral", 180: "posterior"}


def _figure(width_in: float, height_in: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=110, layout="constrained")


def _png(figure) -> bytes:
    buffer = _io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


@dataclass(frozen=True)
class RegionMark:
    """A tolerance region on the unrolled map: its share of each cell (h, a) 0-1, and its flag."""

    name: str
    share: np.ndarray
    over_tolerance: bool
    text: str  # e.g. "fibular head 142 kPa > 130"


def unrolled_figure(field: UnrolledMap, scale: ColourScale, regions: Sequence[RegionMark] = (), title: str = "") -> bytes:
    """PNG: the field over angle x height, its colour bar in the scale's units; each region outlined and
    named (over tolerance: cyan, solid, with its figures; within: white, dashed). Cyan and white stand out
    on the dark-to-yellow pressure maps; red would not."""
    figure = _figure(7.6, 4.6)
    axes = figure.add_subplot()
    axes.set_facecolor("#ffffff")
    image = axes.imshow(np.ma.masked_invalid(field.values), origin="lower", extent=field.extent, aspect="auto",
                        cmap=scale.cmap, vmin=scale.low, vmax=scale.high, interpolation="nearest")
    figure.colorbar(image, ax=axes, label=scale.title, fraction=0.05)
    for mark in regions:
        if mark.share.max() < 0.5:
            continue
        colour, style, width = ("#00e5ff", "solid", 1.8) if mark.over_tolerance else ("#ffffff", "dashed", 0.9)
        axes.contour(field.angles_deg, field.heights_mm, mark.share, levels=[0.5], colors=[colour],
                     linestyles=[style], linewidths=width)
        rows, cols = np.nonzero(mark.share >= 0.5)
        angles = np.radians(field.angles_deg[cols])  # a circular mean: a posterior region straddles +/-180
        where = (np.degrees(np.arctan2(np.sin(angles).mean(), np.cos(angles).mean())), field.heights_mm[rows].max())
        if mark.over_tolerance:
            axes.annotate(mark.text, where, xytext=(0, 5), textcoords="offset points", ha="center", fontsize=7.5,
                          color="#003a40", bbox=dict(boxstyle="round,pad=0.2", fc="#e0fbff", ec="#00a5b8", alpha=0.9))
        else:
            axes.annotate(mark.name, where, xytext=(0, 3), textcoords="offset points", ha="center", fontsize=6.5,
                          color="white")
    axes.set_xticks(list(ANGLE_TICKS), [f"{name}\n{angle:+d}°" for angle, name in ANGLE_TICKS.items()])
    axes.set_xlim(-180, 180)
    axes.set_xlabel("angle around the limb's long axis (degrees, + towards lateral)")
    axes.set_ylabel("height above the distal end (mm)")
    axes.set_title(title, fontsize=10)
    return _png(figure)


@dataclass(frozen=True)
class VolumePoint:
    """One follow-up: when (ISO date), the volume change against the baseline (%), socks worn, the advice."""

    date: str
    volume_change_pct: float
    socks_ply: int
    advice: str


def volume_trend_figure(points: list[VolumePoint], accuracy_pct: float, sock_pct: dict[int, float]) -> bytes:
    """PNG: volume change (%) at each follow-up, the fabrication accuracy band (+/- ``accuracy_pct``) and the
    volume one to three sock plies take (``sock_pct``: ply -> %), each visit labelled with its advice."""
    figure = _figure(7.0, 3.6)
    axes = figure.add_subplot()
    x = np.arange(len(points))
    changes = [p.volume_change_pct for p in points]
    axes.axhspan(-accuracy_pct, accuracy_pct, color="#cfe8cf", label=f"fabrication accuracy ±{accuracy_pct:g} %")
    for ply, pct in sorted(sock_pct.items()):
        axes.axhline(-pct, color="#999999", linewidth=0.7, linestyle="dashed")
        axes.text(len(points) - 0.5, -pct, f"{ply}-ply sock -{pct:g} %", fontsize=7, va="bottom", ha="right",
                  color="#666666")
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.plot(x, changes, marker="o", color="#1f4e99", label="volume change vs baseline")
    for i, point in enumerate(points):
        axes.annotate(f"{point.volume_change_pct:+.1f} %\n{point.advice}\n({point.socks_ply}-ply worn)",
                      (i, point.volume_change_pct), xytext=(0, 8), textcoords="offset points", ha="center",
                      fontsize=7)
    axes.set_xticks(x, [p.date for p in points], fontsize=8)
    axes.set_xlim(-0.6, max(len(points) - 0.4, 0.6))
    low = min([-max(sock_pct.values(), default=accuracy_pct) * 1.15, *changes]) - 1.0
    axes.set_ylim(low, max([accuracy_pct * 2.0, *changes]) + 2.5)
    axes.set_ylabel("volume change (%)")
    axes.set_xlabel("follow-up visit")
    axes.legend(fontsize=7, loc="upper left")
    return _png(figure)
