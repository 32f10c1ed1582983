"""The one loop that steps a journal through a topology: replay, live follow and the Kafka
worker all run it; they differ only in where slices come from (their reader), where outputs
go (their :class:`OutputWriter`) and when they checkpoint or commit.

Per journal :class:`Slice`, in offset order, :meth:`Driver.step` calls every stage in pipeline
order, handing each the outputs of the stages it reads, checks the runtime contract on every
written port (causes inside the slice, never decreasing), encodes each event once into its
canonical bytes and hands the result to the writer. Slicing never changes a result:
processors are batch-independent by contract, and the checks make a processor that breaks the
contract fail loudly rather than silently depend on the cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from engine.events import EVENTS, decode, encode
from engine.events.control import InstrumentSpec, SessionClosed
from engine.events.market import MARKET_RECORD
from engine.log.reader import Batch, FixedBatch
from engine.runtime.manifest import RunError
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


@dataclass
class PortOutput:
    """One slice's output on one written port, checked and encoded once for every writer."""

    port: Port
    events: Output
    causes: np.ndarray[Any, Any]
    """The causing journal offset of each event (int64)."""
    stamps: list[int]
    """Each event's ``ts_event`` (0 for event types without one)."""
    values: list[bytes] | None
    """Each msgpack event's canonical bytes; None for fixed-width records (their own bytes)."""

    @classmethod
    def of(cls, port: Port, out: Output, causes: np.ndarray[Any, Any]) -> PortOutput:
        """Encode ``out`` (checked, non-empty) for writing."""
        if isinstance(out, np.ndarray):
            has_ts = "ts_event" in (out.dtype.fields or {})
            stamps: list[int] = out["ts_event"].tolist() if has_ts else [0] * len(out)
            return cls(port, out, causes, stamps, None)
        values = [encode(e) for e in out]
        return cls(port, out, causes, [int(getattr(e, "ts_event", 0)) for e in out], values)

    def encoded(self) -> list[bytes]:
        """Each event's canonical bytes (a fixed-width record's bytes are the record)."""
        if self.values is not None:
            return self.values
        assert isinstance(self.events, np.ndarray)
        return [r.tobytes() for r in self.events]


class OutputWriter(Protocol):
    """Where a driver's outputs go: the run's topics on the embedded log, or Kafka."""

    def write(self, output: PortOutput) -> None:
        """Take one slice's output of one port (it may buffer)."""
        ...

    def drain(self) -> None:
        """Make everything written so far visible to readers."""
        ...


@dataclass
class PortSpan:
    """What a driver has written on one port: the event-time range and the last cause."""

    first_ts: int = 0
    last_ts: int = 0
    last_cause: int = -1
    count: int = 0


@dataclass
class Driver:
    """Steps journal slices through ``topology`` and hands written ports' outputs to ``writer``.

    ``offset`` is the next journal offset expected; slices must arrive consecutively from it.
    ``closed`` turns true once a ``session.closed`` event has been processed.
    """

    topology: Topology
    writer: OutputWriter
    offset: int
    written: frozenset[str]
    """Names of the ports whose output is written (the pipeline's non-transient ports)."""
    spans: dict[str, PortSpan] = field(default_factory=dict)
    closed: bool = False

    @classmethod
    def of(cls, topology: Topology, writer: OutputWriter, offset: int) -> Driver:
        """A driver writing every non-transient port of ``topology``'s pipeline."""
        written = frozenset(port.name for _, port in topology.pipeline.written())
        return cls(topology, writer, offset, written, {name: PortSpan() for name in written})

    def step(self, piece: Slice) -> None:
        """Process one slice (it must start at :attr:`offset`) and write its outputs."""
        if piece.start != self.offset:
            raise RunError(
                f"journal slice {piece.start}..{piece.stop - 1} arrived where offset "
                f"{self.offset} was expected; the journal has a gap or a duplicate"
            )
        for port, out in self.topology.push(piece):
            if len(out) and port.name in self.written:
                self.writer.write(self._checked(port, out, piece))
        self.offset = piece.stop
        self.closed = self.closed or any(isinstance(e, SessionClosed) for e in piece.control)

    def run(
        self,
        slices: Iterable[Slice],
        after_step: Callable[[Driver], None] | None = None,
        until_closed: bool = False,
    ) -> int:
        """Step through ``slices``, calling ``after_step`` after each (checkpoints, progress);
        with ``until_closed``, stop after the slice holding ``session.closed``. The offset
        reached."""
        for piece in slices:
            self.step(piece)
            if after_step is not None:
                after_step(self)
            if until_closed and self.closed:
                break
        return self.offset

    def _checked(self, port: Port, out: Output, piece: Slice) -> PortOutput:
        span = self.spans[port.name]
        causes = checked_causes(port, out, piece.start, piece.stop, span.last_cause)
        output = PortOutput.of(port, out, causes)
        if span.count == 0:
            span.first_ts = output.stamps[0]
        span.last_ts, span.last_cause = output.stamps[-1], int(causes[-1])
        span.count += len(out)
        return output


def slice_of(batch: Batch) -> Slice:
    """The journal slice a batch of the journal topic is: market records or low-rate events."""
    if isinstance(batch, FixedBatch):
        return market_slice(batch.base_offset, batch.view(MARKET_RECORD))
    return control_slice(batch.base_offset, batch.values())


def market_slice(start: int, records: np.ndarray[Any, Any]) -> Slice:
    """A slice of journal market records from offset ``start``, older versions upcast."""
    current = EVENTS.upcasting.current_records(records)
    return Slice(start, start + len(records), market=current)


def control_slice(start: int, values: list[bytes]) -> Slice:
    """A slice of low-rate journal events from offset ``start``, decoded and upcast."""
    events = tuple(EVENTS.current(decode(v)) for v in values)
    return Slice(start, start + len(values), control=events)
