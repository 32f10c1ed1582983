"""``tape worker``: a plain confluent-kafka loop hosting the topology, exactly once.

Each cycle reads up to ``commit_every`` journal records from the partitions the consumer
group gave this worker, pushes them through each session's topology, and in ONE Kafka
transaction produces the outputs, each session's state (:class:`TaskState`, to the state
topic) and the consumed journal offsets (``send_offsets_to_transaction``). Outputs, state and
position therefore move together or not at all: a worker killed mid-cycle leaves an open
transaction that the next owner of its transactional id aborts, and read-committed consumers
never see its records. The restarted worker resumes from the committed offsets with the
committed state, and the output topics end up exactly as one uninterrupted run would leave
them (the commit and abort markers take offsets, so output offsets are not contiguous).

Why not faust-streaming: its exactly-once mode has open duplicate bugs, its tables keep state
per key rather than the whole-topology snapshots the processors define, and its agents see one
event at a time where the runtime cuts slices. docs/operations.md has the full argument.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from engine.app.metrics import MeteredWriter, PipelineMetrics, records_ts_recv
from engine.app.mirror import kafka_chain
from engine.app.worker.task import SessionTask, TaskState
from engine.events.control import InstrumentSpec
from engine.log import LogError, Record, TopicCodec, TopicConfig, TopicPartition
from engine.log.kafka import KafkaLog
from engine.log.kafka.clients import latest_by_key
from engine.log.kafka.settings import WORKER_STATE_SCHEMA
from engine.models import ModelSource, run_models
from engine.runtime.manifest import (
    OutputSummary,
    RunManifest,
    code_version,
    outputs_hash,
)
from engine.runtime.topology import Catalog, RunConfig, config_hash, resolve

STATE_TOPIC = "tapedeck.worker_state"
"""Compacted topic of each session's latest :class:`TaskState`, keyed ``<group>/<journal>``."""
JOURNALS = "^.*\\.journal$"
"""Subscription pattern of every session journal."""


class WorkerError(LogError):
    """The worker cannot go on; the last committed transaction is intact."""


@dataclass(frozen=True)
class WorkerTimeouts:
    """How fast the cluster notices a dead worker (seconds).

    ``session``: a member silent this long leaves the group and its sessions move to another
    member. ``transaction``: a transaction open this long is aborted by the broker, so readers
    (and a worker taking over on another transactional id) wait at most this for a dead
    worker's open transaction. A restarted worker with the same ``--worker-id`` aborts its
    predecessor's transaction at once instead.
    """

    session: float = 45.0
    transaction: float = 60.0


@dataclass
class WorkerProgress:
    """What a worker has done so far, for its log line."""

    cycles: int = 0
    events: int = 0
    completed: list[str] = field(default_factory=list)
    """Run ids finished by this worker."""


class Worker:
    """One member of a consumer group hosting sessions' topologies (see the module doc)."""

    def __init__(
        self,
        log: KafkaLog,
        pipeline_name: str,
        *,
        pipelines: Catalog,
        group: str = "tapedeck-workers",
        worker_id: str | None = None,
        sessions: list[str] | None = None,
        config: RunConfig | None = None,
        models: ModelSource | None = None,
        commit_every: int = 20_000,
        metrics: PipelineMetrics | None = None,
        timeouts: WorkerTimeouts | None = None,
        poll: float = 0.5,
        on_task: Callable[[SessionTask], None] | None = None,
    ) -> None:
        self.pipelines = pipelines
        self.metrics = metrics
        self.pipeline = pipelines.get(pipeline_name)  # fails here, before joining the group
        self.log = log
        self.pipeline_name = pipeline_name
        self.group = group
        self.worker_id = worker_id or socket.gethostname()
        self.config = config or RunConfig(pipeline=pipeline_name)
        if self.config.pipeline != pipeline_name:
            self.config = msgspec.structs.replace(self.config, pipeline=pipeline_name)
        self.models = models
        self.commit_every = commit_every
        self.timeouts = timeouts or WorkerTimeouts()
        self.poll = poll
        """Seconds a cycle waits for journal records (a live session's worker waits less)."""
        self.on_task = on_task
        """Sees each session task when it is created (a live session taps its outputs)."""
        self.tasks: dict[tuple[str, int], SessionTask] = {}
        self.progress = WorkerProgress()
        log.create_topic(STATE_TOPIC, TopicConfig(WORKER_STATE_SCHEMA, 1, TopicCodec.MSGPACK))
        # A stable transactional id: a restarted worker fences its killed predecessor and
        # aborts its open transaction at once, instead of readers waiting for its timeout.
        self.producer = log.producer(
            f"tapedeck.{group}.{pipeline_name}.{self.worker_id}",
            {"transaction.timeout.ms": int(self.timeouts.transaction * 1000)},
        )
        self.consumer = log.consumer(
            group, settings={"session.timeout.ms": int(self.timeouts.session * 1000)}
        )
        topics = [f"{s}.journal" for s in sessions] if sessions else [JOURNALS]
        self._resume: dict[tuple[str, int], TaskState] = {}
        self._refused: WorkerError | None = None
        self.consumer.subscribe(topics, on_assign=self._assigned, on_revoke=self._revoked)

    def _assigned(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        # Called inside consume(), between transactions: what fails here is raised by run().
        try:
            return self._starts(partitions)
        except LogError as exc:
            self._refused = WorkerError(str(exc))
            return partitions

    def _starts(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        # Each partition starts where its committed state says, which must agree with the
        # group's committed offset. A worker that died mid-transaction leaves it open until
        # its successor fences it or it times out: wait that long for it.
        states = committed_states(self.log, settle=self.timeouts.transaction + 30)
        group = {(c.topic, c.partition): c.offset for c in self.consumer.committed(partitions)}
        chosen = []
        for tp in partitions:
            key = (tp.topic, tp.partition)
            state = states.get(state_key(self.group, self.pipeline_name, *key))
            if state is not None:
                self._resume[key] = state
                self._check_group_offset(key, state, group.get(key))
            chosen.append(TopicPartition(*key, state.kafka_next if state else None))
        return chosen

    def _check_group_offset(
        self, key: tuple[str, int], state: TaskState, offset: int | None
    ) -> None:
        """The broker stores the offsets committed with each transaction, as the state is: they
        agree unless someone moved the group's offset by hand. Following the moved offset with
        a state from elsewhere would write outputs that no run produces, so refuse.
        librdkafka's mock cluster keeps no transactional offsets (None): the state alone is
        exact there."""
        if offset is None or offset == state.kafka_next:
            return
        self._refused = WorkerError(
            f"{key[0]}/{key[1]}: group {self.group!r} has committed offset {offset}, but the "
            f"worker state committed with its outputs says {state.kafka_next} (journal event "
            f"{state.journal_next}). The group's offset was moved by hand; following it would "
            "write outputs no run produces, so this worker stops. To go on where the outputs "
            f"end, reset the group's offset of {key[0]} to {state.kafka_next} "
            "(kafka-consumer-groups.sh --reset-offsets --to-offset); to process the session "
            "again from the start, delete its run topics and worker state first "
            "(docs/operations.md, 'Start a session's processing over')."
        )

    def _revoked(self, partitions: list[TopicPartition]) -> None:
        # Called inside consume(), between transactions: everything done is committed.
        for tp in partitions:
            self.tasks.pop((tp.topic, tp.partition), None)

    def run(
        self,
        idle_exit: float | None = None,
        on_cycle: Callable[[WorkerProgress], None] | None = None,
        until: Callable[[], bool] | None = None,
    ) -> WorkerProgress:
        """Process until stopped; with ``idle_exit``, return after that many seconds without
        new journal records once every hosted session is complete; with ``until``, return
        as soon as it says so (checked between transactions)."""
        idle_since = time.monotonic()
        try:
            while until is None or not until():
                records = self.consumer.consume(self.commit_every, self.poll)
                if self._refused is not None:
                    raise self._refused
                if records:
                    self._cycle(records)
                    idle_since = time.monotonic()
                    if on_cycle is not None:
                        on_cycle(self.progress)
                elif not self.consumer.assignment():
                    idle_since = time.monotonic()  # still joining: not idle yet
                elif (
                    idle_exit is not None
                    and time.monotonic() - idle_since >= idle_exit
                    and all(t.closed for t in self.tasks.values())
                ):
                    return self.progress
            return self.progress
        finally:
            self.consumer.close()

    def _cycle(self, records: list[Record]) -> None:
        by_partition: dict[tuple[str, int], list[Record]] = {}
        for record in records:
            by_partition.setdefault((record.topic, record.partition), []).append(record)
        self.producer.begin_transaction()
        try:
            finished: list[SessionTask] = []
            for key, batch in by_partition.items():
                task = self._task(key, batch[0])
                if task.closed:
                    # Records after session.closed belong to no run; the position still moves
                    # past them, in the state as in the group's offsets.
                    task.kafka_next = batch[-1].offset + 1
                    was_closed = True
                else:
                    was_closed = False
                    started = time.perf_counter()
                    task.push(batch)
                    self._measure(key, task, batch, time.perf_counter() - started)
                state = msgspec.msgpack.encode(task.state())
                self.producer.produce(
                    STATE_TOPIC,
                    state,
                    state_key(self.group, self.pipeline_name, *key).encode(),
                    0,
                    records[-1].timestamp,
                )
                if task.closed and not was_closed:
                    finished.append(task)
            self.producer.send_offsets(
                [TopicPartition(t, p, b[-1].offset + 1) for (t, p), b in by_partition.items()],
                self.consumer,
            )
            self.producer.commit_transaction()
        except BaseException:
            self._abort()
            raise
        self.progress.cycles += 1
        self.progress.events += len(records)
        for task in finished:
            self._complete(task)

    def _measure(
        self, key: tuple[str, int], task: SessionTask, batch: list[Record], seconds: float
    ) -> None:
        """Feed the metrics, if any, with one session's part of a cycle."""
        if self.metrics is None:
            return
        lag = self.log.watermarks(*key)[1] - task.kafka_next
        self.metrics.processed(task.session, len(batch), seconds, lag)
        received = records_ts_recv([r.value for r in batch])
        self.metrics.latency(task.session, received, time.time_ns())

    def _abort(self) -> None:
        with contextlib.suppress(LogError):  # fenced or unreachable: the cluster aborts it
            self.producer.abort_transaction()

    def _task(self, key: tuple[str, int], first: Record) -> SessionTask:
        task = self.tasks.get(key)
        if task is not None:
            return task
        state = self._resume.pop(key, None)
        if state is None:
            if first.offset != self._low(key):
                raise WorkerError(
                    f"{key[0]}/{key[1]}: group {self.group!r} resumed at offset {first.offset} "
                    f"but no worker state was committed for it in {STATE_TOPIC}. Reset the "
                    "group's offsets to the beginning (docs/operations.md) and restart."
                )
            task = SessionTask.fresh(
                self.log, self.producer, first, self.pipeline, self._resolve, self.models
            )
        else:
            chosen = self.pipelines.get(str(state.config["pipeline"]))
            task = SessionTask(self.log, self.producer, state, chosen, self.models)
        if self.metrics is not None:
            task.driver.writer = MeteredWriter(task.driver.writer, self.metrics, task.session)
        if self.on_task is not None:
            self.on_task(task)
        self.tasks[key] = task
        return task

    def _resolve(self, instrument: InstrumentSpec) -> dict[str, Any]:
        return resolve(self.pipelines, self.config, instrument)

    def _low(self, key: tuple[str, int]) -> int:
        return self.log.watermarks(*key)[0]

    def _complete(self, task: SessionTask) -> None:
        """Hash what the run's topics hold, as stored, and record the run's manifest."""
        outputs = []
        for name, (stage, port, topic) in task.ports.items():
            # A real broker writes the commit markers after commit_transaction returns: until
            # they are in, a read-committed reader stops short of the last transaction.
            self.log.settle(topic, 0, bound=self.timeouts.transaction + 30)
            count, chain = kafka_chain(self.log, topic)
            first, last = task.times.get(name, (0, 0))
            outputs.append(
                OutputSummary(
                    name, stage, topic, port.event_type.qualified_name, count, chain, first, last
                )
            )
        manifest = RunManifest(
            run_id=task.run_id,
            session=task.session,
            pipeline=task.pipeline.name,
            status="complete",
            journal_topic=f"{task.session}.journal",
            journal_start=0,
            journal_stop=task.next,
            code=code_version(),
            config=task.config,
            config_hash=config_hash(task.config),
            models=run_models(task.config, self.models) if self.models is not None else {},
            outputs=outputs,
            outputs_hash=outputs_hash(outputs),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self.log.put_meta(f"run/{task.run_id}", msgspec.json.encode(manifest))
        self.progress.completed.append(task.run_id)


def state_key(group: str, pipeline_name: str, topic: str, partition: int) -> str:
    """Key of a journal partition's :class:`TaskState` in :data:`STATE_TOPIC`."""
    return f"{group}/{pipeline_name}/{topic}/{partition}"


def committed_states(log: KafkaLog, settle: float | None = 30.0) -> dict[str, TaskState]:
    """The newest committed :class:`TaskState` under each key of :data:`STATE_TOPIC`.

    First waits (at most ``settle`` seconds) for the transactions open on the state topic to
    end: until then a read-committed reader stops short of them, and of every state committed
    after them, by any worker. ``settle=None`` reads what is stable now.
    """
    if settle is not None:
        log.settle(STATE_TOPIC, 0, bound=settle)
    return {
        k: msgspec.msgpack.decode(v, type=TaskState)
        for k, v in latest_by_key(log, STATE_TOPIC).items()
    }
