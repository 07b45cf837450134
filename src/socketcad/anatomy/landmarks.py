"""Anatomical landmarks on the skin of a residual limb (limb frame, mm).

Landmarks are skin points with an outward normal and a line saying how each was
found: from the bones (a bone feature projected onto the skin), from the skin's
shape alone (cross-sections; most are estimates at stated heights and angles), or
from a landmark file. ``locate_landmarks`` is a separate step from ``load_limb``
because loading is benchmarked on million-triangle scans.

Frame: z up from the distal end, y anterior, x the subject's right, so lateral is +x
for a right limb and -x for a left one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import trimesh

from socketcad.anatomy.limb import Limb
from socketcad.errors import InputError
from socketcad.geometry import io, measure

TRANSTIBIAL_LANDMARKS = ("mpt", "tibial_tuberosity", "tibial_crest", "fibular_head", "distal_tibia",
                         "medial_tibial_flare", "lateral_tibial_flare", "popliteal",
                         "medial_hamstring", "lateral_hamstring", "distal_end")
TRANSFEMORAL_LANDMARKS = ("ischial_tuberosity", "greater_trochanter", "adductor_longus", "perineum",
                          "distal_femur", "distal_end")

# Skin-only transtibial rules. The patella is the anterior skin's highest bulge; the
# MPT lies half a patella height plus half the patellar tendon below its centre, which
# scales with the knee: 0.43 x the knee's ML width there, as measured from the bones of
# the OpenLimbTT mean shape (50 mm of 115 mm; literature: patella ~42 mm tall, tendon
# ~45 mm long, Insall-Salvati ratio ~1, gives 42-50 mm for an average knee).
PATELLA_TO_MPT_PER_ML = 0.43
TUBEROSITY_BELOW_MPT_MM = 25.0  # the tuberosity band (15-45 mm below the plateau), mean shape
MPT_FRACTION_OF_BRIM = 0.56  # fallback when the brim cuts below the patella (OpenLimbTT mean: 0.56)
HAMSTRING_ANGLE_DEG = 45.0  # from posterior towards medial/lateral
# Where the bones lie behind the skin, measured on the OpenLimbTT mean shape only (the 4 mode
# shapes are the test). Forward/back fractions are of the axis-to-anterior-skin distance at that
# level; heights are below the skin-detected MPT.
FLARE_BELOW_MPT_MM = 6.0  # the condyles' widest level (mean: lateral 6.6, medial 5.7 mm)
FLARE_FORWARD = {"lateral": 0.18, "medial": 0.11}  # the condyles' widest points lie just anterior of the axis
FIBULAR_HEAD_BELOW_MPT_MM = 15.0  # mean: 15.4 mm
FIBULAR_HEAD_BACK = 0.23  # the fibular head lies posterolateral: 0.23 behind the axis (mean: 0.234)
DISTAL_TIBIA_BEHIND_FRONT_MM = 20.0  # tissue over the crest + half the tibia's depth at the cut (mean: 20.4)
DISTAL_TIBIA_END_MM = 10.0  # the tibia's cut end: its lowest 10 mm
DISTAL_TIBIA_MEDIAL = 0.11  # the cut end lies medial: 0.11 of the half ML width (mean: 0.107)
DISTAL_TIBIA_PAD_MM = 25.0  # soft tissue below the cut tibia, typical; estimate


@dataclass(frozen=True)
class Landmark:
    """A named point on the skin.

    point_mm: (3,) on the skin surface, limb frame, mm. normal: (3,) unit outward
    skin normal there. how: how it was found, saying "estimate" where it is one.
    """

    name: str
    point_mm: np.ndarray
    normal: np.ndarray
    how: str

    def mirrored(self) -> Landmark:
        """The landmark mirrored across the sagittal plane (x -> -x)."""
        flip = np.array([-1.0, 1.0, 1.0])
        return replace(self, point_mm=self.point_mm * flip, normal=self.normal * flip)


MAX_COORDINATE_MM = 2000.0  # a limb frame spans at most 1000 mm (anatomy.plausible)
MIN_SKIN_LENGTH_MM = 50.0  # the shortest residual limb (anatomy.plausible.LENGTH_MM)
MAX_OFF_SKIN_MM = 50.0  # a landmark given in a file is snapped to the skin; farther off, it is a mistake


def known_landmarks(level: str) -> tuple[str, ...]:
    """Landmark names for a level (both lists for an unknown level)."""
    if level == "transtibial":
        return TRANSTIBIAL_LANDMARKS
    if level == "transfemoral":
        return TRANSFEMORAL_LANDMARKS
    return TRANSTIBIAL_LANDMARKS + tuple(n for n in TRANSFEMORAL_LANDMARKS if n not in TRANSTIBIAL_LANDMARKS)


def locate_landmarks(
    limb: Limb, overrides: dict[str, Sequence[float]] | None = None, use_bones: bool = True
) -> Limb:
    """A copy of ``limb`` with ``landmarks`` filled.

    From the bones when the limb has them and ``use_bones``, else from the skin's shape;
    ``overrides`` (name -> [x, y, z], frame mm) replace any landmark, snapped to the skin.
    """
    checked = _check_overrides(overrides or {}, limb.level)
    has_bones = ("tibia" in limb.bones) if limb.level == "transtibial" else ("femur" in limb.bones)
    marks = landmarks_from_bones(limb) if use_bones and has_bones else landmarks_from_skin(limb)
    if not limb.anterior_known:  # every direction but the axis's is then a placeholder's
        marks = {name: mark if name == "distal_end" else
                 replace(mark, how=f"{mark.how}; ANTERIOR UNKNOWN: placed on the frame's placeholder y, give `anterior`")
                 for name, mark in marks.items()}
    if checked:
        names = list(checked)
        given = np.array([checked[n] for n in names])
        points, normals = _on_skin(limb.skin, given)
        off = np.linalg.norm(points - given, axis=1)
        if off.max() > MAX_OFF_SKIN_MM:
            worst = names[int(np.argmax(off))]
            raise InputError(f"landmark '{worst}' is {off.max():.0f} mm off the skin (at most {MAX_OFF_SKIN_MM:g} mm): "
                             "give it in the limb frame, mm, as the limb's located landmarks are listed")
        for name, point, normal in zip(names, points, normals):
            marks[name] = Landmark(name, point, normal, "file")
    return replace(limb, landmarks=marks)


def read_landmark_file(path: str | Path) -> dict[str, list[float]]:
    """Landmarks {name: [x, y, z]} (frame, mm) from a YAML or JSON file."""
    path = Path(path)
    data = io.read_data_file(path, "landmark files")
    if not isinstance(data, dict) or not data:
        raise InputError(f"{path}: expected a mapping of landmark name to [x, y, z] in mm, e.g. 'mpt: [0, 60, 140]'")
    return {str(name): _xyz(value, f"{path}: landmark '{name}'") for name, value in data.items()}


def _xyz(value, what: str) -> list[float]:
    """[x, y, z] from a sequence of three finite numbers; InputError otherwise."""
    try:
        xyz = [float(v) for v in value]
    except (TypeError, ValueError):
        xyz = []
    if (len(xyz) != 3 or not np.all(np.isfinite(xyz)) or isinstance(value, (str, bytes, dict))
            or max(map(abs, xyz)) > MAX_COORDINATE_MM):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise InputError(f"{what} must be three numbers [x, y, z] in mm (limb frame, each within "
                         f"+/-{MAX_COORDINATE_MM:g}), not {shown}")
    return xyz


def _check_overrides(overrides: dict[str, Sequence[float]], level: str) -> dict[str, list[float]]:
    """Overrides with known names and three numbers each; InputError naming the first bad one."""
    known = known_landmarks(level)
    checked = {}
    for name, value in overrides.items():
        if name not in known:
            raise InputError(f"unknown landmark '{name}' for a {level} limb; known: {', '.join(known)}")
        checked[name] = _xyz(value, f"landmark '{name}'")
    return checked


# --- skin queries ---------------------------------------------------------------------------

def _on_skin(skin: trimesh.Trimesh, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closest skin points (n, 3) to ``points`` (n, 3) and unit outward normals (n, 3) there.

    Normals are vertex normals interpolated across the face (smooth on scans, where single
    face normals are noisy); the skin is wound outward, so they point out.
    """
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    closest, _, face = trimesh.proximity.closest_point(skin, points)
    corners = skin.vertices[skin.faces[face]]
    weights = trimesh.triangles.points_to_barycentric(corners, closest)
    normals = np.einsum("ij,ijk->ik", weights, skin.vertex_normals[skin.faces[face]])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(length > 1e-9, normals / np.maximum(length, 1e-12), skin.face_normals[face])
    return closest, normals


def _cast(skin: trimesh.Trimesh, origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """First skin point (3,) hit by the ray from ``origin`` along ``direction``;
    the closest skin point if the ray leaves through the brim without a hit."""
    direction = np.asarray(direction, dtype=np.float64) / np.linalg.norm(direction)
    hits, _, _ = skin.ray.intersects_location(origin[None], direction[None], multiple_hits=True)
    ahead = (hits - origin) @ direction if len(hits) else np.empty(0)
    if not np.any(ahead > 1e-9):
        return _on_skin(skin, origin[None])[0][0]
    return hits[np.argmin(np.where(ahead > 1e-9, ahead, np.inf))]


def _mark(limb: Limb, name: str, origin, direction, how: str) -> Landmark:
    """Landmark where the ray from ``origin`` (3,) along ``direction`` (3,) meets the skin."""
    hit = _cast(limb.skin, np.asarray(origin, dtype=np.float64), direction)
    point, normal = _on_skin(limb.skin, hit[None])
    return Landmark(name, point[0], normal[0], how)


def _horizontal(angle_deg: float, lateral: float) -> np.ndarray:
    """Unit horizontal direction (3,) at ``angle_deg`` from anterior towards lateral
    (``lateral`` = +1 if lateral is +x, -1 if -x)."""
    angle = np.radians(angle_deg)
    return np.array([lateral * np.sin(angle), np.cos(angle), 0.0])


def _axis_point(z: float) -> np.ndarray:
    return np.array([0.0, 0.0, z])


def _lateral_sign(limb: Limb) -> float | None:
    """+1 if lateral is +x, -1 if -x; from the bones when they tell, else the side; None if unknown."""
    bones = limb.bones
    if "fibula" in bones and "tibia" in bones:
        return float(np.sign(bones["fibula"].vertices[:, 0].mean() - bones["tibia"].vertices[:, 0].mean()))
    if "femur" in bones and "pelvis" in bones:  # the pelvis lies medial to the hip
        top = bones["femur"].vertices
        top = top[top[:, 2] > np.quantile(top[:, 2], 0.8)]
        return float(np.sign(top[:, 0].mean() - bones["pelvis"].vertices[:, 0].mean()))
    return {"right": 1.0, "left": -1.0}.get(limb.side)


def _distal_end(limb: Limb) -> Landmark:
    """Where the long axis leaves the skin distally."""
    start = _axis_point(0.25 * _top(limb))
    return _mark(limb, "distal_end", start, [0.0, 0.0, -1.0], "skin shape (where the long axis meets the distal skin)")


def _top(limb: Limb) -> float:
    """Height of the lowest brim point, or of the top of a closed surface (mm)."""
    brim = limb.brim_low_mm
    return float(brim if brim is not None else limb.skin.vertices[:, 2].max())


# --- from the bones ---------------------------------------------------------------------------

def landmarks_from_bones(limb: Limb) -> dict[str, Landmark]:
    """Landmarks from bone features projected onto the skin; skin estimates where bones say nothing."""
    if limb.level == "transtibial" and "tibia" in limb.bones:
        return _transtibial_from_bones(limb)
    if limb.level == "transfemoral" and "femur" in limb.bones:
        return _transfemoral_from_bones(limb)
    raise InputError(f"{limb.source}: no named bones for a {limb.level} limb; use landmarks from the skin "
                     "(use_bones=False) or a landmark file")


def _at_height(points: np.ndarray, z_mm: float, half_mm: float) -> np.ndarray:
    """The points (k, 3) of (n, 3) within ``half_mm`` of height ``z_mm``; the nearest one if none is (a coarse
    bone, or a loose piece of a scan named a bone by its position alone)."""
    near = points[np.abs(points[:, 2] - z_mm) < half_mm]
    return near if len(near) else points[[np.argmin(np.abs(points[:, 2] - z_mm))]]


def _tibial_points(limb: Limb) -> dict[str, np.ndarray]:
    """Bone feature points (3,) of the proximal tibia, patella and fibula (frame, mm)."""
    tibia = limb.bones["tibia"].vertices
    plateau = tibia[:, 2].max()
    band = _at_height(tibia, plateau - 30.0, 15.0)
    # The cut end's centre, not its lowest vertex: a bevelled cut's lowest point jumps across
    # the cut face from one shape to the next (10 mm on the OpenLimbTT modes).
    end = tibia[tibia[:, 2] < tibia[:, 2].min() + DISTAL_TIBIA_END_MM]
    distal = np.array([end[:, 0].mean(), end[:, 1].mean(), tibia[:, 2].min()])
    points = {"plateau": tibia[np.argmax(tibia[:, 2])], "tuberosity": band[np.argmax(band[:, 1])], "distal": distal}
    if "patella" in limb.bones:
        patella = limb.bones["patella"].vertices
        points["pole"] = patella[np.argmin(patella[:, 2])]
    if "fibula" in limb.bones:
        fibula = limb.bones["fibula"].vertices
        points["fibular_head"] = fibula[np.argmax(fibula[:, 2])]
    return points


def _transtibial_from_bones(limb: Limb) -> dict[str, Landmark]:
    tibia = limb.bones["tibia"].vertices
    p = _tibial_points(limb)
    lateral = _lateral_sign(limb)
    marks = {"distal_end": _distal_end(limb)}
    tt = p["tuberosity"]
    marks["tibial_tuberosity"] = _mark(limb, "tibial_tuberosity", tt, [0, 1, 0],
                                       "bones (most anterior tibia point 15-45 mm below the plateau, projected anteriorly)")
    if "pole" in p:
        middle = 0.5 * (p["pole"] + tt)
        how = "bones (midpoint of the patella's inferior pole and the tibial tuberosity, projected anteriorly)"
    else:
        middle = tt + [0.0, 0.0, TUBEROSITY_BELOW_MPT_MM]
        how = f"bones, estimate (no patella: {TUBEROSITY_BELOW_MPT_MM:g} mm above the tibial tuberosity)"
    marks["mpt"] = _mark(limb, "mpt", middle, [0, 1, 0], how)
    z_crest = 0.5 * (p["distal"][2] + tt[2])
    slab = _at_height(tibia, z_crest, 2.5)
    marks["tibial_crest"] = _mark(limb, "tibial_crest", slab[np.argmax(slab[:, 1])], [0, 1, 0],
                                  "bones (most anterior tibia point halfway between its distal end and the "
                                  "tuberosity, projected anteriorly)")
    marks["distal_tibia"] = _mark(limb, "distal_tibia", p["distal"], [0, 0, -1],
                                  f"bones (centre of the tibia's distal {DISTAL_TIBIA_END_MM:g} mm, projected distally)")
    if lateral is not None:
        if "fibular_head" in p:
            marks["fibular_head"] = _mark(limb, "fibular_head", p["fibular_head"], [lateral, 0, 0],
                                          "bones (highest fibula point, projected laterally)")
        proximal = tibia[(tibia[:, 2] >= tt[2]) & (tibia[:, 2] <= p["plateau"][2])]
        side_x = proximal[:, 0] * lateral
        for name, index, direction in (("lateral_tibial_flare", np.argmax(side_x), lateral),
                                       ("medial_tibial_flare", np.argmin(side_x), -lateral)):
            marks[name] = _mark(limb, name, proximal[index], [direction, 0, 0],
                                f"bones ({name.split('_')[0]}-most tibia point between tuberosity and plateau, "
                                f"projected {name.split('_')[0]}ly)")
    marks.update(_posterior_marks(limb, float(marks["mpt"].point_mm[2]), lateral, "MPT from the bones"))
    return marks


def _posterior_marks(limb: Limb, z_mpt: float, lateral: float | None, basis: str) -> dict[str, Landmark]:
    """Popliteal and hamstring landmarks at the MPT level, by rays from the long axis."""
    marks = {"popliteal": _mark(limb, "popliteal", _axis_point(z_mpt), [0, -1, 0],
                                f"skin shape (posterior skin at the MPT level; {basis})")}
    if lateral is not None:
        for name, sign in (("medial_hamstring", -1.0), ("lateral_hamstring", 1.0)):
            direction = _horizontal(180.0 - HAMSTRING_ANGLE_DEG, sign * lateral)
            marks[name] = _mark(limb, name, _axis_point(z_mpt), direction,
                                f"estimate (skin {HAMSTRING_ANGLE_DEG:g} deg from posterior towards "
                                f"{name.split('_')[0]} at the MPT level; {basis})")
    return marks


def _transfemoral_from_bones(limb: Limb) -> dict[str, Landmark]:
    femur = limb.bones["femur"].vertices
    lateral = _lateral_sign(limb)
    marks = {"distal_end": _distal_end(limb)}
    marks["distal_femur"] = _mark(limb, "distal_femur", femur[np.argmin(femur[:, 2])], [0, 0, -1],
                                  "bones (lowest femur point, projected distally)")
    pelvis = [mesh.vertices for label, mesh in limb.bones.items() if label.startswith("pelvis")]
    if lateral is not None:
        proximal = femur[femur[:, 2] > femur[:, 2].max() - 0.2 * np.ptp(femur[:, 2])]
        trochanter = proximal[np.argmax(proximal[:, 0] * lateral)]
        marks["greater_trochanter"] = _mark(limb, "greater_trochanter", trochanter, [lateral, 0, 0],
                                            "bones (most lateral point of the proximal femur, projected laterally)")
    if pelvis:
        points = np.vstack(pelvis)
        ischium = points[np.argmin(points[:, 2])]
        above = float(ischium[2] - limb.skin.vertices[:, 2].max())
        if above > 0:  # the skin was cut below the ischium: only the nearest skin point is left
            marks["ischial_tuberosity"] = _snap(limb, "ischial_tuberosity", ischium,
                                                f"estimate (lowest pelvis point lies {above:.0f} mm above the "
                                                "skin; nearest skin point)")
        else:
            marks["ischial_tuberosity"] = _mark(limb, "ischial_tuberosity", ischium, [0, 0, -1],
                                                "bones (lowest pelvis point, projected distally)")
        if lateral is not None:
            z_it = float(ischium[2])
            marks.update(_medial_thigh(limb, z_it, lateral, "ischial level from the bones"))
    return marks


def _medial_thigh(limb: Limb, z_ischial: float, lateral: float, basis: str) -> dict[str, Landmark]:
    """Perineum and adductor longus: medial skin at and 40 mm below the ischial level (estimates)."""
    top = _top(limb)
    z_per = min(z_ischial, top - 2.0)
    z_add = min(z_ischial - 40.0, top - 2.0)
    return {
        "perineum": _mark(limb, "perineum", _axis_point(z_per), [-lateral, 0, 0],
                          f"estimate (medial skin at the ischial level; {basis})"),
        "adductor_longus": _mark(limb, "adductor_longus", _axis_point(z_add), _horizontal(-30.0, lateral),
                                 f"estimate (anteromedial skin 40 mm below the ischial level; {basis})"),
    }


# --- from the skin alone -----------------------------------------------------------------------

def anterior_profile(limb: Limb, step_mm: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    """Heights (k,) and the most anterior skin y (k,) of sections up to the lowest brim point (mm)."""
    top = _top(limb)
    heights = np.arange(step_mm, top - 1.0, step_mm)
    sections = measure.section_segments(measure.capped(limb.skin), heights)
    keep = np.array([len(s) >= 3 for s in sections], dtype=bool)  # bool also when there is no section
    front = np.array([s[:, :, 1].max() if len(s) >= 3 else np.nan for s in sections])
    return heights[keep], front[keep]


def mpt_level_from_skin(limb: Limb) -> tuple[float, str]:
    """MPT height (mm) from the skin's shape, and how it was found.

    The patella is the highest anterior bulge: the maximum of the anterior profile,
    sought above 40 % of the brim height. If that maximum is at the brim (the scan is cut
    below the patella centre), the MPT is put at a fixed fraction of the brim height.
    """
    heights, front = anterior_profile(limb)
    top = _top(limb)
    upper = heights > 0.4 * top
    if upper.sum() >= 3:
        smooth = np.convolve(front[upper], np.ones(5) / 5, mode="same")
        peak = float(heights[upper][np.argmax(smooth[2:-2]) + 2]) if upper.sum() > 5 else float(heights[upper][0])
        if peak < top - 15.0:
            section = measure.section_segments(measure.capped(limb.skin), np.array([peak]))[0]
            offset = PATELLA_TO_MPT_PER_ML * float(np.ptp(section[:, 0, 0]))
            return peak - offset, (f"skin shape (patella bulge, the anterior profile's maximum, at {peak:.0f} mm; "
                                   f"MPT {offset:.0f} mm below it = {PATELLA_TO_MPT_PER_ML:g} x the knee's ML width)")
    z = MPT_FRACTION_OF_BRIM * top
    return z, f"estimate ({MPT_FRACTION_OF_BRIM:g} of the brim height; no patella bulge below the brim)"


def landmarks_from_skin(limb: Limb) -> dict[str, Landmark]:
    """Landmarks from cross-sections of the skin; only distal end and MPT level are measured,
    the rest are estimates at stated heights and angles from them."""
    top = _top(limb)
    if top < MIN_SKIN_LENGTH_MM:
        raise InputError(f"{limb.source}: its lowest brim point is {max(top, 0.0):.0f} mm above the distal end; landmarks "
                         f"from the skin need {MIN_SKIN_LENGTH_MM:g} mm of limb below it: check the scan's open "
                         "edge (a hole reaching down the limb?), or give a landmark file")
    marks = {"distal_end": _distal_end(limb)}
    if limb.level == "transtibial":
        marks.update(_transtibial_from_skin(limb))
    elif limb.level == "transfemoral":
        marks.update(_transfemoral_from_skin(limb))
    return marks


def _front_point(limb: Limb, z: float) -> np.ndarray:
    """The most anterior point (3,) of the skin section at height z (mm)."""
    section = measure.section_segments(measure.capped(limb.skin), np.array([z]))[0]
    start = section[np.argmax(section[:, 0, 1]), 0]
    return np.array([start[0], start[1], z])


def _extreme_point(limb: Limb, z: float, direction_x: float) -> np.ndarray:
    """The skin section's point (3,) furthest along x * ``direction_x`` at height z (mm)."""
    section = measure.section_segments(measure.capped(limb.skin), np.array([z]))[0]
    start = section[np.argmax(section[:, 0, 0] * direction_x), 0]
    return np.array([start[0], start[1], z])


def _transtibial_from_skin(limb: Limb) -> dict[str, Landmark]:
    z_mpt, how = mpt_level_from_skin(limb)
    lateral = _lateral_sign(limb)
    marks = {"mpt": _mark(limb, "mpt", _axis_point(z_mpt), [0, 1, 0], how + ", projected anteriorly from the axis")}
    z_tt = z_mpt - TUBEROSITY_BELOW_MPT_MM
    marks["tibial_tuberosity"] = _snap(limb, "tibial_tuberosity", _front_point(limb, z_tt),
                                       f"estimate (most anterior skin {TUBEROSITY_BELOW_MPT_MM:g} mm below the MPT)")
    z_crest = 0.5 * (DISTAL_TIBIA_PAD_MM + z_tt)
    marks["tibial_crest"] = _snap(limb, "tibial_crest", _front_point(limb, z_crest),
                                  "estimate (most anterior skin halfway between the tuberosity and the distal tibia)")
    if lateral is not None:
        marks["distal_tibia"] = _distal_tibia_from_skin(limb, lateral)
        z_flare = z_mpt - FLARE_BELOW_MPT_MM
        for side, sign in (("lateral", 1.0), ("medial", -1.0)):
            name = f"{side}_tibial_flare"
            forward = FLARE_FORWARD[side] * _front_point(limb, z_flare)[1]
            marks[name] = _mark(limb, name, [0.0, forward, z_flare], [sign * lateral, 0.0, 0.0],
                                f"estimate ({side} skin {FLARE_BELOW_MPT_MM:g} mm below the MPT, "
                                f"{FLARE_FORWARD[side]:g} of the way forward to the anterior skin)")
        z_fibula = z_mpt - FIBULAR_HEAD_BELOW_MPT_MM
        back = -FIBULAR_HEAD_BACK * _front_point(limb, z_fibula)[1]
        marks["fibular_head"] = _mark(limb, "fibular_head", [0.0, back, z_fibula], [lateral, 0.0, 0.0],
                                      f"estimate (lateral skin {FIBULAR_HEAD_BELOW_MPT_MM:g} mm below the MPT, "
                                      f"{FIBULAR_HEAD_BACK:g} of the axis-to-anterior-skin distance behind the axis)")
    marks.update(_posterior_marks(limb, z_mpt, lateral, "MPT from the skin"))
    return marks


def _distal_tibia_from_skin(limb: Limb, lateral: float) -> Landmark:
    """The cut tibia's end, estimated from the distal sections: anterior and medial of the axis."""
    front = _front_point(limb, DISTAL_TIBIA_PAD_MM)
    half_ml = 0.5 * (_extreme_point(limb, DISTAL_TIBIA_PAD_MM, 1.0)[0] - _extreme_point(limb, DISTAL_TIBIA_PAD_MM, -1.0)[0])
    above = [-lateral * DISTAL_TIBIA_MEDIAL * half_ml, front[1] - DISTAL_TIBIA_BEHIND_FRONT_MM, 0.25 * _top(limb)]
    return _mark(limb, "distal_tibia", above, [0.0, 0.0, -1.0],
                 f"estimate (distal skin below a point {DISTAL_TIBIA_BEHIND_FRONT_MM:g} mm behind the anterior skin "
                 f"and {DISTAL_TIBIA_MEDIAL:g} of the half ML width medial, {DISTAL_TIBIA_PAD_MM:g} mm up)")


def _snap(limb: Limb, name: str, point: np.ndarray, how: str) -> Landmark:
    points, normals = _on_skin(limb.skin, point[None])
    return Landmark(name, points[0], normals[0], how)


def _transfemoral_from_skin(limb: Limb) -> dict[str, Landmark]:
    """Transfemoral skin estimates: the ischial level is taken at the lowest brim point."""
    lateral = _lateral_sign(limb)
    top = _top(limb)
    marks = {"distal_femur": _mark(limb, "distal_femur", _axis_point(DISTAL_TIBIA_PAD_MM), [0, 1, 0],
                                   f"estimate (anterior skin {DISTAL_TIBIA_PAD_MM:g} mm above the distal end)")}
    if lateral is not None:
        marks["greater_trochanter"] = _snap(limb, "greater_trochanter", _extreme_point(limb, top - 2.0, lateral),
                                            "estimate (most lateral skin just below the lowest brim point)")
        marks.update(_medial_thigh(limb, top, lateral, "ischial level taken at the lowest brim point"))
    return marks
