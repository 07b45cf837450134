"""Nearly incompressible elasticity with frictional contact against a rigid surface (scikit-fem, P2/P0).

Formulation. Quadratic displacements with a piecewise constant pressure condensed element by element
(the P2/P0 element, inf-sup stable): the shear term 2 mu e(u):e(v) is integrated exactly (degree-2
rule) and the bulk term lam div(u) div(v) at each element's centroid, where the linear div(u) of an
affine P2 element takes its mean. This keeps nu = 0.45-0.49 free of volumetric locking (checked
against the Lame thick cylinder, tests/test_fem.py) and the matrix symmetric positive definite, so
CG with algebraic multigrid solves it.

Contact. Gauss-point-to-surface penalty against a rigid surface: at each quadrature point of the
contact facets the penetration d (mm) along the surface normal gives a pressure k_n d; friction is
regularised Coulomb (tangential penalty k_t, return mapping to mu p), with a stick anchor per point
carried from one load increment to the next. Each increment is solved by Newton iterations on the
active set (symmetric tangent; sliding points use the secant mu p / |slip|).

Rigid parts. Nodes tied to a rigid body move as u = t + theta x (x - c): their degrees of freedom
are replaced by the body's six (``RigidTie``), which takes an applied force and moment.

Units: mm, N, MPa (N/mm^2); the penalty stiffness in MPa/mm.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pyamg
import trimesh
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg
from skfem import Basis, ElementTetP2, FacetBasis, MeshTet

from socketcad.biomech.structure import lame_parameters, rigid_body_modes, stiffness_matrix, vector_dofs
from socketcad.errors import GeometryError
from socketcad.geometry.solid import closest_faces

STIFFNESS_INTORDER = 2  # exact for the shear term of affine P2 tetrahedra
BULK_INTORDER = 1  # the centroid: the P0 projection of the (linear) divergence
CONTACT_INTORDER = 4  # 6 points per facet: enough to see a quadratic facet's penetration
NEWTON_RTOL = 1e-3  # residual relative to the largest of the applied and contact force norms
MAX_NEWTON = 25
CG_RTOL = 1e-7
MAX_CG = 800
_TRACE = bool(os.environ.get("SOCKETCAD_TRACE_NEWTON"))  # progress of each Newton iteration on stdout


def bulk_and_shear(mesh: MeshTet, youngs_mpa: np.ndarray, poisson: np.ndarray) -> tuple[sparse.csr_matrix, Basis]:
    """P2/P0 stiffness (3N, 3N) of ``mesh`` with per-element Young's modulus (E,) MPa and Poisson ratio (E,).

    Returns the matrix and the P2 basis (nodes: vertices first, then edge midpoints)."""
    lam, mu = lame_parameters(np.asarray(youngs_mpa, dtype=np.float64), np.asarray(poisson, dtype=np.float64))
    full = Basis(mesh, ElementTetP2(), intorder=STIFFNESS_INTORDER)
    centre = Basis(mesh, ElementTetP2(), intorder=BULK_INTORDER)
    shear = stiffness_matrix(np.stack([phi[0].grad for phi in full.basis]), full.dx, full.element_dofs,
                             full.N, 0.0, mu)
    bulk = stiffness_matrix(np.stack([phi[0].grad for phi in centre.basis]), centre.dx, centre.element_dofs,
                            centre.N, lam, 0.0)
    return (shear + bulk).tocsr(), full


@dataclass(frozen=True, eq=False)
class RigidTie:
    """Nodes (mask over P2 nodes) that move with one rigid body about ``centre_mm`` (3,).

    ``expand`` (3N, 3F + 6) maps the reduced unknowns (free node displacements, then the body's
    translation mm and rotation rad) to all nodal displacements."""

    tied: np.ndarray  # (N,) bool
    centre_mm: np.ndarray
    expand: sparse.csr_matrix
    free_dofs: np.ndarray  # (3F,) full dof index of each free reduced unknown

    @classmethod
    def of(cls, node_mm: np.ndarray, tied: np.ndarray, centre_mm: np.ndarray,
           fixed_dofs: np.ndarray | None = None) -> RigidTie:
        """Tie ``tied`` (N,) nodes to a body about ``centre_mm``; ``fixed_dofs`` (3N,) bool are held at zero."""
        n = len(node_mm)
        free_dofs = vector_dofs(np.flatnonzero(~tied))
        if fixed_dofs is not None:
            free_dofs = free_dofs[~fixed_dofs[free_dofs]]
        tied_dofs = vector_dofs(np.flatnonzero(tied))
        modes = rigid_body_modes(node_mm[tied], centre_mm)
        free_part = sparse.csr_matrix((np.ones(len(free_dofs)), (free_dofs, np.arange(len(free_dofs)))),
                                      shape=(3 * n, len(free_dofs) + 6))
        rows = np.repeat(tied_dofs, 6)
        cols = np.tile(len(free_dofs) + np.arange(6), len(tied_dofs))
        rigid_part = sparse.csr_matrix((modes.ravel(), (rows, cols)), shape=(3 * n, len(free_dofs) + 6))
        return cls(tied, np.asarray(centre_mm, dtype=np.float64), (free_part + rigid_part).tocsr(), free_dofs)

    @property
    def whole_nodes(self) -> bool:
        """Whether the free unknowns come in (x, y, z) triplets of whole nodes (3 x 3 blocks)."""
        triplets = self.free_dofs.reshape(-1, 3) if len(self.free_dofs) % 3 == 0 else None
        return triplets is not None and bool(((triplets[:, 0] % 3 == 0) & (np.diff(triplets, axis=1) == 1).all(axis=1)).all())


class RigidSurface:
    """A rigid obstacle: an open or closed surface whose face normals point into the obstacle (mm)."""

    def __init__(self, mesh: trimesh.Trimesh, offset_mm: float = 0.0):
        self.mesh = mesh
        self.offset_mm = float(offset_mm)  # the surface moved back out of the obstacle (donning)

    def penetration(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Depth (k,) mm of each point (k, 3) into the obstacle (< 0: gap), unit normal (k, 3) into it,
        and whether the point faces the surface at all (k,) bool: False beyond an open rim."""
        closest, distance, face = closest_faces(self.mesh, points)
        face_normal = self.mesh.face_normals[face]
        along = points - closest
        normal_part = np.einsum("ij,ij->i", along, face_normal)
        lateral = np.linalg.norm(along - normal_part[:, None] * face_normal, axis=1)
        facing = lateral <= 0.5 * np.abs(normal_part) + 1e-6  # the nearest point is not on a rim edge
        depth = np.where(normal_part >= 0, distance, -distance) - self.offset_mm
        direction = np.where(distance[:, None] > 1e-9, along / np.maximum(distance, 1e-12)[:, None], face_normal)
        normal = direction * np.where(normal_part >= 0, 1.0, -1.0)[:, None]
        normal = np.where(distance[:, None] > 1e-9, normal, face_normal)
        return depth, normal, facing


@dataclass
class ContactLaw:
    """Penalty stiffnesses (MPa/mm) and Coulomb friction coefficient of one contact pair."""

    normal_mpa_per_mm: float
    tangential_mpa_per_mm: float
    friction: float


@dataclass(eq=False)
class ContactState:
    """Per quadrature point (F, Q) of the contact facets: stick anchors (F, Q, 3) and whether each
    point had touched by the end of the last converged increment."""

    anchor_mm: np.ndarray
    touching: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> ContactState:
        return cls(np.zeros(shape + (3,)), np.zeros(shape, dtype=bool))


@dataclass(eq=False)
class ContactPoints:
    """Tractions on the body at the contact quadrature points (F, Q): MPa."""

    pressure_mpa: np.ndarray  # (F, Q) >= 0 (< 0 only where held by suction)
    shear_mpa: np.ndarray  # (F, Q, 3) tangential traction on the body
    depth_mm: np.ndarray  # (F, Q) penetration (penalty), < 0 where apart
    position_mm: np.ndarray  # (F, Q, 3) deformed positions
    normal: np.ndarray  # (F, Q, 3) into the obstacle
    active: np.ndarray  # (F, Q) bool
    sliding: np.ndarray  # (F, Q) bool


@dataclass(eq=False)
class ContactProblem:
    """A body (stiffness, P2 basis) with a rigid tie and contact facets against one rigid surface."""

    stiffness: sparse.csr_matrix
    basis: Basis
    tie: RigidTie
    facets: np.ndarray  # boundary facet indices of the mesh that may touch
    surface: RigidSurface
    law: ContactLaw
    facet_basis: FacetBasis = field(init=False)
    reference_mm: np.ndarray = field(init=False)  # (F, Q, 3) quadrature points, undeformed
    phi: np.ndarray = field(init=False)  # (10, F, Q) element shape functions at those points

    def __post_init__(self):
        self.facet_basis = FacetBasis(self.basis.mesh, ElementTetP2(), facets=self.facets, intorder=CONTACT_INTORDER)
        self.reference_mm = np.moveaxis(np.asarray(self.facet_basis.global_coordinates()), 0, -1)
        self.phi = np.stack([phi[0].value for phi in self.facet_basis.basis])

    @property
    def node_mm(self) -> np.ndarray:
        return self.basis.doflocs.T

    def positions(self, displacement: np.ndarray) -> np.ndarray:
        """Deformed quadrature points (F, Q, 3) for nodal displacements (N, 3)."""
        local = displacement[self.facet_basis.element_dofs]  # (10, F, 3)
        return self.reference_mm + np.einsum("afq,afc->fqc", self.phi, local)

    def contact(self, displacement: np.ndarray, state: ContactState, friction: bool,
                held: np.ndarray | None = None) -> tuple[ContactPoints, np.ndarray, sparse.csr_matrix]:
        """Tractions, consistent nodal contact forces (3N,) and tangent (3N, 3N) at ``displacement`` (N, 3).

        held: (F, Q) bool points that may not separate (suction): their pressure may turn negative."""
        x = self.positions(displacement)
        shape = x.shape[:2]
        depth, normal, facing = self.surface.penetration(x.reshape(-1, 3))
        depth, normal, facing = depth.reshape(shape), normal.reshape(shape + (3,)), facing.reshape(shape)
        active = facing & ((depth > 0) | (held if held is not None else False))
        pressure = np.where(active, self.law.normal_mpa_per_mm * depth, 0.0)
        shear = np.zeros(shape + (3,))
        sliding = np.zeros(shape, dtype=bool)
        tangent_scale = np.zeros(shape)
        if friction and self.law.friction > 0:
            anchor = np.where(state.touching[..., None], state.anchor_mm, x)
            slip = x - anchor
            slip -= np.einsum("fqc,fqc->fq", slip, normal)[..., None] * normal
            trial = self.law.tangential_mpa_per_mm * np.linalg.norm(slip, axis=-1)
            limit = self.law.friction * np.abs(pressure)
            sliding = active & (trial > limit)
            scale = np.where(sliding, limit / np.maximum(trial, 1e-300), 1.0) * self.law.tangential_mpa_per_mm
            shear = np.where(active[..., None], -scale[..., None] * slip, 0.0)
            tangent_scale = np.where(active, scale, 0.0)
        traction = -pressure[..., None] * normal + shear  # on the body
        weight = self.facet_basis.dx  # (F, Q)
        dofs = self.facet_basis.element_dofs  # (10, F)
        nodal = np.einsum("afq,fq,fqc->afc", self.phi, weight, traction)
        force = np.zeros((self.basis.N, 3))
        np.add.at(force, dofs, nodal)
        # tangent: sum_q w phi_a phi_b [k_n n n^T + s (I - n n^T)] on active points
        nn = normal[..., :, None] * normal[..., None, :]
        local_block = (np.where(active, self.law.normal_mpa_per_mm, 0.0)[..., None, None] * nn
                       + tangent_scale[..., None, None] * (np.eye(3) - nn))
        touched = np.flatnonzero(active.any(axis=1))
        blocks = np.einsum("afq,bfq,fq,fqij->fabij", self.phi[:, touched], self.phi[:, touched],
                           weight[touched], local_block[touched])
        rows = (3 * dofs[:, touched].T[:, :, None, None, None] + np.arange(3)[None, None, None, :, None])
        cols = (3 * dofs[:, touched].T[:, None, :, None, None] + np.arange(3)[None, None, None, None, :])
        rows, cols = np.broadcast_arrays(rows, cols)
        size = 3 * self.basis.N
        matrix = sparse.csr_matrix((blocks.ravel(), (rows.ravel(), cols.ravel())), shape=(size, size))
        points = ContactPoints(pressure, shear, depth, x, normal, active, sliding)
        return points, force.ravel(), matrix

    def commit(self, points: ContactPoints, state: ContactState) -> ContactState:
        """The stick anchors after a converged increment: sliding points keep only the elastic slip."""
        anchor = np.where(state.touching[..., None], state.anchor_mm, points.position_mm)
        if self.law.tangential_mpa_per_mm > 0:
            shear_norm = np.linalg.norm(points.shear_mpa, axis=-1)
            elastic = points.shear_mpa / self.law.tangential_mpa_per_mm  # = -(elastic slip)
            anchor = np.where(points.sliding[..., None] & (shear_norm[..., None] > 0),
                              points.position_mm + elastic, anchor)
        touching = points.active
        return ContactState(np.where(touching[..., None], anchor, 0.0), touching)


@dataclass(frozen=True, eq=False)
class StepResult:
    """A converged load increment."""

    displacement_mm: np.ndarray  # (N, 3)
    rigid_mm_rad: np.ndarray  # (6,) the tie's translation (mm) and rotation (rad)
    points: ContactPoints
    state: ContactState
    newton_iterations: int
    cg_iterations: int
    residual_ratio: float
    converged: bool


def solve_step(problem: ContactProblem, start: np.ndarray, rigid_start: np.ndarray, state: ContactState,
               force_n: np.ndarray, moment_nmm: np.ndarray, rigid_free: bool, friction: bool,
               held: np.ndarray | None = None) -> StepResult:
    """Equilibrium with contact from displacement ``start`` (N, 3) under a force (3,) N and moment (3,)
    N mm on the rigid body (about its centre). With ``rigid_free`` False the body stays where it is."""
    tie = problem.tie
    expand = tie.expand
    n_free = len(tie.free_dofs)
    u = start.ravel().copy()
    z = np.concatenate([u[tie.free_dofs], rigid_start])
    applied = np.concatenate([np.zeros(n_free), force_n, moment_nmm])
    keep = np.arange(n_free + 6) if rigid_free else np.arange(n_free)
    reduced_stiffness = (expand.T @ problem.stiffness @ expand).tocsr()  # once: only contact changes
    hierarchy = None
    cg_total = 0
    ratio = np.inf
    for iteration in range(1, MAX_NEWTON + 1):
        points, contact_force, contact_matrix = problem.contact(u.reshape(-1, 3), state, friction, held)
        reduced_contact = expand.T @ contact_force
        residual = applied + reduced_contact - expand.T @ (problem.stiffness @ u)
        scale = max(np.linalg.norm(applied), np.linalg.norm(reduced_contact), 1e-9)
        ratio = np.linalg.norm(residual[keep]) / scale
        if ratio < NEWTON_RTOL:
            return StepResult(u.reshape(-1, 3), z[n_free:].copy(), points, problem.commit(points, state),
                              iteration - 1, cg_total, ratio, True)
        matrix = (reduced_stiffness + expand.T @ contact_matrix @ expand).tocsr()
        if hierarchy is None:  # one preconditioner per increment: the contact terms change little
            hierarchy = _preconditioner(matrix, n_free, _free_modes(problem.node_mm, tie), rigid_free,
                                        tie.whole_nodes)
        system = matrix[keep][:, keep]
        counter = _Counter()
        step, info = sparse_linalg.cg(system, residual[keep], rtol=CG_RTOL, maxiter=MAX_CG, M=hierarchy,
                                      callback=counter)
        cg_total += counter.count
        if _TRACE:
            print(f"newton {iteration}: residual ratio {ratio:.2e}, {int(points.active.sum())} points in contact, "
                  f"{counter.count} CG iterations", flush=True)
        if info != 0:
            raise GeometryError(f"the contact solve did not converge (CG, {counter.count} iterations): the "
                                "mesh may have inverted elements or the penalty is far too stiff")
        z[keep] += step
        u = expand @ z
    points, _, _ = problem.contact(u.reshape(-1, 3), state, friction, held)
    return StepResult(u.reshape(-1, 3), z[n_free:].copy(), points, problem.commit(points, state),
                      MAX_NEWTON, cg_total, ratio, False)


class _Counter:
    def __init__(self):
        self.count = 0

    def __call__(self, _):
        self.count += 1


def _free_modes(node_mm: np.ndarray, tie: RigidTie) -> np.ndarray:
    """(3F, 6) rigid-body modes restricted to the free reduced unknowns: AMG's near null space."""
    untied = np.flatnonzero(~tie.tied)
    modes = rigid_body_modes(node_mm[untied])
    return modes[np.isin(vector_dofs(untied), tie.free_dofs)]


def _preconditioner(matrix: sparse.csr_matrix, n_free: int, modes: np.ndarray, rigid_free: bool, blocked: bool):
    """Block preconditioner: smoothed aggregation AMG on the free nodes (rigid body held), and the
    exact 6 x 6 inverse for the rigid body's own block. The body's dense coupling rows would spoil
    the aggregation, so they stay out of it; CG absorbs the low-rank coupling in a few iterations."""
    free_block = matrix[:n_free][:, :n_free]
    if blocked:
        free_block = free_block.tobsr(blocksize=(3, 3))
    smoother = ("chebyshev", {"degree": 3})
    amg = pyamg.smoothed_aggregation_solver(free_block, B=modes, max_coarse=500,
                                            presmoother=smoother, postsmoother=smoother, coarse_solver="splu")
    amg_apply = amg.aspreconditioner(cycle="V")
    if not rigid_free:
        return amg_apply
    rigid_inverse = np.linalg.inv(matrix[n_free:][:, n_free:].toarray())

    def apply(r):
        out = np.empty_like(r)
        out[:n_free] = amg_apply @ r[:n_free]
        out[n_free:] = rigid_inverse @ r[n_free:]
        return out

    return sparse_linalg.LinearOperator((n_free + 6, n_free + 6), matvec=apply)
