"""Reading an input file as numbered lines with byte offsets, in constant memory.

Gzip is detected from the magic bytes, not the file name. Offsets are positions in the
decompressed text, which is what a user can find again with ``zcat FILE | head -c``.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Line:
    """One input line: 1-based number, offset of its first byte, and its bytes (no newline)."""

    number: int
    offset: int
    raw: bytes

    def text(self) -> str:
        """The line as text, undecodable bytes escaped (for quarantine and messages)."""
        return self.raw.decode("utf-8", errors="backslashreplace")


def open_input(path: Path) -> IO[bytes]:
    """Open ``path`` for binary reading, decompressing it if it is gzip."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def iter_lines(stream: IO[bytes], first_number: int = 1, first_offset: int = 0) -> Iterator[Line]:
    """Lines of ``stream`` (``\\n`` or ``\\r\\n`` endings; a last line without one is kept)."""
    number, offset = first_number, first_offset
    for raw in stream:
        stripped = raw.rstrip(b"\r\n")
        yield Line(number, offset, stripped)
        number += 1
        offset += len(raw)


def iter_file_lines(path: Path) -> Iterator[Line]:
    """Numbered lines of the (possibly gzipped) file at ``path``."""
    with open_input(path) as stream:
        yield from iter_lines(stream)


def fingerprint(paths: list[Path], *extra: str) -> str:
    """sha256 over the files' bytes as stored plus ``extra`` strings (importer version, args)."""
    digest = hashlib.sha256()
    for path in paths:
        file_digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                file_digest.update(chunk)
        digest.update(file_digest.digest())
    for item in extra:
        digest.update(b"\x00" + item.encode())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of one file's bytes as stored."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class InputFile:
    """An input file read once as numbered lines, reporting how far it got (for progress).

    ``position`` is in bytes of the file as stored (compressed for gzip), so it can be compared
    with ``size`` for a rate and an ETA.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.lines_read = 0
        self._raw: IO[bytes] | None = None

    @property
    def position(self) -> int:
        """Stored bytes consumed so far."""
        return self._raw.tell() if self._raw is not None and not self._raw.closed else self.size

    def lines(self) -> Iterator[Line]:
        """The file's lines; the count so far is in ``lines_read``."""
        with self.path.open("rb") as raw:
            self._raw = raw
            magic = raw.read(2)
            raw.seek(0)
            stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw)) if magic == b"\x1f\x8b" else raw
            for line in iter_lines(stream):
                self.lines_read = line.number
                yield line
