"""Producer and consumer of the Kafka backend, with the embedded log's client contract.

Timestamps are nanoseconds in Tapedeck and milliseconds in Kafka: records are stamped with
the event time truncated to the millisecond (at least 1 ms: librdkafka takes 0 as "now"), and
consumers see that value back in ns. The exact time is always inside the value.

Offsets are Kafka's: a transactionally written topic has gaps where commit and abort markers
sit, so nothing here counts records to find offsets.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from engine.log.client import Record, TopicPartition
from engine.log.errors import LogError, LogUnavailableError, OffsetOutOfRangeError
from engine.log.format import Header
from engine.log.kafka.cluster import KafkaLog, _reason
from engine.log.kafka.retry import retry
from engine.log.kafka.settings import CONSUMER, DELIVERY_TIMEOUT_MS, PRODUCER

NS_PER_MS = 1_000_000
T = TypeVar("T")
READER_GROUP = "tapedeck.reader"
"""Group id of consumers without a group: librdkafka wants one; it never commits."""


class KafkaProducer:
    """Idempotent (``acks=all``) producer; transactional when given a ``transactional_id``.

    Records are sent in the background; ``flush`` waits for every acknowledgement and raises
    :class:`LogUnavailableError` naming what was not delivered, so nothing is lost silently.
    """

    def __init__(
        self,
        log: KafkaLog,
        transactional_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.log = log
        settings = {**log.settings, **PRODUCER, **(extra or {})}
        # A record may not outlive the transaction it belongs to (librdkafka refuses that).
        settings["message.timeout.ms"] = min(
            DELIVERY_TIMEOUT_MS, int(settings.get("transaction.timeout.ms", DELIVERY_TIMEOUT_MS))
        )
        if transactional_id is not None:
            settings["transactional.id"] = transactional_id
        self._producer = Producer({**settings, "error_cb": self._on_error})
        self._failures: list[str] = []
        self._fatal: str | None = None
        self._partitions: dict[str, int] = {}
        self.transactional = transactional_id is not None
        if self.transactional:
            self._call("init_transactions", log.timeout * 6)

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = err.str()

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            self._failures.append(f"{msg.topic()}/{msg.partition()}: {err.str()}")

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        partition: int = 0,
        timestamp: int | None = None,
        headers: list[Header] | None = None,
    ) -> None:
        """Queue one record (``timestamp`` in ns; default: now). Waits while the queue is full.

        A topic not created through Tapedeck, or a partition it does not have, is refused here
        as on the embedded log: a broker would otherwise auto-create the topic, or accept a
        partition the mock cluster added (see :mod:`engine.log.kafka.cluster`).
        """
        self._check_partition(topic, partition)
        stamp = (time.time_ns() if timestamp is None else timestamp) // NS_PER_MS
        # librdkafka reads 0 as "stamp it now"; an event at the epoch keeps a fixed time.
        stamp = max(stamp, 1)
        while True:
            try:
                self._producer.produce(
                    topic,
                    value,
                    key,
                    partition,
                    on_delivery=self._on_delivery,
                    timestamp=stamp,
                    headers=headers,  # type: ignore[arg-type]  # list is a valid form
                )
                return
            except BufferError:
                self._producer.poll(0.01)

    def _check_partition(self, topic: str, partition: int) -> None:
        count = self._partitions.get(topic)
        if count is None:
            count = self._partitions[topic] = self.log.config(topic).partitions
        if not 0 <= partition < count:
            raise LogError(
                f"topic {topic!r} on {self.log.servers} has partitions 0..{count - 1}; "
                f"there is no partition {partition}"
            )

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued record is acknowledged; raise if any was not."""
        left = self._producer.flush(DELIVERY_TIMEOUT_MS / 1000 + 5 if timeout is None else timeout)
        if left or self._failures or self._fatal:
            failures, self._failures = self._failures, []
            reason = self._fatal or (failures[0] if failures else "no acknowledgement in time")
            raise LogUnavailableError(
                f"{left + len(failures)} record(s) were not delivered to {self.log.servers}: "
                f"{reason}. Records after the last acknowledged one are not in the log; "
                "repeat the command once the cluster is healthy (mirrors and workers resume)."
            )

    def begin_transaction(self) -> None:
        """Start a transaction (transactional producers only)."""
        self._call("begin_transaction")

    def send_offsets(self, offsets: list[TopicPartition], consumer: KafkaConsumer) -> None:
        """Commit ``offsets`` for ``consumer``'s group as part of the open transaction."""
        self._call(
            "send_offsets_to_transaction",
            [KafkaTopicPartition(t.topic, t.partition, _or(t.offset, 0)) for t in offsets],
            consumer.group_metadata(),
            self.log.timeout * 6,
        )

    def commit_transaction(self) -> None:
        """Commit the open transaction: its records and offsets become visible together."""
        self._call("commit_transaction", self.log.timeout * 6)
        if self._failures:
            self.flush(0)

    def abort_transaction(self) -> None:
        """Abort the open transaction: read-committed consumers never see its records."""
        self._call("abort_transaction", self.log.timeout * 6)
        self._failures.clear()

    def _call(self, name: str, *args: Any) -> None:
        # Retriable answers (coordinator loading, concurrent transactions) are asked again;
        # librdkafka documents every transactional call as safe to repeat after them.
        try:
            retry(lambda: getattr(self._producer, name)(*args), name, self.log.servers)
        except KafkaException as exc:
            raise LogUnavailableError(
                f"{name} failed on {self.log.servers}: {_reason(exc)}. If another worker took "
                "over this transactional id, this one was fenced and must stop."
            ) from exc

    def close(self) -> None:
        """Flush and let go."""
        self.flush()


class KafkaConsumer:
    """Reads assigned partitions (``assign``) or a consumer group's share (``subscribe``).

    Positions are tracked here as "the offset after the last record handed out", Kafka's
    commit convention; they never assume the next offset holds a record.
    """

    def __init__(
        self,
        log: KafkaLog,
        group_id: str | None = None,
        auto_offset_reset: str = "earliest",
        *,
        isolation: str = "read_committed",
        settings: dict[str, Any] | None = None,
    ) -> None:
        if auto_offset_reset not in {"earliest", "latest"}:
            raise LogError("auto_offset_reset must be 'earliest' or 'latest'")
        self.log = log
        self.group_id = group_id
        self._assigned: dict[tuple[str, int], int | None] = {}
        self._consumer = Consumer(
            {
                **log.settings,
                **CONSUMER,
                "group.id": group_id or READER_GROUP,
                "auto.offset.reset": auto_offset_reset,
                "isolation.level": isolation,
                **(settings or {}),
            }
        )
        self._reset = auto_offset_reset

    # -- assignment ------------------------------------------------------------------------

    def subscribe(
        self,
        topics: list[str],
        on_assign: Callable[[list[TopicPartition]], list[TopicPartition]] | None = None,
        on_revoke: Callable[[list[TopicPartition]], None] | None = None,
    ) -> None:
        """Join the group for ``topics`` (``^regex`` allowed); partitions arrive as the group
        balances them. Inside ``consume``, ``on_assign`` may choose where each new partition
        starts (an offset, or None for the committed one) and ``on_revoke`` hears of
        partitions taken away."""
        if self.group_id is None:
            raise LogError("subscribe needs a consumer created with a group_id")

        def assigned(consumer: Any, partitions: list[KafkaTopicPartition]) -> None:
            given = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
            chosen = on_assign(given) if on_assign is not None else given
            for tp in chosen:
                self._assigned[(tp.topic, tp.partition)] = tp.offset
            stored = -1000  # OFFSET_STORED: the committed offset, else the reset policy
            consumer.assign(
                [KafkaTopicPartition(t.topic, t.partition, _or(t.offset, stored)) for t in chosen]
            )

        def revoked(_consumer: Any, partitions: list[KafkaTopicPartition]) -> None:
            for tp in partitions:
                self._assigned.pop((tp.topic, tp.partition), None)
            if on_revoke is not None:
                on_revoke([TopicPartition(tp.topic, tp.partition) for tp in partitions])

        self._consumer.subscribe(topics, on_assign=assigned, on_revoke=revoked)

    def assign(self, partitions: list[TopicPartition]) -> None:
        """Read exactly these partitions: from the given offset, else committed, else reset."""
        self._assigned = {(tp.topic, tp.partition): tp.offset for tp in partitions}
        stored = -1000  # OFFSET_STORED: the committed offset, else the reset policy
        self._consumer.assign(
            [
                KafkaTopicPartition(tp.topic, tp.partition, _or(tp.offset, stored))
                for tp in partitions
            ]
        )

    def assignment(self) -> list[TopicPartition]:
        """The assigned partitions."""
        return [TopicPartition(t, p) for t, p in self._pairs()]

    def _pairs(self) -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in self._consumer.assignment()]

    def seek(self, tp: TopicPartition) -> None:
        """Move an assigned partition's position to ``tp.offset``."""
        key = (tp.topic, tp.partition)
        if tp.offset is None or key not in self._pairs():
            raise LogError(f"seek needs an assigned partition and an offset, got {tp}")
        self._assigned[key] = tp.offset
        target = KafkaTopicPartition(tp.topic, tp.partition, tp.offset)
        try:
            self._consumer.seek(target)
        except KafkaException:
            # Not fetching yet ("erroneous state"): re-assigning with the offset is the seek.
            self._consumer.incremental_unassign([target])
            self._consumer.incremental_assign([target])

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The next offset this consumer will read in each partition."""
        out = []
        for p in partitions:
            mine = self._assigned.get((p.topic, p.partition))
            if mine is None:
                mine = self._resolved_start(p)
            out.append(TopicPartition(p.topic, p.partition, mine))
        return out

    def _resolved_start(self, p: TopicPartition) -> int:
        committed = self.committed([p])[0].offset if self.group_id else None
        if committed is not None:
            return committed
        low, high = self.watermarks(p.topic, p.partition)
        return low if self._reset == "earliest" else high

    def watermarks(self, topic: str, partition: int = 0) -> tuple[int, int]:
        """(first offset, next offset) of the partition."""
        try:
            low, high = retry(
                lambda: self._consumer.get_watermark_offsets(
                    KafkaTopicPartition(topic, partition), timeout=self.log.timeout
                ),
                f"reading the offsets of {topic}/{partition}",
                self.log.servers,
            )
        except KafkaException as exc:
            raise LogUnavailableError(
                f"cannot read the offsets of {topic}/{partition} on {self.log.servers}: "
                f"{_reason(exc)}"
            ) from exc
        return int(low), int(high)

    def offsets_for_times(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """For each ``tp.offset`` taken as a timestamp (ns): the earliest offset at or after it."""
        if self.log.mock:
            return [
                TopicPartition(tp.topic, tp.partition, self._scan_for_time(tp)) for tp in partitions
            ]
        # The broker answers each partition once per request (a ListOffsets request names a
        # partition once): ask a request per question, in order.
        return [self._broker_offset_for_time(tp) for tp in partitions]

    def _broker_offset_for_time(self, tp: TopicPartition) -> TopicPartition:
        asked = [KafkaTopicPartition(tp.topic, tp.partition, -(-(tp.offset or 0) // NS_PER_MS))]
        found = retry(
            lambda: _checked(self._consumer.offsets_for_times(asked, timeout=self.log.timeout)),
            f"looking up a timestamp in {tp.topic}/{tp.partition}",
            self.log.servers,
        )[0]
        return TopicPartition(found.topic, found.partition, max(found.offset, -1))

    def _scan_for_time(self, tp: TopicPartition) -> int:
        # The mock cluster cannot look up timestamps (see engine.log.kafka.cluster).
        wanted = -(-(tp.offset or 0) // NS_PER_MS) * NS_PER_MS
        low, high = self.watermarks(tp.topic, tp.partition)
        for record in read_range(self.log, tp.topic, tp.partition, low, high):
            if record.timestamp >= wanted:
                return record.offset
        return -1

    # -- reading ---------------------------------------------------------------------------

    def consume(self, num_messages: int = 1, timeout: float = 0.0) -> list[Record]:
        """Up to ``num_messages`` records that arrive within ``timeout`` seconds."""
        messages = self._delivered(num_messages, timeout)
        return [
            Record(
                m.topic(),
                m.partition(),
                m.offset(),
                m.timestamp()[1] * NS_PER_MS,
                m.key(),
                m.value(),
                m.headers(),
            )
            for m in messages
        ]

    def consume_values(
        self, num_messages: int = 1, timeout: float = 0.0
    ) -> tuple[list[int], list[bytes]]:
        """As :meth:`consume`, but only the records' offsets and values, in order.

        The fast path of hashing and copying: building a :class:`Record`, its headers above
        all, costs more than reading the record.
        """
        messages = self._delivered(num_messages, timeout)
        return [m.offset() for m in messages], [m.value() for m in messages]

    def _delivered(self, num_messages: int, timeout: float) -> list[Any]:
        """The next messages (none that is an error), the positions moved past them."""
        messages: list[Any] = self._consumer.consume(num_messages, timeout)
        if not all(m.error() is None for m in messages):
            messages = [m for m in messages if self._usable(m)]
        if len(self._assigned) == 1 and messages:
            # One partition: its last message is the new position (the common, fast case).
            last = messages[-1]
            self._assigned[(last.topic(), last.partition())] = last.offset() + 1
        else:
            for m in messages:
                self._assigned[(m.topic(), m.partition())] = m.offset() + 1
        return messages

    def _usable(self, m: Any) -> bool:
        """Whether ``m`` is a record; raises if it reports an error that is not end-of-partition."""
        err = m.error()
        if err is None:
            return True
        if err.code() == KafkaError._PARTITION_EOF:
            return False
        if err.code() == KafkaError.OFFSET_OUT_OF_RANGE:
            raise OffsetOutOfRangeError(
                f"{m.topic()}/{m.partition()}: the asked offset is no longer (or not "
                f"yet) in the log on {self.log.servers}: {err.str()}"
            )
        raise LogUnavailableError(
            f"reading {m.topic()}/{m.partition()} from {self.log.servers}: {err.str()}"
        )

    def poll(self, timeout: float = 0.0) -> Record | None:
        """One record, or ``None`` if none arrived within ``timeout`` seconds."""
        records = self.consume(1, timeout)
        return records[0] if records else None

    # -- consumer groups -------------------------------------------------------------------

    def commit(self, offsets: list[TopicPartition] | None = None) -> None:
        """Store offsets for the group, synchronously: the given ones, or the positions."""
        if self.group_id is None:
            raise LogError("commit needs a consumer created with a group_id")
        chosen = (
            [TopicPartition(t, p, o) for (t, p), o in self._assigned.items() if o is not None]
            if offsets is None
            else offsets
        )
        if not chosen:
            return
        wanted = [KafkaTopicPartition(t.topic, t.partition, _or(t.offset, 0)) for t in chosen]
        try:
            self._consumer.commit(offsets=wanted, asynchronous=False)
        except KafkaException as exc:
            raise LogUnavailableError(
                f"could not commit offsets of group {self.group_id!r} on {self.log.servers}: "
                f"{_reason(exc)}; the group will re-read from its previous commit"
            ) from exc

    def committed(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The group's committed offsets for ``partitions`` (``None`` where none)."""
        if self.group_id is None:
            return [TopicPartition(p.topic, p.partition, None) for p in partitions]
        asked = [KafkaTopicPartition(p.topic, p.partition) for p in partitions]
        found = retry(
            lambda: _checked(self._consumer.committed(asked, timeout=self.log.timeout)),
            f"reading the committed offsets of group {self.group_id!r}",
            self.log.servers,
        )
        return [
            TopicPartition(f.topic, f.partition, None if f.offset < 0 else f.offset) for f in found
        ]

    def group_metadata(self) -> Any:
        """The group's metadata, for committing offsets inside a transaction."""
        return self._consumer.consumer_group_metadata()

    def close(self) -> None:
        """Leave the group (offsets are not committed implicitly)."""
        self._consumer.close()


def read_range(
    log: KafkaLog, topic: str, partition: int, start: int, stop: int, batch: int = 10_000
) -> Iterator[Record]:
    """Every committed record of ``topic/partition`` with ``start <= offset < stop``.

    Ends when the consumer's position reaches ``stop`` (a marker may sit at the last offsets,
    so waiting for a record at ``stop - 1`` could wait forever).
    """

    def fetch(consumer: KafkaConsumer) -> tuple[list[int], list[Record]]:
        records = consumer.consume(batch, 0.2)
        return [r.offset for r in records], records

    for records in _fetches(log, topic, partition, start, stop, fetch):
        yield from records


def latest_by_key(log: KafkaLog, topic: str) -> dict[str, bytes]:
    """Each key's newest value in partition 0 of a compacted topic, as stored now."""
    latest: dict[str, bytes] = {}
    for record in read_range(log, topic, 0, *log.watermarks(topic, 0)):
        if record.key is not None:
            latest[record.key.decode()] = record.value
    return latest


def read_values(
    log: KafkaLog, topic: str, partition: int, start: int, stop: int, batch: int = 10_000
) -> Iterator[list[bytes]]:
    """The values of :func:`read_range`'s records, a list per fetch: for hashing and copying."""
    yield from _fetches(
        log, topic, partition, start, stop, lambda consumer: consumer.consume_values(batch, 0.2)
    )


def _fetches(
    log: KafkaLog,
    topic: str,
    partition: int,
    start: int,
    stop: int,
    fetch: Callable[[KafkaConsumer], tuple[list[int], list[T]]],
) -> Iterator[list[T]]:
    if start >= stop:
        return
    consumer = KafkaConsumer(log)
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        idle_since = time.monotonic()
        while True:
            offsets, items = fetch(consumer)
            if offsets:
                idle_since = time.monotonic()
                if offsets[-1] >= stop:
                    if cut := bisect.bisect_left(offsets, stop):
                        yield items[:cut]
                    return
                yield items
                if offsets[-1] + 1 >= stop:
                    return
            elif _position(consumer, topic, partition) >= stop:
                return
            elif time.monotonic() - idle_since > log.timeout * 2:
                raise LogUnavailableError(
                    f"reading {topic}/{partition} from {log.servers} stalled before offset "
                    f"{stop} (position {_position(consumer, topic, partition)})"
                )
    finally:
        consumer.close()


def _position(consumer: KafkaConsumer, topic: str, partition: int) -> int:
    found = consumer._consumer.position([KafkaTopicPartition(topic, partition)])[0].offset
    return int(found) if found >= 0 else -1


def _checked(found: list[KafkaTopicPartition]) -> list[KafkaTopicPartition]:
    """``found``, or the first per-partition error raised, so :func:`retry` can judge it."""
    for tp in found:
        if tp.error is not None:
            raise KafkaException(tp.error)
    return found


def _or(offset: int | None, default: int) -> int:
    return default if offset is None else offset
