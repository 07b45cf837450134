"""Shared fixtures for the command-line tests: run ``socketcad`` in this process."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

from socketcad import cli as socketcad_cli


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
