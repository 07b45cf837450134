"""Verification of the wall-strength finite elements (socketcad.biomech.structure) and ISO 10328 loads.

Figures measured when these tests were written (2-core machine, run with -s to see the tables):
- clamped tube R 40 mm, wall 4 mm, L 400 mm, E 2000 MPa, end shear 100 N, 24 x 21 vertices, 1 layer
  (17,712 dofs): tip deflection -0.36 % from Timoshenko (Euler-Bernoulli alone would be 7.6 % off:
  shear matters for a tube this short), bending stress slope 1.000 of M y / I, peak von Mises 50 mm
  from the clamp -1.9 % of M c / I (quadrature points sit inside the wall, c is the outer radius);
- uniform tension: sigma_zz = F / A within 1e-4 away from the clamp;
- socket-like cup under ISO 10328 P5 push-off, 3 meshes: peak von Mises 18.1 / 20.5 / 20.6 MPa,
  deflection 1.38 / 1.45 / 1.47 mm (last change 0.2 % and 1.6 %); the clamp-edge peak keeps growing
  (20 / 24 / 26 MPa), as a singularity must.
Reference section properties are those of the meshed (polygonal) annulus, so the comparison measures
the finite elements, not the faceting of the circle.
"""

from __future__ import annotations

import numpy as np
import pytest
from shapes import revolve

from socketcad.biomech.loads import CONDITIONS, LEVELS, iso10328_load_case
from socketcad.biomech.structure import (
    analyse_wall,
    layered_wall_mesh,
    solve_wall,
    wall_strength,
)
from socketcad.errors import GeometryError, InputError

RADIUS_MM, WALL_MM, LENGTH_MM = 40.0, 4.0, 400.0
E_MPA, NU = 2000.0, 0.3
SHEAR_N = 100.0


def tube_surface(spokes: int, ring_mm: float, length_mm: float = LENGTH_MM):
    """Open tube of radius RADIUS_MM along +z from 0 to length_mm: vertices, faces, radial directions."""
    z = np.linspace(0.0, length_mm, int(round(length_mm / ring_mm)) + 1)
    surface = revolve(z, np.full(len(z), RADIUS_MM), spokes)
    vertices = np.asarray(surface.vertices)
    directions = np.column_stack([vertices[:, :2] / RADIUS_MM, np.zeros(len(vertices))])
    return vertices, np.asarray(surface.faces), directions


def annulus_section(spokes: int) -> tuple[float, float]:
    """Area (mm^2) and second moment about x (mm^4) of the meshed annulus: polygons at R and R + wall."""
    angles = 2 * np.pi * np.arange(spokes) / spokes

    def polygon(radius):
        x, y = radius * np.cos(angles), radius * np.sin(angles)
        xn, yn = np.roll(x, -1), np.roll(y, -1)
        cross = x * yn - xn * y
        return cross.sum() / 2, (cross * (y * y + y * yn + yn * yn)).sum() / 12

    outer, inner = polygon(RADIUS_MM + WALL_MM), polygon(RADIUS_MM)
    return outer[0] - inner[0], outer[1] - inner[1]


def cup_surface(n_arc: int, radius_mm: float = 45.0, length_mm: float = 135.0):
    """Socket-like cup: hemisphere (n_arc rings of latitude) under a cylinder, open at the top, z up."""
    theta = np.linspace(0.0, np.pi / 2, n_arc + 1)
    step = radius_mm * np.pi / 2 / n_arc
    tube_z = radius_mm + np.linspace(0.0, length_mm, int(np.ceil(length_mm / step)) + 1)[1:]
    z = np.concatenate([radius_mm * (1 - np.cos(theta)), tube_z])
    r = np.concatenate([radius_mm * np.sin(theta), np.full(len(tube_z), radius_mm)])
    surface = revolve(z, r, 4 * n_arc)
    vertices = np.asarray(surface.vertices)
    centre = np.zeros_like(vertices)
    centre[:, 2] = np.maximum(vertices[:, 2], radius_mm)
    directions = (vertices - centre) / np.linalg.norm(vertices - centre, axis=1)[:, None]
    polar_deg = np.degrees(np.arccos(np.clip((radius_mm - vertices[:, 2]) / radius_mm, -1, 1)))
    # The clamp (the distal adapter) is the cap within 45 deg of the pole: a ring of every mesh below.
    adapter = (vertices[:, 2] <= radius_mm) & (polar_deg <= 45.0 + 1e-6)
    inner_wall = vertices[:, 2] >= radius_mm - 1e-6
    return vertices, np.asarray(surface.faces), directions, adapter, inner_wall


@pytest.fixture(scope="module")
def bent_tube():
    """Tube clamped at z = 0, shear force +y spread uniformly over the end face at z = L."""
    spokes = 24
    vertices, faces, directions = tube_surface(spokes, 20.0)
    mesh = layered_wall_mesh(vertices, faces, directions, np.full(len(vertices), WALL_MM), layers=1)
    z = mesh.p[2]
    solution = solve_wall(
        mesh, z < 1e-9, z > LENGTH_MM - 1e-9, [0.0, SHEAR_N, 0.0], [0.0, 0.0, 0.0], E_MPA, NU,
        point_mm=[0.0, 0.0, LENGTH_MM])
    print(f"\nbent tube: {solution.dofs} dofs, {solution.elements} elements, {solution.seconds:.1f} s, "
          f"{solution.solver}")
    return solution, annulus_section(spokes)


def test_layered_wall_mesh_is_conforming_positive_and_fills_the_wall():
    spokes, rings, layers = 12, 5, 2
    vertices, faces, directions = tube_surface(spokes, 100.0)
    assert len(vertices) == spokes * rings
    mesh = layered_wall_mesh(vertices, faces, directions, np.full(len(vertices), WALL_MM), layers)
    p, t = mesh.p.T, mesh.t.T
    a, b, c, d = (p[t[:, k]] for k in range(4))
    volume = np.einsum("ij,ij->i", np.cross(b - a, c - a), d - a) / 6
    area, _ = annulus_section(spokes)
    assert mesh.nelements == 3 * layers * len(faces)
    assert volume.min() > 0  # every tetrahedron positively oriented
    assert volume.sum() == pytest.approx(area * LENGTH_MM, rel=1e-12)  # no gap, no overlap
    # Conforming: only the inner and outer skins and the two rims are boundary; a side quad cut one way
    # in a prism and the other way next door would add 4 more boundary triangles per such quad.
    rim_triangles = 2 * (2 * spokes) * layers
    assert len(mesh.boundary_facets()) == 2 * len(faces) + rim_triangles
    np.testing.assert_allclose(p[: len(vertices)], vertices)  # nodes 0..n-1 are the inner surface
    np.testing.assert_allclose(np.linalg.norm(p[-len(vertices):, :2], axis=1), RADIUS_MM + WALL_MM)


def test_layered_wall_mesh_rejects_bad_input():
    vertices, faces, directions = tube_surface(12, 100.0)
    thickness = np.full(len(vertices), WALL_MM)
    with pytest.raises(InputError, match="thickness_mm"):
        layered_wall_mesh(vertices, faces, directions, np.zeros(len(vertices)))
    with pytest.raises(InputError, match="unit vectors"):
        layered_wall_mesh(vertices, faces, 2 * directions, thickness)
    with pytest.raises(InputError, match="layers"):
        layered_wall_mesh(vertices, faces, directions, thickness, layers=0)
    with pytest.raises(GeometryError, match="fold"):  # grown inward past the axis: the wall turns inside out
        layered_wall_mesh(vertices, faces, -directions, np.full(len(vertices), 2.5 * RADIUS_MM))


def test_tube_tip_deflection_matches_timoshenko_beam(bent_tube):
    solution, (area, inertia) = bent_tube
    shear_modulus = E_MPA / (2 * (1 + NU))
    kappa = 2 * (1 + NU) / (4 + 3 * NU)  # Cowper's shear coefficient of a thin circular tube, 0.53
    bending_mm = SHEAR_N * LENGTH_MM**3 / (3 * E_MPA * inertia)  # 1.170 mm
    shear_mm = SHEAR_N * LENGTH_MM / (kappa * shear_modulus * area)  # 0.094 mm: 7 % of the total
    tip = solution.node_mm[:, 2] > LENGTH_MM - 1e-9
    # The ring average keeps the beam mode (n = 1) and drops the end face's ovalisation (n = 2).
    deflection_mm = solution.displacement_mm[tip, 1].mean()
    error = deflection_mm / (bending_mm + shear_mm) - 1
    print(f"tip deflection {deflection_mm:.4f} mm, Timoshenko {bending_mm + shear_mm:.4f} mm: {100 * error:+.2f} %")
    assert abs(error) < 0.05


def test_tube_bending_stress_matches_mc_over_i(bent_tube):
    solution, (_, inertia) = bent_tube
    x = solution.point_mm.reshape(-1, 3)
    sigma_zz = solution.stress_mpa[..., 2, 2].ravel()
    mid = (x[:, 2] > 150) & (x[:, 2] < 250)  # far from clamp and load: Saint-Venant
    beam = -SHEAR_N * (LENGTH_MM - x[mid, 2]) * x[mid, 1] / inertia  # sigma = M y / I, top in compression
    slope = (sigma_zz[mid] * beam).sum() / (beam * beam).sum()
    band_mm = 50.0
    peak_mpa = solution.von_mises_mpa[solution.clamp_distance_mm > band_mm].max()
    root_mpa = SHEAR_N * (LENGTH_MM - band_mm) * (RADIUS_MM + WALL_MM) / inertia  # M c / I, 1.69 MPa
    print(f"bending stress: fitted / beam {slope:.4f}; peak beyond {band_mm:g} mm {peak_mpa:.4f} MPa, "
          f"M c / I {root_mpa:.4f} MPa: {100 * (peak_mpa / root_mpa - 1):+.2f} %")
    assert slope == pytest.approx(1.0, rel=0.05)
    assert peak_mpa == pytest.approx(root_mpa, rel=0.05)


def test_clamp_reaction_balances_the_applied_load(bent_tube):
    solution, _ = bent_tube
    np.testing.assert_allclose(solution.reaction_force_n, [0.0, -SHEAR_N, 0.0], atol=1e-5 * SHEAR_N)
    # The end-face traction has no moment about the face centre, so neither have the reactions.
    np.testing.assert_allclose(solution.reaction_moment_nmm, 0.0, atol=1e-5 * SHEAR_N * LENGTH_MM)


def test_uniform_tension_gives_uniform_stress_f_over_a():
    spokes, length_mm, force_n = 24, 200.0, 1000.0
    vertices, faces, directions = tube_surface(spokes, 20.0, length_mm)
    mesh = layered_wall_mesh(vertices, faces, directions, np.full(len(vertices), WALL_MM), layers=1)
    z = mesh.p[2]
    solution = solve_wall(mesh, z < 1e-9, z > length_mm - 1e-9, [0.0, 0.0, force_n], [0.0, 0.0, 0.0], E_MPA, NU)
    area, _ = annulus_section(spokes)
    z = solution.point_mm[..., 2]
    away = (z > 80.0) & (z < length_mm - 20.0)  # past the clamp's restraint of the Poisson contraction
    sigma = solution.stress_mpa[away]
    print(f"tension: sigma_zz / (F / A) in [{sigma[:, 2, 2].min() * area / force_n:.5f}, "
          f"{sigma[:, 2, 2].max() * area / force_n:.5f}]")
    np.testing.assert_allclose(sigma[:, 2, 2], force_n / area, rtol=0.01)
    np.testing.assert_allclose(solution.von_mises_mpa[away], force_n / area, rtol=0.01)
    np.testing.assert_allclose(solution.reaction_force_n, [0.0, 0.0, -force_n], atol=1e-5 * force_n)


def test_force_and_moment_reach_the_clamp_in_full():
    vertices, faces, directions, adapter, inner_wall = cup_surface(4)
    layers = 1
    mesh = layered_wall_mesh(vertices, faces, directions, np.full(len(vertices), WALL_MM), layers)
    load = iso10328_load_case("P5", "push_off")
    force, moment = load.force_vector_n(), load.moment_nmm("left")
    centre = vertices[adapter].mean(axis=0)
    solution = solve_wall(
        mesh, np.tile(adapter, layers + 1), np.concatenate([inner_wall, np.zeros(len(vertices), bool)]),
        force, moment, 3300.0, 0.35, point_mm=centre)
    np.testing.assert_allclose(solution.reaction_force_n, -force, atol=1e-5 * load.force_n)
    np.testing.assert_allclose(solution.reaction_moment_nmm, -moment, atol=1e-5 * np.linalg.norm(moment))


def test_any_tetrahedral_mesh_is_solved_with_plain_amg():
    from skfem import MeshTet

    box = MeshTet.init_tensor(np.linspace(0, 10, 3), np.linspace(0, 10, 3), np.linspace(0, 100, 11))
    z = box.p[2]
    solution = solve_wall(box, z < 1e-9, z > 100 - 1e-9, [5.0, 0.0, 0.0], [0.0, 0.0, 0.0], E_MPA, NU)
    assert solution.solver.startswith("CG + smoothed aggregation AMG")
    np.testing.assert_allclose(solution.reaction_force_n, [-5.0, 0.0, 0.0], atol=1e-6)


def test_peak_stress_and_deflection_converge_on_a_socket_like_cup():
    """P5 push-off on a PLA cup (R 45 mm, wall 4 mm), clamped on a 64 mm distal cap, loaded above it."""
    rows = []
    for n_arc, layers in ((4, 1), (6, 2), (8, 2)):
        vertices, faces, directions, adapter, inner_wall = cup_surface(n_arc)
        result = wall_strength(
            vertices, faces, directions, np.full(len(vertices), WALL_MM), adapter, inner_wall,
            iso10328_load_case("P5", "push_off"), youngs_modulus_mpa=3300.0, poisson=0.35, strength_mpa=40.0,
            layers=layers)
        rows.append((len(vertices), layers, result))
    print("\n inner vertices | layers |   dofs | seconds | peak vM MPa | at clamp MPa | deflection mm")
    for count, layers, r in rows:
        print(f" {count:14d} | {layers:6d} | {r.dofs:6d} | {r.seconds:7.1f} | {r.peak_von_mises_mpa:11.2f} | "
              f"{r.peak_von_mises_at_clamp_mpa:12.2f} | {r.max_deflection_mm:13.3f}")
    medium, fine = rows[-2][2], rows[-1][2]
    assert fine.peak_von_mises_mpa == pytest.approx(medium.peak_von_mises_mpa, rel=0.03)
    assert fine.max_deflection_mm == pytest.approx(medium.max_deflection_mm, rel=0.03)
    assert fine.peak_von_mises_at_clamp_mpa >= fine.peak_von_mises_mpa
    assert fine.safety_factor == pytest.approx(40.0 / fine.peak_von_mises_mpa)


def test_analyse_wall_rejects_bad_input():
    vertices, faces, directions = tube_surface(12, 100.0)
    mesh = layered_wall_mesh(vertices, faces, directions, np.full(len(vertices), WALL_MM), layers=1)
    z = mesh.p[2]
    clamp, tip, nothing = z < 1e-9, z > LENGTH_MM - 1e-9, np.zeros(mesh.nvertices, bool)
    args = ([0.0, 1.0, 0.0], [0.0, 0.0, 0.0])
    with pytest.raises(InputError, match="fixed selects no node"):
        analyse_wall(mesh, nothing, tip, *args, E_MPA, NU, 40.0)
    with pytest.raises(InputError, match="no boundary facet"):
        analyse_wall(mesh, clamp, nothing, *args, E_MPA, NU, 40.0)
    with pytest.raises(InputError, match="poisson"):
        analyse_wall(mesh, clamp, tip, *args, E_MPA, 0.5, 40.0)
    with pytest.raises(InputError, match="youngs_modulus_mpa"):
        analyse_wall(mesh, clamp, tip, *args, -1.0, NU, 40.0)
    with pytest.raises(InputError, match="boolean mask"):
        analyse_wall(mesh, clamp[:-1], tip, *args, E_MPA, NU, 40.0)


def test_iso_10328_forces_rise_with_the_test_level():
    for condition in CONDITIONS:
        forces = [iso10328_load_case(level, condition).force_n for level in LEVELS]
        assert forces == sorted(forces) and len(set(forces)) == len(forces)  # P3 < P4 < P5 < P6
    assert iso10328_load_case("P5", "heel_strike").force_n == 2240.0  # ISO 10328:2016, via Bader et al. 2023
    assert iso10328_load_case("P4", "push_off").force_n == 1811.0  # ISO 10328:2006, via Lapapong et al. 2014


def test_iso_10328_load_line_gives_force_and_bending_moment():
    heel, push = iso10328_load_case("P5", "heel_strike"), iso10328_load_case("P5", "push_off")
    np.testing.assert_allclose(heel.force_vector_n(), [0.0, 0.0, -2240.0])
    # Load line behind the adapter at heel strike, in front at push-off; medial on either leg.
    assert heel.moment_nmm()[0] > 0 > push.moment_nmm()[0]
    assert push.moment_nmm("right")[1] == -push.moment_nmm("left")[1]
    lever_mm = np.hypot(push.anterior_offset_mm, push.medial_offset_mm)
    assert np.linalg.norm(push.moment_nmm()) == pytest.approx(push.force_n * lever_mm)


@pytest.mark.parametrize(
    ("level", "condition", "listed"),
    [("P7", "heel_strike", "P3, P4, P5, P6"), ("P5", "toe_off", "heel_strike, push_off")],
)
def test_iso_10328_bad_names_are_input_errors_listing_the_valid_ones(level, condition, listed):
    with pytest.raises(InputError) as caught:
        iso10328_load_case(level, condition)
    message = str(caught.value)
    assert listed in message and "\n" not in message
    with pytest.raises(InputError, match="right, left"):
        iso10328_load_case("P5", "push_off").moment_nmm("both")
