"""One exception family for socketcad.

``InputError`` is bad user input: the CLI prints its one-line message and exits 2,
the web answers 4xx. Anything else escaping the library is a bug.
"""


class SocketcadError(Exception):
    """Base of every error socketcad raises on purpose."""


class InputError(SocketcadError):
    """Bad user input: a file, a value or an option that cannot be used as given.

    The message is one line that says what is wrong and what to do about it.
    """


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
