"""The library speaks in field names, not command-line flags.

Everything in src/socketcad but cli.py also serves a web application, so no message, note, warning
or docstring names a flag (``--side``) or a command (``socketcad case list``): it names the option
by its field name in backticks (```side```), which the command line turns into its flag and a web
form into its field label.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "socketcad"

COMMANDS = ("case|scan|build|rectify|analyze|design|fit|deliver|followup|diff|inspect|convert|tape|landmarks|"
            "evaluate|fabricate|rebuild")
FORBIDDEN = (re.compile(r"(?<![\w-])--[a-z]"),
             re.compile(r"'socketcad [a-z]"),
             re.compile(rf"\bsocketcad ({COMMANDS}) "))


def library_modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path != PACKAGE / "cli.py")


FLAG_BEFORE_VALUE = re.compile(r"(?<![\w-])--$")  # f"--{fact}": a flag whose name is filled in


def offending_strings(source: str, name: str) -> list[str]:
    """'name:line: text' for each string constant in source (f-string parts too) that names a flag or command."""
    found = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if any(pattern.search(node.value) for pattern in FORBIDDEN):
                found.append(f"{name}:{node.lineno}: {node.value.strip()[:120]!r}")
        elif isinstance(node, ast.JoinedStr):
            for index, (part, after) in enumerate(zip(node.values, node.values[1:])):
                text = part.value if isinstance(part, ast.Constant) and isinstance(part.value, str) else ""
                if (isinstance(after, ast.FormattedValue) and FLAG_BEFORE_VALUE.search(text)
                        and (index == 0 or text != "--")):  # f"{low}--{high}" is a range
                    found.append(f"{name}:{part.lineno}: {part.value.strip()[-120:]!r} + a flag's name")
    return found


def test_the_walk_covers_the_library():
    modules = library_modules()
    assert PACKAGE / "errors.py" in modules and PACKAGE / "anatomy" / "limb.py" in modules
    assert PACKAGE / "cli.py" not in modules


@pytest.mark.parametrize("text", [
    '"give --side left or right"',
    'f"check --units ({x}) and the file"',
    '"""Docstring: pass --force to go on."""',
    "\"see 'socketcad case list'\"",
    'f"no scan yet: socketcad scan add {reference} FILE"',
    'f"and --{fact} says {given}"',
])
def test_a_planted_flag_or_command_is_caught(text):
    assert offending_strings(f"x = 1\ny = {text}\n", "planted.py")


@pytest.mark.parametrize("text", [
    '"give `side` left or right"',
    '"check `units` and the file, or set `force` to go on anyway"',
    '"socketcad reads version 3"',
    '"an archive socketcad wrote"',
    '"a 50--60 mm range"',
    '"x-axis --- the long one"',
    'f"and `{fact}` says {given}"',
    'f"{low}--{high} mm"',
])
def test_field_names_and_plain_words_pass(text):
    assert not offending_strings(f"y = {text}\n", "fine.py")


def test_no_library_message_names_a_flag_or_command():
    found = []
    for path in library_modules():
        found += offending_strings(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parents[1])))
    assert not found, "name the option by its field name in backticks, not its flag or command:\n" + "\n".join(found)
