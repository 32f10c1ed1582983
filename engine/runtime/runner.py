"""The runner: pushes a session journal through a pipeline and appends what it derives.

It reads one journal partition in offset order, cuts it into :class:`Slice` s (at batch-size,
snapshot and stop boundaries, and wherever market records and low-rate events alternate), and
for each slice calls every stage in pipeline order, handing each the outputs of the stages it
reads. Outputs go to the run's topics (``run.<run id>.<port>``) and into their hash chains.

The slicing never changes a result: processors are batch-independent by contract, and the
runner checks on every slice that each output event's cause lies inside the slice and that a
port's causes never go backwards, so a processor that breaks the contract fails loudly.

Durability: each port buffers its output (up to ``APPEND_EVERY`` events) and appends it as
one batch, without fsync; buffers are drained and the topics flushed at each snapshot, and a
snapshot file is written only after that, so a snapshot never refers to output that could be
lost.
Resuming cuts every output topic back to the snapshot and continues from its journal offset.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from engine.events import decode, encode
from engine.events.control import InstrumentSpec, SessionClosed
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch, FsyncMode, FsyncPolicy, PartitionWriter
from engine.log.files import atomic_write
from engine.log.format import RecordTuple
from engine.log.topic import TopicCodec, TopicConfig
from engine.runtime.hashing import BLOCK, ChainHasher, chain_seed
from engine.runtime.manifest import OutputSummary, RunError, output_topic
from engine.runtime.processor import ModelSource, Output, Port, Processor, Slice, StageContext
from engine.runtime.topology import Pipeline, Stage, stage_seed


class ContractError(RunError):
    """A processor broke the runtime contract (cause outside its slice, causes going back)."""


class Topology:
    """A pipeline's stages instantiated for one session with a resolved config."""

    def __init__(
        self,
        pipeline: Pipeline,
        resolved: dict[str, Any],
        session: str,
        spec: InstrumentSpec,
        models: ModelSource | None = None,
    ) -> None:
        self.pipeline = pipeline
        seed = int(resolved["seed"])
        stage_configs: dict[str, dict[str, Any]] = resolved["stages"]
        self.stages: list[tuple[Stage, Processor]] = [
            (
                stage,
                stage.build(
                    StageContext(
                        session,
                        spec,
                        stage_configs.get(stage.id, {}),
                        stage_seed(seed, stage.id),
                        models,
                    )
                ),
            )
            for stage in pipeline.stages
        ]

    def push(self, piece: Slice) -> list[tuple[Port, Output]]:
        """Run one journal slice through every stage; each port's output, in port order."""
        produced: dict[str, Output] = {}
        ordered: list[tuple[Port, Output]] = []
        for stage, processor in self.stages:
            inputs = {name: produced[name] for name in stage.inputs}
            # built directly: dataclasses.replace costs more than some stages' whole work
            results = processor.process(
                Slice(piece.start, piece.stop, piece.market, piece.control, inputs, piece.derived)
            )
            if len(results) != len(stage.outputs):
                raise ContractError(
                    f"stage {stage.id!r} returned {len(results)} outputs for "
                    f"{len(stage.outputs)} ports"
                )
            for port, out in zip(stage.outputs, results, strict=True):
                produced[port.name] = out
                ordered.append((port, out))
        return ordered

    def snapshot(self) -> dict[str, bytes]:
        """Every stage's state, by stage id."""
        return {stage.id: processor.snapshot() for stage, processor in self.stages}

    def restore(self, states: dict[str, bytes]) -> None:
        """Put every stage back in a snapshotted state."""
        for stage, processor in self.stages:
            if stage.id not in states:
                raise RunError(f"snapshot has no state for stage {stage.id!r}")
            processor.restore(states[stage.id])

    def inspect(self) -> dict[str, dict[str, Any]]:
        """Every stage's state in readable form, by stage id."""
        return {stage.id: processor.inspect() for stage, processor in self.stages}


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


def checked_causes(
    port: Port, out: Output, start: int, stop: int, last_cause: int
) -> np.ndarray[Any, Any]:
    """The causes of one slice's non-empty output, after checking the runtime contract: they
    lie in ``[start, stop)``, never decrease, and do not precede the port's ``last_cause``."""
    causes = port.causes(out)
    if (
        causes[0] < max(start, last_cause)
        or causes[-1] >= stop
        or (len(causes) > 1 and bool((np.diff(causes) < 0).any()))
    ):
        raise ContractError(
            f"port {port.name!r}: causes {int(causes.min())}..{int(causes.max())} must "
            f"lie in the slice {start}..{stop - 1}, never decrease, and not precede the last "
            f"cause {last_cause}"
        )
    if isinstance(out, np.ndarray) and out.dtype != port.event_type.dtype:
        raise ContractError(f"port {port.name!r}: records of the wrong dtype")
    return causes


class _PortWriter:
    """One output topic: its writer, hash chain, time range, last cause and unwritten tail."""

    def __init__(self, log: EmbeddedLog, topic: str, port: Port) -> None:
        self.port, self.topic = port, topic
        log.create_topic(topic, topic_config(port))
        self.writer: PartitionWriter = EmbeddedLog(log.root, FsyncPolicy(FsyncMode.NEVER)).writer(
            topic
        )
        self.hasher = ChainHasher(port.event_type.name)
        self.first_ts = self.last_ts = 0
        self.last_cause = -1
        self.arrays: list[np.ndarray[Any, Any]] = []
        self.values: list[RecordTuple] = []
        self.buffered = 0

    def write(self, out: Output, start: int, stop: int) -> None:
        """Check, hash and buffer one slice's output; it reaches the topic at :meth:`drain`."""
        if len(out) == 0:
            return
        self.last_cause = int(checked_causes(self.port, out, start, stop, self.last_cause)[-1])
        if isinstance(out, np.ndarray):
            self.hasher.update_fixed(out)
            self.arrays.append(out)
            stamps = out["ts_event"]
            first, last = int(stamps[0]), int(stamps[-1])
        else:
            values = [encode(e) for e in out]
            stamps_list = [int(getattr(e, "ts_event", 0)) for e in out]
            self.hasher.update_values(values)
            self.values.extend(
                (ts, None, None, v) for ts, v in zip(stamps_list, values, strict=True)
            )
            first, last = stamps_list[0], stamps_list[-1]
        self.buffered += len(out)
        if self.hasher.total == len(out):
            self.first_ts = first
        self.last_ts = last
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

    def resume(self, log: EmbeddedLog, count: int, chain: bytes, first: int, last: int) -> None:
        """Cut the topic back to ``count`` events and continue its chain from there."""
        if self.writer.next_offset < count:
            raise RunError(
                f"{self.topic} holds {self.writer.next_offset} events but its snapshot counted "
                f"{count}; the run's output was lost or altered. Start a new run."
            )
        self.writer.truncate(count)
        self.hasher = ChainHasher(self.port.event_type.name, count, chain)
        reader = log.reader(self.topic)
        offset = count - count % BLOCK
        while offset < count and (batch := reader.read(offset, count - offset)) is not None:
            if isinstance(batch, FixedBatch):
                self.hasher.update_fixed(batch.records)
            else:
                self.hasher.update_values(batch.values())
            offset = batch.next_offset
        self.first_ts, self.last_ts = first, last
        self.last_cause = -1

    def summary(self, stage: str) -> OutputSummary:
        return OutputSummary(
            self.port.name,
            stage,
            self.topic,
            self.port.event_type.qualified_name,
            self.hasher.total,
            self.hasher.hexdigest(),
            self.first_ts,
            self.last_ts,
        )


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
        self.writers: list[tuple[Stage, _PortWriter]] = [
            (stage, _PortWriter(sink, output_topic(run_id, port.name), port))
            for stage, port in topology.pipeline.written()
        ]
        self.by_port = {w.port.name: w for _, w in self.writers}
        self.reader = source.reader(journal)
        self.offset = self.reader.start_offset
        self.closed = False
        """Whether a ``session.closed`` event has been processed (live runs stop there)."""

    def begin(self, start: int | None = None) -> None:
        """Start from journal offset ``start`` (default: the journal's first) with empty outputs."""
        for _, w in self.writers:
            w.resume(self.sink, 0, chain_seed(w.port.event_type.name), 0, 0)
        self.offset = self.reader.start_offset if start is None else start

    def restore_state(self, snapshot: Snapshot) -> None:
        """Put the processors where ``snapshot`` has them; outputs are left as they are."""
        self.topology.restore(snapshot.states)
        self.offset = snapshot.journal_offset

    def resume_from(self, snapshot: Snapshot) -> None:
        """Continue an interrupted run: state from ``snapshot``, later output discarded."""
        self.restore_state(snapshot)
        for _, w in self.writers:
            count, chain, first, last = snapshot.outputs[w.port.name]
            w.resume(self.sink, count, chain, first, last)

    def advance(
        self,
        stop: int | None = None,
        batch: int = 65536,
        follow: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
        poll_seconds: float = 0.05,
    ) -> int:
        """Process journal events up to ``stop`` (default: the journal's end); the offset reached.

        With ``follow`` the journal is read as a live feed appends it, one event at a time,
        until ``session.closed``.
        """
        if batch < 1:
            raise RunError(f"batch must be >= 1, got {batch}")
        end = stop if stop is not None else (None if follow else self.reader.end_offset)
        done = 0
        while end is None or self.offset < end:
            limit = self.offset + (1 if follow else batch)
            if end is not None:
                limit = min(limit, end)
            if self.snapshot_every:
                limit = min(limit, (self.offset // self.snapshot_every + 1) * self.snapshot_every)
            chunk = self.reader.read(self.offset, limit - self.offset)
            if chunk is None:
                if follow and not self.closed:
                    self.drain()  # nothing to do until the feed moves: let readers catch up
                    time.sleep(poll_seconds)  # the feed's pace, not the processors' input
                    continue
                break
            piece = _slice(chunk)
            for port, out in self.topology.push(piece):
                writer = self.by_port.get(port.name)
                if writer is not None:
                    writer.write(out, piece.start, piece.stop)
            self.offset = piece.stop
            done += len(piece)
            self.closed = self.closed or any(isinstance(e, SessionClosed) for e in piece.control)
            if self.snapshot_every and self.offset % self.snapshot_every == 0:
                self.take_snapshot()
            if on_progress is not None:
                on_progress(Progress(self.offset, end or self.reader.end_offset, done))
            if follow and self.closed:
                break
        return self.offset

    def take_snapshot(self) -> None:
        """Flush outputs, then write every processor's state and output chain at this offset."""
        if self.snapshots is None:
            return
        self.drain()
        for _, w in self.writers:
            w.writer.flush()
        snap = Snapshot(
            self.offset,
            self.topology.snapshot(),
            {w.port.name: (*w.hasher.checkpoint(), w.first_ts, w.last_ts) for _, w in self.writers},
        )
        self.snapshots.mkdir(parents=True, exist_ok=True)
        atomic_write(snapshot_path(self.snapshots, self.offset), msgspec.msgpack.encode(snap))

    def summaries(self) -> list[OutputSummary]:
        """Count, chain and time range of every output so far."""
        return [w.summary(stage.id) for stage, w in self.writers]

    def drain(self) -> None:
        """Append every port's buffered output to its topic (readers see it from then on)."""
        for _, w in self.writers:
            w.drain()

    def close(self) -> None:
        """Flush outputs to stable storage and release their writers."""
        self.drain()
        for _, w in self.writers:
            w.writer.flush()
            w.writer.close()


def _slice(chunk: Any) -> Slice:
    if isinstance(chunk, FixedBatch):
        return Slice(chunk.base_offset, chunk.next_offset, market=chunk.view(MARKET_RECORD))
    events = tuple(decode(v) for v in chunk.values())
    return Slice(chunk.base_offset, chunk.next_offset, control=events)
