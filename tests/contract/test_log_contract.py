"""The log's client contract, run unchanged against every backend: embedded files and Kafka.

``LogContract`` holds the tests; each backend subclasses it with ``make_log`` (a new handle on
this test's storage, as a new process would open it) and ``unreachable`` (an action that must
fail because the log cannot be reached, and the address its error has to name).

What the contract does NOT promise, because Kafka does not: contiguous offsets (transaction
markers take offsets), timestamps finer than a millisecond, or a group's assignment before it
has joined. So offsets are only ever checked to increase, positions to follow the last record
handed out, and timestamps are whole milliseconds of at least 1 ms.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.log import (
    EmbeddedLog,
    LogError,
    LogUnavailableError,
    Record,
    TopicCodec,
    TopicConfig,
    TopicExistsError,
    TopicPartition,
)
from engine.log.kafka import KafkaLog
from tests.kafka_support import KafkaTarget

MS = 1_000_000
"""Nanoseconds per millisecond: every timestamp here is a whole number of milliseconds."""
DEADLINE = 30.0
"""How long to wait for records: a Kafka group join takes seconds."""
PARTITIONS = 3


def config(partitions: int = PARTITIONS, version: int = 1) -> TopicConfig:
    """A msgpack topic of ``partitions`` partitions."""
    return TopicConfig("contract.test", version, TopicCodec.MSGPACK, partitions=partitions)


def consume_until(consumer: Any, count: int, batch: int = 100) -> list[Record]:
    """Records until ``count`` arrived or :data:`DEADLINE` passed (the caller asserts)."""
    out: list[Record] = []
    end = time.monotonic() + DEADLINE
    while len(out) < count and time.monotonic() < end:
        out += consumer.consume(min(batch, count - len(out)), 0.5)
    return out


def by_partition(records: list[Record]) -> dict[int, list[Record]]:
    """Records grouped by partition, each group in the order it was consumed."""
    out: dict[int, list[Record]] = {}
    for record in records:
        out.setdefault(record.partition, []).append(record)
    return out


def assert_increasing(records: list[Record]) -> None:
    """Offsets of one partition strictly increase (they need not be contiguous)."""
    offsets = [r.offset for r in records]
    assert all(a < b for a, b in itertools.pairwise(offsets)), offsets


def positions(consumer: Any, topic: str, partitions: list[int]) -> dict[int, int | None]:
    """The consumer's next offset in each of ``partitions`` (assigned ones)."""
    found = consumer.position([TopicPartition(topic, p) for p in partitions])
    return {tp.partition: tp.offset for tp in found}


def committed(consumer: Any, topic: str, partitions: int = PARTITIONS) -> dict[int, int | None]:
    """The consumer's group's committed offset per partition (None where none)."""
    found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)])
    return {tp.partition: tp.offset for tp in found}


class LogContract:
    """Every test of the contract; subclasses say how to open their backend."""

    def make_log(self) -> Any:
        """A new handle on this test's log (same storage on every call)."""
        raise NotImplementedError

    def unreachable(self) -> tuple[Callable[[], object], str]:
        """An action that must raise ``LogUnavailableError``, and the address it must name."""
        raise NotImplementedError

    # -- fixtures --------------------------------------------------------------------------

    @pytest.fixture
    def log(self) -> Iterator[Any]:
        log = self.make_log()
        yield log
        log.close()

    @pytest.fixture
    def name(self, request: pytest.FixtureRequest) -> str:
        """A topic and group name of this test alone (Kafka tests share one cluster)."""
        return re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)

    @pytest.fixture
    def filled(self, log: Any, name: str) -> dict[int, list[Record]]:
        """Topic ``name``: 12 records per partition, value ``p-i``, key ``k-i``, time i+1 ms;
        returned as read back, per partition."""
        log.create_topic(name, config())
        produce_grid(log, name, 12)
        reader = log.consumer()
        reader.assign([TopicPartition(name, p) for p in range(PARTITIONS)])
        records = by_partition(consume_until(reader, PARTITIONS * 12))
        reader.close()
        assert {p: len(rs) for p, rs in records.items()} == dict.fromkeys(range(PARTITIONS), 12)
        return records

    # -- producing and reading -------------------------------------------------------------

    def test_each_partition_is_read_in_produced_order(
        self, filled: dict[int, list[Record]], name: str
    ) -> None:
        for p, records in filled.items():
            assert [r.value for r in records] == [f"{p}-{i}".encode() for i in range(12)]
            assert [r.key for r in records] == [f"k-{i}".encode() for i in range(12)]
            assert [r.timestamp for r in records] == [(i + 1) * MS for i in range(12)]
            assert {(r.topic, r.partition) for r in records} == {(name, p)}
            assert_increasing(records)

    def test_position_follows_the_last_record_handed_out(
        self, log: Any, filled: dict[int, list[Record]], name: str
    ) -> None:
        consumer = log.consumer()
        consumer.assign([TopicPartition(name, p) for p in range(PARTITIONS)])
        records = by_partition(consume_until(consumer, PARTITIONS * 12))
        assert positions(consumer, name, list(records)) == {
            p: rs[-1].offset + 1 for p, rs in records.items()
        }
        assert consumer.consume(10, 0.5) == []
        consumer.close()

    def test_keys_values_and_headers_round_trip_exactly(self, log: Any, name: str) -> None:
        log.create_topic(name, config(partitions=1))
        sent: list[tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]] = [
            (None, b"no key, no headers", None),
            (b"", b"", None),
            (b"\x00\xff binary key", bytes(range(256)) * 40, [("h", b"\x00\x01\xff")]),
            (b"k", b"repeated headers", [("a", b"1"), ("b", b""), ("a", b"2")]),
            (b"k", "unicodé".encode(), [("tapedeck.schema", b"market.record")]),
        ]
        producer = log.producer()
        for i, (key, value, headers) in enumerate(sent):
            producer.produce(name, value, key=key, timestamp=(i + 1) * MS, headers=headers)
        producer.flush()
        producer.close()
        consumer = log.consumer()
        consumer.assign([TopicPartition(name, 0)])
        got = consume_until(consumer, len(sent))
        consumer.close()
        assert [(r.key, r.value, r.headers) for r in got] == sent

    def test_timestamps_round_trip_in_whole_milliseconds(self, log: Any, name: str) -> None:
        log.create_topic(name, config(partitions=1))
        # Out of order on purpose: a record keeps the event time it was given.
        stamps = [1 * MS, 1_700_000_000_123 * MS, 5 * MS, 4_102_444_800_000 * MS, 2 * MS]
        producer = log.producer()
        for i, stamp in enumerate(stamps):
            producer.produce(name, str(i).encode(), timestamp=stamp)
        producer.close()
        consumer = log.consumer()
        consumer.assign([TopicPartition(name, 0)])
        assert [r.timestamp for r in consume_until(consumer, len(stamps))] == stamps
        consumer.close()

    def test_seek_backwards_and_forwards(
        self, log: Any, filled: dict[int, list[Record]], name: str
    ) -> None:
        mine = filled[1]
        consumer = log.consumer()
        consumer.assign([TopicPartition(name, 1)])
        assert consume_until(consumer, 12) == mine
        consumer.seek(TopicPartition(name, 1, mine[2].offset))
        assert consume_until(consumer, 10) == mine[2:]
        consumer.seek(TopicPartition(name, 1, mine[9].offset))
        assert consume_until(consumer, 3) == mine[9:]
        assert positions(consumer, name, [1])[1] == mine[-1].offset + 1
        assert consumer.poll(0.5) is None
        with pytest.raises(LogError, match="assigned"):
            consumer.seek(TopicPartition(name, 2, 0))
        consumer.close()

    def test_assign_at_an_offset(
        self, log: Any, filled: dict[int, list[Record]], name: str
    ) -> None:
        mine = filled[1]
        consumer = log.consumer()
        consumer.assign([TopicPartition(name, 1, mine[4].offset)])
        assert [tp.partition for tp in consumer.assignment()] == [1]
        assert positions(consumer, name, [1])[1] == mine[4].offset
        assert consumer.poll(DEADLINE) == mine[4]
        assert positions(consumer, name, [1])[1] == mine[4].offset + 1
        consumer.close()

    def test_offsets_for_times(self, log: Any, name: str) -> None:
        log.create_topic(name, config(partitions=2))
        stamps = [1000, 2000, 3000, 3000, 4000]
        producer = log.producer()
        for stamp in stamps:
            producer.produce(name, str(stamp).encode(), partition=0, timestamp=stamp * MS)
        producer.produce(name, b"other partition", partition=1, timestamp=500 * MS)
        producer.close()
        reader = log.consumer()
        reader.assign([TopicPartition(name, 0)])
        offsets = [r.offset for r in consume_until(reader, len(stamps))]
        reader.close()
        assert len(offsets) == len(stamps)

        consumer = log.consumer()  # answers without an assignment too
        asked = {"before all": 1, "exact": 2000, "between": 2500, "tie": 3000, "past": 4001}
        found = consumer.offsets_for_times(
            [TopicPartition(name, 0, t * MS) for t in asked.values()]
        )
        assert dict(zip(asked, [tp.offset for tp in found], strict=True)) == {
            "before all": offsets[0],
            "exact": offsets[1],
            "between": offsets[2],
            "tie": offsets[2],
            "past": -1,
        }
        assert consumer.offsets_for_times([TopicPartition(name, 1, 400 * MS)])[0].offset >= 0
        consumer.close()

    def test_watermarks(self, log: Any, name: str) -> None:
        log.create_topic(name, config(partitions=2))
        assert log.watermarks(name, 0) == (0, 0)
        producer = log.producer()
        for i in range(5):
            producer.produce(name, str(i).encode(), partition=0, timestamp=(i + 1) * MS)
        producer.close()
        consumer = log.consumer()
        consumer.assign([TopicPartition(name, 0)])
        records = consume_until(consumer, 5)
        consumer.close()
        assert log.watermarks(name, 0) == (records[0].offset, records[-1].offset + 1)
        low, high = log.watermarks(name, 1)
        assert low == high

    # -- consumer groups -------------------------------------------------------------------

    def test_group_resumes_exactly_at_its_commit(
        self, filled: dict[int, list[Record]], name: str
    ) -> None:
        first_log = self.make_log()
        first = first_log.consumer(group_id=name)
        first.subscribe([name])
        seen = consume_until(first, 17, batch=5)
        assert len(seen) == 17
        first.commit()
        stopped = {p: rs[-1].offset + 1 for p, rs in by_partition(seen).items()}
        first.close()
        first_log.close()

        # A new process: a fresh handle on the same log, the same group.
        again = self.make_log()
        resumed = again.consumer(group_id=name)
        stored = committed(resumed, name)
        for p in range(PARTITIONS):
            # A partition it never read may be committed at its start or not at all.
            expected = stopped.get(p, filled[p][0].offset)
            assert stored[p] in ({expected} if p in stopped else {expected, None}), (p, stored)
        resumed.subscribe([name])
        rest = consume_until(resumed, PARTITIONS * 12 - len(seen))
        assert resumed.consume(10, 1.0) == []
        resumed.close()
        again.close()

        both = by_partition(seen + rest)
        assert {p: [r.offset for r in rs] for p, rs in both.items()} == {
            p: [r.offset for r in rs] for p, rs in filled.items()
        }
        for p, records in by_partition(rest).items():
            assert records[0].offset == stopped.get(p, filled[p][0].offset)

    def test_explicit_commits_merge_and_assign_resumes_from_them(
        self, log: Any, filled: dict[int, list[Record]], name: str
    ) -> None:
        consumer = log.consumer(group_id=name)
        consumer.assign([TopicPartition(name, p) for p in range(PARTITIONS)])
        consumer.commit([TopicPartition(name, 0, filled[0][5].offset)])
        consumer.commit([TopicPartition(name, 2, filled[2][7].offset)])
        consumer.commit([TopicPartition(name, 0, filled[0][6].offset)])
        consumer.close()
        resumed = log.consumer(group_id=name)
        assert committed(resumed, name) == {
            0: filled[0][6].offset,
            1: None,
            2: filled[2][7].offset,
        }
        resumed.assign([TopicPartition(name, p) for p in range(PARTITIONS)])
        rest = by_partition(consume_until(resumed, 6 + 12 + 5))
        assert resumed.consume(10, 1.0) == []
        resumed.close()
        assert rest == {0: filled[0][6:], 1: filled[1], 2: filled[2][7:]}

    def test_groups_are_independent(
        self, log: Any, filled: dict[int, list[Record]], name: str
    ) -> None:
        a = log.consumer(group_id=f"{name}.a")
        a.subscribe([name])
        assert len(consume_until(a, PARTITIONS * 12)) == PARTITIONS * 12
        a.commit()
        a.close()
        b = log.consumer(group_id=f"{name}.b")
        assert committed(b, name) == dict.fromkeys(range(PARTITIONS))
        b.subscribe([name])
        assert by_partition(consume_until(b, PARTITIONS * 12)) == filled
        # A lone member holds every partition (the mock cluster's extra empty ones may follow).
        assert {tp.partition for tp in b.assignment()} >= set(range(PARTITIONS))
        b.close()
        again = log.consumer(group_id=f"{name}.a")
        assert committed(again, name) == {p: rs[-1].offset + 1 for p, rs in filled.items()}
        again.close()

    def test_latest_reset_applies_only_without_a_commit(
        self, log: Any, filled: dict[int, list[Record]], name: str
    ) -> None:
        every = [TopicPartition(name, p) for p in range(PARTITIONS)]
        with_commit = log.consumer(group_id=f"{name}.old")
        with_commit.commit([TopicPartition(name, 1, filled[1][3].offset)])
        with_commit.close()

        fresh = log.consumer(group_id=f"{name}.new", auto_offset_reset="latest")
        fresh.assign(every)
        old = log.consumer(group_id=f"{name}.old", auto_offset_reset="latest")
        old.assign(every)
        assert fresh.consume(10, 2.0) == []
        assert by_partition(consume_until(old, 9)) == {1: filled[1][3:]}

        producer = log.producer()
        producer.produce(name, b"late", partition=2, timestamp=99 * MS)
        producer.close()
        late = consume_until(fresh, 1)
        assert [(r.partition, r.value) for r in late] == [(2, b"late")]
        assert late[0].offset > filled[2][-1].offset
        assert [r.value for r in consume_until(old, 1)] == [b"late"]
        fresh.close()
        old.close()
        with pytest.raises(LogError, match="auto_offset_reset"):
            log.consumer(auto_offset_reset="middle")

    def test_commit_needs_a_group(
        self, log: Any, filled: dict[int, list[Record]], name: str
    ) -> None:
        consumer = log.consumer()
        consumer.assign([TopicPartition(name, 0)])
        assert len(consume_until(consumer, 12)) == 12
        with pytest.raises(LogError, match="group_id"):
            consumer.commit()
        consumer.close()

    # -- topics ----------------------------------------------------------------------------

    def test_creating_a_topic_again(self, log: Any, name: str) -> None:
        assert not log.has_topic(name)
        assert log.create_topic(name, config()) == config()
        assert log.create_topic(name, config()) == config()
        assert log.has_topic(name)
        assert name in log.topics()
        assert log.config(name) == config()
        assert self.make_log().config(name) == config()
        with pytest.raises(TopicExistsError, match=name):
            log.create_topic(name, config(partitions=PARTITIONS + 1))
        with pytest.raises(TopicExistsError, match=name):
            log.create_topic(name, config(version=2))
        assert log.config(name) == config()

    def test_unknown_topic(self, log: Any, name: str) -> None:
        assert not log.has_topic(name)
        with pytest.raises(LogError, match=name) as raised:
            log.config(name)
        assert type(raised.value) is not LogError

    # -- failures --------------------------------------------------------------------------

    def test_unreachable_log_says_where(self) -> None:
        action, address = self.unreachable()
        with pytest.raises(LogUnavailableError) as raised:
            action()
        assert address in str(raised.value)

    def test_nothing_is_dropped_silently(self, log: Any, name: str) -> None:
        log.create_topic(name, config(partitions=2))
        producer = log.producer()
        # Partition 9 and an unknown topic: whether produce or flush says so, one of them must.
        for topic, partition in [(name, 9), (f"{name}.missing", 0)]:
            with pytest.raises(LogError, match=re.escape(topic)):
                produce_one(producer, topic, partition)
        # The producer stays usable, and the failed records never show up later.
        producer.produce(name, b"kept", partition=1, timestamp=2 * MS)
        producer.flush()
        producer.close()
        consumer = log.consumer()
        consumer.assign([TopicPartition(name, p) for p in range(2)])
        got = consume_until(consumer, 1)
        assert consumer.consume(10, 1.0) == []
        consumer.close()
        assert [(r.partition, r.value) for r in got] == [(1, b"kept")]
        assert not log.has_topic(f"{name}.missing")


def produce_one(producer: Any, topic: str, partition: int) -> None:
    """Produce one record and flush it."""
    producer.produce(topic, b"lost?", partition=partition, timestamp=MS)
    producer.flush()


def produce_grid(log: Any, topic: str, per_partition: int) -> None:
    """``per_partition`` records into each partition, interleaved across partitions."""
    producer = log.producer()
    for i in range(per_partition):
        for p in range(PARTITIONS):
            value, key = f"{p}-{i}".encode(), f"k-{i}".encode()
            producer.produce(topic, value, key=key, partition=p, timestamp=(i + 1) * MS)
        if i % 5 == 4:
            producer.flush()
    producer.close()


class TestEmbeddedLog(LogContract):
    """The contract on the embedded log, in a data directory of the test's own."""

    @pytest.fixture(autouse=True)
    def _storage(self, tmp_path: Path) -> None:
        self.scratch = tmp_path

    def make_log(self) -> EmbeddedLog:
        return EmbeddedLog(self.scratch / "data")

    def unreachable(self) -> tuple[Callable[[], object], str]:
        blocker = self.scratch / "a-file"
        blocker.write_bytes(b"not a directory")
        root = blocker / "data"
        return lambda: EmbeddedLog(root).create_topic("t", config()), str(root)


class TestKafkaLog(LogContract):
    """The contract on Kafka: librdkafka's mock cluster over loopback sockets, then every real
    broker in ``TAPE_TEST_KAFKA`` (tests/kafka_support.py), one with auto-creation on and one
    with it off in CI."""

    @pytest.fixture(autouse=True)
    def _cluster(self, kafka_target: KafkaTarget) -> None:
        self.target = kafka_target

    @pytest.fixture
    def name(self, request: pytest.FixtureRequest, kafka_target: KafkaTarget) -> str:
        """As the contract's, unique on a real broker that outlives this test run."""
        return kafka_target.prefix + re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:200]

    def make_log(self) -> KafkaLog:
        return self.target.log()

    def unreachable(self) -> tuple[Callable[[], object], str]:
        address = "127.0.0.1:1"
        return lambda: KafkaLog(address, attempts=2, timeout=1.0), address

    def test_a_new_topic_is_whole_at_once(self, log: KafkaLog, name: str) -> None:
        """What failed on a real broker: no probe creates the topic with one partition before
        ``create_topic`` does (auto-creation on), and it is usable as soon as it is created
        (auto-creation off: its partitions had no leader yet)."""
        created = self.make_log()
        created.create_topic(name, config())
        for p in range(PARTITIONS):
            assert created.watermarks(name, p) == (0, 0)
        producer = created.producer()
        producer.produce(name, b"first", partition=PARTITIONS - 1, timestamp=MS)
        producer.flush()
        producer.close()
        assert created.watermarks(name, PARTITIONS - 1)[1] >= 1
        created.close()
        # Probing an unknown topic (metadata, watermarks' lookup of its config) creates nothing.
        missing = f"{name}.never"
        with pytest.raises(LogError, match=re.escape(missing)):
            log.config(missing)
        assert log._partitions(missing) == 0
