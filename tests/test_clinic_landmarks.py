"""Landmarks placed by hand on a scan (socketcad.clinic.landmarks): snapped to the skin and kept as records, taken
by the designs of the scan into their plans (so a rebuild years later places the regions where they were), carried
by case archives; refused when unknown or off the skin."""

from __future__ import annotations

import numpy as np
import pytest

from socketcad import InputError
from socketcad import operations as ops
from socketcad.clinic.store import Store

SPEC = ops.SpecFields(liner="silicone_locking_6", closure="pin_lock_icelock")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("landmarks"))
    ops.new_case(store, ops.NewCaseRequest(reference="L-1", level="transtibial", side="right"), "p")
    scan = ops.add_scan(store, ops.AddScanRequest(reference="L-1", source="sample:openlimb-tt-mean"), "p")
    return store, scan.id


def test_a_placed_landmark_is_snapped_kept_and_designed_with(case, tmp_path):
    store, scan = case
    located = {row.name: np.array(row.point_mm) for row in ops.scan_view(store, "L-1", scan).landmarks}
    wanted = located["fibular_head"] + [0.0, 0.0, -12.0]  # 12 mm distally, a little off the skin
    moved = ops.move_landmark(store, ops.MoveLandmarkRequest(reference="L-1", scan=scan, name="fibular_head",
                                                             point_mm=tuple(wanted + [3.0, 0.0, 0.0])), "p")
    point = np.array(moved.point_mm)
    assert np.linalg.norm(point - wanted) < 6.0 and located["fibular_head"][2] - point[2] > 8.0
    shown = {row.name: row for row in ops.scan_view(store, "L-1", scan).landmarks}
    assert shown["fibular_head"].placed and not shown["mpt"].placed
    assert np.allclose(shown["fibular_head"].point_mm, point)

    revision = ops.save_design(store, ops.DesignRequest(reference="L-1", template="ptb", spec=SPEC), "p")
    with store.transaction() as db:
        from socketcad.clinic.models import Revision
        plan = db.get(Revision, revision.id).plan
    assert plan["landmarks"]["fibular_head"] == pytest.approx(moved.point_mm)
    relief = next(m for m in plan["modifications"] if m.get("region", {}).get("landmark") == "fibular_head")
    assert relief["kind"] == "relief"
    assert ops.rebuild(store, revision.id).identical  # the plan carries the placement: the same socket again

    # a later placement does not change the revision (its plan keeps the landmark as it was)
    ops.move_landmark(store, ops.MoveLandmarkRequest(reference="L-1", scan=scan, name="fibular_head",
                                                     point_mm=tuple(located["fibular_head"])), "p")
    assert ops.rebuild(store, revision.id).identical

    archive = tmp_path / "L-1.zip"
    ops.export_case(store, "L-1", archive, "p")
    other = Store(tmp_path / "other")
    ops.import_case(other, archive, "lab")
    history = ops.case_history(other, "L-1")
    assert [e.action for e in history.audit].count("landmark.move") == 2
    placed = {row.name: row for row in ops.scan_view(other, "L-1", history.scans[0].id).landmarks}
    assert placed["fibular_head"].placed
    assert np.allclose(placed["fibular_head"].point_mm, located["fibular_head"], atol=0.5)  # the newest placement


def test_an_unknown_or_off_skin_landmark_is_refused(case):
    store, scan = case
    before = len(ops.case_history(store, "L-1").audit)
    with pytest.raises(InputError, match="ischial_tuberosity.*not a transtibial landmark"):
        ops.move_landmark(store, ops.MoveLandmarkRequest(reference="L-1", scan=scan, name="ischial_tuberosity",
                                                         point_mm=(0.0, 0.0, 100.0)), "p")
    with pytest.raises(InputError, match="off the skin"):
        ops.move_landmark(store, ops.MoveLandmarkRequest(reference="L-1", scan=scan, name="mpt",
                                                         point_mm=(300.0, 0.0, 100.0)), "p")  # 25 cm out
    with pytest.raises(InputError, match="point_mm"):
        ops.MoveLandmarkRequest(reference="L-1", scan=scan, name="mpt", point_mm=(float("nan"), 0.0, 0.0))
    assert len(ops.case_history(store, "L-1").audit) == before
