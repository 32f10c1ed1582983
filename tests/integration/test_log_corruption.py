"""Corruption: a flipped byte anywhere is found, reported with its segment file and batch
offset, and never read past; only the last batch of the last segment counts as a torn tail."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.app.cli import app
from engine.log import CorruptionError, EmbeddedLog
from tests.factories import fixed_topic, numbered_records

BATCH = 10
RECORD = 64
BATCHES = 30


@pytest.fixture
def log(tmp_path: Path) -> EmbeddedLog:
    """300 records in batches of ten over several 4 KiB segments; writer closed."""
    log = EmbeddedLog(tmp_path / "data")
    fixed_topic(log, segment_bytes=4096)
    with log.writer("ticks") as writer:
        for start in range(0, BATCHES * BATCH, BATCH):
            writer.append_array(numbered_records(start, BATCH))
    return log


def segments(log: EmbeddedLog) -> list[int]:
    bases = sorted(int(p.stem) for p in (log.root / "topics/ticks/0").glob("*.data"))
    assert len(bases) >= 3
    assert all(b % BATCH == 0 for b in bases)
    return bases


def data_file(log: EmbeddedLog, base: int) -> Path:
    return log.root / "topics" / "ticks" / "0" / f"{base:020d}.data"


def flip(path: Path, position: int) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)[0]
        f.seek(position)
        f.write(bytes([byte ^ 0x40]))


def test_flipped_byte_in_a_sealed_segment_is_reported_with_its_offset(log: EmbeddedLog) -> None:
    base = segments(log)[1]
    bad_batch = base + 3 * BATCH
    flip(data_file(log, base), 3 * BATCH * RECORD + 17)
    reader = log.reader("ticks")
    for offset in (bad_batch, bad_batch + 9):
        with pytest.raises(CorruptionError) as info:
            reader.read(offset)
        error = info.value
        assert (error.segment, error.offset, error.position) == (
            data_file(log, base),
            bad_batch,
            3 * BATCH * RECORD,
        )
        assert str(data_file(log, base)) in str(error)
        assert f"offset {bad_batch}" in str(error)
        assert "CRC32C" in str(error)
        assert "last batch" not in str(error)
    # Everything else still reads, up to the bad batch and after it.
    before = reader.read(bad_batch - 5, 5)
    after = reader.read(bad_batch + BATCH, 10_000)
    assert before is not None
    assert after is not None
    assert before.records.tobytes() == numbered_records(bad_batch - 5, 5).tobytes()
    assert after.records.tobytes() == numbered_records(bad_batch + BATCH, len(after)).tobytes()
    with pytest.raises(CorruptionError):
        reader.read(bad_batch - 5, 100)  # a read spanning the bad batch refuses it


def test_tape_verify_finds_the_flipped_byte(log: EmbeddedLog) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["--data", str(log.root), "verify", "ticks"], env={"COLUMNS": "300"})
    assert ok.exit_code == 0, ok.output
    assert f"{BATCHES * BATCH} records intact" in ok.output

    base = segments(log)[1]
    flip(data_file(log, base), 5 * BATCH * RECORD + 1)
    bad = runner.invoke(app, ["--data", str(log.root), "verify", "ticks"], env={"COLUMNS": "300"})
    assert bad.exit_code == 1
    squashed = "".join(bad.output.split())
    assert "".join(str(data_file(log, base)).split()) in squashed
    assert f"offset{base + 5 * BATCH}" in squashed
    assert "intact" not in bad.output


def test_flipped_index_entry_in_a_sealed_segment(log: EmbeddedLog) -> None:
    base = segments(log)[1]
    index = data_file(log, base).with_suffix(".index")
    flip(index, 2 * 64 + 20)  # the third batch's entry: offsets base+20 .. base+29
    with pytest.raises(CorruptionError, match=re.escape(index.name)):
        log.writer("ticks")
    reader = log.reader("ticks")
    # The reader neither skips the batches it cannot find nor serves other bytes for them.
    for offset in (base + 2 * BATCH, base + 2 * BATCH + 5, base + 6 * BATCH):
        with pytest.raises(CorruptionError, match=re.escape(index.name)) as info:
            reader.read(offset, 3)
        assert info.value.offset == base + 2 * BATCH
    ok = reader.read(base + BATCH + 5, 100)
    assert ok is not None
    assert ok.records.tobytes() == numbered_records(base + BATCH + 5, 5).tobytes()


def test_bad_middle_batch_of_the_tail_segment_stops_the_writer(log: EmbeddedLog) -> None:
    tail = segments(log)[-1]
    records_in_tail = BATCHES * BATCH - tail
    assert records_in_tail >= 2 * BATCH, "the tail segment needs two batches at least"
    flip(data_file(log, tail), BATCH * RECORD - 1)  # last byte of its first batch
    with pytest.raises(CorruptionError, match="intact batches follow") as info:
        log.writer("ticks")
    assert info.value.offset == tail
    assert info.value.segment == data_file(log, tail)
    # Refusing changed nothing: the data after the bad batch is still there.
    reader = log.reader("ticks")
    assert reader.end_offset == BATCHES * BATCH
    last = reader.read(BATCHES * BATCH - BATCH)
    assert last is not None
    assert last.records.tobytes() == numbered_records(BATCHES * BATCH - BATCH, BATCH).tobytes()


def test_bad_last_batch_of_the_tail_segment_is_a_torn_tail(log: EmbeddedLog) -> None:
    tail = segments(log)[-1]
    end = BATCHES * BATCH
    flip(data_file(log, tail), (end - tail) * RECORD - 2)
    with log.writer("ticks") as writer:
        torn = writer.torn_tail
        assert torn is not None
        assert torn.next_offset == writer.next_offset == end - BATCH
        assert torn.dropped_batches == 1
        assert torn.segment == data_file(log, tail)
    reader = log.reader("ticks")
    assert reader.end_offset == end - BATCH
    batch = reader.read(tail, 10_000)
    assert batch is not None
    assert batch.records.tobytes() == numbered_records(tail, end - BATCH - tail).tobytes()
