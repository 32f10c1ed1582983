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
from collections.abc import Iterator
from typing import Any

import msgspec
import numpy as np

from engine.events import decode, encode
from engine.events.catalogue import is_msgpack
from engine.events.control import InstrumentSpec, SessionClosed, SessionOpened
from engine.events.market import MARKET_RECORD
from engine.log import Record
from engine.log.headers import cause_of, event_headers
from engine.log.kafka import KafkaLog, KafkaProducer
from engine.models import ModelSource
from engine.runtime.manifest import RunError, output_topic
from engine.runtime.processor import Output, Port, Slice
from engine.runtime.runner import Topology, checked_causes, topic_config
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
    closed: bool = False
    """Whether ``session.closed`` was processed (the run is complete)."""


def worker_run_id(session: str, pipeline_name: str, resolved: dict[str, Any]) -> str:
    """A run id every worker derives alike: session, pipeline and the config's hash."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", f"{session}-{pipeline_name}")[:80]
    return f"{stem}-{config_hash(resolved)[:10]}"


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
        self.ports: dict[str, tuple[str, Port, str]] = {}
        for stage, port in self.pipeline.written():
            topic = output_topic(self.run_id, port.name)
            log.create_topic(topic, topic_config(port))
            self.ports[port.name] = (stage.id, port, topic)
        self.next = state.journal_next
        self.kafka_next = state.kafka_next
        self.times = dict(state.times)
        self.closed = state.closed
        self.key = state.instrument.symbol.encode()
        self._last_cause = dict.fromkeys(self.ports, -1)

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
            self.next,
            self.kafka_next,
            self.topology.snapshot(),
            self.times,
            self.closed,
        )

    def push(self, records: list[Record]) -> None:
        """Process consecutive journal records (the next ones this task expects)."""
        for piece in self._slices(records):
            for port, out in self.topology.push(piece):
                if port.name in self.ports and len(out):
                    self._produce(port, out, piece.start, piece.stop)
            self.next = piece.stop
            self.closed = self.closed or any(isinstance(e, SessionClosed) for e in piece.control)
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
                market = np.frombuffer(b"".join(r.value for r in run), MARKET_RECORD)
                yield Slice(first, last + 1, market=market)
            else:
                yield Slice(first, last + 1, control=tuple(decode(r.value) for r in run))
            start = end

    def _produce(self, port: Port, out: Output, start: int, stop: int) -> None:
        causes = checked_causes(port, out, start, stop, self._last_cause[port.name]).tolist()
        self._last_cause[port.name] = causes[-1]
        if isinstance(out, np.ndarray):
            values = [r.tobytes() for r in out]
            fields = out.dtype.fields or {}
            stamps = out["ts_event"].tolist() if "ts_event" in fields else [0] * len(out)
        else:
            values = [encode(e) for e in out]
            stamps = [int(getattr(e, "ts_event", 0)) for e in out]
        first, _ = self.times.get(port.name, (stamps[0], 0))
        self.times[port.name] = (first, stamps[-1])
        _, _, topic = self.ports[port.name]
        name, version = port.event_type.name, port.event_type.version
        produce = self.producer.produce
        for value, stamp, cause in zip(values, stamps, causes, strict=True):
            produce(topic, value, self.key, 0, stamp, event_headers(name, version, cause))


def _layout_changes(records: list[Record]) -> Iterator[int]:
    for i in range(1, len(records)):
        if is_msgpack(records[i].value) != is_msgpack(records[i - 1].value):
            yield i
