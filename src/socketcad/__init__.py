"""socketcad: custom prosthetic socket design, from the clinic to the printer.

The public API is the operations (``socketcad.operations``: one function per job, typed requests and
results), the settings, the error family and the registries help texts are made from::

    import socketcad
    limb = socketcad.inspect(socketcad.InspectRequest(source="sample:openlimb-tt-mean"))
    print(limb.volume_cm3)

Names load on first use, so ``import socketcad`` stays cheap (a help text needs no mesh library).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_OPERATIONS = "socketcad.operations"  # importing it loads the mesh libraries: only when asked
_HOMES = {
    "InputError": "socketcad.errors", "SocketcadError": "socketcad.errors", "GeometryError": "socketcad.errors",
    "printable": "socketcad.errors",
    "Settings": "socketcad.settings",
    "FORMATS": "socketcad.geometry.formats", "format_names": "socketcad.geometry.formats",
    "formats_help": "socketcad.geometry.formats",
    "SOCKET_TYPES": "socketcad.design.socket_types", "socket_type_names": "socketcad.design.socket_types",
    "socket_types_help": "socketcad.design.socket_types",
    "UNITS": "socketcad.geometry.units",
    "CHECKLIST": "socketcad.clinic.records",
    "serve": "socketcad.web.server",
}


def __getattr__(name: str):
    """The public names, imported when first asked for: every name of socketcad.operations' __all__ (the one
    list of them), the settings, the errors and the registries (_HOMES)."""
    if name.startswith("__") and name != "__all__":  # dunder probes (copy, pickle, doctest...)
        raise AttributeError(f"module 'socketcad' has no attribute {name!r}")
    if name == "__all__":
        return ["__version__", "operations", *sorted(_HOMES), *importlib.import_module(_OPERATIONS).__all__]
    if name == "operations":
        return importlib.import_module(_OPERATIONS)
    if name in _HOMES or name in importlib.import_module(_OPERATIONS).__all__:
        value = getattr(importlib.import_module(_HOMES.get(name, _OPERATIONS)), name)
        globals()[name] = value  # the next access is a plain attribute
        return value
    raise AttributeError(f"module 'socketcad' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__getattr__("__all__")))
