"""Serve the clinic web application on one machine: the app over a store, its worker processes, uvicorn."""

from __future__ import annotations

from pathlib import Path

from socketcad.clinic.store import Store

__all__ = ["serve"]


def serve(store: Store, database_url: str | None = None, host: str = "127.0.0.1", port: int = 8000,
          workers: int = 2, secure_cookies: bool = False, mesh_cache: Path | None = None) -> None:
    """Serve until interrupted. ``database_url``: the store's, for the worker processes (None: its SQLite)."""
    import uvicorn

    from socketcad.errors import InputError
    from socketcad.web.app import create_app
    from socketcad.web.jobs import Jobs

    if not 1 <= port <= 65535 or not 1 <= workers <= 32:
        raise InputError("the port is 1-65535 and the workers 1-32")
    jobs = Jobs(store.data_folder, database_url, workers)
    try:
        uvicorn.run(create_app(store, jobs, secure_cookies=secure_cookies, mesh_cache=mesh_cache), host=host,
                    port=port, log_level="warning")
    finally:
        jobs.close()
