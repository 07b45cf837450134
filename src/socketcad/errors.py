"""One exception family for socketcad, and one way to turn a validation error into one line.

``InputError`` is bad user input: the CLI prints its one-line message and exits 2,
the web answers 4xx. Anything else escaping the library is a bug.
"""

import re

# C0 controls but tab, DEL and C1 controls: what a terminal would act on (colours, cursor moves, titles).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """``text`` with every control character written as an escape (ESC as \\x1b, a newline as \\n),
    so that what a file holds can be shown on a terminal and stays one line."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], str(text))


class SocketcadError(Exception):
    """Base of every error socketcad raises on purpose."""


class InputError(SocketcadError):
    """Bad user input: a file, a value or an option that cannot be used as given.

    The message is one line that says what is wrong and what to do about it.
    """


class AccessError(InputError):
    """Not allowed: the user's role does not permit the action (the web answers 403)."""


class UnknownError(InputError):
    """No such record for this user: missing, or another clinic's, told alike (the web answers 404)."""


class GeometryError(SocketcadError):
    """A shape that the geometry kernel cannot process (e.g. no closed section)."""


def field_path(location: tuple, tags: tuple[str, ...] = ()) -> str:
    """A validation error's location as users write it: ``modifications[2].region.landmark``.

    ``tags``: names of tagged-union members (pydantic puts the tag after a list index), left out.
    """
    path = ""
    for key in location:
        if isinstance(key, int):
            path += f"[{key}]"
        elif key in tags and path.endswith("]"):
            continue
        else:
            path += f".{key}" if path else str(key)
    return path


def every_error(exc, tags: tuple[str, ...] = (), problem=None) -> str:
    """pydantic's errors as one line, each with its field: 'modifications[2].depth_mm: ...; name: ...'.

    problem: a record's own wording of one error (pydantic's error dict -> str), or None to word it so.
    """
    problems = []
    for error in exc.errors():
        worded = problem(error) if problem is not None else None
        if worded is None:
            where = field_path(error["loc"], tags)
            message = str(error["msg"]).removeprefix("Value error, ")
            worded = f"{where}: {message}" if where else message
        problems.append(printable(worded))  # field names come from the file: a newline or ESC among them
    return "; ".join(dict.fromkeys(problems))  # a union's branches can repeat one problem


def validated(model, data: object, source: str, shape: str, tags: tuple[str, ...] = (), describe=None):
    """``model`` (a pydantic class) validated from plain data; InputError naming every bad field.

    shape: what the data must be when it is not a mapping at all, e.g. 'a plan is a mapping with ...'.
    describe: the validation error as one line (default every_error), for records with their own wording.
    """
    from pydantic import ValidationError

    if not isinstance(data, dict):
        raise InputError(f"{source}: {shape}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(printable(f"{source}: {describe(exc) if describe else every_error(exc, tags)}")) from None
