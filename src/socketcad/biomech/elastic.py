"""Linear elasticity assembly shared by the tissue and the wall models (socketcad.biomech.fem,
socketcad.biomech.interface, socketcad.biomech.structure): isotropic material constants, vector degrees
of freedom, the P2 stiffness matrix, the stress at the quadrature points and its von Mises value, rigid
body modes, and tetrahedra from prism layers (socketcad.biomech.mesh). Units: mm, N, MPa.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from skfem import Basis, MeshTet

from socketcad.errors import GeometryError, InputError

__all__ = ["lame_parameters", "vector_dofs", "stiffness_matrix", "p2_nodes", "rigid_body_modes", "cauchy_stress",
           "von_mises", "prism_tetrahedra", "positively_oriented"]


def lame_parameters(youngs_modulus_mpa, poisson):
    """Lame's lambda and mu (MPa) of an isotropic material (numbers or arrays); InputError outside the
    physical range."""
    if not np.all(np.isfinite(youngs_modulus_mpa)) or np.any(np.asarray(youngs_modulus_mpa) <= 0):
        raise InputError(f"youngs_modulus_mpa must be a positive number of MPa, got {youngs_modulus_mpa}")
    if not np.all((-1.0 < np.asarray(poisson)) & (np.asarray(poisson) < 0.5)):
        raise InputError(f"poisson must lie between -1 and 0.5 (exclusive), got {poisson}")
    lam = youngs_modulus_mpa * poisson / ((1.0 + poisson) * (1.0 - 2.0 * poisson))
    return lam, youngs_modulus_mpa / (2.0 * (1.0 + poisson))


def vector_dofs(nodes: np.ndarray) -> np.ndarray:
    """Interleaved (x, y, z) degrees of freedom of ``nodes``: node i owns 3i, 3i + 1, 3i + 2."""
    return (3 * nodes[:, None] + np.arange(3)).ravel()


def stiffness_matrix(gradients, dx, element_dofs, nodes: int, lam, mu, chunk: int = 4096):
    """Global stiffness (3N, 3N) CSR of isotropic elasticity from scalar P2 gradients (10, 3, E, Q).

    lam, mu: Lame parameters (MPa), one value or one per element (E,).

    Assembled as 3 x 3 blocks per node pair: the sparsity pattern comes from sorting the (E x 100)
    node pairs once, then each block entry is summed with a bincount, 9x cheaper than 3N-level COO.
    """
    n_local = gradients.shape[0]
    lam, mu = (np.broadcast_to(np.asarray(value, dtype=np.float64), dx.shape[:1]) for value in (lam, mu))
    pair_rows = np.repeat(element_dofs.T, n_local, axis=1).astype(np.int64)  # (E, 100)
    pair_cols = np.tile(element_dofs.T, (1, n_local)).astype(np.int64)
    keys, slot = np.unique((pair_rows * nodes + pair_cols).ravel(), return_inverse=True)
    slot = slot.reshape(pair_rows.shape)
    blocks = np.zeros((len(keys), 9))
    grads = np.ascontiguousarray(gradients.transpose(2, 3, 0, 1)).reshape(dx.shape + (3 * n_local,))  # (E, Q, 30)
    for start in range(0, len(slot), chunk):  # chunks of elements bound the (chunk, 30, 30) temporaries
        g = grads[start:start + chunk]
        # gg[e, (a,i), (b,j)] = sum_q dx * d_i phi_a * d_j phi_b
        gg = ((g * dx[start:start + chunk, :, None]).transpose(0, 2, 1) @ g).reshape(-1, n_local, 3, n_local, 3)
        lam_e = lam[start:start + chunk, None, None, None, None]
        mu_e = mu[start:start + chunk, None, None, None, None]
        local = lam_e * gg + mu_e * gg.transpose(0, 1, 4, 3, 2)
        local += mu_e * np.einsum("eakbk->eab", gg)[:, :, None, :, None] * np.eye(3)[None, None, :, None, :]
        local = local.transpose(0, 1, 3, 2, 4).reshape(-1, 9)  # (E * 100 node pairs, 3 x 3)
        where = slot[start:start + chunk].ravel()
        for k in range(9):
            blocks[:, k] += np.bincount(where, weights=local[:, k], minlength=len(keys))
    rows, cols = np.divmod(keys, nodes)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=nodes))])
    matrix = sparse.bsr_matrix((blocks.reshape(-1, 3, 3), cols, indptr), shape=(3 * nodes, 3 * nodes))
    return matrix.tocsr()


def p2_nodes(mesh: MeshTet, basis: Basis, fixed: np.ndarray) -> np.ndarray:
    """(N,) P2 nodes of a vertex mask (V,): the vertices and the midpoints of edges between two of them."""
    node_fixed = np.zeros(basis.N, dtype=bool)
    node_fixed[basis.nodal_dofs[0]] = fixed
    node_fixed[basis.edge_dofs[0]] = fixed[mesh.edges].all(axis=0)
    return node_fixed


def rigid_body_modes(points: np.ndarray, centre: np.ndarray | None = None) -> np.ndarray:
    """(3k, 6) translations and rotations (about ``centre``, default the points' mean) of points (k, 3),
    interleaved like the displacement dofs."""
    r = points - (points.mean(axis=0) if centre is None else centre)
    modes = np.zeros((len(points), 3, 6))
    modes[:, [0, 1, 2], [0, 1, 2]] = 1.0
    modes[:, 1, 3], modes[:, 2, 3] = -r[:, 2], r[:, 1]  # about x
    modes[:, 0, 4], modes[:, 2, 4] = r[:, 2], -r[:, 0]  # about y
    modes[:, 0, 5], modes[:, 1, 5] = -r[:, 1], r[:, 0]  # about z
    return modes.reshape(-1, 6)


def cauchy_stress(displacement, gradients, element_dofs, lam: float, mu: float) -> np.ndarray:
    """Cauchy stress (E, Q, 3, 3) MPa at the quadrature points from the P2 displacement (3N,)."""
    local = displacement.reshape(-1, 3)[element_dofs.T]  # (E, 10, 3)
    grad_u = np.einsum("eai,ajeq->eqij", local, gradients)
    strain = 0.5 * (grad_u + np.swapaxes(grad_u, -1, -2))
    trace = np.trace(strain, axis1=-2, axis2=-1)
    return 2.0 * mu * strain + lam * trace[..., None, None] * np.eye(3)


def von_mises(stress_mpa: np.ndarray) -> np.ndarray:
    """Von Mises equivalent stress (...) of stress tensors (..., 3, 3)."""
    s = stress_mpa
    xx, yy, zz = s[..., 0, 0], s[..., 1, 1], s[..., 2, 2]
    normal = (xx - yy) ** 2 + (yy - zz) ** 2 + (zz - xx) ** 2
    shear = s[..., 0, 1] ** 2 + s[..., 1, 2] ** 2 + s[..., 2, 0] ** 2
    return np.sqrt(0.5 * normal + 3.0 * shear)


def prism_tetrahedra(faces: np.ndarray, n: int, layers: int) -> np.ndarray:
    """(3 * layers * m, 4) tetrahedra: tetrahedron j, j + P and j + 2P (P = layers * m) fill prism j."""
    first = np.argmin(faces, axis=1)
    faces = np.take_along_axis(faces, (first[:, None] + np.arange(3)) % 3, axis=1)  # lowest index first
    bottom = faces[None] + (n * np.arange(layers))[:, None, None]  # (layers, m, 3)
    v0, v1, v2 = np.moveaxis(bottom, -1, 0)
    v3, v4, v5 = v0 + n, v1 + n, v2 + n
    # Each side quad is cut from its lower-index bottom corner to the opposite top corner. The rule
    # reads only global indices, so the prism next door cuts the shared quad the same way: conforming.
    cut_15 = (v1 < v2)[..., None]
    first_tet = np.where(cut_15, np.stack([v0, v1, v2, v5], -1), np.stack([v0, v1, v2, v4], -1))
    second_tet = np.where(cut_15, np.stack([v0, v1, v5, v4], -1), np.stack([v0, v4, v2, v5], -1))
    third_tet = np.stack([v0, v4, v5, v3], -1)
    return np.stack([first_tet, second_tet, third_tet]).reshape(-1, 4)


def positively_oriented(points: np.ndarray, tetrahedra: np.ndarray) -> np.ndarray:
    """``tetrahedra`` with the last two corners swapped where the signed volume is negative.

    GeometryError where a prism's three tetrahedra disagree in sign or are flat: the wall folds over
    itself there (thickness larger than the local radius of curvature, or crossing directions).
    """
    a, b, c, d = (points[tetrahedra[:, k]] for k in range(4))
    volume = np.einsum("ij,ij->i", np.cross(b - a, c - a), d - a) / 6.0
    scale = np.abs(volume).max()
    sign = np.sign(np.where(np.abs(volume) > 1e-12 * scale, volume, 0.0)).reshape(3, -1)
    bad = (sign == 0).any(axis=0) | (sign != sign[0]).any(axis=0)
    if bad.any():
        raise GeometryError(
            f"{int(bad.sum())} wall prisms fold over or are flat: thickness exceeds the local radius of curvature "
            "or neighbouring directions cross"
        )
    flipped = tetrahedra.copy()
    negative = volume < 0
    flipped[negative, 2], flipped[negative, 3] = tetrahedra[negative, 3], tetrahedra[negative, 2]
    return flipped
