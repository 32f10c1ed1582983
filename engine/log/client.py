"""Kafka-shaped clients of a log: ``Producer`` and ``Consumer``.

They mirror confluent-kafka's calls (produce / flush, assign / subscribe / seek / poll /
consume / commit / committed / position) so that code written against them runs unchanged on
the Kafka backend. Differences of the embedded log are stated where they occur.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import msgspec

from engine.log.embedded import EmbeddedLog
from engine.log.errors import LogError
from engine.log.format import Header, RecordTuple
from engine.log.reader import Batch, FixedBatch, PartitionReader
from engine.log.writer import PartitionWriter


class Record(msgspec.Struct, frozen=True):
    """One consumed record, as Kafka delivers it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes
    headers: list[Header] | None


@dataclass(frozen=True)
class TopicPartition:
    """A partition of a topic, and optionally an offset in it (Kafka's TopicPartition)."""

    topic: str
    partition: int = 0
    offset: int | None = None


class Producer:
    """Buffers records per partition and appends each buffer as one batch on ``flush``.

    Kafka stamps a record without a timestamp with the producer's wall clock (CreateTime);
    so does this producer. Deterministic code always passes the event time.
    """

    def __init__(self, log: EmbeddedLog) -> None:
        self._log = log
        self._writers: dict[tuple[str, int], PartitionWriter] = {}
        self._pending: dict[tuple[str, int], list[RecordTuple]] = defaultdict(list)

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        partition: int = 0,
        timestamp: int | None = None,
        headers: list[Header] | None = None,
    ) -> None:
        """Queue one record; it is written at the next ``flush``.

        An unknown topic or partition is refused here, before anything is queued, so a bad
        record never blocks (or, retried, duplicates) the good ones queued beside it.
        """
        stamp = time.time_ns() if timestamp is None else timestamp
        tp = (topic, partition)
        if tp not in self._writers:
            self._writer(tp)
        self._pending[tp].append((stamp, key, headers, value))

    def flush(self) -> dict[tuple[str, int], int]:
        """Append every queued record; returns the first offset written per partition.

        A partition's records leave the queue as they are handed to its writer, so a flush
        retried after an error does not write them twice.
        """
        written = {}
        for tp in sorted(self._pending):
            records = self._pending.pop(tp)
            if records:
                written[tp] = self._writer(tp).append_records(records)
        return written

    def close(self) -> None:
        """Flush and release the partitions' writer locks."""
        self.flush()
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def _writer(self, tp: tuple[str, int]) -> PartitionWriter:
        if tp not in self._writers:
            self._writers[tp] = self._log.writer(*tp)
        return self._writers[tp]


class Consumer:
    """Reads assigned partitions in offset order, with a consumer group's committed offsets.

    ``subscribe`` assigns every partition of the topics to this consumer: the embedded log has
    no group coordinator, so a group has one active member (the Kafka backend balances).
    """

    def __init__(
        self, log: EmbeddedLog, group_id: str | None = None, auto_offset_reset: str = "earliest"
    ) -> None:
        if auto_offset_reset not in {"earliest", "latest"}:
            raise LogError("auto_offset_reset must be 'earliest' or 'latest'")
        self._log = log
        self.group_id = group_id
        self._reset = auto_offset_reset
        self._readers: dict[tuple[str, int], PartitionReader] = {}
        self._positions: dict[tuple[str, int], int] = {}
        self._turn = 0

    def subscribe(self, topics: list[str]) -> None:
        """Assign all partitions of ``topics``, resuming from the group's committed offsets."""
        self.assign(
            [TopicPartition(t, p) for t in topics for p in range(self._log.config(t).partitions)]
        )

    def assign(self, partitions: list[TopicPartition]) -> None:
        """Read exactly these partitions: from the given offset, else committed, else reset."""
        committed = self._log.committed(self.group_id) if self.group_id else {}
        self._readers.clear()
        self._positions.clear()
        for tp in partitions:
            key = (tp.topic, tp.partition)
            reader = self._log.reader(*key)
            self._readers[key] = reader
            if tp.offset is not None:
                self._positions[key] = tp.offset
            elif key in committed:
                self._positions[key] = committed[key]
            else:
                self._positions[key] = (
                    reader.start_offset if self._reset == "earliest" else reader.end_offset
                )

    def assignment(self) -> list[TopicPartition]:
        """The assigned partitions."""
        return [TopicPartition(t, p) for t, p in self._readers]

    def seek(self, tp: TopicPartition) -> None:
        """Move an assigned partition's position to ``tp.offset``."""
        key = (tp.topic, tp.partition)
        if key not in self._readers or tp.offset is None:
            raise LogError(f"seek needs an assigned partition and an offset, got {tp}")
        self._positions[key] = tp.offset

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The next offset this consumer will read in each (assigned) partition."""
        out = []
        for p in partitions:
            key = (p.topic, p.partition)
            if key not in self._positions:
                raise LogError(f"position needs an assigned partition, got {p.topic}/{p.partition}")
            out.append(TopicPartition(p.topic, p.partition, self._positions[key]))
        return out

    def offsets_for_times(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """For each ``tp.offset`` taken as a timestamp: the earliest offset at or after it."""
        out = []
        for tp in partitions:
            reader = self._readers.get((tp.topic, tp.partition)) or self._log.reader(
                tp.topic, tp.partition
            )
            found = reader.offset_for_time(tp.offset or 0)
            out.append(TopicPartition(tp.topic, tp.partition, -1 if found is None else found))
        return out

    def poll_batch(self, max_records: int = 65536, timeout: float = 0.0) -> Batch | None:
        """The next batch from any assigned partition (round-robin), waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        pause = 0.0005
        keys = list(self._readers)
        while keys:
            for k in range(len(keys)):
                key = keys[(self._turn + k) % len(keys)]
                batch = self._readers[key].read(self._positions[key], max_records)
                if batch is not None and len(batch):
                    self._turn = (self._turn + k + 1) % len(keys)
                    self._positions[key] = batch.next_offset
                    return batch
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.05)
        return None

    def consume(self, num_messages: int = 1, timeout: float = 0.0) -> list[Record]:
        """Up to ``num_messages`` records (one batch's worth at most)."""
        batch = self.poll_batch(num_messages, timeout)
        return [] if batch is None else records_of(batch)

    def poll(self, timeout: float = 0.0) -> Record | None:
        """One record, or ``None`` if none arrived within ``timeout`` seconds."""
        records = self.consume(1, timeout)
        return records[0] if records else None

    def commit(self, offsets: list[TopicPartition] | None = None) -> None:
        """Store offsets for the group: the given ones, or the current positions."""
        if self.group_id is None:
            raise LogError("commit needs a consumer created with a group_id")
        if offsets is None:
            chosen = dict(self._positions)
        else:
            chosen = {(tp.topic, tp.partition): int(tp.offset or 0) for tp in offsets}
        self._log.commit(self.group_id, chosen)

    def committed(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The group's committed offsets for ``partitions`` (``None`` where none)."""
        stored = self._log.committed(self.group_id) if self.group_id else {}
        return [
            TopicPartition(p.topic, p.partition, stored.get((p.topic, p.partition)))
            for p in partitions
        ]

    def close(self) -> None:
        """Drop the assignment (offsets are not committed implicitly)."""
        self._readers.clear()
        self._positions.clear()


def records_of(batch: Batch) -> list[Record]:
    """A batch as individual Kafka-style records."""
    if isinstance(batch, FixedBatch):
        stamps = batch.timestamps.tolist()
        return [
            Record(batch.topic, batch.partition, batch.base_offset + i, stamps[i], None, v, None)
            for i, v in enumerate(batch.values())
        ]
    return [
        Record(batch.topic, batch.partition, batch.base_offset + i, ts, key, value, headers)
        for i, (ts, key, headers, value) in enumerate(batch.records)
    ]
