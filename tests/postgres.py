"""A throwaway PostgreSQL server for the tests: a fresh cluster (initdb) in a temporary folder, listening
only on a Unix socket there, trust authentication, stopped and removed afterwards. Debian's postgresql
package provides the binaries (``make test`` installs it). PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` user."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

USER = "socketcad"


def server_binaries() -> Path:
    """The folder holding initdb and pg_ctl (the newest installed PostgreSQL)."""
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda f: int(Path(f).parent.name))
    for folder in reversed(folders):
        if (Path(folder) / "initdb").exists():
            return Path(folder)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL's server (initdb, pg_ctl) is not installed: run 'make test', which installs "
                       "Debian's postgresql package")


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yield the SQLAlchemy URL of an empty database on it."""
    binaries = server_binaries()
    folder = Path(tempfile.mkdtemp(prefix="socketcad-pg-"))
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
    port = _free_port()
    cluster = folder / "cluster"
    run = lambda *command: subprocess.run(prefix + [str(c) for c in command], check=True, capture_output=True, text=True)
    try:
        run(binaries / "initdb", "-D", cluster, "-U", USER, "--auth=trust", "--encoding=UTF8", "--no-sync")
        run(binaries / "pg_ctl", "-D", cluster, "-l", folder / "server.log", "-w", "-t", "60", "-o",
            f"-k {folder} -p {port} -c listen_addresses='' -c fsync=off", "start")
        run(binaries / "createdb", "-h", folder, "-p", port, "-U", USER, "socketcad")
        yield f"postgresql+psycopg://{USER}@/socketcad?host={folder}&port={port}"
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr or exc.stdout}") from None
    finally:
        subprocess.run(prefix + [str(binaries / "pg_ctl"), "-D", str(cluster), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
