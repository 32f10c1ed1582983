"""Crash safety: a writer killed mid-append loses nothing it acknowledged, and recovery cuts
exactly the torn tail, reports it, and lets appends continue at the right offset."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.log import CorruptionError, EmbeddedLog, FsyncPolicy, PartitionLockedError
from engine.log.format import crc
from tests.factories import fixed_topic, numbered_records

WRITER = Path(__file__).with_name("writer_process.py")
RECORD = 64


def start_writer(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(root), "ticks", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_all(log: EmbeddedLog) -> bytes:
    reader = log.reader("ticks")
    chunks, offset = [], 0
    while (batch := reader.read(offset, 10_000)) is not None:
        chunks.append(batch.records.tobytes())
        offset = batch.next_offset
    return b"".join(chunks)


def partition_dir(log: EmbeddedLog) -> Path:
    return log.root / "topics" / "ticks" / "0"


@pytest.mark.integration
@pytest.mark.parametrize("trial", range(5))
def test_sigkill_mid_append_loses_no_acknowledged_batch(tmp_path: Path, trial: int) -> None:
    log = EmbeddedLog(tmp_path, FsyncPolicy())
    fixed_topic(log, segment_bytes=4096)
    chance = random.Random(trial)
    proc = start_writer(tmp_path, "--seed", str(trial), "--max-batch", "25")
    assert proc.stdout is not None
    assert proc.stdout.readline().split() == ["ready", "0"]
    lines = [proc.stdout.readline() for _ in range(chance.randint(5, 80))]
    assert all(lines), proc.stderr.read() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    # Lines printed between the last read and the kill are acknowledgements too.
    lines += [line for line in proc.stdout.read().splitlines(keepends=True) if line.endswith("\n")]
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    acked = [tuple(int(x) for x in line.split()) for line in lines]
    assert [base for base, _, _ in acked] == list(
        np.cumsum([0] + [count for _, count, _ in acked[:-1]])
    )

    with log.writer("ticks") as writer:
        present = writer.next_offset
        torn = writer.torn_tail
        stored = read_all(log)
        # Every record that survived is intact and in place: there are no holes.
        assert stored == numbered_records(0, present).tobytes()
        for base, count, checksum in acked:
            assert base + count <= present
            assert crc(stored[base * RECORD : (base + count) * RECORD]) == checksum
        last_end = acked[-1][0] + acked[-1][1]
        assert present >= last_end
        if torn is not None:
            assert torn.next_offset == present
            assert torn.dropped_bytes > 0
            assert torn.dropped_batches >= 1
            assert f"continues at offset {present}" in str(torn)
        assert_nothing_after(partition_dir(log), present)
        assert writer.append_array(numbered_records(present, 7)) == present

    assert read_all(log) == numbered_records(0, present + 7).tobytes()
    with log.writer("ticks") as writer:
        assert writer.torn_tail is None
        assert writer.next_offset == present + 7


def assert_nothing_after(directory: Path, present: int) -> None:
    """Past the ``present`` records there are only zeros (preallocated space) on disk."""
    bases = sorted(int(p.stem) for p in directory.glob("*.data"))
    ends = [*bases[1:], present]
    for base, end in zip(bases, ends, strict=True):
        data = (directory / f"{base:020d}.data").read_bytes()
        assert not any(data[(end - base) * RECORD :]), f"bytes past offset {end} in {base}"


@pytest.mark.integration
def test_second_writer_in_another_process_is_refused(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    fixed_topic(log)
    proc = start_writer(tmp_path, "--batches", "2", "--hold")
    assert proc.stdout is not None
    assert proc.stdin is not None
    try:
        assert proc.stdout.readline().startswith("ready")
        written = sum(int(proc.stdout.readline().split()[1]) for _ in range(2))
        with pytest.raises(PartitionLockedError) as info:
            log.writer("ticks")
        message = str(info.value)
        assert f"pid {proc.pid}" in message
        assert str(partition_dir(log)) in message
        assert "exactly one" in message
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert proc.returncode == 0
    with log.writer("ticks") as writer:
        assert writer.next_offset == written
        assert writer.torn_tail is None


# -- deterministic torn tails ----------------------------------------------------------------

BATCH = 10
SEGMENT = f"{0:020d}"


@pytest.fixture
def three_batches(tmp_path: Path) -> EmbeddedLog:
    """One segment holding offsets 0..29 in three batches of ten, writer closed."""
    log = EmbeddedLog(tmp_path)
    fixed_topic(log, segment_bytes=4096)
    with log.writer("ticks") as writer:
        for start in range(0, 3 * BATCH, BATCH):
            writer.append_array(numbered_records(start, BATCH))
    return log


def overwrite(path: Path, position: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        f.write(data)


def test_garbage_after_the_last_batch_is_cut_and_reported(three_batches: EmbeddedLog) -> None:
    log = three_batches
    stem = partition_dir(log) / SEGMENT
    overwrite(stem.with_suffix(".data"), 3 * BATCH * RECORD, b"\xee" * 100)
    overwrite(stem.with_suffix(".index"), 3 * 64, b"\xee" * 30)
    with log.writer("ticks") as writer:
        torn = writer.torn_tail
        assert torn is not None
        assert (torn.next_offset, torn.dropped_batches, torn.dropped_bytes) == (30, 1, 130)
        assert torn.segment == stem.with_suffix(".data")
        assert f"{SEGMENT}.data" in str(torn)
        assert "continues at offset 30" in str(torn)
        assert stem.with_suffix(".data").stat().st_size == 3 * BATCH * RECORD
        assert stem.with_suffix(".index").stat().st_size == 3 * 64
        assert writer.append_array(numbered_records(30, 5)) == 30
    assert read_all(log) == numbered_records(0, 35).tobytes()


def test_a_payload_without_its_index_entry_is_a_torn_batch(three_batches: EmbeddedLog) -> None:
    log = three_batches
    overwrite((partition_dir(log) / SEGMENT).with_suffix(".data"), 30 * RECORD, b"\x01" * 64)
    with log.writer("ticks") as writer:
        torn = writer.torn_tail
        assert torn is not None
        assert (torn.next_offset, torn.dropped_batches, torn.dropped_bytes) == (30, 1, 64)
        assert writer.next_offset == 30


@pytest.mark.parametrize("how", ["short file", "unwritten end"])
def test_a_half_written_last_batch_is_cut(three_batches: EmbeddedLog, how: str) -> None:
    log = three_batches
    data = (partition_dir(log) / SEGMENT).with_suffix(".data")
    end = 3 * BATCH * RECORD
    if how == "short file":
        with open(data, "r+b") as f:
            f.truncate(end - 3)
    else:  # the last bytes never left the page cache: preallocated zeros remain
        overwrite(data, end - 3, bytes(3))
    with pytest.raises(CorruptionError, match="last batch") as info:
        read_all(log)
    assert info.value.offset == 20

    with log.writer("ticks") as writer:
        torn = writer.torn_tail
        assert torn is not None
        assert torn.next_offset == writer.next_offset == 20
        assert torn.dropped_batches == 1
        # The torn payload (up to 3 bytes short) and its index entry are what was dropped.
        assert BATCH * RECORD - 3 - RECORD <= torn.dropped_bytes <= BATCH * RECORD + 64
        assert writer.append_array(numbered_records(20, 4)) == 20
    assert read_all(log) == numbered_records(0, 24).tobytes()
    assert_nothing_after(partition_dir(log), 24)
