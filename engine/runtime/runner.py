"""The embedded runner: one run's journal, driven through its topology into its own topics.

It reads one journal partition of the embedded log in offset order, in batches cut at batch
size, snapshot boundaries and wherever market records and low-rate events alternate, and hands
each as a :class:`Slice` to the one :class:`~engine.runtime.driver.Driver` loop. Outputs go to
the run's topics (``run.<run id>.<port>``) and into their hash chains.

Durability: each port buffers its output (up to ``APPEND_EVERY`` events) and appends it as
one batch, without fsync; buffers are drained and the topics flushed at each snapshot, and a
snapshot file is written only after that, so a snapshot never refers to output that could be
lost. Resuming cuts every output topic back to the snapshot and continues from its journal
offset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from engine.events.control import SessionClosed
from engine.log import EmbeddedLog, FixedBatch, FsyncMode, FsyncPolicy, PartitionWriter
from engine.log.files import atomic_write
from engine.log.format import RecordTuple
from engine.log.notify import AppendWaiter
from engine.log.topic import TopicCodec, TopicConfig
from engine.runtime.driver import Driver, PortOutput, PortSpan, Topology, slice_of
from engine.runtime.hashing import BLOCK, ChainHasher, chain_seed
from engine.runtime.manifest import OutputSummary, RunError, output_topic
from engine.runtime.processor import Port, Slice
from engine.runtime.topology import Pipeline


def topic_config(port: Port) -> TopicConfig:
    """How a port's topic is laid out."""
    et = port.event_type
    if port.fixed:
        assert et.dtype is not None
        fields: dict[str, Any] = dict(et.dtype.fields or {})
        ts_at = fields["ts_event"][1] if "ts_event" in fields else 0
        return TopicConfig(
            et.name,
            et.version,
            TopicCodec.FIXED,
            record_size=et.dtype.itemsize,
            timestamp_offset=ts_at,
        )
    return TopicConfig(et.name, et.version, TopicCodec.MSGPACK)


APPEND_EVERY = 4096
"""Output events a port buffers before appending them to its topic as one batch. Appending
costs the same for one record as for thousands, so live runs (one event per slice) would
otherwise pay it on every port for every event; buffers are drained at this size, before a
snapshot, at the end, and whenever a live run waits for the feed."""


class _PortTopic:
    """One output topic: its writer, hash chain and unwritten tail."""

    def __init__(self, log: EmbeddedLog, topic: str, port: Port) -> None:
        self.port, self.topic = port, topic
        log.create_topic(topic, topic_config(port))
        self.writer: PartitionWriter = EmbeddedLog(log.root, FsyncPolicy(FsyncMode.NEVER)).writer(
            topic
        )
        self.hasher = ChainHasher(port.event_type.name)
        self.arrays: list[np.ndarray[Any, Any]] = []
        self.values: list[RecordTuple] = []
        self.buffered = 0

    def write(self, output: PortOutput) -> None:
        """Hash and buffer one slice's output; it reaches the topic at :meth:`drain`."""
        if output.values is None:
            assert isinstance(output.events, np.ndarray)
            self.hasher.update_fixed(output.events)
            self.arrays.append(output.events)
        else:
            self.hasher.update_values(output.values)
            self.values.extend(
                (ts, None, None, v) for ts, v in zip(output.stamps, output.values, strict=True)
            )
        self.buffered += len(output.events)
        if self.buffered >= APPEND_EVERY:
            self.drain()

    def drain(self) -> None:
        """Append what is buffered to the topic, as one batch."""
        if self.arrays:
            batch = self.arrays[0]
            if len(self.arrays) > 1:  # not np.concatenate: it would pack away padding bytes
                batch = np.zeros(self.buffered, self.arrays[0].dtype)
                at = 0
                for part in self.arrays:
                    batch[at : at + len(part)] = part
                    at += len(part)
            self.writer.append_array(batch)
        if self.values:
            self.writer.append_records(self.values)
        self.arrays, self.values, self.buffered = [], [], 0

    def resume(self, log: EmbeddedLog, count: int, chain: bytes) -> None:
        """Cut the topic back to ``count`` events and continue its chain from there."""
        if self.writer.next_offset < count:
            raise RunError(
                f"{self.topic} holds {self.writer.next_offset} events but its snapshot counted "
                f"{count}; the run's output was lost or altered. Start a new run."
            )
        self.writer.truncate(count)
        self.hasher = ChainHasher(self.port.event_type.name, count, chain)
        for batch in log.reader(self.topic).batches(count - count % BLOCK, count):
            if isinstance(batch, FixedBatch):
                self.hasher.update_fixed(batch.records)
            else:
                self.hasher.update_values(batch.values())


class RunTopics:
    """The embedded log's :class:`~engine.runtime.driver.OutputWriter`: a run's topics."""

    def __init__(self, log: EmbeddedLog, run_id: str, pipeline: Pipeline) -> None:
        self.log = log
        self.stages = {port.name: stage.id for stage, port in pipeline.written()}
        self.topics = {
            port.name: _PortTopic(log, output_topic(run_id, port.name), port)
            for _, port in pipeline.written()
        }

    def write(self, output: PortOutput) -> None:
        self.topics[output.port.name].write(output)

    def drain(self) -> None:
        for topic in self.topics.values():
            topic.drain()

    def flush(self) -> None:
        """Drain, then make the topics durable."""
        self.drain()
        for topic in self.topics.values():
            topic.writer.flush()

    def close(self) -> None:
        """Flush and release the writers (released even when the flush fails, e.g. a full
        disk, so that the same process can run again)."""
        try:
            self.flush()
        finally:
            for topic in self.topics.values():
                topic.writer.close()


class Snapshot(msgspec.Struct, frozen=True):
    """All state of a run at a journal offset: processors, and each output's chain."""

    journal_offset: int
    states: dict[str, bytes]
    outputs: dict[str, tuple[int, bytes, int, int]]
    """port -> (events written, chain over complete blocks, first ts, last ts)."""


def snapshot_path(directory: Path, journal_offset: int) -> Path:
    """File of the snapshot taken at ``journal_offset``."""
    return directory / f"{journal_offset:020d}.snapshot"


def latest_snapshot(directory: Path, at_most: int | None = None) -> Snapshot | None:
    """The newest readable snapshot (at or before ``at_most``), or None."""
    if not directory.is_dir():
        return None
    for path in sorted(directory.glob("*.snapshot"), reverse=True):
        if at_most is not None and int(path.stem) > at_most:
            continue
        try:
            return msgspec.msgpack.decode(path.read_bytes(), type=Snapshot)
        except msgspec.DecodeError:
            continue  # written atomically, so only a foreign file can fail; skip it
    return None


@dataclass
class Progress:
    """Where a run is, for a progress bar."""

    offset: int
    stop: int
    events: int


class Runner:
    """Drives one topology over one session journal into one set of output topics."""

    def __init__(
        self,
        source: EmbeddedLog,
        journal: str,
        sink: EmbeddedLog,
        run_id: str,
        topology: Topology,
        snapshots: Path | None = None,
        snapshot_every: int = 0,
    ) -> None:
        self.source, self.journal, self.sink = source, journal, sink
        self.topology = topology
        self.snapshots, self.snapshot_every = snapshots, snapshot_every
        self.topics = RunTopics(sink, run_id, topology.pipeline)
        self.reader = source.reader(journal)
        self.driver = Driver.of(topology, self.topics, self.reader.start_offset)

    @property
    def offset(self) -> int:
        """The next journal offset to process."""
        return self.driver.offset

    @property
    def closed(self) -> bool:
        """Whether a ``session.closed`` event has been processed (live runs stop there)."""
        return self.driver.closed

    def begin(self, start: int | None = None) -> None:
        """Start from journal offset ``start`` (default: the journal's first) with empty outputs."""
        for name, topic in self.topics.topics.items():
            topic.resume(self.sink, 0, chain_seed(topic.port.event_type.name))
            self.driver.spans[name] = PortSpan()
        self.driver.offset = self.reader.start_offset if start is None else start

    def restore_state(self, snapshot: Snapshot) -> None:
        """Put the processors where ``snapshot`` has them; outputs are left as they are."""
        self.topology.restore(snapshot.states)
        self.driver.offset = snapshot.journal_offset

    def resume_from(self, snapshot: Snapshot) -> None:
        """Continue an interrupted run: state from ``snapshot``, later output discarded."""
        self.restore_state(snapshot)
        for name, topic in self.topics.topics.items():
            count, chain, first, last = snapshot.outputs[name]
            topic.resume(self.sink, count, chain)
            self.driver.spans[name] = PortSpan(first, last, -1, count)

    def advance(
        self,
        stop: int | None = None,
        batch: int = 65536,
        follow: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
        wait_seconds: float = 1.0,
    ) -> int:
        """Process journal events up to ``stop`` (default: the journal's end); the offset reached.

        With ``follow`` the journal is read as a live feed in another process appends it, until
        ``session.closed``: when it has caught up the runner sleeps until the feed's next append
        wakes it (:class:`~engine.log.notify.AppendWaiter`), at most ``wait_seconds``.
        """
        if batch < 1:
            raise RunError(f"batch must be >= 1, got {batch}")
        end = stop if stop is not None else (None if follow else self.reader.end_offset)
        first = self.offset

        waiter = AppendWaiter(self.reader.directory) if follow else None

        def wait() -> bool:
            self.topics.drain()  # nothing to do until the feed moves: let readers catch up
            assert waiter is not None
            waiter.wait(wait_seconds)  # woken by the feed's next append
            return True

        def after_step(driver: Driver) -> None:
            if self.snapshot_every and driver.offset % self.snapshot_every == 0:
                self.take_snapshot()
            if on_progress is not None:
                done = driver.offset - first
                on_progress(Progress(driver.offset, end or self.reader.end_offset, done))

        batches = self.reader.batches(
            self.offset,
            end,
            batch,
            align=self.snapshot_every,
            follow=wait if follow and not self.closed else None,
        )
        slices = (slice_of(b) for b in batches)
        try:
            return self.driver.run(_to_close(slices) if follow else slices, after_step, follow)
        finally:
            if waiter is not None:
                waiter.close()

    def take_snapshot(self) -> None:
        """Flush outputs, then write every processor's state and output chain at this offset."""
        if self.snapshots is None:
            return
        self.topics.flush()
        spans = self.driver.spans
        snap = Snapshot(
            self.offset,
            self.topology.snapshot(),
            {
                name: (*topic.hasher.checkpoint(), spans[name].first_ts, spans[name].last_ts)
                for name, topic in self.topics.topics.items()
            },
        )
        self.snapshots.mkdir(parents=True, exist_ok=True)
        atomic_write(snapshot_path(self.snapshots, self.offset), msgspec.msgpack.encode(snap))

    def summaries(self) -> list[OutputSummary]:
        """Count, chain and time range of every output so far."""
        return [
            OutputSummary(
                name,
                self.topics.stages[name],
                topic.topic,
                topic.port.event_type.qualified_name,
                topic.hasher.total,
                topic.hasher.hexdigest(),
                self.driver.spans[name].first_ts,
                self.driver.spans[name].last_ts,
            )
            for name, topic in self.topics.topics.items()
        ]

    def drain(self) -> None:
        """Append every port's buffered output to its topic (readers see it from then on)."""
        self.topics.drain()

    def close(self) -> None:
        """Flush outputs to stable storage and release their writers."""
        self.topics.close()


def _to_close(slices: Iterator[Slice]) -> Iterator[Slice]:
    """A live run's slices, the one holding ``session.closed`` cut just after it, so where a
    live run stops never depends on how much the feed had appended when it was read."""
    for piece in slices:
        closing = [i for i, e in enumerate(piece.control) if isinstance(e, SessionClosed)]
        if closing:
            end = closing[0] + 1
            yield Slice(piece.start, piece.start + end, control=piece.control[:end])
            return
        yield piece
