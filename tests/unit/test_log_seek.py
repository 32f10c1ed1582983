"""Seeking: by offset anywhere in a fixed-width topic, and by timestamp in any topic."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.log import (
    Consumer,
    EmbeddedLog,
    FixedBatch,
    OffsetOutOfRangeError,
    TopicCodec,
    TopicConfig,
    TopicPartition,
)
from tests.factories import fixed_topic, msgpack_topic, numbered_records


def fill_fixed(log: EmbeddedLog, sizes: list[int]) -> int:
    """Append numbered records in batches of ``sizes``; returns how many were written."""
    total = 0
    with log.writer("ticks") as writer:
        for size in sizes:
            assert writer.append_array(numbered_records(total, size)) == total
            total += size
    return total


@pytest.fixture
def filled(tmp_path: Path) -> tuple[EmbeddedLog, int]:
    log = EmbeddedLog(tmp_path)
    fixed_topic(log)
    sizes = [int(s) for s in np.random.default_rng(7).integers(1, 40, size=40)]
    return log, fill_fixed(log, sizes)


def test_read_from_every_offset(filled: tuple[EmbeddedLog, int]) -> None:
    log, total = filled
    segments = sorted((log.root / "topics" / "ticks" / "0").glob("*.data"))
    assert len(segments) >= 3, "the test needs several segments"
    reader = log.reader("ticks")
    for max_records in (1, 5, 1000):
        for offset in range(total):
            batch = reader.read(offset, max_records)
            assert isinstance(batch, FixedBatch)
            assert batch.base_offset == offset
            assert 1 <= len(batch) <= min(max_records, total - offset)
            expected = numbered_records(offset, len(batch))
            assert batch.records.tobytes() == expected.tobytes()
            assert batch.timestamps.tolist() == [
                1_000 * o for o in range(offset, batch.next_offset)
            ]


def test_reading_from_any_offset_crosses_segments_to_the_end(
    filled: tuple[EmbeddedLog, int],
) -> None:
    log, total = filled
    reader = log.reader("ticks")
    for start in np.random.default_rng(3).integers(0, total, size=20):
        offset, chunks = int(start), []
        while (batch := reader.read(offset, 77)) is not None:
            chunks.append(batch.records.tobytes())
            offset = batch.next_offset
        assert offset == total
        assert b"".join(chunks) == numbered_records(int(start), total - int(start)).tobytes()


def test_offsets_outside_the_log(filled: tuple[EmbeddedLog, int]) -> None:
    log, total = filled
    reader = log.reader("ticks")
    assert reader.read(total) is None
    assert reader.read(total + 10) is None
    with pytest.raises(OffsetOutOfRangeError, match="before the log start"):
        reader.read(-1)


def test_log_start_moves_when_old_segments_are_removed(filled: tuple[EmbeddedLog, int]) -> None:
    log, total = filled
    directory = log.root / "topics" / "ticks" / "0"
    first = sorted(directory.glob("*.index"))[0]
    second_base = int(sorted(directory.glob("*.index"))[1].stem)
    first.unlink()
    first.with_suffix(".data").unlink()
    reader = log.reader("ticks")
    assert (reader.start_offset, reader.end_offset) == (second_base, total)
    with pytest.raises(OffsetOutOfRangeError, match=f"log start {second_base}"):
        reader.read(second_base - 1)
    batch = reader.read(second_base, 3)
    assert batch is not None
    assert batch.records.tobytes() == numbered_records(second_base, 3).tobytes()


# -- by timestamp ----------------------------------------------------------------------------


def brute_force(stamps: list[int], t: int) -> int | None:
    return next((i for i, s in enumerate(stamps) if s >= t), None)


def queries(stamps: list[int]) -> list[int]:
    around = {s + d for s in stamps for d in (-1, 0, 1)}
    return sorted(around | {min(stamps) - 100, max(stamps) + 100})


STAMP = st.integers(-(10**6), 10**6)
BATCHES = st.lists(st.lists(STAMP, min_size=1, max_size=60), min_size=1, max_size=12)


@given(batches=BATCHES)
def test_offset_for_time_fixed(batches: list[list[int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = EmbeddedLog(Path(tmp))
        log.create_topic(
            "ts",
            TopicConfig(
                "test",
                1,
                TopicCodec.FIXED,
                record_size=256,
                timestamp_offset=40,
                segment_bytes=4096,
            ),
        )
        with log.writer("ts") as writer:
            for batch in batches:
                records = np.zeros(
                    len(batch), dtype=[("pad", "V40"), ("ts", "<i8"), ("rest", "V208")]
                )
                records["ts"] = batch
                writer.append_array(records)
        check_offset_for_time(log, [s for b in batches for s in b])


@given(batches=BATCHES)
def test_offset_for_time_variable(batches: list[list[int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = EmbeddedLog(Path(tmp))
        msgpack_topic(log, "ts")
        with log.writer("ts") as writer:
            for batch in batches:
                writer.append_records([(s, None, None, b"x" * 200) for s in batch])
        check_offset_for_time(log, [s for b in batches for s in b])


def check_offset_for_time(log: EmbeddedLog, stamps: list[int]) -> None:
    reader = log.reader("ts")
    consumer = Consumer(log)
    consumer.assign([TopicPartition("ts", 0)])
    asked = queries(stamps)
    answers = consumer.offsets_for_times([TopicPartition("ts", 0, t) for t in asked])
    for t, answer in zip(asked, answers, strict=True):
        expected = brute_force(stamps, t)
        assert reader.offset_for_time(t) == expected, t
        assert answer.offset == (-1 if expected is None else expected)


def test_offset_for_time_of_an_empty_partition(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    fixed_topic(log)
    assert log.reader("ticks").offset_for_time(0) is None
