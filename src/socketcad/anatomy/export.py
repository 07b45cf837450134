"""Write a captured limb to a mesh or AOP file (millimetres)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from socketcad.anatomy.limb import Limb
from socketcad.geometry import aop, formats


def limb_mesh(limb: Limb, keep_pose: bool = False) -> trimesh.Trimesh:
    """Skin and bones as one mesh, in the anatomical frame or back in the input pose (mm)."""
    parts = [limb.skin, *limb.bones.values()]
    mesh = trimesh.util.concatenate(parts) if len(parts) > 1 else limb.skin.copy()
    if keep_pose:
        mesh = trimesh.Trimesh(limb.frame.to_input(mesh.vertices), mesh.faces, process=False, validate=False)
        if np.linalg.det(limb.frame.rotation) < 0:
            mesh.faces = mesh.faces[:, ::-1]  # a mirrored frame turns the winding inside out
    return mesh


def _aop_options(limb: Limb) -> dict:
    """What an AOP of the limb states besides its radii: side and comments."""
    return {"side": {"left": "LEFT", "right": "RIGHT"}.get(limb.side, "NONE"),
            "comments": (f"socketcad: {limb.source}", "units mm; spoke 0 anterior, counter-clockwise from above")}


def limb_aop(limb: Limb, spokes: int = 72, slice_mm: float = 2.0) -> aop.AopShape:
    """The skin as an AOP shape in the anatomical frame (spoke 0 anterior)."""
    return aop.mesh_to_aop(limb.skin, n_spokes=spokes, slice_spacing_mm=slice_mm, **_aop_options(limb))


def write_limb(
    limb: Limb, path: Path, fmt: str, *, keep_pose: bool = False,
    spokes: int = 72, slice_mm: float = 2.0, ascii_stl: bool = False,
) -> None:
    """Write the limb as ``fmt`` (a name in geometry.formats: stl, obj, ply, off, 3mf or aop), atomically.

    A cylindrical format (AOP) holds the skin only and is always in the anatomical frame.
    """
    kind = formats.get_format(fmt)
    if kind.cylindrical:
        kind.write(limb.skin, path, spokes=spokes, slice_mm=slice_mm, **_aop_options(limb))
    else:
        kind.write(limb_mesh(limb, keep_pose), path, ascii_stl=ascii_stl)
