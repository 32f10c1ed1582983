"""Reading an input file as numbered lines with byte offsets, in constant memory.

Gzip is detected from the magic bytes, not the file name. Offsets are positions in the
decompressed text, which is what a user can find again with ``zcat FILE | head -c``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
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
        raw = self._raw
        if raw is None or raw.closed:
            return self.size
        try:
            return raw.tell()
        except ValueError:  # closed meanwhile by the thread that reads ahead
            return self.size

    def lines(self) -> FileLines:
        """The file's lines; the count so far is in ``lines_read``.

        Iterating gives one :class:`Line` at a time. Importers with a compiled parser take the
        same object and read it in blocks instead (:meth:`FileLines.chunks`).
        """
        return FileLines(self)

    def _iter_lines(self) -> Iterator[Line]:
        with self._open() as stream:
            for line in iter_lines(stream):
                self.lines_read = line.number
                yield line

    def _chunks(self, size: int) -> Iterator[bytes]:
        with self._open() as stream:
            read1 = cast(io.BufferedIOBase, stream).read1
            while True:
                # read1 returns what one step of decompression gives, so when a damaged
                # gzip stream raises, everything decoded before the damage has been handed
                # out first, as line-by-line reading does.
                parts: list[bytes] = []
                have = 0
                try:
                    while have < size and (part := read1(size - have)):
                        parts.append(part)
                        have += len(part)
                except Exception:
                    if parts:
                        yield b"".join(parts)
                    raise
                if not parts:
                    return
                yield b"".join(parts)

    @contextmanager
    def _open(self) -> Iterator[IO[bytes]]:
        with self.path.open("rb") as raw:
            self._raw = raw
            magic = raw.read(2)
            raw.seek(0)
            if magic == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=raw) as unzipped:
                    yield cast(IO[bytes], unzipped)
            else:
                yield raw


class FileLines(Iterator[Line]):
    """The lines of an :class:`InputFile`, one at a time or as blocks of decompressed bytes.

    Use one way only: both read the file from its start.
    """

    def __init__(self, file: InputFile) -> None:
        self.file = file
        self._lines: Iterator[Line] | None = None

    def __next__(self) -> Line:
        if self._lines is None:
            self._lines = self.file._iter_lines()
        return next(self._lines)

    def chunks(self, size: int = _CHUNK) -> Iterator[bytes]:
        """The decompressed bytes in pieces of ``size`` (the last may be shorter).

        Whoever splits them into lines sets ``file.lines_read``, as iterating does.
        """
        return self.file._chunks(size)
