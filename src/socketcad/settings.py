"""socketcad's settings: where the data, database and caches live, and who is acting.

Read once, at the edge (the command line's start, the web application's start), from the
environment; the library below takes what it needs as explicit arguments and reads no variable.

=================  =========================================================================
variable           meaning
=================  =========================================================================
SOCKETCAD_DATA     data folder: the clinic database (SQLite) and its files
                   [$XDG_DATA_HOME/socketcad, else ~/.local/share/socketcad]
SOCKETCAD_DB       database URL of a shared clinic database (PostgreSQL) [SQLite in the data folder]
SOCKETCAD_CACHE    cache folder: kept tissue meshes [$XDG_CACHE_HOME/socketcad, else ~/.cache/socketcad]
SOCKETCAD_USER     the actor written in the audit trail [the login name, $USER]
SOCKETCAD_DEBUG    1: show tracebacks and library warnings (the command line)
=================  =========================================================================
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    """Where socketcad keeps things and who is acting; see the module's table for the variables."""

    data_folder: Path
    database_url: str | None
    cache_folder: Path
    actor: str
    debug: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from ``environ`` (default: this process's environment)."""
        env = os.environ if environ is None else environ
        home = Path.home()
        data = env.get("SOCKETCAD_DATA") or Path(env.get("XDG_DATA_HOME") or home / ".local" / "share") / "socketcad"
        cache = env.get("SOCKETCAD_CACHE") or Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "socketcad"
        return cls(data_folder=Path(data), database_url=env.get("SOCKETCAD_DB") or None, cache_folder=Path(cache),
                   actor=env.get("SOCKETCAD_USER") or env.get("USER") or _login() or "unknown",
                   debug=bool(env.get("SOCKETCAD_DEBUG")))

    @property
    def tissue_cache(self) -> Path:
        """Folder of kept tissue meshes (biomech.mesh): every analysis of one limb runs on one mesh."""
        return self.cache_folder / "tissue"


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in a container
        return None
