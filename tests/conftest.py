"""Shared fixtures for the command-line tests: run ``socketcad`` in this process; the slowest test files
first, so that under ``make test`` (two pytest-xdist workers, a file per worker) they do not start last."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass

import pytest

from socketcad import cli as socketcad_cli


SLOWEST_FIRST = ("test_interface_limb.py", "test_realscan.py", "test_web_story.py", "test_clinic_story.py", "test_clinic.py")


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


def in_process(environment: dict[str, str]):
    """``run(*args)``: the real entry point in this process with ``environment`` as the whole environment for the
    call (restored after it), as ``subprocess.run`` returns it (returncode, stdout, stderr). Module fixtures
    use it where ``cli`` (a function fixture) cannot; it saves an interpreter start (1.5 s) per command."""

    def run(*args) -> subprocess.CompletedProcess:
        saved, argv = dict(os.environ), sys.argv
        out, err = io.StringIO(), io.StringIO()
        os.environ.clear()
        os.environ.update(environment)
        sys.argv = ["socketcad", *map(str, args)]
        code = 0
        try:
            with redirect_stdout(out), redirect_stderr(err):
                socketcad_cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            sys.argv = argv
        return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())

    return run
