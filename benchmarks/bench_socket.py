"""Benchmark: building a socket from a ~200,000-vertex rectified limb.

The OpenLimbTT mean (landmarks from its bones), refined to about 200k vertices by one Loop
subdivision (smooth, like a fine scan; bench_rectify's flat split keeps the 3 mm facets,
whose creases a 10 mm offset folds at) and a split to 1 mm edges, rectified by the PTB
template; then a pin-lock PETG test socket is built
(liner offset, trimline cut, wall, distal block, adapter holes, lock housing, pin channel).
Baseline, measured in the same run: manifold3d's union of the socket with a cube of
its size (one boolean of the same mesh; this machine is noisy: compare ratios).
Target: under 5 s.
"""

from __future__ import annotations

import sys

import manifold3d
from rich.console import Console

from dataclasses import replace

import trimesh

from timing import report, seconds

from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import load_limb
from socketcad.design.rectify import rectify
from socketcad.design.socket import SocketSpec, build_socket
from socketcad.design.templates import template_plan
from socketcad.geometry import solid
from socketcad.geometry.intersect import self_intersections

TARGET_SECONDS = 5.0
SPEC = SocketSpec(socket_type="ptb", liner="silicone_locking_6", closure="pin_lock_icelock", adapter="lock_housing_4h")


def big_smooth_limb():
    """The OpenLimbTT mean with landmarks, its skin Loop-subdivided once and split to 1 mm edges (~207k vertices)."""
    limb = locate_landmarks(load_limb("sample:openlimb-tt-mean"))
    vertices, faces = trimesh.remesh.subdivide_loop(limb.skin.vertices, limb.skin.faces, iterations=1)
    vertices, faces = trimesh.remesh.subdivide_to_size(vertices, faces, max_edge=1.0)
    return replace(limb, skin=trimesh.Trimesh(vertices, faces, process=False, validate=False))


def main() -> int:
    console = Console(width=150)
    limb = big_smooth_limb()
    model = rectify(limb, template_plan("ptb", limb)).rectified_limb()
    build, socket = seconds(lambda: build_socket(model, SPEC), 5)
    body = solid.to_manifold(socket.solid)
    low, high = socket.solid.bounds
    cube = manifold3d.Manifold.cube(tuple(high - low)).translate(tuple(low + 0.5 * (high - low)))
    baseline, _ = seconds(lambda: solid.from_manifold(body + cube), 3)
    crossings = len(self_intersections(socket.solid))  # not timed: the result must be a clean solid, not only fast
    report(console, "socket build (median of 5)",
           ("model vertices", "socket faces", "crossing face pairs", "one boolean s", "build s", "build / boolean"),
           (f"{len(model.skin.vertices):,}", f"{len(socket.solid.faces):,}", f"{crossings}", f"{baseline:.2f}",
            f"{build:.2f}", f"{build / baseline:.1f}"),
           "socket build", build, TARGET_SECONDS, digits=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
