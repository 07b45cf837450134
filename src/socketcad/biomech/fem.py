"""Nearly incompressible elasticity with frictional contact against a rigid surface (scikit-fem, P2/P0).

Formulation. Quadratic displacements with a piecewise constant pressure condensed element by element
(the P2/P0 element, inf-sup stable): the shear term 2 mu e(u):e(v) is integrated exactly (degree-2
rule) and the bulk term lam div(u) div(v) at each element's centroid, where the linear div(u) of an
affine P2 element takes its mean. This keeps nu = 0.45-0.49 free of volumetric locking (checked
against the Lame thick cylinder, tests/test_fem.py) and the matrix symmetric positive definite, so
a sparse Cholesky factorisation (CHOLMOD) solves it.

Contact. Gauss-point-to-surface penalty against a rigid surface: at each quadrature point of the
contact facets the penetration d (mm) along the surface normal gives a pressure k_n d; friction is
regularised Coulomb (tangential penalty k_t, return mapping to mu p), with a stick anchor per point
carried from one load increment to the next. Coulomb's law has no potential, so each increment is
solved as a sequence of Tresca problems (the friction limit held at mu p of the last equilibrium),
each a minimisation: Newton iterations with the exact, symmetric tangent and a line search on the
potential energy. The increment is done when the limit, renewed, still balances. (A limit renewed at
every Newton iteration, and a secant tangent mu p / |slip| along the slip, both kept a fully sliding
block from converging: tests/test_fem.py.) Each iteration factorises its tangent (CHOLMOD); the
factor of the tissue alone, or of an earlier tangent, does not serve: see ``_CholeskySolver``.

Rigid parts. Nodes tied to a rigid body move as u = t + theta x (x - c): their degrees of freedom
are replaced by the body's six (``RigidTie``), which takes an applied force and moment.

Units: mm, N, MPa (N/mm^2); the penalty stiffness in MPa/mm.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import trimesh
from scipy import sparse
from sksparse import cholmod
from skfem import Basis, ElementTetP2, FacetBasis, MeshTet

from socketcad.biomech.elastic import lame_parameters, rigid_body_modes, stiffness_matrix, vector_dofs
from socketcad.errors import GeometryError
from socketcad.geometry.solid import closest_faces

STIFFNESS_INTORDER = 2  # exact for the shear term of affine P2 tetrahedra
BULK_INTORDER = 1  # the centroid: the P0 projection of the (linear) divergence
CONTACT_INTORDER = 4  # 6 points per facet: enough to see a quadratic facet's penetration
# Force residual relative to the largest of the applied and contact force norms (moments over the
# rigid body's arm, in N). On the sample limb (standing, PTB) peak and mean pressure at 1e-2 were
# within 1.5 % of a run taken on to 3e-3; the last digits come slowly (the surface's facets), at one
# factorisation (1.2-1.5 s) an iteration.
NEWTON_RTOL = 1e-2
# A few points on the socket's facet edges (kinks in the penalty energy) can hold Newton short of
# that: the line search then cuts every step (STALL_STEPS steps in a row shorter than STALL_ALPHA),
# or Newton zig-zags over them, the residual falling by less than CREEP_PROGRESS in CREEP_STEPS
# iterations (the sample limb's standing on a fresh mesh: 1.37e-2 to 1.04e-2 in 28 half steps). A
# step stalled either way is accepted below STALLED_RTOL (residuals of 2.6e-2 and 4e-2 left the
# sample limb's standing peak and mean pressure within 2.1 % of a run taken on to 3e-3); its
# residual is reported with it.
STALLED_RTOL = 5e-2
STALL_ALPHA = 1.0 / 16
STALL_STEPS = 3
CREEP_STEPS = 10
CREEP_PROGRESS = 0.2
MAX_NEWTON = 40
# The friction limit is renewed once a Tresca problem is solved to this (or to the step's tolerance, if
# looser), not to the step's own: each renewal moves the equilibrium, and solving the held limit's
# problem further is wasted. On the sample limb swing pull-off took 16 iterations against 18 at 1e-2.
RENEW_RTOL = 3e-2
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
    arm_mm: float  # root-mean-square distance of the tied nodes from the centre

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
        arm_mm = float(np.sqrt(np.mean(np.sum((node_mm[tied] - centre_mm) ** 2, axis=1)))) if tied.any() else 1.0
        return cls(tied, np.asarray(centre_mm, dtype=np.float64), (free_part + rigid_part).tocsr(), free_dofs,
                   max(arm_mm, 1e-9))


BRIM_RADIUS_MM = 5.0  # an open rim (the socket's brim, a hole) is taken as rolled back at this radius


class RigidSurface:
    """A rigid obstacle: an open or closed surface whose face normals point into the obstacle (mm).

    An open rim (the socket's brim, a hole in it) is taken as rolled back at ``BRIM_RADIUS_MM``, as
    a brim flares out: a point that slides past the rim is let go gradually, where a sharp edge would
    drop its pressure at once and keep the penalty iteration swinging. (Smoothing the normals across
    facets, as Phong shading does, was tried: it is not the gradient of any gap, and on the thick
    cylinder its tangential tractions fed the soft torsional mode until Newton diverged.)"""

    def __init__(self, mesh: trimesh.Trimesh, offset_mm: float = 0.0):
        self.mesh = mesh
        self.offset_mm = float(offset_mm)  # the surface moved back out of the obstacle (donning)
        self._recent: list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]] = []

    def penetration(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Depth (k,) mm of each point (k, 3) into the obstacle (< 0: apart) and the unit normal (k, 3)
        into it (the depth's gradient)."""
        # The last two answers are kept: a line search asks for the points the Newton iteration just
        # asked for (its start) and the next iteration for the step it took, bit for bit; the
        # nearest-point search is the costliest part of an iteration after the factorisation.
        for asked, (depth, normal) in self._recent:
            if np.array_equal(asked, points):
                return depth - self.offset_mm, normal
        depth, normal = self._depth(points)
        normal.flags.writeable = False  # shared by the answers
        self._recent = [(points.copy(), (depth, normal))] + self._recent[:1]
        return depth - self.offset_mm, normal

    def _depth(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        closest, _, face = closest_faces(self.mesh, points)
        face_normal = self.mesh.face_normals[face]
        along = points - closest
        normal_part = np.einsum("ij,ij->i", along, face_normal)
        beyond = along - normal_part[:, None] * face_normal  # zero over a face, non-zero past its edge
        gradient = face_normal - beyond / BRIM_RADIUS_MM
        length = np.linalg.norm(gradient, axis=1)
        depth = (normal_part - np.einsum("ij,ij->i", beyond, beyond) / (2 * BRIM_RADIUS_MM)) / length
        return depth, gradient / length[:, None]


@dataclass
class ContactLaw:
    """Penalty stiffnesses (MPa/mm) and Coulomb friction coefficient of one contact pair."""

    normal_mpa_per_mm: float
    tangential_mpa_per_mm: float
    friction: float


@dataclass(eq=False)
class ContactState:
    """Per quadrature point (F, Q) of the contact facets: stick anchors (F, Q, 3) and whether each
    point had touched by the end of the last converged increment. ``plane``: unit normals (F, Q, 3)
    the slip is measured across within an increment (set by ``solve_step`` from its start): held
    fixed, the slip is linear in the displacement, where the nearest facet's own normal would make
    it jump as a point slides over a facet edge."""

    anchor_mm: np.ndarray
    touching: np.ndarray
    plane: np.ndarray | None = None

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
    slip_mm: np.ndarray  # (F, Q, 3) tangential slip from the stick anchors


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
    reduced_stiffness: sparse.csr_matrix = field(init=False)  # expand^T K expand: contact only adds to it

    def __post_init__(self):
        self.facet_basis = FacetBasis(self.basis.mesh, ElementTetP2(), facets=self.facets, intorder=CONTACT_INTORDER)
        self.reference_mm = np.moveaxis(np.asarray(self.facet_basis.global_coordinates()), 0, -1)
        self.phi = np.stack([phi[0].value for phi in self.facet_basis.basis])
        self.reduced_stiffness = (self.tie.expand.T @ self.stiffness @ self.tie.expand).tocsr()

    @cached_property
    def solver(self) -> _CholeskySolver:
        """The factorisation of the reduced tangent, analysed once for every step of this problem."""
        return _CholeskySolver(self.reduced_stiffness.tocsc(), self._structure())

    def _structure(self) -> sparse.csc_matrix:
        """Every coupling the reduced tangent can have (ones): the elements' node pairs, in 3 x 3 blocks,
        through the tie. Sums of sparse matrices drop entries that cancel to zero, so the tangent's own
        pattern changes from one iteration to the next; the factor is analysed on this superset."""
        dofs = self.basis.element_dofs  # (10, E)
        incidence = sparse.csr_matrix((np.ones(dofs.size), (dofs.ravel(), np.tile(np.arange(dofs.shape[1]), len(dofs)))),
                                      shape=(self.basis.N, dofs.shape[1]))
        nodes = (incidence @ incidence.T).astype(bool).astype(np.float64)
        couplings = sparse.kron(nodes, np.ones((3, 3)), format="csr")
        through_tie = abs(self.tie.expand)
        return (through_tie.T @ couplings @ through_tie).tocsc()

    @property
    def node_mm(self) -> np.ndarray:
        return self.basis.doflocs.T

    def positions(self, displacement: np.ndarray) -> np.ndarray:
        """Deformed quadrature points (F, Q, 3) for nodal displacements (N, 3)."""
        return self.reference_mm + self.motion(displacement)

    def motion(self, displacement: np.ndarray) -> np.ndarray:
        """Displacement (F, Q, 3) of the quadrature points for nodal displacements (N, 3)."""
        local = displacement[self.facet_basis.element_dofs]  # (10, F, 3)
        return np.einsum("afq,afc->fqc", self.phi, local)

    def _kinematics(self, displacement: np.ndarray, state: ContactState, held: np.ndarray | None):
        """Deformed points (F, Q, 3), penetration (F, Q), normals (F, Q, 3), active (F, Q) and the
        tangential slip from the stick anchors (F, Q, 3) at ``displacement`` (N, 3)."""
        x = self.positions(displacement)
        shape = x.shape[:2]
        depth, normal = self.surface.penetration(x.reshape(-1, 3))
        depth, normal = depth.reshape(shape), normal.reshape(shape + (3,))
        active = (depth > 0) | (held if held is not None else False)
        anchor = np.where(state.touching[..., None], state.anchor_mm, x)
        slip = x - anchor
        plane = normal if state.plane is None else state.plane
        slip -= np.einsum("fqc,fqc->fq", slip, plane)[..., None] * plane
        return x, depth, normal, active, slip

    def contact(self, displacement: np.ndarray, state: ContactState, friction: bool,
                held: np.ndarray | None = None, limit: np.ndarray | None = None,
                ) -> tuple[ContactPoints, np.ndarray, sparse.csr_matrix]:
        """Tractions, consistent nodal contact forces (3N,) and tangent (3N, 3N) at ``displacement`` (N, 3).

        held: (F, Q) bool points that may not separate (suction): their pressure may turn negative.
        limit: (F, Q) MPa friction limit to hold (Tresca); None: Coulomb's mu |p| at this displacement.
        The tangent is exact for Tresca's law; Coulomb's dependence of the limit on the pressure is
        left to ``solve_step``'s outer iteration."""
        x, depth, normal, active, slip = self._kinematics(displacement, state, held)
        shape = x.shape[:2]
        pressure = np.where(active, self.law.normal_mpa_per_mm * depth, 0.0)
        shear = np.zeros(shape + (3,))
        sliding = np.zeros(shape, dtype=bool)
        tangent_scale = np.zeros(shape)
        along_slip = np.zeros(shape)
        direction = np.zeros(shape + (3,))
        if friction and self.law.friction > 0:
            length = np.linalg.norm(slip, axis=-1)
            trial = self.law.tangential_mpa_per_mm * length
            limit = self.law.friction * np.abs(pressure) if limit is None else limit
            # Tresca's friction acts wherever its limit is positive, in contact or not: its potential
            # would jump where a sliding point left contact. Coulomb's limit is zero off contact.
            rubbing = limit > 0
            sliding = rubbing & (trial > limit)
            scale = np.where(sliding, limit / np.maximum(trial, 1e-300), 1.0) * self.law.tangential_mpa_per_mm
            shear = np.where(rubbing[..., None], -scale[..., None] * slip, 0.0)
            tangent_scale = np.where(rubbing, scale, 0.0)
            # a sliding point's traction keeps its size along the slip: (almost) no stiffness there
            along_slip = np.where(sliding, scale * (1.0 - SLIDE_STIFFNESS_FLOOR), 0.0)
            direction = slip / np.maximum(length, 1e-300)[..., None]
        traction = -pressure[..., None] * normal + shear  # on the body
        weight = self.facet_basis.dx  # (F, Q)
        dofs = self.facet_basis.element_dofs  # (10, F)
        nodal = np.einsum("afq,fq,fqc->afc", self.phi, weight, traction)
        force = np.zeros((self.basis.N, 3))
        np.add.at(force, dofs, nodal)
        # tangent: sum_q w phi_a phi_b [k_n n n^T + s (I - p p^T) - s' t t^T], p the slip plane's normal,
        # t the slip's direction: k_n where in contact, s and s' where friction acts
        nn = normal[..., :, None] * normal[..., None, :]
        plane = normal if state.plane is None else state.plane
        pp = plane[..., :, None] * plane[..., None, :]
        tt = direction[..., :, None] * direction[..., None, :]
        local_block = (np.where(active, self.law.normal_mpa_per_mm, 0.0)[..., None, None] * nn
                       + tangent_scale[..., None, None] * (np.eye(3) - pp) - along_slip[..., None, None] * tt)
        touched = np.flatnonzero((active | (tangent_scale > 0)).any(axis=1))
        blocks = np.einsum("afq,bfq,fq,fqij->fabij", self.phi[:, touched], self.phi[:, touched],
                           weight[touched], local_block[touched], optimize=True)
        rows = (3 * dofs[:, touched].T[:, :, None, None, None] + np.arange(3)[None, None, None, :, None])
        cols = (3 * dofs[:, touched].T[:, None, :, None, None] + np.arange(3)[None, None, None, None, :])
        rows, cols = np.broadcast_arrays(rows, cols)
        size = 3 * self.basis.N
        matrix = sparse.csr_matrix((blocks.ravel(), (rows.ravel(), cols.ravel())), shape=(size, size))
        points = ContactPoints(pressure, shear, depth, x, normal, active, sliding, slip)
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
        return ContactState(np.where(touching[..., None], anchor, 0.0), touching)  # the plane is per increment


@dataclass(frozen=True, eq=False)
class StepResult:
    """A converged load increment."""

    displacement_mm: np.ndarray  # (N, 3)
    rigid_mm_rad: np.ndarray  # (6,) the tie's translation (mm) and rotation (rad)
    points: ContactPoints
    state: ContactState
    newton_iterations: int  # one factorisation of the tangent each
    residual_ratio: float
    converged: bool


def solve_step(problem: ContactProblem, start: np.ndarray, rigid_start: np.ndarray, state: ContactState,
               force_n: np.ndarray, moment_nmm: np.ndarray, rigid_free: bool, friction: bool,
               held: np.ndarray | None = None, pinned_dofs: np.ndarray | None = None,
               rtol: float = NEWTON_RTOL) -> StepResult:
    """Equilibrium with contact from displacement ``start`` (N, 3) under a force (3,) N and moment (3,)
    N mm on the rigid body (about its centre). With ``rigid_free`` False the body stays where it is;
    degrees of freedom the tie fixes, and ``pinned_dofs`` (3N,) bool, stay where ``start`` has them
    (pinned ones within the problem's factorisation: a distal pin needs no problem of its own).

    Newton on the active set with a backtracking line search on the step's potential energy, which
    keeps the penalty iteration from swinging between contact sets."""
    tie = problem.tie
    expand = tie.expand
    n_free = len(tie.free_dofs)
    if friction:
        state = ContactState(state.anchor_mm, state.touching, problem._kinematics(start, state, held)[2])
    z = np.concatenate([start.ravel()[tie.free_dofs], rigid_start])
    fixed_mm = start.ravel() - expand @ z  # non-zero only on fixed degrees of freedom
    applied = np.concatenate([np.zeros(n_free), force_n, moment_nmm])
    load = applied - expand.T @ (problem.stiffness @ fixed_mm)  # and what holding those costs
    pinned = np.zeros(len(z), dtype=bool)  # unknowns held where they start
    pinned[n_free:] = not rigid_free
    if pinned_dofs is not None:
        pinned[:n_free] = pinned_dofs[tie.free_dofs]
    stiffness = problem.reduced_stiffness
    solver = problem.solver
    # Forces and moments in one norm: the moment rows (N mm) over the tie's arm, in N, where a moment
    # of 12 N m would otherwise outweigh every force and loosen the tolerance on them 15-fold.
    in_newtons = np.ones(len(z))
    in_newtons[n_free + 3:] = 1.0 / tie.arm_mm
    alphas, ratios = [], []
    limit = None  # the friction limit (F, Q) MPa held in the current Tresca problem

    def balance(limit):
        """Displacement, contact, residual and its ratio to the load at the current z."""
        u = expand @ z + fixed_mm
        points, contact_force, contact_matrix = problem.contact(u.reshape(-1, 3), state, friction, held, limit)
        reduced_contact = expand.T @ contact_force
        residual = load + reduced_contact - stiffness @ z
        residual[pinned] = 0.0  # the pin's reaction
        scale = max(np.linalg.norm(in_newtons * applied), np.linalg.norm(in_newtons * reduced_contact), 1e-9)
        return u, points, contact_matrix, residual, np.linalg.norm(in_newtons * residual) / scale

    for iteration in range(1, MAX_NEWTON + 1):
        u, points, contact_matrix, residual, ratio = balance(limit)
        ratios.append(ratio)
        stalled = ((len(alphas) >= STALL_STEPS and max(alphas[-STALL_STEPS:]) < STALL_ALPHA)
                   or (len(ratios) > CREEP_STEPS and ratio > (1 - CREEP_PROGRESS) * ratios[-CREEP_STEPS - 1]))
        tolerance = max(rtol, STALLED_RTOL) if stalled else rtol
        if friction and (ratio < max(tolerance, RENEW_RTOL) or limit is None):
            # Coulomb as a sequence of Tresca problems: the limit is set to mu |p| when Tresca's
            # equilibrium is (nearly) reached, and at the start; the step is done when it still balances.
            first = limit is None
            limit = problem.law.friction * np.abs(points.pressure_mpa)
            if _TRACE:
                print(f"  friction limit renewed at {ratio:.2e}", flush=True)
            if not first:
                u, points, contact_matrix, residual, ratio = balance(limit)
            alphas, ratios = [], [ratio]  # a new Tresca problem: its own stall history
        if ratio < tolerance:
            return StepResult(u.reshape(-1, 3), z[n_free:].copy(), points, problem.commit(points, state),
                              iteration - 1, ratio, True)
        step = solver.solve((expand.T @ contact_matrix @ expand).tocsc(), residual, pinned)
        alpha = _line_search(problem, z, step, stiffness, load, residual, points, state, limit, held, fixed_mm)
        if _TRACE:
            print(f"newton {iteration}: residual ratio {ratio:.2e}, {int(points.active.sum())} points in contact, "
                  f"{int(points.sliding.sum())} sliding, step {alpha:g}", flush=True)
        alphas.append(alpha)
        z += alpha * step
    u, points, _, _, _ = balance(limit)
    return StepResult(u.reshape(-1, 3), z[n_free:].copy(), points, problem.commit(points, state),
                      MAX_NEWTON, ratio, False)


ARMIJO = 1e-4
MAX_HALVINGS = 12


def _line_search(problem: ContactProblem, z: np.ndarray, step: np.ndarray, stiffness: sparse.csr_matrix,
                 load: np.ndarray, residual: np.ndarray, points: ContactPoints, state: ContactState,
                 limit: np.ndarray | None, held: np.ndarray | None, fixed_mm: np.ndarray) -> float:
    """Step length by backtracking (Armijo) on the step's potential energy: the elastic energy minus
    the load's work (exact quadratics in the step length) plus the contact's penalty potential and
    Tresca's friction potential with ``limit`` (F, Q) MPa held (None: frictionless).

    First on a model: the contact points against the tangent planes of the surface at their current
    nearest points (piecewise quadratic, no nearest-point search per trial), which finds the step
    past the points that come into contact. Then that step is checked, and halved if need be, on the
    true surface: a few points sliding over the socket's facet edges can otherwise cycle, each step
    right for the model and wrong for the surface. A step that does not descend (an inexact CG
    solve) is taken whole."""
    slope = -float(residual @ step)
    if slope >= 0:
        return 1.0
    kz, ks = stiffness @ z, stiffness @ step
    strain = (0.5 * (z @ kz), step @ kz, 0.5 * (step @ ks))
    work = (load @ z, load @ step)
    moved = problem.motion((problem.tie.expand @ step).reshape(-1, 3))  # (F, Q, 3) per unit step
    along = np.einsum("fqc,fqc->fq", moved, points.normal)
    across = moved - along[..., None] * points.normal
    stuck = held if held is not None else False

    def bulk(alpha: float) -> float:
        return strain[0] + alpha * strain[1] + alpha ** 2 * strain[2] - work[0] - alpha * work[1]

    def model(alpha: float) -> float:
        depth = points.depth_mm + alpha * along
        return bulk(alpha) + _contact_potential(problem, depth, (depth > 0) | stuck, points.slip_mm + alpha * across, limit)

    def surface(alpha: float) -> float:
        u = problem.tie.expand @ (z + alpha * step) + fixed_mm
        _, depth, _, active, slip = problem._kinematics(u.reshape(-1, 3), state, held)
        return bulk(alpha) + _contact_potential(problem, depth, active, slip, limit)

    alpha = _armijo(model, slope, 1.0)
    return _armijo(surface, slope, alpha)


def _armijo(energy, slope: float, alpha: float) -> float:
    """The first of alpha, alpha / 2, ... with sufficient decrease of ``energy`` (a function of alpha)."""
    start = energy(0.0)
    for _ in range(MAX_HALVINGS):
        if energy(alpha) <= start + ARMIJO * alpha * slope:
            return alpha
        alpha *= 0.5
    return alpha


def _contact_potential(problem: ContactProblem, depth: np.ndarray, active: np.ndarray, slip: np.ndarray,
                       limit: np.ndarray | None) -> float:
    """Penalty potential (N mm) of the contact points: k_n d^2 / 2 where active, plus Tresca's
    regularised friction potential of the slip (F, Q, 3) wherever the limit (F, Q) MPa is positive
    (None: frictionless)."""
    k_n, k_t = problem.law.normal_mpa_per_mm, problem.law.tangential_mpa_per_mm
    density = np.where(active, 0.5 * k_n * depth ** 2, 0.0)
    if limit is not None and k_t > 0:
        length = np.linalg.norm(slip, axis=-1)
        sticking = k_t * length <= limit
        tangential = np.where(sticking, 0.5 * k_t * length ** 2, limit * length - limit ** 2 / (2 * k_t))
        density += np.where(limit > 0, tangential, 0.0)
    return float((density * problem.facet_basis.dx).sum())


# Share of the secant stiffness mu p / |slip| kept along a sliding point's slip, where the exact
# tangent has none: it keeps the tangent definite where every point slides one way, and steadied
# swing pull-off at k_t = k_n (residual 0.075 after 40 iterations against 0.11 at 1e-3). The block
# converges either way.
SLIDE_STIFFNESS_FLOOR = 0.1

class _CholeskySolver:
    """Sparse Cholesky (CHOLMOD, supernodal, METIS ordering) of the reduced tangent, analysed once per
    problem and factorised at each Newton iteration. (scipy's splu took over 5 minutes on the sample
    limb's 1e5 unknowns, CHOLMOD 1-2 s; AMG-preconditioned CG needed 75-200 iterations at nu 0.49. A
    factor kept as CG's preconditioner while the contact set changed little never met CG's tolerance
    (1e-4) within 12 iterations over the sample limb's five load cases: the contact stiffness outweighs
    the tissue's, and sliding changes it where the contact set does not show it. At a loose one (0.1, 10
    iterations, 5 % of the points switched) it saved 7 of 44 factorisations and the analysis took 79 s
    against 70 s. Issue 21.)"""

    def __init__(self, stiffness: sparse.csc_matrix, pattern: sparse.csc_matrix):
        # CHOLMOD reads the lower triangle only: handing it just that halves the copying and the sums
        # around each factorisation (1.12 s to 1.00 s a factorisation on the sample limb).
        self.stiffness = sparse.tril(stiffness, format="csc")
        self.factor = cholmod.analyze(sparse.tril(pattern, format="csc"), mode="supernodal", ordering_method="metis")
        self._pinned = (None, None)  # the stiffness with pinned rows and columns, and its mask's bytes

    def solve(self, contact: sparse.csc_matrix, rhs: np.ndarray, pinned: np.ndarray) -> np.ndarray:
        """The solution of (stiffness + ``contact``) x = ``rhs`` with x = 0 on ``pinned`` (bool), whose
        rows and columns are replaced by their diagonal (the analysed pattern holds)."""
        contact = sparse.tril(contact, format="csc")
        if pinned.any():
            matrix = self._pinned_stiffness(pinned) + _without(contact, pinned)
            rhs = np.where(pinned, 0.0, rhs)
        else:
            matrix = self.stiffness + contact
        try:
            self.factor.cholesky_inplace(matrix)
        except cholmod.CholmodNotPositiveDefiniteError as error:
            raise GeometryError("the contact tangent is not positive definite: the mesh may have inverted "
                                "elements") from error
        return self.factor(rhs)

    def _pinned_stiffness(self, pinned: np.ndarray) -> sparse.csc_matrix:
        """The stiffness with the rows and columns of ``pinned`` (bool) replaced by their diagonal (kept)."""
        key = pinned.tobytes()
        if self._pinned[0] != key:
            diagonal = self.stiffness.diagonal()  # zero on a body no node is tied to (a test's)
            kept = _without(self.stiffness, pinned) + sparse.diags(np.where(pinned, np.where(diagonal > 0, diagonal, 1.0), 0.0))
            self._pinned = (key, kept.tocsc())
        return self._pinned[1]


def _without(matrix: sparse.csc_matrix, dofs: np.ndarray) -> sparse.csc_matrix:
    """A copy of ``matrix`` with the rows and columns of ``dofs`` (bool) zero (the pattern kept)."""
    matrix = sparse.csc_matrix(matrix, copy=True)
    column = np.repeat(np.arange(matrix.shape[1]), np.diff(matrix.indptr))
    matrix.data[dofs[matrix.indices] | dofs[column]] = 0.0
    return matrix
