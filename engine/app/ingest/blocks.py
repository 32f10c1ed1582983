"""Whole lines of an input file as a numpy byte block, for the compiled (numba) parsers.

A :class:`LineBlocks` holds decompressed bytes from a line start up to the end of the last
complete line read so far (``end``; at end of input, the end of the data: a last line without a
newline counts, unless the compressed stream was cut short: then it is the file's ``partial``
line). A parser consumes lines from ``pos`` and reports how far it got with
:meth:`LineBlocks.advance`; a line it cannot handle is taken out as a :class:`Line` with the same
number, byte offset and text that line-by-line reading (:func:`engine.app.ingest.source.iter_lines`)
gives, for the exact Python path. Memory is one block plus the unread tail of the last.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from engine.app.ingest.source import FileLines, Line

BLOCK = 1 << 20
_END = object()


class _ReadAhead:
    """Decompress the next blocks in a thread while the caller parses (zlib frees the GIL).

    At most ``depth`` blocks wait in the queue, so memory stays bounded. Exceptions in the
    reader (a corrupt gzip stream) are raised to the caller at the point the data ends.
    """

    def __init__(self, chunks: Iterator[bytes], depth: int = 4) -> None:
        self._chunks = chunks
        self._queue: queue.Queue[Any] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for chunk in self._chunks:
                if not self._put(chunk):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)
        finally:
            # Close here: a generator must be closed by the thread that runs it.
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def next(self) -> bytes | None:
        """The next block, or None at the end of the input."""
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)  # stay at the end if asked again
            return None
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, bytes)
        return item

    def close(self) -> None:
        """Stop the reader thread and wait for it (it closes the file)."""
        self._stop.set()
        self._thread.join()


class LineBlocks:
    """The lines of ``lines`` in blocks (see the module docstring)."""

    def __init__(self, lines: FileLines, block: int = BLOCK, read_ahead: bool = True) -> None:
        self.file = lines.file
        chunks = lines.chunks(block)
        self._ahead = _ReadAhead(chunks) if read_ahead else None
        self._chunks = chunks
        self.data = b""
        self.array: np.ndarray[Any, np.dtype[np.uint8]] = np.frombuffer(self.data, np.uint8)
        self.pos = 0
        self.end = 0
        self.base = 0  # input offset of data[0]
        self.number = 1  # number of the line that starts at pos
        self.eof = False

    def available(self) -> bool:
        """Whether a whole line starts at ``pos``, reading more input as needed."""
        while self.pos >= self.end:
            if self.eof:
                return False
            self._read()
        return True

    def _read(self) -> None:
        chunk = self._ahead.next() if self._ahead is not None else next(self._chunks, None)
        rest = self.data[self.pos :]
        self.base += self.pos
        self.pos = 0
        if chunk is None:
            self.eof = True
            if self.file.cut is not None and rest:  # the line the stream broke off in
                self.file.partial = Line(self.number, self.base, rest.rstrip(b"\r"))
                rest = b""
            self.data = rest
            self.end = len(rest)
        else:
            self.data = rest + chunk if rest else chunk
            self.end = self.data.rfind(b"\n") + 1
        self.array = np.frombuffer(self.data, np.uint8)

    def advance(self, pos: int, lines: int) -> None:
        """``lines`` lines were consumed, up to ``pos``."""
        self.pos = pos
        self.number += lines
        self.file.lines_read = self.number - 1

    def take_line(self) -> Line:
        """The line at ``pos`` as a :class:`Line` (consumed); call only when available."""
        newline = self.data.find(b"\n", self.pos, self.end)
        stop = newline if newline >= 0 else self.end
        line = Line(self.number, self.base + self.pos, self.data[self.pos : stop].rstrip(b"\r\n"))
        self.advance(stop + 1 if newline >= 0 else stop, 1)
        return line

    def close(self) -> None:
        """Release the file (and the reader thread)."""
        if self._ahead is not None:
            self._ahead.close()
        else:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
