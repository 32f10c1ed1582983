"""Whatever is appended to a partition, in any batching, across reopens and segment rolls,
reads back identically: from any start offset, through a live reader and through a Consumer."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from engine.log import (
    Consumer,
    EmbeddedLog,
    FixedBatch,
    PartitionReader,
    Producer,
    RecordBatch,
    TopicCodec,
    TopicConfig,
    TopicPartition,
    records_of,
)
from tests.factories import TIMESTAMP, random_records, timestamp_at


@dataclass(frozen=True)
class Stored:
    """What the model expects at one offset."""

    timestamp: int
    key: bytes | None
    headers: list[tuple[str, bytes]] | None
    value: bytes


HEADERS = st.none() | st.lists(
    st.tuples(st.text(max_size=8), st.binary(max_size=8)), min_size=1, max_size=3
)
VARIABLE_RECORD = st.tuples(
    TIMESTAMP, st.none() | st.binary(max_size=12), HEADERS, st.binary(max_size=300)
)
FIXED_OP = st.tuples(st.just("fixed"), st.integers(1, 150), st.integers(0, 2**32 - 1))
VARIABLE_OP = st.tuples(st.just("variable"), st.lists(VARIABLE_RECORD, min_size=1, max_size=25))
REOPEN_OP = st.tuples(st.just("reopen"))
OPS_FOR = {
    TopicCodec.FIXED: st.one_of(FIXED_OP, REOPEN_OP),
    TopicCodec.MSGPACK: st.one_of(VARIABLE_OP, REOPEN_OP),
    TopicCodec.MIXED: st.one_of(FIXED_OP, VARIABLE_OP, REOPEN_OP),
}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[TopicConfig, list[tuple[Any, ...]]]:
    codec = draw(st.sampled_from(list(TopicCodec)))
    record_size = 0 if codec is TopicCodec.MSGPACK else draw(st.sampled_from([8, 24, 64]))
    config = TopicConfig(
        "test.roundtrip",
        1,
        codec,
        record_size=record_size,
        timestamp_offset=draw(st.integers(0, max(0, record_size - 8))),
        segment_bytes=draw(st.integers(4096, 12_000)),
    )
    ops = draw(st.lists(OPS_FOR[codec], min_size=1, max_size=25))
    return config, ops


def apply(log: EmbeddedLog, config: TopicConfig, ops: list[tuple[Any, ...]]) -> list[Stored]:
    """Run the operations, checking offsets and a live reader as they go; returns the model."""
    model: list[Stored] = []
    writer = log.writer("t")
    live = log.reader("t")
    live_seen = 0
    try:
        for op in ops:
            if op[0] == "reopen":
                writer.close()
                writer = log.writer("t")
                assert writer.torn_tail is None
            elif op[0] == "fixed":
                records = random_records(np.random.default_rng(op[2]), op[1], config.record_size)
                assert writer.append_array(records) == len(model)
                model += [
                    Stored(timestamp_at(v, config.timestamp_offset), None, None, v)
                    for v in (r.tobytes() for r in records)
                ]
            else:
                assert writer.append_records(op[1]) == len(model)
                model += [Stored(*r) for r in op[1]]
            assert writer.next_offset == len(model)
            live_seen = check_reads(live, model, live_seen, max_records=97)
    finally:
        writer.close()
    return model


def check_reads(reader: PartitionReader, model: list[Stored], start: int, max_records: int) -> int:
    """Read from ``start`` to the end, comparing every record to the model; returns the end."""
    offset = start
    while (batch := reader.read(offset, max_records)) is not None:
        assert batch.base_offset == offset
        assert 1 <= len(batch) <= max_records
        assert as_stored(batch) == model[offset : batch.next_offset]
        offset = batch.next_offset
    assert offset == len(model)
    assert reader.end_offset == len(model)
    return offset


def as_stored(batch: FixedBatch | RecordBatch) -> list[Stored]:
    if isinstance(batch, FixedBatch):
        stamps = batch.timestamps.tolist()
        return [Stored(t, None, None, v) for t, v in zip(stamps, batch.values(), strict=True)]
    return [Stored(t, k, h, v) for t, k, h, v in batch.records]


@given(
    scenario=scenarios(),
    starts=st.lists(st.floats(0, 1), min_size=1, max_size=4),
    max_records=st.integers(1, 400),
)
def test_log_round_trip(
    scenario: tuple[TopicConfig, list[tuple[Any, ...]]], starts: list[float], max_records: int
) -> None:
    config, ops = scenario
    with tempfile.TemporaryDirectory() as tmp:
        log = EmbeddedLog(Path(tmp))
        log.create_topic("t", config)
        model = apply(log, config, ops)

        reader = EmbeddedLog(Path(tmp)).reader("t")
        assert (reader.start_offset, reader.end_offset) == (0, len(model))
        for fraction in starts:
            check_reads(reader, model, int(fraction * len(model)), max_records)
        assert reader.read(len(model)) is None

        consumer = Consumer(log)
        consumer.subscribe(["t"])
        consumed = []
        while batch := consumer.poll_batch(max_records):
            consumed += [
                (r.offset, Stored(r.timestamp, r.key, r.headers, r.value))
                for r in records_of(batch)
            ]
        assert consumed == list(enumerate(model))
        assert consumer.position([TopicPartition("t")]) == [TopicPartition("t", 0, len(model))]
        check_segments(Path(tmp) / "topics" / "t" / "0", config)


def check_segments(directory: Path, config: TopicConfig) -> None:
    """A segment is sealed only once its data reached ``segment_bytes``; names are offsets."""
    data_files = sorted(directory.glob("*.data"))
    assert data_files
    assert sorted(p.stem for p in directory.glob("*.index")) == [p.stem for p in data_files]
    for sealed in data_files[:-1]:
        assert sealed.stat().st_size >= config.segment_bytes
    assert data_files[0].stem == "0" * 20


@given(records=st.lists(VARIABLE_RECORD, min_size=1, max_size=30), split=st.integers(0, 30))
def test_producer_batches_read_back_as_produced(records: list[Any], split: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = EmbeddedLog(Path(tmp))
        log.create_topic("t", TopicConfig("test", 1, TopicCodec.MSGPACK, partitions=2))
        producer = Producer(log)
        for i, (ts, key, headers, value) in enumerate(records):
            producer.produce("t", value, key=key, partition=i % 2, timestamp=ts, headers=headers)
            if i == split:
                producer.flush()
        producer.close()
        for partition in (0, 1):
            mine = records[partition::2]
            reader = log.reader("t", partition)
            got: list[Any] = []
            offset = 0
            while (batch := reader.read(offset)) is not None:
                assert isinstance(batch, RecordBatch)
                got += batch.records
                offset = batch.next_offset
            assert got == [tuple(r) for r in mine]
