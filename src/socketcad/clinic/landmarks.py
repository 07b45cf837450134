"""A case's scan as the prosthetist works on it: read in the limb frame with its landmarks located, the ones placed
by hand over them (kept as LandmarkMove records, newest per name), and the design that starts from it.

Reading a scan and locating its landmarks takes a second or more on a 200k-vertex scan; the rectification of a
limb reuses per-mesh work (its k-d tree, normals) when it gets the same limb again. So the located limbs of the
last few scans are kept in memory (``located_limb``): a live preview rectifies a limb already read.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from socketcad.anatomy.landmarks import known_landmarks, locate_landmarks
from socketcad.anatomy.limb import Limb
from socketcad.clinic.cases import audit, facts_of, find_case, placed_landmarks, read_limb, scan_of
from socketcad.clinic.models import LandmarkMove
from socketcad.clinic.store import Store
from socketcad.errors import InputError

__all__ = ["ScanLimb", "located_limb", "move_landmark", "scan_limb"]

KEPT_LIMBS = 6  # scans kept read in memory (a 200k-vertex limb with its caches is ~100 MB)


@dataclass(frozen=True)
class ScanLimb:
    """A case's scan read for design: its id, the limb (landmarks located, the placed ones over them) and the
    placed landmarks (name -> (x, y, z) mm), which a design of the scan keeps in its plan."""

    scan_id: int
    limb: Limb
    placed: dict[str, tuple[float, float, float]]


def scan_limb(store: Store, reference: str, scan_id: int | None = None) -> ScanLimb:
    """The case's scan (default: its newest) in the limb frame with its landmarks."""
    with store.transaction() as db:
        case = find_case(db, reference)
        scan = scan_of(db, case, scan_id)
        placed = placed_landmarks(db, scan)
        key = (scan.file_hash, *facts_of(scan), case.level, case.side)
    # the hash names the bytes: the file store is read only when the limb is not kept already
    limb = located_limb(store, key, tuple(sorted(placed.items())))
    return ScanLimb(scan_id=scan.id, limb=limb, placed=placed)


@functools.lru_cache(maxsize=KEPT_LIMBS)
def located_limb(store: Store, key: tuple, placed: tuple) -> Limb:
    """The limb of a scan (``key``: file hash, filename, units, anterior, level, side) with its landmarks located
    and ``placed`` ((name, point), ...) over them; the last few are kept (the same object for the same inputs)."""
    file_hash, filename, units, anterior, level, side = key
    limb = read_limb(store.files.get(file_hash), filename, units, anterior, level=level, side=side)
    return locate_landmarks(limb, dict(placed) or None)


def move_landmark(store: Store, reference: str, scan_id: int, name: str, point_mm: tuple[float, float, float],
                  *, actor: str) -> tuple[LandmarkMove, Limb]:
    """Place landmark ``name`` of a case's scan at ``point_mm`` (limb frame; snapped to the skin, and refused
    when farther from it than a landmark may be). Kept as a new record: the earlier placements stay in the trail."""
    scanned = scan_limb(store, reference, scan_id)
    level = scanned.limb.level
    if name not in known_landmarks(level):
        raise InputError(f"landmark {name!r} is not a {level} landmark: one of {', '.join(known_landmarks(level))}")
    limb = locate_landmarks(scanned.limb, {**scanned.placed, name: list(point_mm)})
    snapped = [round(float(v), 3) for v in limb.landmarks[name].point_mm]
    with store.transaction() as db:
        case = find_case(db, reference)
        scan = scan_of(db, case, scan_id)
        move = LandmarkMove(case_id=case.id, scan_id=scan.id, name=name, point_mm=snapped, created_by=actor)
        db.add(move)
        db.flush()
        audit(db, "landmark.move", case.id, {"scan": scan.id, "landmark": name, "point_mm": snapped}, actor)
    return move, limb
