"""rectify(limb, plan): the modified limb model a socket is built on. Pure and deterministic.

Order of application (see plan.py: a plan is a set): circumferential reductions and
distal shaping are pointwise maps of the whole limb; regions are found on the
unmodified skin (the vertex nearest each landmark anchor) and carried by vertex index;
then pushes and reliefs, each displacing the surface along its vertex normals by
depth x region weight (displacements add); then brim flare; then volume-keeping smoothing. The skin keeps its topology, so every vertex has a signed
deviation (mm, + outwards) from where it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import trimesh
from scipy.interpolate import PchipInterpolator
from scipy.spatial import cKDTree

from socketcad.anatomy.limb import Limb
from socketcad.anatomy.regions import (
    FACING_VECTORS,
    RegionPlacement,
    anatomical_vector,
    facing_point,
    place_region,
    region_weights,
)
from socketcad.design.plan import Distal, Flare, Push, RectificationPlan, Reduction, Region, Relief, Smooth
from socketcad.errors import InputError
from socketcad.geometry import measure
from socketcad.geometry.deform import smootherstep, taubin_keep_volume, vertex_areas, vertex_normals
from socketcad.geometry.memo import per_mesh, share
from socketcad.geometry.repair import boundary_loops, edge_census

CORE_WEIGHT = 0.999  # a vertex this deep in two regions is in both cores
MAX_LOCAL_DEPTH_MM = 25.0  # pushes and reliefs stacked on one spot (a single one: plan.py)



@dataclass(frozen=True)
class LocalEffect:
    """Where one push or relief landed and how far it reaches (mm, limb frame)."""

    index: int  # position in plan.modifications
    placement: RegionPlacement
    weights: np.ndarray = field(repr=False)  # (n,) in [0, 1]


@dataclass(frozen=True)
class Rectification:
    """The rectified skin (same vertices and faces as the limb's skin, moved) and what changed."""

    limb: Limb
    plan: RectificationPlan
    skin: trimesh.Trimesh
    deviation_mm: np.ndarray  # (n,) signed, along the original vertex normals, + outwards
    local_effects: tuple[LocalEffect, ...]
    # (n,) signed distance from the reduced shape (the scan after reductions and distal shaping, on
    # which pushes and reliefs are placed), along its normals, + outwards
    over_reduced_mm: np.ndarray = field(repr=False)

    @property
    def volume_before_mm3(self) -> float:
        return measure.enclosed_volume_mm3(self.limb.skin)

    @property
    def volume_after_mm3(self) -> float:
        return measure.enclosed_volume_mm3(self.skin)

    @property
    def volume_change_pct(self) -> float:
        return 100.0 * (self.volume_after_mm3 / self.volume_before_mm3 - 1.0)

    def rectified_limb(self) -> Limb:
        """The limb with the rectified skin; landmarks follow their nearest vertex."""
        vertices = self.limb.skin.vertices
        landmarks = {}
        for name, landmark in self.limb.landmarks.items():
            nearest = int(np.argmin(((vertices - landmark.point_mm) ** 2).sum(axis=1)))
            moved = landmark.point_mm + (self.skin.vertices[nearest] - vertices[nearest])
            landmarks[name] = replace(landmark, point_mm=moved)
        notes = self.limb.notes + [f"rectified with plan '{self.plan.name}' ({len(self.plan.modifications)} modifications)"]
        return replace(self.limb, skin=self.skin, landmarks=landmarks, notes=notes)


def with_plan_facts(limb: Limb, plan: RectificationPlan | None) -> Limb:
    """The limb with the plan's level and side where the limb's own are unknown (a bone-less scan read
    without `side`), so that its landmarks are found for that side; the limb's own facts always win
    (rectify refuses a plan for the other side)."""
    if plan is None:
        return limb
    facts = {fact: getattr(plan, fact) for fact in ("level", "side")
             if getattr(plan, fact) is not None and getattr(limb, fact) == "unknown"}
    if not facts:
        return limb
    said = ", ".join(f"{fact} {value}" for fact, value in facts.items())
    return replace(limb, **facts, notes=limb.notes + [f"{said}: from the plan (unknown from the limb)"])


def rectify(limb: Limb, plan: RectificationPlan) -> Rectification:
    """Apply ``plan`` to ``limb`` (frame coordinates, mm); the limb is not changed."""
    if plan.side is not None and limb.side in ("left", "right") and plan.side != limb.side:
        raise InputError(f"side: the plan is for a {plan.side} limb but this limb is {limb.side}; "
                         "use a plan made for this side (landmark-anchored regions mirror themselves)")
    if plan.level is not None and limb.level in ("transtibial", "transfemoral") and plan.level != limb.level:
        raise InputError(f"level: the plan is for a {plan.level} limb but this limb is {limb.level}")
    if any(getattr(modification, "region", None) is not None for modification in plan.modifications):
        limb.require_anterior("the plan's regions")
    skin = limb.skin
    original = np.asarray(skin.vertices, dtype=np.float64)
    length_mm = _length_mm(limb)
    kinds = _by_kind(plan)
    anchors = {index: _anchor(limb, index, modification.region)
               for index, modification in kinds["local"] + kinds["smooth"] if modification.region is not None}

    vertices, normals = _global_map(original, kinds["reduction"], kinds["distal"], length_mm, skin_normals(skin))
    reduced = vertices

    # Regions are found on the unmodified skin (its k-d tree is built once per limb) and act
    # on the skin as reduced and reshaped; no vertex moved further than `shift` on the way.
    tree = skin_tree(skin)
    shift = float(np.sqrt(np.einsum("ij,ij->i", vertices - original, vertices - original).max(initial=0.0)))

    def weights_of(index: int, region: Region) -> tuple[RegionPlacement, np.ndarray]:
        centre = int(tree.query(anchors[index])[1])
        placement = place_region(vertices, normals, centre, region.width_mm, region.height_mm,
                                 region.falloff_mm, region.angle_deg)
        nearby = tree.query_ball_point(original[centre], placement.reach_mm + 2.0 * shift, return_sorted=False)
        return placement, region_weights(vertices, normals, placement, np.asarray(nearby, dtype=np.int64))

    effects = [LocalEffect(index, *weights_of(index, m.region)) for index, m in kinds["local"]]
    smooth_weights = {index: weights_of(index, m.region)[1] for index, m in kinds["smooth"] if m.region is not None}
    _check_contradictions(plan, effects)
    if effects:
        signed_depth = {index: (-m.depth_mm if isinstance(m, Push) else m.depth_mm) for index, m in kinds["local"]}
        displacement = sum(signed_depth[effect.index] * effect.weights for effect in effects)
        if np.abs(displacement).max() > MAX_LOCAL_DEPTH_MM:
            raise InputError(f"modifications: pushes and reliefs add up to {np.abs(displacement).max():.1f} mm "
                             f"at one place (at most {MAX_LOCAL_DEPTH_MM:g} mm); spread or reduce them")
        vertices = vertices + displacement[:, None] * normals

    for _, flare in kinds["flare"]:
        vertices = _flare(vertices, skin, flare)

    for index, smooth in kinds["smooth"]:
        vertices = taubin_keep_volume(skin, vertices, smooth.iterations, smooth_weights.get(index))

    rectified = trimesh.Trimesh(vertices, skin.faces, process=False, validate=False)
    share(skin, rectified, edge_census, boundary_loops, measure.brim_loop)  # same faces, same loops
    deviation = np.einsum("ij,ij->i", vertices - original, skin_normals(skin))
    over_reduced = np.einsum("ij,ij->i", vertices - reduced, normals)
    return Rectification(limb, plan, rectified, deviation, tuple(effects), over_reduced)


@per_mesh
def skin_tree(skin: trimesh.Trimesh) -> cKDTree:
    """k-d tree of the unmodified skin's vertices, memoised: every plan on the limb reuses it."""
    return cKDTree(skin.vertices)


@per_mesh
def skin_normals(skin: trimesh.Trimesh) -> np.ndarray:
    """Vertex normals (n, 3) of the unmodified skin, memoised: deviations are measured along them."""
    return vertex_normals(skin)


def _by_kind(plan: RectificationPlan) -> dict[str, list]:
    """Modifications grouped by how they are applied, each with its index in the plan."""
    groups: dict[str, list] = {"reduction": [], "distal": [], "local": [], "flare": [], "smooth": []}
    for index, modification in enumerate(plan.modifications):
        if isinstance(modification, (Push, Relief)):
            groups["local"].append((index, modification))
        elif isinstance(modification, Reduction):
            groups["reduction"].append((index, modification))
        elif isinstance(modification, Distal):
            groups["distal"].append((index, modification))
        elif isinstance(modification, Flare):
            groups["flare"].append((index, modification))
        elif isinstance(modification, Smooth):
            groups["smooth"].append((index, modification))
    return groups


def _length_mm(limb: Limb) -> float:
    """Reference length for level_pct: distal end (0 %) to the lowest brim point (100 %)."""
    brim = limb.brim_low_mm
    return float(brim) if brim is not None and brim > 0 else float(limb.skin.vertices[:, 2].max())


def _anchor(limb: Limb, index: int, region: Region) -> np.ndarray:
    """The point (3,) a region is placed at, on the unmodified skin (frame, mm)."""
    landmarks = limb.landmarks
    if region.landmark not in landmarks:
        raise InputError(
            f"modifications[{index}].region.landmark: '{region.landmark}' has not been located on this "
            f"{limb.level} limb (side {limb.side}); give `level` / `side`, or the point in `landmarks`"
        )
    point = np.asarray(landmarks[region.landmark].point_mm, dtype=np.float64)
    try:
        if region.facing is not None:
            anterior, lateral = FACING_VECTORS[region.facing]
            direction = anatomical_vector(limb.side, anterior=anterior, lateral=lateral)
            point = facing_point(limb.skin.vertices, point[2], direction)
        if region.proximal_mm or region.anterior_mm or region.lateral_mm:
            point = point + anatomical_vector(limb.side, region.proximal_mm, region.anterior_mm, region.lateral_mm)
    except InputError as exc:
        raise InputError(f"modifications[{index}].region: {exc}") from None
    return point


def _global_map(
    points: np.ndarray,
    reductions: list,
    distals: list,
    length_mm: float,
    normals: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Reductions and distal shaping applied to points (k, 3); normals (k, 3) carried along if given.

    The map is (x, y, z) -> (f(z) x, f(z) y, z + s(z)): a reduction scales each horizontal
    section uniformly about the axis, which scales its perimeter by exactly f, so r %
    shortens every circumference by exactly r %. Normals transform by the map's inverse
    transpose, n -> (nx, ny, (nz f - f' (x nx + y ny)) / (1 + s')): exact for the smooth
    surface, and it spares recomputing every vertex normal after a reduction.
    """
    points = np.array(points, dtype=np.float64)
    z = points[:, 2].copy()
    factor, factor_slope = np.ones(len(points)), np.zeros(len(points))
    for _, reduction in reductions:
        pct, pct_slope = _reduction_pct(reduction, 100.0 * z / length_mm)
        shrink = 1.0 - pct / 100.0
        factor, factor_slope = factor * shrink, factor_slope * shrink - factor * pct_slope * (100.0 / length_mm) / 100.0
    stretch = np.ones(len(points))
    for _, distal in distals:
        t = z / distal.length_mm
        points[:, 2] -= distal.elongation_mm * (1.0 - smootherstep(t))
        inside = (t > 0) & (t < 1)
        stretch += np.where(inside, distal.elongation_mm * 30.0 * t**2 * (1 - t) ** 2 / distal.length_mm, 0.0)
    mapped_normals = None
    if normals is not None:
        radial = points[:, 0] * normals[:, 0] + points[:, 1] * normals[:, 1]
        mapped_normals = np.column_stack([normals[:, 0], normals[:, 1],
                                          (normals[:, 2] * factor - factor_slope * radial) / stretch])
        mapped_normals /= np.linalg.norm(mapped_normals, axis=1, keepdims=True)
    points[:, :2] *= factor[:, None]
    return points, mapped_normals


def _reduction_pct(reduction: Reduction, level_pct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reduction (%) at each level (% of length) and its slope (% per %), constant beyond the profile's ends."""
    levels = np.array([p.level_pct for p in reduction.profile])
    values = np.array([p.reduction_pct for p in reduction.profile])
    if len(levels) == 1:
        return np.full(len(level_pct), values[0]), np.zeros(len(level_pct))
    inside = np.clip(level_pct, levels[0], levels[-1])
    curve = PchipInterpolator(levels, values)  # monotone between points: no overshoot, no kink
    slope = np.where((level_pct > levels[0]) & (level_pct < levels[-1]), curve.derivative()(inside), 0.0)
    return curve(inside), slope


def _check_contradictions(plan: RectificationPlan, effects: list[LocalEffect]) -> None:
    """A push and a relief whose cores share skin contradict each other."""
    pushes = [e for e in effects if isinstance(plan.modifications[e.index], Push)]
    reliefs = [e for e in effects if isinstance(plan.modifications[e.index], Relief)]
    for push in pushes:
        for relief in reliefs:
            if np.any((push.weights >= CORE_WEIGHT) & (relief.weights >= CORE_WEIGHT)):
                p, r = plan.modifications[push.index], plan.modifications[relief.index]
                raise InputError(
                    f"modifications[{push.index}] (push at {p.region.landmark}) and modifications[{relief.index}] "
                    f"(relief at {r.region.landmark}) overlap: the same skin cannot be loaded and relieved; "
                    "move or shrink one of the regions"
                )


def _flare(vertices: np.ndarray, skin: trimesh.Trimesh, flare: Flare) -> np.ndarray:
    """Turn the surface outwards by flare_mm at the brim, fading over height_mm below the brim line."""
    loop = measure.brim_loop(skin)
    if loop is None:
        raise InputError("flare: the limb surface has no brim (proximal opening) to flare")
    brim = vertices[loop]
    near = np.flatnonzero(vertices[:, 2] > brim[:, 2].min() - flare.height_mm)  # only these can move
    points = vertices[near]
    angle = np.arctan2(points[:, 1], points[:, 0])
    brim_height = np.interp(angle, np.arctan2(brim[:, 1], brim[:, 0]), brim[:, 2], period=2 * np.pi)
    weight = 1.0 - smootherstep((brim_height - points[:, 2]) / flare.height_mm)
    radius = np.hypot(points[:, 0], points[:, 1])
    outward = points[:, :2] / np.where(radius > 0, radius, 1.0)[:, None]
    moved = vertices.copy()
    moved[near, :2] += (flare.flare_mm * weight)[:, None] * outward
    return moved


def region_table(result: Rectification) -> list[dict]:
    """One row per modification: what was asked and what the surface did (mm, cm2)."""
    rows = []
    effects = {effect.index: effect for effect in result.local_effects}
    areas = vertex_areas(result.limb.skin) / 100.0  # cm2
    for index, modification in enumerate(result.plan.modifications):
        row = {"index": index, "kind": modification.kind, "label": modification.label or _default_label(modification)}
        if index in effects:
            effect = effects[index]
            core = effect.weights >= CORE_WEIGHT
            touched = effect.weights > 0.0
            target = -modification.depth_mm if isinstance(modification, Push) else modification.depth_mm
            centre = effect.placement.centre_vertex
            over = result.over_reduced_mm
            row.update(
                landmark=modification.region.landmark,
                target_mm=target,
                # a push or relief is placed on the reduced shape: its depth is measured from it; the
                # deviation from the scan adds what the reductions took there
                centre_over_reduced_mm=float(over[centre]),
                core_over_reduced_min_mm=float(over[core].min()) if core.any() else None,
                core_over_reduced_max_mm=float(over[core].max()) if core.any() else None,
                centre_deviation_mm=float(result.deviation_mm[centre]),
                reduction_at_centre_mm=float(result.deviation_mm[centre] - over[centre]),
                core_deviation_min_mm=float(result.deviation_mm[core].min()) if core.any() else None,
                core_deviation_max_mm=float(result.deviation_mm[core].max()) if core.any() else None,
                area_cm2=float(areas[touched].sum()),
            )
            if isinstance(modification, Relief) and row["centre_deviation_mm"] < 0:
                row["note"] = (f"relief '{row['label']}' is {row['centre_over_reduced_mm']:+.1f} mm from the reduced "
                               f"shape but {row['centre_deviation_mm']:+.1f} mm from the scan: the reductions take "
                               f"{-row['reduction_at_centre_mm']:.1f} mm there; deepen it to clear the scan")
        rows.append(row)
    return rows


def _default_label(modification) -> str:
    region = getattr(modification, "region", None)
    return f"{modification.kind} at {region.landmark}" if region is not None else modification.kind
