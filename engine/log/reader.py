"""Reading a partition: batches by offset across segments, following a live writer."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.log.errors import CorruptionError, OffsetOutOfRangeError
from engine.log.format import ENTRY_SIZE, Layout, RecordTuple, decode_variable
from engine.log.segment import Segment, list_segments
from engine.log.topic import TopicConfig


@dataclass(frozen=True)
class FixedBatch:
    """Consecutive fixed-width records, as a zero-copy view of the mapped segment."""

    topic: str
    partition: int
    base_offset: int
    records: np.ndarray[Any, Any]
    """``void`` records of ``record_size`` bytes; ``.view(dtype)`` names their fields."""
    timestamp_offset: int

    def __len__(self) -> int:
        return len(self.records)

    @property
    def next_offset(self) -> int:
        """Offset just past this batch."""
        return self.base_offset + len(self.records)

    def view(self, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
        """The records through a structured dtype of the same item size."""
        return self.records.view(dtype)

    @property
    def timestamps(self) -> np.ndarray[Any, Any]:
        """The int64 record timestamps (a copy of that column)."""
        raw = self.records.view(np.uint8).reshape(len(self.records), -1)
        return raw[:, self.timestamp_offset : self.timestamp_offset + 8].copy().view("<i8").ravel()

    def values(self) -> list[bytes]:
        """Each record's bytes."""
        return [r.tobytes() for r in self.records]


@dataclass(frozen=True)
class RecordBatch:
    """Consecutive variable-size records with their timestamp, key and headers."""

    topic: str
    partition: int
    base_offset: int
    records: list[RecordTuple]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def next_offset(self) -> int:
        """Offset just past this batch."""
        return self.base_offset + len(self.records)

    @property
    def timestamps(self) -> np.ndarray[Any, Any]:
        """The record timestamps."""
        return np.array([r[0] for r in self.records], dtype=np.int64)

    def values(self) -> list[bytes]:
        """Each record's value."""
        return [r[3] for r in self.records]


Batch = FixedBatch | RecordBatch


class PartitionReader:
    """Reads one partition; any number may exist, in any process, beside its one writer."""

    def __init__(self, directory: Path, config: TopicConfig, topic: str, partition: int) -> None:
        self.directory = directory
        self.config = config
        self.topic = topic
        self.partition = partition
        self._record = np.dtype((np.void, config.record_size or 1))
        self._segments: list[Segment] = []
        self._bases: list[int] = []
        self.refresh()

    @property
    def start_offset(self) -> int:
        """First offset in the partition (the low watermark)."""
        return self._bases[0] if self._bases else 0

    @property
    def end_offset(self) -> int:
        """Offset the next appended record will get (the high watermark)."""
        return self._segments[-1].next_offset if self._segments else 0

    @property
    def size_bytes(self) -> int:
        """Payload bytes stored in the partition."""
        return sum(s.data_end for s in self._segments)

    def refresh(self) -> bool:
        """Pick up batches and segments appended since the last look; True if any."""
        grew = self._segments[-1].refresh() if self._segments else False
        for base in list_segments(self.directory):
            if not self._bases or base > self._bases[-1]:
                if self._segments:
                    self._segments[-1].refresh()  # batches written just before the roll
                segment = Segment(self.directory, base)
                self._segments.append(segment)
                self._bases.append(base)
                grew = grew or len(segment.entries) > 0
        return grew

    def read(self, offset: int, max_records: int = 65536) -> Batch | None:
        """Up to ``max_records`` records from ``offset``; ``None`` at the end of the log."""
        if offset >= self.end_offset:
            self.refresh()
            if offset >= self.end_offset:
                return None
        if offset < self.start_offset:
            raise OffsetOutOfRangeError(
                f"{self.topic}/{self.partition}: offset {offset} is before the log start "
                f"{self.start_offset}"
            )
        segment = self._segments[bisect.bisect_right(self._bases, offset) - 1]
        if offset >= segment.next_offset:
            self.refresh()
            segment = self._segments[bisect.bisect_right(self._bases, offset) - 1]
            if offset >= segment.next_offset:
                # Only a sealed segment whose index stops early leaves such a gap.
                bad = segment.first_bad_entry or len(segment.entries)
                raise CorruptionError(
                    segment.index_path,
                    segment.next_offset,
                    bad * ENTRY_SIZE,
                    f"index entry fails its CRC32C check in a sealed segment, so offsets "
                    f"{segment.next_offset}..{self._next_base(segment) - 1} cannot be found",
                )
        i = segment.locate(offset)
        if Layout(int(segment.entries["layout"][i])) is Layout.FIXED:
            return self._read_fixed(segment, i, offset, max_records)
        entry_base = int(segment.entries["base_offset"][i])
        records = decode_variable(segment.payload(i))
        skip = offset - entry_base
        return RecordBatch(self.topic, self.partition, offset, records[skip : skip + max_records])

    def batches(
        self,
        start: int | None = None,
        stop: int | None = None,
        size: int = 65536,
        *,
        align: int = 0,
        follow: Callable[[], bool] | None = None,
    ) -> Iterator[Batch]:
        """Consecutive batches from ``start`` (default: the first offset) up to ``stop``
        (default: the end of the partition, when reached), each at most ``size`` records.

        With ``align``, no batch crosses a multiple of it (a run cuts there to snapshot).
        With ``follow``, the end of the partition is not the end of the iteration: ``follow()``
        is called there (it waits for the writer, by sleeping or on a notification) and the
        reading goes on while it returns True.
        """
        if size < 1:
            raise ValueError(f"batch size must be >= 1, got {size}")
        offset = self.start_offset if start is None else start
        while stop is None or offset < stop:
            limit = size if stop is None else min(size, stop - offset)
            if align:
                limit = min(limit, (offset // align + 1) * align - offset)
            batch = self.read(offset, limit)
            if batch is None:
                if follow is not None and follow():
                    continue
                return
            yield batch
            offset = batch.next_offset

    def _next_base(self, segment: Segment) -> int:
        return self._bases[self._bases.index(segment.base_offset) + 1]

    def _read_fixed(self, segment: Segment, i: int, offset: int, max_records: int) -> FixedBatch:
        # Consecutive fixed batches lie back to back in the data file: one view spans them.
        entries = segment.entries
        size = self.config.record_size
        start = int(entries["data_pos"][i]) + (offset - int(entries["base_offset"][i])) * size
        wanted_end = offset + max_records
        j = i
        while True:
            segment.payload(j)
            if int(entries["base_offset"][j]) + int(entries["count"][j]) >= wanted_end:
                break
            if j + 1 >= len(entries) or Layout(int(entries["layout"][j + 1])) is not Layout.FIXED:
                break
            j += 1
        end_offset = min(wanted_end, int(entries["base_offset"][j]) + int(entries["count"][j]))
        data = segment.buffer(start + (end_offset - offset) * size)
        records = np.frombuffer(data, dtype=self._record, count=end_offset - offset, offset=start)
        return FixedBatch(self.topic, self.partition, offset, records, self.config.timestamp_offset)

    def offset_for_time(self, timestamp: int) -> int | None:
        """Earliest offset whose timestamp is >= ``timestamp`` (Kafka's offsetsForTimes)."""
        self.refresh()
        for segment in self._segments:
            entries = segment.entries
            if len(entries) == 0:
                continue
            running_max = np.maximum.accumulate(entries["max_ts"])
            i = int(np.searchsorted(running_max, timestamp, side="left"))
            if i == len(entries):
                continue
            batch = self.read(int(entries["base_offset"][i]), int(entries["count"][i]))
            assert batch is not None
            hits = np.flatnonzero(batch.timestamps >= timestamp)
            return batch.base_offset + int(hits[0])
        return None
