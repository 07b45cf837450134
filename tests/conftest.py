"""Shared fixtures for the command-line tests: run ``socketcad`` in this process; the slowest test files
first, so that under ``make test`` (two pytest-xdist workers, a file per worker) they do not start last."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

from socketcad import cli as socketcad_cli


SLOWEST_FIRST = ("test_interface_limb.py", "test_realscan.py", "test_clinic_story.py", "test_clinic.py")


def pytest_collection_modifyitems(items):
    rank = {name: place for place, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path_factory):
    """``cli(*args)`` runs the real entry point (``socketcad.cli.main``) in this process.

    Same code path as the installed ``socketcad`` script, error handling included, without
    the 1.5 s of a fresh interpreter per call; exit code, stdout and stderr come back.
    """
    monkeypatch.delenv("SOCKETCAD_DEBUG", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("SOCKETCAD_CACHE", str(tmp_path_factory.mktemp("cache")))  # not the user's ~/.cache

    def run(*args) -> CliResult:
        capsys.readouterr()  # drop anything printed before
        monkeypatch.setattr(sys, "argv", ["socketcad", *map(str, args)])
        try:
            socketcad_cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
