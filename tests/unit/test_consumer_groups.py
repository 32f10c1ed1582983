"""Consumer groups: committed offsets survive the consumer, resume exactly, and stay per group."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.log import (
    Consumer,
    EmbeddedLog,
    LogError,
    Producer,
    Record,
    TopicCodec,
    TopicConfig,
    TopicPartition,
)

PARTITIONS = 3
PER_PARTITION = 12


@pytest.fixture
def log(tmp_path: Path) -> EmbeddedLog:
    """A 3-partition topic ``orders``; record ``p-i`` is the i-th of partition p."""
    log = EmbeddedLog(tmp_path)
    log.create_topic("orders", TopicConfig("test", 1, TopicCodec.MSGPACK, partitions=PARTITIONS))
    producer = Producer(log)
    for i in range(PER_PARTITION):
        for p in range(PARTITIONS):
            producer.produce("orders", f"{p}-{i}".encode(), key=b"k", partition=p, timestamp=i)
        if i % 5 == 4:
            producer.flush()
    producer.close()
    return log


def drain(consumer: Consumer, limit: int = 10_000) -> list[Record]:
    out: list[Record] = []
    while len(out) < limit and (records := consumer.consume(min(5, limit - len(out)))):
        out += records
    return out


def test_every_partition_is_read_in_order(log: EmbeddedLog) -> None:
    consumer = Consumer(log, group_id="g")
    consumer.subscribe(["orders"])
    assert sorted(tp.partition for tp in consumer.assignment()) == list(range(PARTITIONS))
    records = drain(consumer)
    assert len(records) == PARTITIONS * PER_PARTITION
    for p in range(PARTITIONS):
        mine = [r for r in records if r.partition == p]
        assert [r.offset for r in mine] == list(range(PER_PARTITION))
        assert [r.value for r in mine] == [f"{p}-{i}".encode() for i in range(PER_PARTITION)]
        assert [r.timestamp for r in mine] == list(range(PER_PARTITION))
        assert all(r.key == b"k" and r.topic == "orders" for r in mine)


def test_commit_and_resume(log: EmbeddedLog) -> None:
    first = Consumer(log, group_id="g")
    first.subscribe(["orders"])
    seen = drain(first, limit=17)
    first.commit()
    first.close()
    positions = {p: sum(1 for r in seen if r.partition == p) for p in range(PARTITIONS)}

    # A new process: a fresh log object on the same directory.
    again = EmbeddedLog(log.root)
    resumed = Consumer(again, group_id="g")
    resumed.subscribe(["orders"])
    assert resumed.committed([TopicPartition("orders", p) for p in range(PARTITIONS)]) == [
        TopicPartition("orders", p, positions[p]) for p in range(PARTITIONS)
    ]
    rest = drain(resumed)
    both = sorted((r.partition, r.offset) for r in seen + rest)
    assert both == [(p, o) for p in range(PARTITIONS) for o in range(PER_PARTITION)]
    for p in range(PARTITIONS):
        assert min(r.offset for r in rest if r.partition == p) == positions[p]


def test_groups_are_independent(log: EmbeddedLog) -> None:
    a = Consumer(log, group_id="a")
    a.subscribe(["orders"])
    drain(a)
    a.commit()
    b = Consumer(log, group_id="b")
    b.subscribe(["orders"])
    assert len(drain(b)) == PARTITIONS * PER_PARTITION
    assert log.committed("b") == {}
    assert log.committed("a") == {("orders", p): PER_PARTITION for p in range(PARTITIONS)}


def test_explicit_commits_merge(log: EmbeddedLog) -> None:
    consumer = Consumer(log, group_id="g")
    consumer.subscribe(["orders"])
    consumer.commit([TopicPartition("orders", 0, 5)])
    consumer.commit([TopicPartition("orders", 2, 7)])
    consumer.commit([TopicPartition("orders", 0, 6)])
    assert log.committed("g") == {("orders", 0): 6, ("orders", 2): 7}
    resumed = Consumer(log, group_id="g")
    resumed.subscribe(["orders"])
    first = {r.partition: r.offset for r in reversed(drain(resumed))}
    assert first == {0: 6, 1: 0, 2: 7}


def test_reset_policy_applies_only_without_a_commit(log: EmbeddedLog) -> None:
    latest = Consumer(log, group_id="new", auto_offset_reset="latest")
    latest.subscribe(["orders"])
    assert drain(latest) == []
    log.commit("old", {("orders", 1): 3})
    also_latest = Consumer(log, group_id="old", auto_offset_reset="latest")
    also_latest.subscribe(["orders"])
    assert [(r.partition, r.offset) for r in drain(also_latest)] == [
        (1, o) for o in range(3, PER_PARTITION)
    ]
    with pytest.raises(LogError, match="auto_offset_reset"):
        Consumer(log, auto_offset_reset="middle")


def test_assign_seek_and_position(log: EmbeddedLog) -> None:
    consumer = Consumer(log, group_id="g")
    consumer.assign([TopicPartition("orders", 1, 4)])
    record = consumer.poll()
    assert record is not None
    assert (record.partition, record.offset, record.value) == (1, 4, b"1-4")
    assert consumer.position([TopicPartition("orders", 1)]) == [TopicPartition("orders", 1, 5)]
    consumer.seek(TopicPartition("orders", 1, 10))
    assert [r.offset for r in drain(consumer)] == [10, 11]
    assert consumer.poll(timeout=0.01) is None
    with pytest.raises(LogError, match="assigned"):
        consumer.seek(TopicPartition("orders", 2, 0))


def test_commit_needs_a_group_and_a_valid_name(log: EmbeddedLog) -> None:
    consumer = Consumer(log)
    consumer.subscribe(["orders"])
    with pytest.raises(LogError, match="group_id"):
        consumer.commit()
    for bad in ("", "a/b", ".hidden"):
        with pytest.raises(LogError, match="consumer group"):
            log.commit(bad, {("orders", 0): 1})


def test_consumer_sees_records_appended_after_subscribing(log: EmbeddedLog) -> None:
    consumer = Consumer(log, group_id="g", auto_offset_reset="latest")
    consumer.subscribe(["orders"])
    assert consumer.poll() is None
    producer = Producer(log)
    producer.produce("orders", b"late", partition=2, timestamp=99)
    producer.close()
    record = consumer.poll(timeout=1.0)
    assert record is not None
    assert (record.partition, record.offset, record.value) == (2, PER_PARTITION, b"late")
