"""The socket types socketcad knows: one registry, from which templates, trimlines, the spec and help read.

Each type has a template (design.templates) and a default trimline (design.trimline), keyed by
its name here; the socket spec accepts exactly these names. This module imports nothing heavy,
so help texts built from it are cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["transtibial", "transfemoral"]
LEVELS: tuple[str, ...] = ("transtibial", "transfemoral")


@dataclass(frozen=True)
class SocketType:
    """One socket type: its name (as in specs, templates and the CLI), amputation level and title."""

    name: str
    level: Level
    title: str
    description: str  # one line


SOCKET_TYPES: dict[str, SocketType] = {t.name: t for t in (
    SocketType("ptb", "transtibial", "patellar tendon bearing",
               "loads the patellar tendon, tibial flares and popliteal area; relieves bony prominences"),
    SocketType("tsb", "transtibial", "total surface bearing",
               "circumferential reduction by liner thickness; the whole surface carries the load"),
    SocketType("kbm", "transtibial", "Kondylen-Bettung Muenster (supracondylar)",
               "PTB plus medial and lateral supracondylar wedges for suspension over the femoral condyles"),
    SocketType("ic", "transfemoral", "ischial containment",
               "narrow ML, femur held in adduction, ischium and ramus contained in the socket"),
    SocketType("quad", "transfemoral", "quadrilateral",
               "ischial seat on the posterior wall, held by an anterior push over Scarpa's triangle"),
    SocketType("subischial", "transfemoral", "subischial",
               "compression by reduction, every wall below the ischial tuberosity (NU-FlexSIV style)"),
)}


def socket_type_names(level: str | None = None) -> tuple[str, ...]:
    """The registered names in registry order; only those of ``level`` if given."""
    if level is not None and level not in LEVELS:
        raise ValueError(f"unknown level '{level}'; use one of {', '.join(LEVELS)}")
    return tuple(name for name, kind in SOCKET_TYPES.items() if level is None or kind.level == level)


def socket_type(name: str) -> SocketType:
    """The registered type of ``name`` (exact, lower case); KeyError with the known names otherwise."""
    try:
        return SOCKET_TYPES[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown socket type '{name}'; use one of {', '.join(SOCKET_TYPES)}") from None


def socket_types_help() -> str:
    """The names grouped by level, for help texts: 'ptb, tsb, kbm (transtibial); ic, quad, subischial (transfemoral)'."""
    return "; ".join(f"{', '.join(socket_type_names(level))} ({level})" for level in LEVELS if socket_type_names(level))


def socket_types_table() -> str:
    """One line per type, 'name  level  title: description', for a longer help text."""
    width = max(len(name) for name in SOCKET_TYPES)
    return "\n".join(f"{t.name:<{width}}  {t.level:<12}  {t.title}: {t.description}" for t in SOCKET_TYPES.values())
