"""Benchmark: a 10-modification plan applied to a ~200,000-vertex limb.

The OpenLimbTT mean skin (landmarks from its bones) is subdivided to about 200k vertices;
the plan uses every kind of modification. Baseline, measured in the same run: trimesh
computing the vertex normals of the same mesh once (this machine is noisy: compare
ratios). "first" includes building the per-limb caches (vertex normals, incidence and
Laplacian matrices) that later plans on the same limb reuse. Target: under 0.2 s.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import trimesh
from rich.console import Console

from timing import report, seconds

from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import load_limb
from socketcad.design.plan import plan_from_dict
from socketcad.design.rectify import rectify

TARGET_SECONDS = 0.2
MAX_EDGE_MM = 1.0  # subdivision edge length giving about 200k vertices on the OpenLimbTT mean


def region(landmark: str, width: float, height: float, falloff: float, **shift) -> dict:
    return {"landmark": landmark, "width_mm": width, "height_mm": height, "falloff_mm": falloff, **shift}


PLAN = {
    "schema_version": 1,
    "name": "benchmark: every kind of modification",
    "modifications": [
        {"kind": "reduction", "profile": [{"level_pct": 0, "reduction_pct": 1}, {"level_pct": 30, "reduction_pct": 4},
                                          {"level_pct": 100, "reduction_pct": 4}]},
        {"kind": "distal", "elongation_mm": 4.0, "length_mm": 40.0},
        {"kind": "push", "depth_mm": 8.0, "region": region("mpt", 30, 12, 20)},
        {"kind": "push", "depth_mm": 4.0, "region": region("medial_tibial_flare", 25, 40, 15)},
        {"kind": "push", "depth_mm": 5.0, "region": region("popliteal", 40, 25, 20)},
        {"kind": "relief", "depth_mm": 4.0, "region": region("fibular_head", 30, 30, 12)},
        {"kind": "relief", "depth_mm": 3.0, "region": region("tibial_crest", 12, 60, 10)},
        {"kind": "relief", "depth_mm": 4.0, "region": region("distal_tibia", 30, 30, 15)},
        {"kind": "flare", "flare_mm": 4.0, "height_mm": 25.0},
        {"kind": "smooth", "iterations": 3, "region": region("mpt", 50, 40, 15)},
    ],
}


def big_limb():
    """The OpenLimbTT mean with landmarks, its skin subdivided to about 200k vertices."""
    limb = locate_landmarks(load_limb("sample:openlimb-tt-mean"))
    vertices, faces = trimesh.remesh.subdivide_to_size(limb.skin.vertices, limb.skin.faces, max_edge=MAX_EDGE_MM)
    return replace(limb, skin=trimesh.Trimesh(vertices, faces, process=False, validate=False))


def main() -> int:
    console = Console(width=150)
    limb = big_limb()
    plan = plan_from_dict(PLAN)
    baseline, _ = seconds(lambda: trimesh.Trimesh(limb.skin.vertices, limb.skin.faces, process=False).vertex_normals, 5)
    first, _ = seconds(lambda: rectify(limb, plan))
    again, _ = seconds(lambda: rectify(limb, plan), 7)
    report(console, f"rectify: {len(plan.modifications)}-modification plan (median of 7 after the first)",
           ("vertices", "faces", "trimesh vertex normals s", "first s", "rectify s", "rectify / baseline"),
           (f"{len(limb.skin.vertices):,}", f"{len(limb.skin.faces):,}", f"{baseline:.3f}", f"{first:.3f}",
            f"{again:.3f}", f"{again / baseline:.1f}"),
           "10-modification plan", again, TARGET_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
