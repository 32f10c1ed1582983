"""Reading an input file as numbered lines with byte offsets, in constant memory.

Gzip and zstd are detected from the magic bytes, not the file name. Offsets are positions in
the decompressed text, which is what a user can find again with ``zcat FILE | head -c``.

A compressed stream that ends early (a recorder killed mid-write) is not an error here: the
file ends where the readable data ends, and :attr:`InputFile.cut` says where and why; the
incomplete line after the last newline is kept aside as :attr:`InputFile.partial`, never parsed.
The ingest driver reports both (see :mod:`engine.app.ingest.session`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import zstandard

_CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class Line:
    """One input line: 1-based number, offset of its first byte, and its bytes (no newline)."""

    number: int
    offset: int
    raw: bytes

    def text(self) -> str:
        """The line as text, undecodable bytes escaped (for quarantine and messages)."""
        return self.raw.decode("utf-8", errors="backslashreplace")


@dataclass(frozen=True)
class Cut:
    """Where a compressed input stops being readable."""

    path: Path
    compressed_offset: int
    """Bytes of the file as stored that had been read when the stream broke off."""
    compressed_size: int
    reason: str
    """What the decompressor said."""
    decompressed: int
    """Bytes recovered before the cut."""
    unit: str = "line"
    """What the input is made of: ``line``, or ``record`` for a binary format."""

    def where(self, last_line: int) -> str:
        """The cut for a message: file, compressed byte offset, last complete line."""
        return (
            f"{self.path} is cut short at compressed byte {self.compressed_offset:,} of "
            f"{self.compressed_size:,} ({self.reason}); the last complete {self.unit} is "
            f"{self.unit} {last_line:,} ({self.decompressed:,} bytes were readable)"
        )


def compression(path: Path) -> str:
    """``gzip``, ``zstd`` or ``""`` (plain), from the file's first bytes."""
    with path.open("rb") as probe:
        magic = probe.read(4)
    if magic[:2] == GZIP_MAGIC:
        return "gzip"
    return "zstd" if magic == ZSTD_MAGIC else ""


def open_input(path: Path) -> IO[bytes]:
    """Open ``path`` for binary reading, decompressing it if it is gzip or zstd."""
    kind = compression(path)
    if kind == "gzip":
        return cast(IO[bytes], gzip.open(path, "rb"))
    if kind == "zstd":
        raw = path.open("rb")
        return cast(
            IO[bytes], zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        )
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
    """Numbered lines of the (possibly compressed) file at ``path``; a cut stream just ends."""
    return InputFile(path).lines()


def fingerprint(paths: list[Path], *extra: str) -> str:
    """sha256 over the files' bytes as stored plus ``extra`` strings (importer version, args)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(bytes.fromhex(file_sha256(path)))
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


_BROKEN = (EOFError, zlib.error, gzip.BadGzipFile, zstandard.ZstdError)
"""What the decompressors raise on a stream that is cut or damaged."""


class InputFile:
    """An input file read once as numbered lines, reporting how far it got (for progress).

    ``position`` is in bytes of the file as stored (compressed for gzip and zstd), so it can be
    compared with ``size`` for a rate and an ETA. After reading, ``cut`` tells whether a
    compressed stream ended early and ``partial`` holds the incomplete line it ended in.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.lines_read = 0
        self.cut: Cut | None = None
        self.partial: Line | None = None
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

    @property
    def last_complete_line(self) -> int:
        """Number of the last whole line read (the one before :attr:`partial`, if any)."""
        return self.partial.number - 1 if self.partial is not None else self.lines_read

    def lines(self) -> FileLines:
        """The file's lines; the count so far is in ``lines_read``.

        Iterating gives one :class:`Line` at a time. Importers with a compiled parser take the
        same object and read it in blocks instead (:meth:`FileLines.chunks`).
        """
        return FileLines(self)

    def _iter_lines(self) -> Iterator[Line]:
        number, offset, rest = 1, 0, b""
        for chunk in self._chunks(_CHUNK):
            pieces = (rest + chunk if rest else chunk).split(b"\n")
            rest = pieces.pop()
            for piece in pieces:
                self.lines_read = number
                yield Line(number, offset, piece.rstrip(b"\r"))
                number += 1
                offset += len(piece) + 1
        if rest:
            if self.cut is not None:
                self.partial = Line(number, offset, rest.rstrip(b"\r"))
            else:
                self.lines_read = number
                yield Line(number, offset, rest.rstrip(b"\r"))

    def _chunks(self, size: int) -> Generator[bytes, None, None]:
        """Decompressed bytes in pieces of about ``size``; a broken stream sets ``cut`` and ends.

        Pieces are what single decompression steps give, so everything decoded before the
        damage is handed out.
        """
        done = 0
        with self._open() as (stream, raw):
            read1 = cast(io.BufferedIOBase, stream).read1
            while True:
                parts: list[bytes] = []
                have = 0
                try:
                    while have < size and (part := read1(size - have)):
                        parts.append(part)
                        have += len(part)
                except _BROKEN as exc:
                    self.cut = Cut(self.path, raw.tell(), self.size, str(exc), done + have)
                if parts:
                    done += have
                    yield b"".join(parts)
                if self.cut is not None or not parts:
                    return

    @contextmanager
    def _open(self) -> Iterator[tuple[IO[bytes], IO[bytes]]]:
        with self.path.open("rb") as raw:
            self._raw = raw
            magic = raw.read(4)
            raw.seek(0)
            if magic[:2] == GZIP_MAGIC:
                with gzip.GzipFile(fileobj=raw) as unzipped:
                    yield cast(IO[bytes], unzipped), raw
            elif magic == ZSTD_MAGIC:
                yield cast(IO[bytes], _ZstdReader(raw)), raw
            else:
                yield raw, raw


class _ZstdReader(io.RawIOBase):
    """Decompress a zstd stream of one or more frames; raise ``ZstdError`` if it ends in the
    middle of a frame (``zstandard``'s own stream reader just stops there)."""

    _STEP = 1 << 17  # compressed bytes per step: a step's output is what read1 hands out

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._decompressor = zstandard.ZstdDecompressor()
        self._obj = self._decompressor.decompressobj()
        self._started = False
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        while not self._pending:
            data = self._raw.read(self._STEP)
            if not data:
                if self._started and not self._obj.eof:
                    raise zstandard.ZstdError("the zstd stream ends inside a frame")
                return b""
            self._pending = memoryview(self._feed(data))
        n = len(self._pending) if size < 0 else size
        out, self._pending = self._pending[:n], self._pending[n:]
        return bytes(out)

    def _feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data:
            if self._obj.eof:  # the next frame begins
                self._obj = self._decompressor.decompressobj()
            self._started = True
            out.append(self._obj.decompress(data))
            data = self._obj.unused_data if self._obj.eof else b""
        return b"".join(out)


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

    def chunks(self, size: int = _CHUNK) -> Generator[bytes, None, None]:
        """The decompressed bytes in pieces of ``size`` (the last may be shorter).

        Whoever splits them into lines sets ``file.lines_read``, as iterating does.
        """
        return self.file._chunks(size)
