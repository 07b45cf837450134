"""A short, deterministic part of the fuzzing campaign (``make fuzz`` runs it for ten minutes)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzzing.campaign import FAILURES, KINDS, campaign, make_input, make_seeds  # noqa: E402


def test_a_short_campaign_finds_no_failure(tmp_path):
    counts = campaign(seed=1, count=48, workers=2, out=tmp_path)
    assert counts.inputs == 48 and set(counts.by_kind) == set(KINDS)
    assert counts.failed == 0, "\n".join(counts.failures + counts.store_problems)
    refused = sum(counter["refused"] for counter in counts.by_kind.values())
    accepted = sum(counter["accepted"] for counter in counts.by_kind.values())
    assert refused > 0 and accepted > 0  # the mutations both break and keep inputs: the campaign tests something


def test_a_seed_and_an_index_give_the_same_input(tmp_path):
    seeds = make_seeds(tmp_path)
    kinds = tuple(kind for kind in KINDS if kind != "archive")  # the archive seed needs a store (the test above)
    first = [make_input(i, 7, seeds, tmp_path, tmp_path / "store", kinds) for i in range(14)]
    again = [make_input(i, 7, seeds, tmp_path, tmp_path / "store", kinds) for i in range(14)]
    assert [(c.args, c.files) for c in first] == [(c.args, c.files) for c in again]
    other = [make_input(i, 8, seeds, tmp_path, tmp_path / "store", kinds) for i in range(14)]
    assert [c.files for c in first] != [c.files for c in other]


def test_the_outcome_of_a_child_is_classified(tmp_path):
    from fuzzing.campaign import outcome

    (tmp_path / "out").mkdir()
    assert outcome(2, "error: x.stl: bad\n", tmp_path) == "refused"
    assert outcome(2, "warning\nerror: x.stl: bad\n", tmp_path) == "multi-line"
    assert outcome(1, "internal error: ValueError\n", tmp_path) == "internal"
    assert outcome(-999, "", tmp_path) == "hang"
    assert outcome(137, "MemoryError\n", tmp_path) == "memory"
    (tmp_path / "out" / "x.stl").write_text("half")
    assert outcome(2, "error: x.stl: bad\n", tmp_path) == "wrote on error"
    assert set(FAILURES) == {"internal", "multi-line", "wrote on error", "hang", "memory", "crash"}


REGRESSIONS = Path(__file__).parent / "data" / "fuzz"


def test_the_inputs_the_campaign_found_are_refused_or_read(tmp_path):
    """Every input kept in tests/data/fuzz failed before issue 19 (internal error or several lines); each now
    ends refused (exit 2, one line, nothing written) or accepted, run as the campaign ran it."""
    import json
    import shutil

    from fuzzing.campaign import make_store, outcome, run_in_child

    make_seeds(tmp_path)
    data = make_store(tmp_path, tmp_path / "limb.stl")
    runs = sorted(REGRESSIONS.glob("*.run.json"))
    assert len(runs) >= 15
    results = {}
    for run in runs:
        record = json.loads(run.read_text())
        work = tmp_path / run.stem
        (work / "out").mkdir(parents=True)
        shutil.copyfile(REGRESSIONS / record["file"], work / record["input"])
        args = [arg.replace("{data}", str(data)).replace("{root}", str(tmp_path)) for arg in record["args"]]
        code, _, err = run_in_child(args, work)
        results[run.stem] = (outcome(code, err, work), err.strip()[:200])
    failed = {name: result for name, result in results.items() if result[0] not in ("refused", "accepted")}
    assert not failed, failed
