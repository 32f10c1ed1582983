"""Reading one segment: its batch index, its memory-mapped data, CRC checks on first touch."""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.log.errors import CorruptionError
from engine.log.format import ENTRY_SIZE, crc, entries_from_bytes


def segment_name(base_offset: int) -> str:
    """File stem of the segment starting at ``base_offset``: zero-padded, so names sort."""
    return f"{base_offset:020d}"


def list_segments(directory: Path) -> list[int]:
    """Base offsets of the segments in a partition directory, ascending."""
    bases = {int(p.stem) for p in directory.glob("*.index") if p.stem.isdigit()}
    return sorted(bases)


class Segment:
    """A read-only view of one segment that can follow its growth while a writer appends.

    Entries are re-read from the index file on :meth:`refresh`; only complete entries whose
    own CRC holds are believed. Payloads are checked against their CRC32C the first time they
    are read, so a flipped byte anywhere is reported with its batch offset.
    """

    def __init__(self, directory: Path, base_offset: int) -> None:
        self.base_offset = base_offset
        self.data_path = directory / f"{segment_name(base_offset)}.data"
        self.index_path = directory / f"{segment_name(base_offset)}.index"
        self._index_bytes = b""
        self.entries: np.ndarray[Any, Any] = np.zeros(0)
        self.first_bad_entry: int | None = None
        self._verified = np.zeros(0, dtype=bool)
        self._map: mmap.mmap | None = None
        self.refresh()

    @property
    def next_offset(self) -> int:
        """The offset the next batch of this segment would get."""
        if len(self.entries) == 0:
            return self.base_offset
        return int(self.entries["base_offset"][-1]) + int(self.entries["count"][-1])

    @property
    def data_end(self) -> int:
        """Bytes of the data file covered by believed entries."""
        if len(self.entries) == 0:
            return 0
        return int(self.entries["data_pos"][-1]) + int(self.entries["data_len"][-1])

    def refresh(self) -> bool:
        """Pick up entries appended since the last look; True if there are new ones."""
        known = len(self._index_bytes)
        try:
            with open(self.index_path, "rb") as f:
                f.seek(known)
                more = f.read()
        except FileNotFoundError:
            return False
        if len(more) < ENTRY_SIZE:
            return False
        raw = self._index_bytes + more[: len(more) - len(more) % ENTRY_SIZE]
        entries, valid = entries_from_bytes(raw)
        self.first_bad_entry = valid if valid < len(entries) else None
        grew = valid > len(self.entries)
        self._index_bytes = raw[: valid * ENTRY_SIZE]
        self.entries = entries[:valid].copy()
        self._verified = np.concatenate(
            [self._verified, np.zeros(valid - len(self._verified), dtype=bool)]
        )
        return grew

    def locate(self, offset: int) -> int:
        """Index of the entry holding ``offset`` (which must be in this segment)."""
        return int(np.searchsorted(self.entries["base_offset"], offset, side="right")) - 1

    def payload(self, i: int) -> memoryview:
        """Payload bytes of entry ``i``, CRC-checked the first time."""
        entry = self.entries[i]
        pos, length = int(entry["data_pos"]), int(entry["data_len"])
        view = memoryview(self.buffer(pos + length))[pos : pos + length]
        if not self._verified[i]:
            if len(view) != length:
                self._corrupt(i, "payload extends past the end of the data file")
            if crc(view) != int(entry["payload_crc"]):
                self._corrupt(i, "payload fails its CRC32C check")
            self._verified[i] = True
        return view

    def verify_all(self) -> None:
        """Check every payload's CRC now (``tape verify``; the tail on recovery)."""
        for i in range(len(self.entries)):
            self.payload(i)

    def _corrupt(self, i: int, what: str) -> None:
        entry = self.entries[i]
        if i == len(self.entries) - 1:
            what += (
                "; it is the last batch, so a writer probably died mid-append: opening the "
                "partition for writing truncates such a torn tail"
            )
        raise CorruptionError(
            self.data_path, int(entry["base_offset"]), int(entry["data_pos"]), what
        )

    def buffer(self, needed: int) -> mmap.mmap | bytes:
        """The data file mapped (at least ``needed`` bytes of it when it is that long)."""
        if self._map is None or len(self._map) < needed:
            size = os.path.getsize(self.data_path)
            if size == 0:
                return b""
            with open(self.data_path, "rb") as f:
                # Earlier maps stay alive while arrays still view them; that is intended.
                self._map = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
        return self._map
