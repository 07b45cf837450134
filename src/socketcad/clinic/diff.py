"""What changed between two design revisions of a case: the plan (modification by modification), the spec
(field by field), and a deviation map of the rectified model (mm, + where revision B gives the limb more
room than A), summarised by region."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from socketcad.clinic.cases import facts_of, find_case, read_limb, revision_of
from socketcad.clinic.followup import RegionChange, regional_deviation
from socketcad.clinic.store import Store
from socketcad.design.plan import plan_from_dict
from socketcad.errors import InputError
from socketcad.geometry.measure import signed_deviation

LOCAL = ("push", "relief")
OFFSETS = ("proximal_mm", "anterior_mm", "lateral_mm", "facing")


class DeviationExtent(BaseModel):
    most_inward: float  # mm: where B is tightest against A
    most_outward: float  # mm: where B gives the most room
    mean: float


class RevisionChanges(BaseModel):
    """What changed from revision ``first`` to ``second``: plan and spec lines, the scan, and the deviation of
    the rectified model (mm, + where B gives the limb more room), by region."""

    case: str
    first: int
    second: int
    plan: list[str]
    spec: list[str]
    scan: str | None  # 'scan 1 -> scan 2' when the revisions are of different scans
    deviation_mm: DeviationExtent
    regions: list[RegionChange]


def plan_changes(before: dict, after: dict) -> list[str]:
    """One line per modification added, removed or changed from plan ``before`` to ``after`` (plain data).
    Local modifications are matched by where they act (a push can become a relief); others by kind and label."""
    old, new = _keyed(before["modifications"]), _keyed(after["modifications"])
    lines = []
    for key in list(old) + [k for k in new if k not in old]:
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if a is None or b is None:
            lines.append(f"{'added' if a is None else 'removed'} {_describe(b if a is None else a)}")
        elif a["kind"] in LOCAL and b["kind"] in LOCAL:
            change = _outward(b) - _outward(a)
            lines.append(f"{key}: {_describe(a)} -> {_describe(b)} ({change:+g} mm outward)"
                         if change else f"{key}: region changed: {_describe(b)}")
        else:
            lines.append(f"changed {_describe(a)} -> {_describe(b)}")
    return lines


def spec_changes(before: dict, after: dict) -> list[str]:
    return [f"spec {name}: {before.get(name)} -> {after.get(name)}"
            for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)]


def diff_revisions(store: Store, reference: str, first: int, second: int) -> tuple[RevisionChanges, np.ndarray, object]:
    """Plan and spec changes from revision ``first`` to ``second`` of one case, and the deviation map:
    (summary, deviation (n,) mm on the first's rectified skin, that skin as a trimesh)."""
    from socketcad.design.pipeline import prepared_limb
    from socketcad.design.rectify import rectify

    if first == second:
        raise InputError("give two different revisions to compare")
    with store.transaction() as db:
        case = find_case(db, reference)
        revisions = [revision_of(db, case, number) for number in (first, second)]
        facts = [(store.files.get(r.scan.file_hash), *facts_of(r.scan)) for r in revisions]
        level, side = case.level, case.side
    read = {}  # by scan: two revisions of one scan read it once
    shapes = []
    for revision, scan in zip(revisions, facts):
        if revision.scan_id not in read:
            read[revision.scan_id] = read_limb(*scan, level=level, side=side)
        plan = plan_from_dict(revision.plan, f"revision {revision.id} plan")  # its landmarks as placed then
        shapes.append(rectify(prepared_limb(read[revision.scan_id], plan), plan).rectified_limb())
    deviation = signed_deviation(shapes[0].skin, shapes[1].skin)
    everywhere = np.ones(len(deviation), dtype=bool)
    length = float(shapes[0].skin.vertices[:, 2].max())
    summary = RevisionChanges(
        case=reference, first=first, second=second,
        plan=plan_changes(revisions[0].plan, revisions[1].plan),
        spec=spec_changes(revisions[0].spec, revisions[1].spec),
        scan=None if revisions[0].scan_id == revisions[1].scan_id else
        f"scan {revisions[0].scan_id} -> scan {revisions[1].scan_id}",
        deviation_mm=DeviationExtent(most_inward=round(float(deviation.min()), 2),
                                     most_outward=round(float(deviation.max()), 2), mean=round(float(deviation.mean()), 2)),
        regions=regional_deviation(shapes[0], deviation, everywhere, length),
    )
    return summary, deviation, shapes[0].skin


def deviation_colours(deviation: np.ndarray, scale_mm: float = 3.0) -> np.ndarray:
    """RGBA (n, 4) uint8: red where B is tighter (inward), blue where it gives room, white unchanged;
    full colour at ``scale_mm``."""
    t = np.clip(deviation / scale_mm, -1.0, 1.0)
    red = np.where(t < 0, 255, 255 * (1 - t))
    blue = np.where(t > 0, 255, 255 * (1 + t))
    green = 255 * (1 - np.abs(t))
    return np.column_stack([red, green, blue, np.full(len(t), 255)]).astype(np.uint8)


def _keyed(modifications: list[dict]) -> dict[str, dict]:
    keyed: dict[str, dict] = {}
    for modification in modifications:
        if modification["kind"] in LOCAL:
            region = modification["region"]
            shift = ", ".join(f"{k} {region[k]}" for k in OFFSETS if region.get(k))
            key = region["landmark"] + (f" ({shift})" if shift else "")
        else:
            key = f"{modification['kind']} '{_base_label(modification.get('label'))}'"
        while key in keyed:
            key += "'"
        keyed[key] = modification
    return keyed


def _base_label(label: str | None) -> str:
    """A label without what fittings appended to it ('...; fitting 1 ...')."""
    return (label or "").split("; ")[0]


def _outward(modification: dict) -> float:
    return modification["depth_mm"] if modification["kind"] == "relief" else -modification["depth_mm"]


def _describe(modification: dict) -> str:
    if modification["kind"] in LOCAL:
        return f"{modification['kind']} {modification['depth_mm']:g} mm"
    if modification["kind"] == "reduction":
        profile = ", ".join(f"{p['reduction_pct']:g} % at {p['level_pct']:g} %" for p in modification["profile"])
        return f"reduction '{modification.get('label') or ''}' ({profile})"
    return f"{modification['kind']} '{modification.get('label') or ''}'"

