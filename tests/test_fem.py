"""Verification of the interface-mechanics solver (socketcad.biomech.fem) against closed forms."""

import numpy as np
import pytest
import trimesh
from skfem import MeshTet

from socketcad.biomech import fem
from socketcad.biomech.elastic import lame_parameters
from socketcad.biomech.structure import layered_wall_mesh

INNER_MM, OUTER_MM, HEIGHT_MM = 20.0, 50.0, 8.0
VERIFY_RTOL = 1e-4  # verification checks the discretisation, so Newton goes well past its default


def tube_mesh(segments: int, layers: int, rows: int = 2) -> MeshTet:
    """A thick-walled tube r in [20, 50] mm, z in [0, 8] mm: prism layers split into tetrahedra."""
    theta = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    z = np.linspace(0.0, HEIGHT_MM, rows + 1)
    ring = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    vertices = np.array([[INNER_MM * c, INNER_MM * s, h] for h in z for c, s in ring])
    faces = []
    for row in range(rows):
        for k in range(segments):
            a, b = row * segments + k, row * segments + (k + 1) % segments
            faces += [[a, b, b + segments], [a, b + segments, a + segments]]
    directions = np.concatenate([vertices[:, :2] / INNER_MM, np.zeros((len(vertices), 1))], axis=1)
    return layered_wall_mesh(vertices, np.array(faces), directions, OUTER_MM - INNER_MM, layers=layers)


def sleeve(radius_mm: float) -> trimesh.Trimesh:
    """A rigid sleeve of ``radius_mm`` whose normals point outward, into the sleeve: fine enough that
    its facets sit 0.002 mm inside the circle."""
    sleeve = trimesh.creation.cylinder(radius=radius_mm, height=4 * HEIGHT_MM, sections=360)
    return sleeve.apply_translation([0, 0, HEIGHT_MM / 2])


def lame_pressure_mpa(interference_mm: float, youngs_mpa: float, poisson: float) -> float:
    """Contact pressure on a plane-strain thick cylinder bonded to a rigid core at r = a and pushed
    in by ``interference_mm`` at r = b: u = A r + B / r with u(a) = 0, u(b) = -delta."""
    lam, mu = lame_parameters(youngs_mpa, poisson)
    a, b = INNER_MM, OUTER_MM
    coefficient = -interference_mm * b / (b * b - a * a)
    return -coefficient * (2 * (lam + mu) + 2 * mu * a * a / (b * b))


def solve_tube(mesh: MeshTet, youngs_mpa: float, poisson: float, interference_mm: float):
    count = mesh.nelements
    stiffness, basis = fem.bulk_and_shear(mesh, np.full(count, youngs_mpa), np.full(count, poisson))
    node = basis.doflocs.T
    radius = np.hypot(node[:, 0], node[:, 1])
    core = radius < INNER_MM + 1e-6  # vertices and edge midpoints of the bonded face
    plane_strain = np.zeros(3 * basis.N, dtype=bool)
    plane_strain[2::3] = True  # u_z = 0 everywhere: plane strain
    tie = fem.RigidTie.of(node, core, np.zeros(3), fixed_dofs=plane_strain)
    boundary = mesh.boundary_facets()
    outer = boundary[np.isclose(np.hypot(*mesh.p[:2, mesh.facets[:, boundary]]), OUTER_MM, atol=1e-6).all(axis=0)]
    lam, mu = lame_parameters(youngs_mpa, poisson)
    law = fem.ContactLaw(normal_mpa_per_mm=200 * (lam + 2 * mu) / (OUTER_MM - INNER_MM), tangential_mpa_per_mm=0.0,
                         friction=0.0)
    problem = fem.ContactProblem(stiffness, basis, tie, outer, fem.RigidSurface(sleeve(OUTER_MM - interference_mm)), law)
    step = fem.solve_step(problem, np.zeros((basis.N, 3)), np.zeros(6), fem.ContactState.empty(problem.phi.shape[1:]),
                          np.zeros(3), np.zeros(3), rigid_free=False, friction=False, rtol=VERIFY_RTOL)
    weight = problem.facet_basis.dx
    return step, float((step.points.pressure_mpa * weight).sum() / weight.sum())


@pytest.mark.parametrize("poisson", [0.45, 0.475, 0.49])
def test_lame_cylinder_contact_pressure(poisson):
    """A rigid core in a thick elastic cylinder with uniform interference: the mean contact pressure
    matches Lame's closed form within 5 % for nu 0.45-0.49 (measured -2.3 % at every nu: the 96-gon's
    chords, not the material), so the P2/P0 element does not lock."""
    youngs, interference = 0.1, 1.0
    step, pressure = solve_tube(tube_mesh(96, 6), youngs, poisson, interference)
    expected = lame_pressure_mpa(interference, youngs, poisson)
    assert step.converged
    assert step.points.active.all()
    error = pressure / expected - 1
    assert abs(error) < 0.05, f"nu {poisson}: {pressure * 1e3:.2f} kPa vs Lame {expected * 1e3:.2f} kPa ({error:+.2%})"
    spread = step.points.pressure_mpa.std() / pressure
    assert spread < 0.2  # point to point (7-14 % measured): the chords' interference varies along each facet


PATCH_YOUNGS_MPA, PATCH_PUSH_MM = 0.2, 0.1


def pressed_patch(rollers_in_tie: bool):
    """A 20 x 20 x 10 mm block on rollers pressed by a frictionless rigid plane, solved; its rollers
    removed by the tie (``fixed_dofs``) or pinned inside the factorisation's pattern (``pinned_dofs``)."""
    mesh = MeshTet.init_tensor(np.linspace(0, 20, 4), np.linspace(0, 20, 4), np.linspace(0, 10, 3))
    youngs, poisson, push = PATCH_YOUNGS_MPA, 0.45, PATCH_PUSH_MM
    stiffness, basis = fem.bulk_and_shear(mesh, np.full(mesh.nelements, youngs), np.full(mesh.nelements, poisson))
    node = basis.doflocs.T
    fixed = np.zeros(3 * basis.N, dtype=bool)
    fixed[2::3] = node[:, 2] < 1e-9  # rollers on the base
    corner = np.flatnonzero(np.linalg.norm(node, axis=1) < 1e-9)[0]
    fixed[3 * corner:3 * corner + 2] = True  # no sliding or spinning in the plane
    edge = np.flatnonzero((node[:, 1] < 1e-9) & (node[:, 2] < 1e-9) & (node[:, 0] > 19.99))[0]
    fixed[3 * edge + 1] = True
    tie = fem.RigidTie.of(node, np.zeros(basis.N, dtype=bool), np.zeros(3), fixed_dofs=fixed if rollers_in_tie else None)
    boundary = mesh.boundary_facets()
    top = boundary[(mesh.p[2, mesh.facets[:, boundary]] > 10 - 1e-9).all(axis=0)]
    plane = trimesh.Trimesh([[-50, -50, 10 - push], [70, -50, 10 - push], [70, 70, 10 - push], [-50, 70, 10 - push]],
                            [[0, 1, 2], [0, 2, 3]], process=False)  # normal +z: into the obstacle
    law = fem.ContactLaw(normal_mpa_per_mm=1e3 * youngs / 10, tangential_mpa_per_mm=0.0, friction=0.0)
    problem = fem.ContactProblem(stiffness, basis, tie, top, fem.RigidSurface(plane), law)
    step = fem.solve_step(problem, np.zeros((basis.N, 3)), np.zeros(6), fem.ContactState.empty(problem.phi.shape[1:]),
                          np.zeros(3), np.zeros(3), rigid_free=False, friction=False, rtol=VERIFY_RTOL,
                          pinned_dofs=None if rollers_in_tie else fixed)
    return step, law


def test_patch_uniaxial_compression_by_a_rigid_plane():
    """Patch test: a block on rollers pressed by a frictionless rigid plane carries a uniform stress
    E delta / H (P2 reproduces the linear field exactly); the contact pressure is that, point by point,
    to the penalty's own error delta_penalty = p / k_n."""
    step, law = pressed_patch(rollers_in_tie=True)
    youngs, push = PATCH_YOUNGS_MPA, PATCH_PUSH_MM
    pressure = step.points.pressure_mpa
    penalty_push = push - pressure.mean() / law.normal_mpa_per_mm
    assert step.converged and step.points.active.all()
    assert np.allclose(pressure, youngs * penalty_push / 10, rtol=1e-3)
    assert abs(pressure.mean() / (youngs * push / 10) - 1) < 0.01


def test_pinned_unknowns_hold_as_the_ties_fixed_ones():
    """Unknowns pinned inside the factorisation's pattern (swing's distal pin, donning's bones) hold as
    those the tie removes: the patch's rollers either way give the same displacements and pressures."""
    by_tie, _ = pressed_patch(rollers_in_tie=True)
    pinned, _ = pressed_patch(rollers_in_tie=False)
    assert by_tie.converged and pinned.converged
    assert np.allclose(pinned.displacement_mm, by_tie.displacement_mm, atol=1e-9)
    assert np.allclose(pinned.points.pressure_mpa, by_tie.points.pressure_mpa, rtol=1e-6)


def pressed_block(friction: float):
    """A 40 x 40 x 5 mm block whose base is tied to a rigid body, its top against a rigid plane at
    z = 5 mm (normal +z, into the plane), with penalty contact and Coulomb ``friction``. Flat, so that
    the friction's moment (mu N x 5 mm) keeps the whole top in contact."""
    mesh = MeshTet.init_tensor(np.linspace(0, 40, 6), np.linspace(0, 40, 6), np.linspace(0, 5, 3))
    youngs, poisson = 0.2, 0.45
    stiffness, basis = fem.bulk_and_shear(mesh, np.full(mesh.nelements, youngs), np.full(mesh.nelements, poisson))
    node = basis.doflocs.T
    tie = fem.RigidTie.of(node, node[:, 2] < 1e-9, np.array([20.0, 20.0, 5.0]))
    boundary = mesh.boundary_facets()
    top = boundary[(mesh.p[2, mesh.facets[:, boundary]] > 5 - 1e-9).all(axis=0)]
    plane = trimesh.Trimesh([[-50, -50, 5], [90, -50, 5], [90, 90, 5], [-50, 90, 5]], [[0, 1, 2], [0, 2, 3]],
                            process=False)
    penalty = 1e3 * youngs / 5
    law = fem.ContactLaw(normal_mpa_per_mm=penalty, tangential_mpa_per_mm=penalty, friction=friction)
    return fem.ContactProblem(stiffness, basis, tie, top, fem.RigidSurface(plane), law)


def moved_base(problem, start, state, rigid_mm, friction=True):
    """The base moved to ``rigid_mm`` (3,) (displacement control), the top in contact."""
    start = start.copy()
    start[problem.tie.tied] = rigid_mm  # the tied nodes where the body is put
    return fem.solve_step(problem, start, np.concatenate([rigid_mm, np.zeros(3)]), state, np.zeros(3), np.zeros(3),
                          rigid_free=False, friction=friction, rtol=VERIFY_RTOL)


@pytest.mark.parametrize("slide_mm, sliding", [(0.005, False), (2.0, True)])
def test_coulomb_friction_sticks_then_slides_at_mu_times_the_normal_force(slide_mm, sliding):
    """Coulomb's law, in closed form: a block pressed 0.05 mm into a plane, then its base moved along the
    plane. A small move sticks (total shear below mu N, no point sliding); a large one slides everywhere,
    and the total shear is mu times the total normal force, opposing the motion."""
    mu = 0.5
    problem = pressed_block(mu)
    empty = fem.ContactState.empty(problem.phi.shape[1:])
    zero = np.zeros((problem.basis.N, 3))
    pressed = moved_base(problem, zero, empty, np.array([0.0, 0.0, 0.05]), friction=False)
    state = problem.commit(pressed.points, empty)
    step = moved_base(problem, pressed.displacement_mm, state, np.array([slide_mm, 0.0, 0.05]))
    weight = problem.facet_basis.dx
    normal_n = float((step.points.pressure_mpa * weight).sum())
    shear_n = (step.points.shear_mpa * weight[..., None]).sum(axis=(0, 1))
    assert step.converged, f"residual {step.residual_ratio:.1e}"
    assert normal_n > 2.0  # N: E delta / H over 1600 mm2 is 3.2 N uniaxial; more here, the base is bonded
    assert abs(shear_n[1]) < 1e-3 * normal_n and shear_n[0] < 0  # on the block, against the motion (+x)
    if sliding:
        assert step.points.sliding[step.points.active].all()
        shear_size = (np.linalg.norm(step.points.shear_mpa, axis=-1) * weight).sum()
        assert shear_size == pytest.approx(mu * normal_n, rel=1e-6)  # mu p at every point
        assert -shear_n[0] == pytest.approx(mu * normal_n, rel=1e-4)  # along the motion, but for Poisson's spread
    else:
        assert not step.points.sliding.any()
        assert -shear_n[0] < 0.5 * mu * normal_n
