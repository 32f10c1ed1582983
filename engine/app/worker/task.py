"""One session's journal partition as a worker hosts it: topology, outputs and position.

Inputs: the session's journal records as read from Kafka, in offset order, each carrying its
journal offset in the ``tapedeck.cause`` header. Outputs: one record per output event on
``run.<run id>.<port>``, keyed by the instrument symbol, with schema, version and the causing
journal offset as headers. State: every stage's snapshot plus the next journal offset
(:class:`TaskState`), stored by the worker in the same transaction as the outputs.

Guarantee: the output topics hold exactly the bytes an embedded run of the same session and
config writes, because the same processors see the same journal events (slices are cut
differently, which processors are not allowed to notice) and events are produced in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import numpy as np

from engine.events import decode
from engine.events.catalogue import is_msgpack
from engine.events.control import InstrumentSpec, SessionOpened
from engine.events.market import MARKET_RECORD
from engine.log import Record
from engine.log.headers import cause_of, event_headers
from engine.log.kafka import KafkaLog, KafkaProducer
from engine.models import ModelSource
from engine.runtime.driver import (
    Driver,
    PortOutput,
    PortSpan,
    Topology,
    control_slice,
    market_slice,
)
from engine.runtime.manifest import RunError, output_topic
from engine.runtime.processor import Port, Slice
from engine.runtime.runner import topic_config
from engine.runtime.topology import Pipeline, config_hash


class TaskState(msgspec.Struct, frozen=True):
    """What a worker commits with each transaction for one session."""

    run_id: str
    session: str
    instrument: InstrumentSpec
    config: dict[str, Any]
    journal_next: int
    """Journal offset of the next event to process."""
    kafka_next: int
    """Kafka offset the journal partition is read from next: the worker's position. It is
    committed with the outputs, so it is exact even where the group's own offset commit
    is not kept (librdkafka's mock cluster drops transactional offset commits)."""
    states: dict[str, bytes]
    """Every stage's snapshot, by stage id."""
    times: dict[str, tuple[int, int]] = {}
    """Event time of each port's first and last output."""
    counts: dict[str, int] = {}
    """Events written on each port."""
    closed: bool = False
    """Whether ``session.closed`` was processed (the run is complete)."""


def worker_run_id(session: str, pipeline_name: str, resolved: dict[str, Any]) -> str:
    """A run id every worker derives alike: session, pipeline and the config's hash."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", f"{session}-{pipeline_name}")[:80]
    return f"{stem}-{config_hash(resolved)[:10]}"


class RunProducer:
    """The Kafka :class:`~engine.runtime.driver.OutputWriter`: each output event one record
    on ``run.<run id>.<port>``, keyed by the instrument symbol, with schema, version and the
    causing journal offset as headers, produced inside the worker's open transaction."""

    def __init__(self, log: KafkaLog, producer: KafkaProducer, run_id: str, key: bytes) -> None:
        self.log, self.producer, self.run_id, self.key = log, producer, run_id, key
        self.topics: dict[str, str] = {}

    def create(self, port: Port) -> None:
        """Create (or validate) the topic of ``port``."""
        topic = output_topic(self.run_id, port.name)
        self.log.create_topic(topic, topic_config(port))
        self.topics[port.name] = topic

    def write(self, output: PortOutput) -> None:
        topic = self.topics[output.port.name]
        name, version = output.port.event_type.name, output.port.event_type.version
        produce = self.producer.produce
        for value, stamp, cause in zip(
            output.encoded(), output.stamps, output.causes.tolist(), strict=True
        ):
            produce(topic, value, self.key, 0, stamp, event_headers(name, version, cause))

    def drain(self) -> None:
        """Nothing to do: records become visible when the transaction commits."""


class SessionTask:
    """Pushes one session's journal records through its topology onto the run's topics."""

    def __init__(
        self,
        log: KafkaLog,
        producer: KafkaProducer,
        state: TaskState,
        chosen: Pipeline,
        models: ModelSource | None,
    ) -> None:
        self.producer = producer
        self.run_id, self.session = state.run_id, state.session
        self.instrument, self.config = state.instrument, state.config
        self.pipeline = chosen
        self.topology = Topology(
            self.pipeline, state.config, state.session, state.instrument, models
        )
        if state.states:
            self.topology.restore(state.states)
        self.writer = RunProducer(log, producer, self.run_id, state.instrument.symbol.encode())
        self.ports: dict[str, tuple[str, Port, str]] = {}
        for stage, port in self.pipeline.written():
            self.writer.create(port)
            self.ports[port.name] = (stage.id, port, self.writer.topics[port.name])
        self.driver = Driver.of(self.topology, self.writer, state.journal_next)
        for name, (first, last) in state.times.items():
            self.driver.spans[name] = PortSpan(first, last, -1, state.counts.get(name, 0))
        self.driver.closed = state.closed
        self.kafka_next = state.kafka_next
        self.on_slice: Callable[[Slice], None] | None = None
        """Sees each journal slice just before the topology steps it (a live session's tap:
        outputs written next belong to that slice)."""

    @classmethod
    def fresh(
        cls,
        log: KafkaLog,
        producer: KafkaProducer,
        first: Record,
        chosen: Pipeline,
        resolve_config: Any,
        models: ModelSource | None,
    ) -> SessionTask:
        """A task starting at the journal's first record, which must be ``session.opened``."""
        opened = decode(first.value)
        if not isinstance(opened, SessionOpened):
            raise RunError(
                f"{first.topic} does not start with session.opened (offset {first.offset}); "
                "it is not a session journal"
            )
        session = first.topic.removesuffix(".journal")
        resolved = resolve_config(opened.instrument)
        run_id = worker_run_id(session, chosen.name, resolved)
        state = TaskState(run_id, session, opened.instrument, resolved, 0, first.offset, {})
        return cls(log, producer, state, chosen, models)

    def state(self) -> TaskState:
        """Everything needed to continue from here."""
        return TaskState(
            self.run_id,
            self.session,
            self.instrument,
            self.config,
            self.driver.offset,
            self.kafka_next,
            self.topology.snapshot(),
            self.times,
            {n: s.count for n, s in self.driver.spans.items() if s.count},
            self.closed,
        )

    @property
    def closed(self) -> bool:
        """Whether ``session.closed`` was processed (the run is complete)."""
        return self.driver.closed

    @property
    def next(self) -> int:
        """Journal offset of the next event to process."""
        return self.driver.offset

    @property
    def times(self) -> dict[str, tuple[int, int]]:
        """Event time of each port's first and last output, for ports that wrote any."""
        return {n: (s.first_ts, s.last_ts) for n, s in self.driver.spans.items() if s.count}

    def push(self, records: list[Record]) -> None:
        """Process consecutive journal records (the next ones this task expects)."""
        self.driver.run(self._slices(records))
        self.kafka_next = records[-1].offset + 1

    def _slices(self, records: list[Record]) -> Iterator[Slice]:
        start = 0
        for end in [*_layout_changes(records), len(records)]:
            run = records[start:end]
            first = cause_of(run[0].headers, f"{run[0].topic} offset {run[0].offset}")
            last = cause_of(run[-1].headers, f"{run[-1].topic} offset {run[-1].offset}")
            if first != self.next or last != first + len(run) - 1:
                raise RunError(
                    f"{run[0].topic}: journal events {first}..{last} arrived where "
                    f"{self.next}.. was expected (Kafka offsets {run[0].offset}..{run[-1].offset}"
                    "); the journal on the cluster has a gap or a duplicate. Re-mirror it."
                )
            if not is_msgpack(run[0].value):
                piece = market_slice(
                    first, np.frombuffer(b"".join(r.value for r in run), MARKET_RECORD)
                )
            else:
                piece = control_slice(first, [r.value for r in run])
            if self.on_slice is not None:
                self.on_slice(piece)
            yield piece
            start = end


def _layout_changes(records: list[Record]) -> Iterator[int]:
    for i in range(1, len(records)):
        if is_msgpack(records[i].value) != is_msgpack(records[i - 1].value):
            yield i
