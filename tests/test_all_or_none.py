"""A command's outputs appear together or not at all; what a file holds is escaped on the terminal."""

from __future__ import annotations

import sys

import pytest

from socketcad import cli
from socketcad.errors import printable
from socketcad.geometry import io


def test_files_written_in_a_block_appear_only_when_it_succeeds(tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    with pytest.raises(RuntimeError):
        with io.all_or_none():
            io.write_atomic(first, lambda tmp: tmp.write_text("a"))
            assert not first.exists()  # staged, not yet in place
            io.write_atomic(second, lambda tmp: tmp.write_text("b"))
            raise RuntimeError("killed before the end")
    assert list(tmp_path.iterdir()) == []  # neither output, no temp file
    with io.all_or_none():
        io.write_atomic(first, lambda tmp: tmp.write_text("a"))
        with io.all_or_none():  # nested: the outer block decides
            io.write_atomic(second, lambda tmp: tmp.write_text("b"))
        assert not second.exists()
    assert first.read_text() == "a" and second.read_text() == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["socketcad", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
        raise SystemExit(0)
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def test_rectify_failing_on_its_last_output_leaves_none_of_them(tmp_path, monkeypatch, capsys):
    """The fuzzing campaign's case: 'rectify -o r.stl --report r.csv --save-plan p.yaml' left r.stl and r.csv."""
    from socketcad.operations import _design as plan_module  # where rectify writes the plan

    def full_disk(plan, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(plan_module, "write_plan", full_disk)
    code, _, err = run_cli(monkeypatch, capsys, "rectify", "sample:openlimb-tt-mean", "--template", "tsb",
                           "-o", str(tmp_path / "r.stl"), "--report", str(tmp_path / "r.csv"),
                           "--save-plan", str(tmp_path / "p.yaml"))
    assert code == 2 and err.strip().endswith("p.yaml: No space left on device"), err
    assert list(tmp_path.iterdir()) == []


def test_control_characters_from_files_are_escaped_in_error_lines(tmp_path, monkeypatch, capsys):
    plan = tmp_path / "plan.yaml"
    plan.write_text('schema_version: 1\n"\\e[2J\\e]0;pwned\\a": 1\n')
    code, _, err = run_cli(monkeypatch, capsys, "rectify", "sample:openlimb-tt-mean", "--plan", str(plan),
                           "-o", str(tmp_path / "r.stl"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "\x1b" not in err and "\x07" not in err and "\\x1b[2J" in err, err


def test_printable_escapes_every_control_character_but_tab():
    assert printable("a\x1b[31mb\nc\td\x9be\x7f") == "a\\x1b[31mb\\nc\td\\x9be\\x7f"
    assert printable("Fibula – köpfchen") == "Fibula – köpfchen"  # text, not controls
