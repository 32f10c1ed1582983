"""The model store: content-addressed artifacts in a directory (default ``<data>/models``).

An artifact is any bytes (a CatBoost model's JSON, a bundle's model card); its name is the
sha256 of those bytes in hex, and it is stored as ``<directory>/<hash>``. Reading verifies the
hash, so a corrupted or swapped file can never be loaded as a model. Writing the same bytes
twice is a no-op, which makes training reproducible by construction: identical models have
identical names.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from engine.log.files import atomic_write

HEX = re.compile(r"^[0-9a-f]+$")
FULL = 64
MIN_PREFIX = 4
"""Shortest hash prefix accepted (``tape run --bundle 3fa9``)."""


class ModelStoreError(Exception):
    """An artifact that is missing, corrupt or ambiguously named; the message says which."""


def digest(data: bytes) -> str:
    """The content hash that names ``data``."""
    return hashlib.sha256(data).hexdigest()


class ModelStore:
    """Artifacts under one directory, named by their sha256 (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, data: bytes) -> str:
        """Store ``data``; its hash (the same bytes are stored once)."""
        name = digest(data)
        path = self.directory / name
        if not (path.is_file() and digest(path.read_bytes()) == name):
            self.directory.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)
        return name

    def hashes(self) -> list[str]:
        """Every stored artifact's hash, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(p.name for p in self.directory.iterdir() if len(p.name) == FULL)

    def resolve(self, ref: str) -> str:
        """The full hash of the one artifact whose hash starts with ``ref``."""
        ref = ref.strip().lower()
        if not HEX.match(ref) or not MIN_PREFIX <= len(ref) <= FULL:
            raise ModelStoreError(
                f"{ref!r} is not a model hash: give {MIN_PREFIX} to {FULL} hex digits of a "
                f"sha256 (see `ls {self.directory}`)"
            )
        if len(ref) == FULL:
            return ref
        found = [h for h in self.hashes() if h.startswith(ref)]
        if not found:
            raise ModelStoreError(
                f"no model whose hash starts with {ref} in {self.directory}; train one with "
                "`tape train`, or point --models at the directory that holds it"
            )
        if len(found) > 1:
            shown = ", ".join(h[:16] for h in found[:5])
            raise ModelStoreError(
                f"hash prefix {ref} is ambiguous in {self.directory}: it matches {len(found)} "
                f"models ({shown}); give more digits"
            )
        return found[0]

    def get(self, ref: str) -> bytes:
        """The bytes of the artifact ``ref`` names (a full hash or a unique prefix), verified."""
        name = self.resolve(ref)
        path = self.directory / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelStoreError(
                f"model {name} is not in {self.directory}; copy it there, or point --models at "
                "the directory that holds it"
            ) from None
        actual = digest(data)
        if actual != name:
            raise ModelStoreError(
                f"model {name} in {self.directory} is corrupt: its bytes hash to {actual[:16]}; "
                "restore the file from a good copy or train the model again"
            )
        return data
