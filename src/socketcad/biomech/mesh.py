"""Volume mesh of the residual limb for interface mechanics: soft tissue between skin and bones, and the
liner as a layer of prisms over the skin.

The tissue is the skin's volume below a level just under the top of the scan, less the bones (manifold3d
booleans), tetrahedralised by fTetWild (pytetwild, MPL-2.0; TetGen is AGPL and gmsh GPL, so neither fits
this MIT project). fTetWild's tetrahedra are of guaranteed quality but its surface only follows the input
within an envelope (0.2 % of the diagonal, about 0.6 mm here); results are carried back to the skin's own
vertices by nearest-point interpolation. Bones and the proximal cut face are one rigid body (the knee is
held in this static analysis: the thigh above the scan moves with the femur).

fTetWild is not repeatable: two runs on the same surface, even on one thread, give different meshes, and
the peak pressures of one design differ by several per cent between them. So a tissue mesh can be kept
in a cache folder under a hash of what it is made from, and every analysis of one limb (the revisions
of its socket) then runs on the same mesh: their differences are the designs', not the mesher's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import trimesh
from skfem import MeshTet

from socketcad.anatomy.bone_fit import with_mean_bones
from socketcad.anatomy.limb import Limb, surface_bytes
from socketcad.biomech.elastic import positively_oriented, prism_tetrahedra
from socketcad.errors import GeometryError, InputError
from socketcad.geometry import io, solid
from socketcad.geometry.deform import vertex_face_incidence, vertex_normals

DEFAULT_EDGE_MM = 12.0  # target tetrahedron edge: the default resolution (mesh convergence: README)
ENVELOPE = 2e-3  # fTetWild's surface envelope, relative to the bounding box diagonal
# The quick preview's mesh: fTetWild refines the surface until it lies within the envelope, so the edge
# alone barely coarsens it (20 mm at the default envelope: 67,000 degrees of freedom against 96,000 at
# 12 mm); at 1 % (about 3 mm on a limb) it is 21,000. Its error is measured (QUICK_NOTE, interface.py).
QUICK_EDGE_MM = 20.0
QUICK_ENVELOPE = 1e-2
TOP_MARGIN_MM = 5.0  # the tissue ends this far below the top of the scan (or of an open bone)
CUT_BAND_MM = 1.5  # boundary faces centred this close to the cut level belong to it
TISSUE, LINER = 0, 1
# fTetWild's skin is faceted at the envelope's scale: the liner grows along normals averaged this many
# times over neighbouring faces, or neighbouring prisms can cross in a tight fold.
LINER_NORMAL_SMOOTHING = 3
MAX_LINER_NORMAL_SMOOTHING = 30  # a scan's skin may need more passes where small faces' normals cross
LINER_LAYERS = 1  # prism layers through the liner's thickness
CACHE_VERSION = 1  # part of the cache key: raise it when the meshing changes, and old files are passed by


@dataclass(frozen=True, eq=False)
class LimbMesh:
    """Tetrahedral limb: tissue and liner (mm).

    mesh: the tetrahedra (tissue first, then the liner's prisms). material: (E,) TISSUE or LINER.
    skin_faces: (k, 3) mesh vertices of the skin (the tissue's outer boundary, outward winding).
    outer_faces: (k, 3) the liner's outer surface over each skin face, same order: where the socket
    touches. rigid: (V,) vertices moving with the bones (bone surfaces and the proximal cut face).
    """

    mesh: MeshTet
    material: np.ndarray
    skin_faces: np.ndarray
    outer_faces: np.ndarray
    rigid: np.ndarray
    top_mm: float
    liner_thickness_mm: float
    edge_mm: float
    seconds: float
    notes: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class TissueMesh:
    """Soft tissue only: points (V, 3) mm, positively oriented tetrahedra (E, 4), boundary classes."""

    points: np.ndarray
    tetrahedra: np.ndarray
    skin_faces: np.ndarray  # (k, 3) outward
    rigid: np.ndarray  # (V,) bool
    top_mm: float
    edge_mm: float
    seconds: float
    notes: tuple[str, ...]


def tissue_mesh(limb: Limb, edge_mm: float = DEFAULT_EDGE_MM, cache: Path | None = None,
                envelope: float = ENVELOPE) -> TissueMesh:
    """Tetrahedra of the soft tissue between ``limb``'s skin and bones, below its top, of about ``edge_mm``,
    their surface within ``envelope`` (of the limb's diagonal) of the skin and bones. A limb without
    bones (a scan) gets the OpenLimbTT mean bones fitted into it, and the notes say so. With a ``cache``
    folder, a mesh made earlier from the same skin, bones and settings is read from it, and a new one is
    written to it (atomically; a folder that cannot be written is passed by, and the notes say so)."""
    if not np.isfinite(edge_mm) or not 2.0 <= edge_mm <= 40.0:
        raise InputError(f"the tissue mesh edge must be 2-40 mm, got {edge_mm}")
    if not np.isfinite(envelope) or not 1e-4 <= envelope <= 2e-2:
        raise InputError(f"the tissue mesh envelope must be 0.01-2 % of the limb's size, got {envelope * 100:g} %")
    started = time.perf_counter()
    fitted_note = ()
    if not limb.bones:
        limb = with_mean_bones(limb)
        fitted_note = (limb.notes[-1],)
    if cache is None:
        return _meshed(limb, edge_mm, envelope, fitted_note, started)
    path = Path(cache) / f"tissue-{tissue_key(limb, edge_mm, envelope)}.npz"
    kept = read_tissue(path)
    if kept is not None:
        return replace(kept, seconds=time.perf_counter() - started,
                       notes=kept.notes + (f"tissue mesh read from the cache {path}",))
    mesh = _meshed(limb, edge_mm, envelope, fitted_note, started)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tissue(mesh, path)
    except OSError as exc:
        return replace(mesh, notes=mesh.notes + (f"tissue mesh not cached ({path}: {exc.strerror})",))
    return mesh


def tissue_key(limb: Limb, edge_mm: float, envelope: float = ENVELOPE) -> str:
    """Hash (hex) of what a tissue mesh is made from: skin, bones (coordinates to 0.1 um, faces) and the
    meshing settings."""
    digest = hashlib.sha256(json.dumps({
        "version": CACHE_VERSION, "edge_mm": float(edge_mm), "envelope": float(envelope), "top_margin_mm": TOP_MARGIN_MM,
        "cut_band_mm": CUT_BAND_MM, "bones": sorted(limb.bones)}).encode())
    for surface in [limb.skin] + [limb.bones[name] for name in sorted(limb.bones)]:
        digest.update(surface_bytes(surface))
    return digest.hexdigest()[:32]


def write_tissue(mesh: TissueMesh, path: Path) -> None:
    """Save ``mesh`` as a compressed npz, atomically."""
    arrays = {"points": mesh.points, "tetrahedra": mesh.tetrahedra.astype(np.int32),
              "skin_faces": mesh.skin_faces.astype(np.int32), "rigid": mesh.rigid,
              "facts": np.array(json.dumps({"top_mm": mesh.top_mm, "edge_mm": mesh.edge_mm, "notes": mesh.notes}))}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    io.write_atomic(Path(path), write)


def read_tissue(path: Path) -> TissueMesh | None:
    """A mesh saved by ``write_tissue``, or None if the file is missing, unreadable or inconsistent
    (a cache entry to make again, not an error)."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            points, tetrahedra = saved["points"], saved["tetrahedra"].astype(np.int64)
            skin_faces, rigid = saved["skin_faces"].astype(np.int64), saved["rigid"]
            facts = json.loads(str(saved["facts"]))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    count = len(points)
    consistent = (points.ndim == 2 and points.shape[1] == 3 and tetrahedra.ndim == 2 and tetrahedra.shape[1] == 4
                  and skin_faces.ndim == 2 and skin_faces.shape[1] == 3 and rigid.shape == (count,)
                  and tetrahedra.size and 0 <= tetrahedra.min() and tetrahedra.max() < count
                  and skin_faces.size and 0 <= skin_faces.min() and skin_faces.max() < count)
    if not consistent:
        return None
    return TissueMesh(points, tetrahedra, skin_faces, rigid.astype(bool), float(facts["top_mm"]),
                      float(facts["edge_mm"]), 0.0, tuple(facts["notes"]))


def _meshed(limb: Limb, edge_mm: float, envelope: float, fitted_note: tuple[str, ...], started: float) -> TissueMesh:
    """fTetWild's mesh of ``limb`` (with bones)."""
    import pytetwild  # imported here: a compiled dependency only analysis needs

    open_tops = [b.vertices[:, 2].max() for b in limb.bones.values() if not b.is_watertight]
    top = float(min([limb.skin.vertices[:, 2].max()] + open_tops)) - TOP_MARGIN_MM
    body = _closed_below(limb.skin, top)
    for bone in limb.bones.values():
        inside = bone.vertices[:, 2] < top
        if inside.any():
            body = body - (solid.to_manifold(bone) if bone.is_watertight else _closed_below(bone, top))
    surface = solid.from_manifold(body)
    # fTetWild writes a scratch file (__tracked_surface.stl) into the working folder: run it elsewhere
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        points, tetrahedra = pytetwild.tetrahedralize(
            np.array(surface.vertices, dtype=np.float64), np.array(surface.faces, dtype=np.int32),
            edge_length_abs=float(edge_mm), epsilon=float(envelope), stop_energy=50.0, num_opt_iter=3, num_threads=0)
    points, tetrahedra = _compacted(np.asarray(points, dtype=np.float64), np.asarray(tetrahedra, dtype=np.int64))
    tetrahedra = _oriented(points, tetrahedra)
    skin_faces, rigid = _classified_boundary(points, tetrahedra, limb, top, edge_mm)
    notes = (f"tissue: {len(tetrahedra)} tetrahedra, {len(points)} vertices, edge {edge_mm:g} mm (fTetWild); "
             f"the skin, bones and the cut at {top:.0f} mm above the distal end within {envelope * 100:g} % of the "
             "limb's size",) + fitted_note
    return TissueMesh(points, tetrahedra, skin_faces, rigid, top, float(edge_mm), time.perf_counter() - started, notes)


def with_liner(tissue: TissueMesh, liner_thickness_mm: float, layers: int = LINER_LAYERS) -> LimbMesh:
    """The tissue with a liner of ``liner_thickness_mm`` grown outward over its skin (``layers`` prism
    layers, each quadratic through its thickness)."""
    started = time.perf_counter()
    if not np.isfinite(liner_thickness_mm) or liner_thickness_mm <= 0:
        raise InputError(f"the liner thickness must be a positive number of mm, got {liner_thickness_mm}")
    skin_vertices, local = np.unique(tissue.skin_faces, return_inverse=True)
    local = local.reshape(-1, 3)
    skin = trimesh.Trimesh(tissue.points[skin_vertices], local, process=False)
    count, on_skin = len(tissue.points), len(skin_vertices)
    new_index = count + np.arange(layers * on_skin)
    prisms = prism_tetrahedra(local, on_skin, layers)  # local: layer 0 = skin, layer k = k-th grown
    lookup = np.concatenate([skin_vertices, new_index])
    fractions = np.arange(1, layers + 1) / layers
    normals, passes = _smoothed(skin, vertex_normals(skin), LINER_NORMAL_SMOOTHING), LINER_NORMAL_SMOOTHING
    while True:  # smoothed further only where a prism folds: a scan's small faces (the AmpScan scan: 1 prism)
        grown = (skin.vertices[None] + liner_thickness_mm * fractions[:, None, None] * normals[None]).reshape(-1, 3)
        points = np.vstack([tissue.points, grown])
        try:
            liner = positively_oriented(points, lookup[prisms])
            break
        except GeometryError:
            if passes >= MAX_LINER_NORMAL_SMOOTHING:
                raise
            normals, passes = _smoothed(skin, normals, 1), passes + 1
    tetrahedra = np.vstack([tissue.tetrahedra, liner])
    material = np.concatenate([np.full(len(tissue.tetrahedra), TISSUE), np.full(len(liner), LINER)])
    rigid = np.concatenate([tissue.rigid, np.zeros(layers * on_skin, dtype=bool)])
    mesh = MeshTet(np.ascontiguousarray(points.T), np.ascontiguousarray(tetrahedra.T), sort_t=False)
    notes = tissue.notes + (f"liner: {liner_thickness_mm:g} mm, {len(liner)} tetrahedra in {layers} layer(s) over "
                            f"{len(local)} skin faces, grown along normals smoothed {passes} times",)
    outer = new_index[(layers - 1) * on_skin:][local]
    return LimbMesh(mesh, material, tissue.skin_faces, outer, rigid, tissue.top_mm, float(liner_thickness_mm),
                    tissue.edge_mm, tissue.seconds + time.perf_counter() - started, notes)


def _smoothed(surface: trimesh.Trimesh, normals: np.ndarray, passes: int) -> np.ndarray:
    """Unit vertex normals (n, 3) averaged ``passes`` times through the faces (area-weighted)."""
    incidence = vertex_face_incidence(surface)
    area = surface.area_faces[:, None]
    for _ in range(passes):
        normals = incidence @ (area * normals[surface.faces].mean(axis=1))
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return normals


def facet_indices(mesh: MeshTet, faces: np.ndarray) -> np.ndarray:
    """Index in ``mesh.facets`` of each face (k, 3); GeometryError if one is not a facet."""
    n = np.int64(mesh.nvertices)
    keys = _facet_keys(np.sort(mesh.facets.T, axis=1), n)
    order = np.argsort(keys)
    wanted = _facet_keys(np.sort(faces, axis=1), n)
    where = np.searchsorted(keys, wanted, sorter=order)
    found = order[np.minimum(where, len(order) - 1)]
    if not np.array_equal(keys[found], wanted):
        raise GeometryError("a surface face is not a facet of the volume mesh")
    return found


def _facet_keys(sorted_faces: np.ndarray, n: np.int64) -> np.ndarray:
    a, b, c = sorted_faces.astype(np.int64).T
    return (a * n + b) * n + c


def _closed_below(mesh: trimesh.Trimesh, level_mm: float):
    """The solid (manifold3d) enclosed by ``mesh`` cut at z = level_mm, the cut closed flat."""
    vertices, faces, _ = solid.cut_below(mesh.vertices, mesh.faces, mesh.vertices[:, 2] - level_mm)
    return solid.closed_at_top(trimesh.Trimesh(vertices, faces, process=False))


def _compacted(points: np.ndarray, tetrahedra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    used, tetrahedra = np.unique(tetrahedra, return_inverse=True)
    return points[used], tetrahedra.reshape(-1, 4)


def _oriented(points: np.ndarray, tetrahedra: np.ndarray) -> np.ndarray:
    a, b, c, d = (points[tetrahedra[:, k]] for k in range(4))
    volume = np.einsum("ij,ij->i", np.cross(b - a, c - a), d - a)
    if (np.abs(volume) < 1e-12 * np.abs(volume).max()).any():
        raise GeometryError("the tissue mesh has flat tetrahedra")
    tetrahedra = tetrahedra.copy()
    negative = volume < 0
    tetrahedra[negative, 2], tetrahedra[negative, 3] = tetrahedra[negative, 3].copy(), tetrahedra[negative, 2].copy()
    return tetrahedra


def _boundary_faces(tetrahedra: np.ndarray) -> np.ndarray:
    """Faces (k, 3) that belong to one tetrahedron only, wound outward."""
    local = np.array([[1, 2, 3], [0, 3, 2], [0, 1, 3], [0, 2, 1]])  # outward for positive tetrahedra
    faces = tetrahedra[:, local].reshape(-1, 3)
    _, index, counts = np.unique(np.sort(faces, axis=1), axis=0, return_index=True, return_counts=True)
    return faces[index[counts == 1]]


def _classified_boundary(points, tetrahedra, limb: Limb, top: float, edge_mm: float):
    """Skin faces (k, 3) and the rigid vertex mask (V,): a boundary face is skin where its centre lies
    nearer the skin than any bone and not at the cut; the rest (bones, cut face) is rigid."""
    faces = _boundary_faces(tetrahedra)
    centre = points[faces].mean(axis=1)
    _, to_skin = solid.closest_points(limb.skin, centre)
    bones = trimesh.util.concatenate(list(limb.bones.values()))
    _, to_bone = solid.closest_points(bones, centre)
    normal = np.cross(points[faces[:, 1]] - points[faces[:, 0]], points[faces[:, 2]] - points[faces[:, 0]])
    upward = normal[:, 2] > 0.7 * np.linalg.norm(normal, axis=1)
    # fTetWild's cut face wanders a few mm below the plane: faces facing up within an edge of it belong too
    cut = (centre[:, 2] > top - CUT_BAND_MM) | (upward & (centre[:, 2] > top - edge_mm))
    skin = (to_skin <= to_bone) & ~cut
    if not skin.any():
        raise GeometryError("no skin found on the tissue mesh's boundary")
    rigid = np.zeros(len(points), dtype=bool)
    rigid[faces[~skin].ravel()] = True
    return faces[skin], rigid
