"""Content-addressed file store: each file kept once under its SHA-256, written atomically, never
overwritten. A file's name is its content's hash, so a half-written or altered file is detectable and a
record that names a hash names exactly one content."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from socketcad.errors import InputError

HASH_LENGTH = 64


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileStore:
    """Files under ``root/objects/ab/abcdef...`` (the hash's first two hex digits as a folder)."""

    def __init__(self, root: Path):
        self.root = Path(root) / "objects"

    def path(self, digest: str) -> Path:
        if len(digest) != HASH_LENGTH or any(c not in "0123456789abcdef" for c in digest):
            raise InputError(f"{digest!r} is not a SHA-256 file hash")
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> str:
        """Keep ``data``; its hash. Written to a temporary file, flushed to disk, then linked under its
        name: the name appears only with the whole content behind it, and an existing file is left alone."""
        digest = sha256(data)
        final = self.path(digest)
        if final.exists():
            return digest
        final.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=final.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            try:
                os.link(temporary, final)  # fails if the name exists: never overwrite
            except FileExistsError:
                pass
            _fsync_folder(final.parent)
        finally:
            os.unlink(temporary)
        return digest

    def get(self, digest: str) -> bytes:
        """The content of ``digest``, checked against its hash."""
        return read_kept(self.path(digest), digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()


def read_kept(path: Path, digest: str) -> bytes:
    """The content of the kept file at ``path`` (a FileStore's path of ``digest``), checked against its hash."""
    root = path.parent.parent
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"file {digest[:12]} is missing from the file store {root}") from None
    if sha256(data) != digest:
        raise InputError(f"file {digest[:12]} in the file store {root} is damaged (its content changed)")
    return data


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
