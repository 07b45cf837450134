"""Per-mesh memoisation of derived arrays (boundary loops, centroids).

socketcad treats every trimesh.Trimesh as immutable once built (functions return new
meshes), so a result derived from a mesh stays valid for the mesh's lifetime. Keyed by
object identity and dropped when the mesh is garbage-collected: trimesh's own cache
re-hashes whole arrays on each access, which costs ~10 ms per million faces per call.
"""

from __future__ import annotations

import functools
import weakref
from typing import Callable, TypeVar

import trimesh

T = TypeVar("T")
_store: dict[int, dict[str, object]] = {}


def _results(mesh: trimesh.Trimesh) -> dict[str, object]:
    """The memo of one mesh, created (and set to vanish with the mesh) on first use."""
    key = id(mesh)
    if key not in _store:
        _store[key] = {}
        weakref.finalize(mesh, _store.pop, key, None)
    return _store[key]


def per_mesh(function: Callable[[trimesh.Trimesh], T]) -> Callable[[trimesh.Trimesh], T]:
    """Memoise a function whose only argument is a mesh."""

    @functools.wraps(function)
    def wrapper(mesh: trimesh.Trimesh) -> T:
        results = _results(mesh)
        if function.__qualname__ not in results:
            results[function.__qualname__] = function(mesh)
        return results[function.__qualname__]  # type: ignore[return-value]

    return wrapper


def share(source: trimesh.Trimesh, target: trimesh.Trimesh, *functions: Callable) -> None:
    """Give ``target`` the memoised results of ``functions`` already computed for ``source``.

    For results that depend only on what both meshes share (e.g. topology, when a rigid
    motion moved the vertices and kept the faces).
    """
    results = _store.get(id(source), {})
    for function in functions:
        name = function.__qualname__
        if name in results:
            _results(target)[name] = results[name]
