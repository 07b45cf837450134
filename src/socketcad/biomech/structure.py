"""Wall strength of a prosthetic socket by linear finite elements (scikit-fem, quadratic tetrahedra).

The wall is the inner surface pushed outward by its per-vertex thickness, meshed as prism layers split
into tetrahedra (``layered_wall_mesh``). It is clamped where the distal adapter holds it, and the limb's
load enters over the inner surface as a force plus a moment (``analyse_wall``, or ``wall_strength`` from
arrays and an ISO 10328 load case). Quadratic (P2) tetrahedra carry the through-thickness bending of a
thin wall without the shear locking of linear ones. Units: mm, N, MPa.

Validated (tests/test_structure.py): a clamped tube under an end shear against Timoshenko beam theory
(tip deflection and bending stress M c / I, within 5 %), mesh convergence of peak stress and deflection,
equilibrium (clamp reaction = applied load) and a uniform-tension patch check (F / A within 1 %).

Estimates, not validated here: the boundary conditions (a rigid clamp stands in for the adapter and
its bolts), the load transfer from limb to socket (a rigid-body-compatible traction on the chosen inner
surface stands in for liner contact and soft tissue), the load line (socketcad.biomech.loads), and the
strength of printed material (anisotropic, weakest across layers; pass that value as ``strength_mpa``).

Stress is reported per element at the 4 points of the degree-2 rule. Next to the clamp the wall's
edge is a stress singularity of the idealised boundary condition: it grows without bound as the mesh is
refined, so the peak used for the safety factor leaves out a band ``clamp_band_mm`` wide next to the
clamped nodes; the peak inside it is reported too. The distal adapter region itself needs its own check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyamg
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg
from scipy.spatial import cKDTree
from skfem import Basis, ElementTetP2, FacetBasis, LinearForm, MeshTet

from socketcad.biomech.elastic import (
    cauchy_stress,
    lame_parameters,
    p2_nodes,
    positively_oriented,
    prism_tetrahedra,
    rigid_body_modes,
    stiffness_matrix,
    vector_dofs,
    von_mises,
)
from socketcad.biomech.loads import LoadCase
from socketcad.errors import InputError

# Degree-2 rule (4 points): exact for the stiffness of affine P2 tetrahedra (gradients are linear).
STIFFNESS_INTORDER = 2
# Linear traction times quadratic test functions on flat facets: degree 3 is exact.
LOAD_INTORDER = 3
# Relative residual of CG: displacements then agree with a 1e-8 solve to about 1e-8 (measured).
CG_RTOL = 1e-6
MAX_CG_ITERATIONS = 300
DEFAULT_CLAMP_BAND_MM = 10.0
_MAX_LAYERS_DETECTED = 8


@dataclass(frozen=True)
class WallStrength:
    """Summary of one wall analysis; stresses in MPa, deflection in mm, time in s."""

    peak_von_mises_mpa: float  # outside the clamp band: the converged peak, used for the safety factor
    max_deflection_mm: float  # largest displacement magnitude of any node
    safety_factor: float  # strength / peak_von_mises_mpa
    dofs: int
    elements: int
    seconds: float
    notes: tuple[str, ...]
    peak_von_mises_at_clamp_mpa: float  # every quadrature point: includes the clamp-edge singularity
    clamp_band_mm: float
    solver: str  # which solver and how it converged (CG iterations to its tolerance, or the direct fallback)


@dataclass(frozen=True, eq=False)
class WallSolution:
    """Full field of one solve: P2 nodes (N) are the mesh vertices first, then edge midpoints."""

    node_mm: np.ndarray  # (N, 3) node positions
    displacement_mm: np.ndarray  # (N, 3)
    point_mm: np.ndarray  # (E, Q, 3) quadrature points
    stress_mpa: np.ndarray  # (E, Q, 3, 3) Cauchy stress at the quadrature points
    von_mises_mpa: np.ndarray  # (E, Q)
    clamp_distance_mm: np.ndarray  # (E, Q) distance of each quadrature point to the nearest clamped vertex
    reaction_force_n: np.ndarray  # (3,) sum of the clamp's reaction forces
    reaction_moment_nmm: np.ndarray  # (3,) their moment about the load's reference point
    load_facets: int
    dofs: int
    elements: int
    seconds: float
    solver: str


def layered_wall_mesh(
    vertices: np.ndarray, faces: np.ndarray, directions: np.ndarray, thickness_mm: np.ndarray, layers: int = 2
) -> MeshTet:
    """Solid wall of ``layers`` prism layers grown from an inner surface along ``directions``.

    vertices (n, 3) mm, faces (m, 3), directions (n, 3) unit outward, thickness_mm (n,) > 0 (or one value).
    Node k * n + i is inner vertex i moved k / layers of its thickness outward (k = 0..layers), so the
    inner surface is nodes 0..n-1. Each prism is split into 3 positively oriented tetrahedra.
    """
    vertices, faces, directions, thickness_mm = _checked_surface(vertices, faces, directions, thickness_mm)
    if not isinstance(layers, (int, np.integer)) or layers < 1:
        raise InputError(f"layers must be a whole number >= 1, got {layers!r}")
    n = len(vertices)
    fractions = np.arange(layers + 1) / layers
    points = (vertices[None] + fractions[:, None, None] * (directions * thickness_mm[:, None])[None]).reshape(-1, 3)
    tetrahedra = positively_oriented(points, prism_tetrahedra(faces, n, layers))
    return MeshTet(np.ascontiguousarray(points.T), np.ascontiguousarray(tetrahedra.T), sort_t=False)


def analyse_wall(
    mesh: MeshTet,
    fixed: np.ndarray,
    load_nodes: np.ndarray,
    force_n: np.ndarray,
    moment_nmm: np.ndarray,
    youngs_modulus_mpa: float,
    poisson: float,
    strength_mpa: float,
    point_mm: np.ndarray | None = None,
    clamp_band_mm: float = DEFAULT_CLAMP_BAND_MM,
) -> WallStrength:
    """Peak von Mises stress, deflection and safety factor of a clamped wall under one load.

    fixed, load_nodes: (V,) bool masks over ``mesh`` vertices: clamped nodes (all three displacements
    zero) and nodes whose boundary facets take the load. force_n (3,) N and moment_nmm (3,) N mm about
    point_mm (3,) mm (default: the centroid of the clamped vertices), spread as in ``solve_wall``.
    """
    if not np.isfinite(strength_mpa) or strength_mpa <= 0:
        raise InputError(f"strength_mpa must be a positive number of MPa, got {strength_mpa}")
    if not np.isfinite(clamp_band_mm) or clamp_band_mm < 0:
        raise InputError(f"clamp_band_mm must be a number of mm >= 0, got {clamp_band_mm}")
    solution = solve_wall(mesh, fixed, load_nodes, force_n, moment_nmm, youngs_modulus_mpa, poisson, point_mm)
    away = solution.clamp_distance_mm > clamp_band_mm
    if not away.any():
        raise InputError(f"no part of the wall is farther than clamp_band_mm = {clamp_band_mm} from the clamp")
    peak_mpa = float(solution.von_mises_mpa[away].max())
    peak_at_clamp_mpa = float(solution.von_mises_mpa.max())
    deflection_mm = float(np.linalg.norm(solution.displacement_mm, axis=1).max())
    safety = strength_mpa / peak_mpa if peak_mpa > 0 else float("inf")
    notes = (
        f"peak von Mises at the 4 quadrature points of each tetrahedron more than {clamp_band_mm:g} mm from "
        f"the clamp; within that band the clamp edge is a singularity (peak {peak_at_clamp_mpa:.3g} MPa, "
        "grows with refinement)",
        f"load: force + linear traction (rigid-body-compatible) on {solution.load_facets} boundary facets",
        f"solver: {solution.solver}",
        "linear elastic, isotropic material: printed-layer anisotropy and adhesion are not modelled",
    )
    return WallStrength(
        peak_mpa, deflection_mm, safety, solution.dofs, solution.elements, solution.seconds, notes,
        peak_at_clamp_mpa, float(clamp_band_mm), solution.solver,
    )


def wall_strength(
    vertices: np.ndarray,
    faces: np.ndarray,
    directions: np.ndarray,
    thickness_mm: np.ndarray,
    fixed_vertices: np.ndarray,
    load_vertices: np.ndarray,
    load_case: LoadCase,
    youngs_modulus_mpa: float,
    poisson: float,
    strength_mpa: float,
    layers: int = 2,
    side: str = "right",
    clamp_band_mm: float = DEFAULT_CLAMP_BAND_MM,
) -> WallStrength:
    """``analyse_wall`` of the wall grown from an inner surface under an ISO 10328 ``load_case``.

    fixed_vertices, load_vertices: (n,) bool masks over the inner vertices. A fixed vertex clamps its
    whole through-thickness column; the load enters through the inner surface of the load vertices.
    The load line's moment is taken about the centroid of the fixed inner vertices (the adapter centre).
    """
    n = len(np.asarray(vertices))
    fixed_vertices = _checked_mask(fixed_vertices, n, "fixed_vertices")
    load_vertices = _checked_mask(load_vertices, n, "load_vertices")
    if not fixed_vertices.any():
        raise InputError("fixed_vertices selects no vertex: clamp at least the distal adapter region")
    mesh = layered_wall_mesh(vertices, faces, directions, thickness_mm, layers)
    fixed = np.tile(fixed_vertices, layers + 1)
    load_nodes = np.concatenate([load_vertices, np.zeros(n * layers, dtype=bool)])
    adapter_mm = np.asarray(vertices, dtype=float)[fixed_vertices].mean(axis=0)
    return analyse_wall(
        mesh, fixed, load_nodes, load_case.force_vector_n(), load_case.moment_nmm(side),
        youngs_modulus_mpa, poisson, strength_mpa, point_mm=adapter_mm, clamp_band_mm=clamp_band_mm,
    )


def solve_wall(
    mesh: MeshTet,
    fixed: np.ndarray,
    load_nodes: np.ndarray,
    force_n: np.ndarray,
    moment_nmm: np.ndarray,
    youngs_modulus_mpa: float,
    poisson: float,
    point_mm: np.ndarray | None = None,
) -> WallSolution:
    """Displacement and stress fields of ``mesh`` (linear elastic, P2) clamped at ``fixed``.

    The load is a traction t(x) = F / A + theta x (x - c) on the boundary facets whose three corners are
    load nodes (area A, centroid c): its resultant is F and theta is chosen so that its moment about
    point_mm is moment_nmm. It is the distribution a rigid load spreader would give, integrated against
    the quadratic shape functions (consistent nodal loads), so it converges with the mesh.
    """
    started = time.perf_counter()
    fixed = _checked_mask(fixed, mesh.nvertices, "fixed")
    load_nodes = _checked_mask(load_nodes, mesh.nvertices, "load_nodes")
    force_n = _checked_vector(force_n, "force_n")
    moment_nmm = _checked_vector(moment_nmm, "moment_nmm")
    if not fixed.any():
        raise InputError("fixed selects no node: clamp at least the distal adapter region")
    point_mm = mesh.p.T[fixed].mean(axis=0) if point_mm is None else _checked_vector(point_mm, "point_mm")
    lam, mu = lame_parameters(youngs_modulus_mpa, poisson)

    basis = Basis(mesh, ElementTetP2(), intorder=STIFFNESS_INTORDER)
    gradients = np.stack([phi[0].grad for phi in basis.basis])  # (10, 3, E, Q)
    stiffness = stiffness_matrix(gradients, basis.dx, basis.element_dofs, basis.N, lam, mu)
    facets = _load_facets(mesh, load_nodes)
    load = _load_vector(mesh, facets, force_n, moment_nmm, point_mm)

    node_mm = basis.doflocs.T
    node_fixed = p2_nodes(mesh, basis, fixed)
    free = vector_dofs(np.flatnonzero(~node_fixed))
    columns = _node_columns(mesh, basis)
    displacement = np.zeros(3 * basis.N)
    displacement[free], solver = _solve_free(
        stiffness[free][:, free].tocsr(), load[free], node_mm, ~node_fixed, columns, basis.element_dofs)

    clamped = vector_dofs(np.flatnonzero(node_fixed))
    reaction = (stiffness[clamped] @ displacement - load[clamped]).reshape(-1, 3)
    arm = node_mm[node_fixed] - point_mm
    stress = cauchy_stress(displacement, gradients, basis.element_dofs, lam, mu)
    point = np.moveaxis(np.asarray(basis.global_coordinates()), 0, -1)
    clamp_distance, _ = cKDTree(mesh.p.T[fixed]).query(point.reshape(-1, 3))
    return WallSolution(
        node_mm=node_mm,
        displacement_mm=displacement.reshape(-1, 3),
        point_mm=point,
        stress_mpa=stress,
        von_mises_mpa=von_mises(stress),
        clamp_distance_mm=clamp_distance.reshape(point.shape[:2]),
        reaction_force_n=reaction.sum(axis=0),
        reaction_moment_nmm=np.cross(arm, reaction).sum(axis=0),
        load_facets=len(facets),
        dofs=int(3 * basis.N),
        elements=int(mesh.nelements),
        seconds=time.perf_counter() - started,
        solver=solver,
    )


def _checked_surface(vertices, faces, directions, thickness_mm):
    """The inner surface's arrays as float/int numpy arrays; InputError names the first bad one."""
    vertices = np.asarray(vertices, dtype=float)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not len(vertices) or not np.isfinite(vertices).all():
        raise InputError(f"vertices must be a non-empty (n, 3) array of finite mm, got shape {vertices.shape}")
    n = len(vertices)
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or not len(faces) or not np.issubdtype(faces.dtype, np.integer):
        raise InputError(f"faces must be a non-empty (m, 3) integer array, got shape {faces.shape}")
    if faces.min() < 0 or faces.max() >= n:
        raise InputError(f"faces index vertices 0..{n - 1}, found {faces.min()}..{faces.max()}")
    directions = np.asarray(directions, dtype=float)
    if directions.shape != (n, 3):
        raise InputError(f"directions must be an ({n}, 3) array of unit vectors, got shape {directions.shape}")
    if not np.isfinite(directions).all() or not np.allclose(np.linalg.norm(directions, axis=1), 1.0, atol=1e-6):
        raise InputError("directions must be finite unit vectors (normalise them before meshing the wall)")
    thickness_mm = np.asarray(thickness_mm, dtype=float)
    if thickness_mm.ndim == 0:  # one thickness for the whole wall
        thickness_mm = np.full(n, float(thickness_mm))
    if thickness_mm.shape != (n,) or not np.isfinite(thickness_mm).all() or (thickness_mm <= 0).any():
        raise InputError(f"thickness_mm must be {n} positive finite values in mm")
    return vertices, faces.astype(np.int64), directions, thickness_mm


def _checked_mask(mask, size: int, name: str) -> np.ndarray:
    """``mask`` as a (size,) bool array, or InputError."""
    mask = np.asarray(mask)
    if mask.shape != (size,) or mask.dtype != bool:
        raise InputError(f"{name} must be a boolean mask of {size} entries, got {mask.dtype} of shape {mask.shape}")
    return mask


def _checked_vector(vector, name: str) -> np.ndarray:
    """``vector`` as a finite (3,) float array, or InputError."""
    vector = np.asarray(vector, dtype=float)
    if vector.shape != (3,) or not np.isfinite(vector).all():
        raise InputError(f"{name} must be 3 finite numbers, got shape {vector.shape}")
    return vector


def _load_facets(mesh: MeshTet, load_nodes: np.ndarray) -> np.ndarray:
    """Boundary facets whose three corners are all load nodes; InputError if there are none."""
    boundary = mesh.boundary_facets()
    facets = boundary[load_nodes[mesh.facets[:, boundary]].all(axis=0)]
    if not len(facets):
        raise InputError("load_nodes covers no boundary facet: select whole patches of the inner surface")
    return facets


@LinearForm
def _traction_form(v, w):
    return w["t"] * v


def _load_vector(mesh, facets, force_n, moment_nmm, point_mm) -> np.ndarray:
    """Consistent nodal loads (3N,) of the rigid-body-compatible traction on ``facets``."""
    facet_basis = FacetBasis(mesh, ElementTetP2(), facets=facets, intorder=LOAD_INTORDER)
    x = np.asarray(facet_basis.global_coordinates())  # (3, F, Q)
    area = facet_basis.dx  # (F, Q) quadrature weights times facet Jacobian
    centre = (x * area).sum(axis=(1, 2)) / area.sum()
    r = x - centre[:, None, None]
    # J = integral of |r|^2 I - r r^T: the patch's polar "inertia"; M_centre = J theta for t = theta x r.
    inertia = np.einsum("fq,ifq,ifq->", area, r, r) * np.eye(3) - np.einsum("fq,ifq,jfq->ij", area, r, r)
    moment_centre = moment_nmm - np.cross(centre - point_mm, force_n)
    theta = np.linalg.solve(inertia, moment_centre)
    traction = force_n[:, None, None] / area.sum() + np.cross(theta, r, axis=0)
    load = np.stack([_traction_form.assemble(facet_basis, t=traction[k]) for k in range(3)], axis=1)
    return load.ravel()


def _node_columns(mesh: MeshTet, basis: Basis) -> np.ndarray | None:
    """(N,) inner vertex under each P2 node if ``mesh`` is a layered wall, else None.

    A layered wall has nodes_per_layer n with an edge from every vertex i to i + n; an edge midpoint
    belongs to the column of its lower-index end. Only the solver's coarse space uses this.
    """
    count = mesh.nvertices
    edges = np.sort(mesh.edges, axis=0).astype(np.int64)
    keys = edges[0] * count + edges[1]
    for layers in range(1, _MAX_LAYERS_DETECTED + 1):
        if count % (layers + 1):
            continue
        n = count // (layers + 1)
        below = np.arange(count - n, dtype=np.int64)
        if np.isin(below * count + below + n, keys).all():
            columns = np.empty(basis.N, dtype=np.int64)
            columns[basis.nodal_dofs[0]] = np.arange(count) % n
            columns[basis.edge_dofs[0]] = edges[0] % n
            return columns
    return None


def _solve_free(matrix, rhs, node_mm, free_nodes, columns, element_dofs) -> tuple[np.ndarray, str]:
    """Solve the clamped system by CG + smoothed aggregation AMG; sparse LU if that fails to converge.

    On a layered wall the two coarse levels are geometric: all nodes of a through-thickness column,
    then a patch of neighbouring columns, each carrying 6 rigid-body modes: a shell-like coarse space.
    pyamg's own aggregation of a thin wall coarsens it badly (140+ iterations instead of about 25).
    """
    modes = rigid_body_modes(node_mm[free_nodes])
    block = matrix.tobsr(blocksize=(3, 3))
    smoother = ("chebyshev", {"degree": 3})
    if columns is None:
        hierarchy = pyamg.smoothed_aggregation_solver(
            block, B=modes, max_coarse=500, presmoother=smoother, postsmoother=smoother, coarse_solver="splu")
        name, cycle = "CG + smoothed aggregation AMG (V-cycle)", "V"
    else:
        hierarchy = pyamg.smoothed_aggregation_solver(
            block, B=modes, strength=None, aggregate=_wall_aggregates(columns, free_nodes, element_dofs),
            smooth=("jacobi", {"weighting": "local"}),  # row-sum weights: no eigenvalue estimate, ~2 s less setup
            max_levels=3, max_coarse=1, presmoother=smoother, postsmoother=smoother, coarse_solver="splu")
        name, cycle = "CG + 3-level smoothed aggregation, W-cycle (wall columns, column patches)", "W"
    residuals: list[float] = []
    solution = hierarchy.solve(
        rhs, tol=CG_RTOL, accel="cg", maxiter=MAX_CG_ITERATIONS, cycle=cycle, residuals=residuals)
    if residuals[-1] <= CG_RTOL * np.linalg.norm(rhs) * (1 + 1e-9):
        return solution, f"{name}: {len(residuals) - 1} iterations to relative residual {CG_RTOL:g}"
    direct = sparse_linalg.splu(
        matrix.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    return direct.solve(rhs), f"sparse LU ({name} did not converge in {len(residuals) - 1} iterations)"


def _wall_aggregates(columns, free_nodes, element_dofs) -> list:
    """pyamg predefined aggregates: free nodes -> their column, columns -> patches of neighbouring columns."""
    used, node_to_column = np.unique(columns[free_nodes], return_inverse=True)
    to_columns = sparse.csr_matrix(
        (np.ones(len(node_to_column)), (np.arange(len(node_to_column)), node_to_column)),
        shape=(len(node_to_column), len(used)))
    # Columns are neighbours where a tetrahedron spans both; clamped columns drop out of the graph.
    corner = np.searchsorted(used, columns[element_dofs[:4]])  # (4, E)
    corner_used = used[np.minimum(corner, len(used) - 1)] == columns[element_dofs[:4]]
    a, b = np.triu_indices(4, 1)
    keep = corner_used[a] & corner_used[b] & (corner[a] != corner[b])
    graph = sparse.coo_matrix(
        (np.ones(int(keep.sum())), (corner[a][keep], corner[b][keep])), shape=(len(used), len(used))).tocsr()
    graph = ((graph + graph.T) > 0).astype(float).tocsr()
    patches = pyamg.aggregation.standard_aggregation(graph)[0].tocsr()
    patch = np.full(len(used), -1)
    patch[np.repeat(np.arange(len(used)), np.diff(patches.indptr))] = patches.indices
    lonely = patch < 0  # a column with no free neighbour is a patch of its own
    patch[lonely] = patches.shape[1] + np.arange(int(lonely.sum()))
    _, patch = np.unique(patch, return_inverse=True)
    to_patches = sparse.csr_matrix(
        (np.ones(len(patch)), (np.arange(len(patch)), patch)), shape=(len(patch), int(patch.max()) + 1))
    return [("predefined", {"AggOp": to_columns}), ("predefined", {"AggOp": to_patches})]
