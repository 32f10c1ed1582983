"""``PartitionWriter.truncate``: cutting a partition back to a batch boundary (a run resuming
from a snapshot). What remains is exactly the prefix before the boundary, in any segment;
later segments are gone; appends continue from the boundary; a reopened partition recovers
cleanly; and offsets that are not boundaries are refused without touching the log."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.log import EmbeddedLog, FixedBatch, LogError, PartitionWriter
from engine.log.format import RecordTuple
from engine.log.segment import list_segments
from tests.factories import fixed_topic, msgpack_topic, numbered_records, timestamp_at

CODECS = ["fixed", "msgpack"]
TOPIC = "t"


def make_log(root: Path, codec: str) -> EmbeddedLog:
    log = EmbeddedLog(root)
    if codec == "fixed":
        fixed_topic(log, TOPIC, segment_bytes=4096)
    else:
        msgpack_topic(log, TOPIC, segment_bytes=4096)
    return log


def partition_dir(log: EmbeddedLog) -> Path:
    return log.root / "topics" / TOPIC / "0"


def record_at(codec: str, offset: int, generation: int = 0) -> RecordTuple:
    """The record a test writes at ``offset`` (``generation`` tells rewrites apart)."""
    if codec == "fixed":
        value = numbered_records(offset + 1_000_000 * generation, 1)[0].tobytes()
        return (timestamp_at(value), None, None, value)
    stamp = offset * 1_000 + generation
    key = None if offset % 3 == 0 else f"k{offset}".encode()
    headers = None if offset % 2 else [("gen", bytes([generation]))]
    value = bytes([(offset + generation) % 251]) * ((offset * 37 + generation) % 170)
    return (stamp, key, headers, value)


def append(
    writer: PartitionWriter, codec: str, size: int, generation: int = 0
) -> list[RecordTuple]:
    """Append one batch of ``size`` records at the writer's end; returns what was written."""
    start = writer.next_offset
    if codec == "fixed":
        records = numbered_records(start + 1_000_000 * generation, size)
        assert writer.append_array(records) == start
        return [(timestamp_at(v), None, None, v) for v in (r.tobytes() for r in records)]
    batch = [record_at(codec, start + i, generation) for i in range(size)]
    assert writer.append_records(batch) == start
    return batch


def fill(
    writer: PartitionWriter, codec: str, sizes: list[int], generation: int = 0
) -> tuple[list[RecordTuple], list[int]]:
    """Append batches of ``sizes``; returns the records and the batch boundaries."""
    records: list[RecordTuple] = []
    boundaries = [writer.next_offset]
    for size in sizes:
        records += append(writer, codec, size, generation)
        boundaries.append(writer.next_offset)
    return records, boundaries


def read_all(log: EmbeddedLog, max_records: int = 1000) -> list[RecordTuple]:
    """Every record of the partition through a fresh reader, checking offsets are contiguous."""
    reader = log.reader(TOPIC)
    assert reader.start_offset == 0
    out: list[Any] = []
    offset = 0
    while (batch := reader.read(offset, max_records)) is not None:
        assert batch.base_offset == offset
        if isinstance(batch, FixedBatch):
            out += [(timestamp_at(v), None, None, v) for v in batch.values()]
        else:
            out += [tuple(r) for r in batch.records]
        offset = batch.next_offset
    assert reader.end_offset == offset == len(out)
    return out


def segment_files(log: EmbeddedLog) -> list[str]:
    return sorted(p.name for p in partition_dir(log).iterdir() if p.suffix in (".data", ".index"))


def check_truncation(
    log: EmbeddedLog,
    writer: PartitionWriter,
    codec: str,
    records: list[RecordTuple],
    offset: int,
) -> list[RecordTuple]:
    """Truncate to ``offset`` and check the prefix; append two batches, check again, and
    again after a reopen. Returns the final contents."""
    writer.truncate(offset)
    assert writer.next_offset == offset
    assert read_all(log) == records[:offset]
    bases = list_segments(partition_dir(log))
    assert all(base <= offset for base in bases)

    expected = records[:offset] + append(writer, codec, 7, generation=1)
    expected += append(writer, codec, 3, generation=1)
    assert writer.next_offset == len(expected)
    assert read_all(log) == expected
    assert read_all(log, max_records=4) == expected

    writer.close()
    reopened = log.writer(TOPIC)
    try:
        assert reopened.torn_tail is None
        assert reopened.next_offset == len(expected)
        expected += append(reopened, codec, 5, generation=2)
    finally:
        reopened.close()
    assert read_all(log) == expected
    return expected


# -- truncating to each kind of boundary ---------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_truncate_to_a_boundary_in_the_active_segment(tmp_path: Path, codec: str) -> None:
    log = make_log(tmp_path, codec)
    writer = log.writer(TOPIC)
    records, boundaries = fill(writer, codec, [3, 5, 2, 4])
    assert list_segments(partition_dir(log)) == [0]
    check_truncation(log, writer, codec, records, boundaries[2])


@pytest.mark.parametrize("codec", CODECS)
def test_truncate_to_zero_empties_the_partition(tmp_path: Path, codec: str) -> None:
    log = make_log(tmp_path, codec)
    writer = log.writer(TOPIC)
    records, _ = fill(writer, codec, [4] * 40)
    assert len(list_segments(partition_dir(log))) > 2
    writer.truncate(0)
    assert writer.next_offset == 0
    assert log.reader(TOPIC).read(0) is None
    assert log.watermarks(TOPIC) == (0, 0)
    assert segment_files(log) == [f"{0:020d}.data", f"{0:020d}.index"]
    assert all((partition_dir(log) / name).stat().st_size == 0 for name in segment_files(log))
    check_truncation(log, writer, codec, records, 0)


def several_segments(
    tmp_path: Path, codec: str
) -> tuple[EmbeddedLog, PartitionWriter, list[RecordTuple], list[int], list[int]]:
    log = make_log(tmp_path, codec)
    writer = log.writer(TOPIC)
    records, boundaries = fill(writer, codec, [5, 1, 9, 3] * 20)
    bases = list_segments(partition_dir(log))
    assert len(bases) >= 4, "segments should roll several times"
    assert set(bases) <= set(boundaries)
    return log, writer, records, boundaries, bases


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("which", [1, 2, -1])
def test_truncate_to_a_segment_base(tmp_path: Path, codec: str, which: int) -> None:
    log, writer, records, _, bases = several_segments(tmp_path, codec)
    cut = bases[which]
    writer.truncate(cut)
    kept = [b for b in bases if b < cut]
    assert list_segments(partition_dir(log)) == kept  # the segment at ``cut`` is gone too
    assert read_all(log) == records[:cut]
    expected = check_truncation(log, writer, codec, records, cut)
    # Appending past a full segment rolls a new one starting at ``cut`` again.
    assert list_segments(partition_dir(log))[: len(kept) + 1] == [*kept, cut]
    assert len(expected) == cut + 15


@pytest.mark.parametrize("codec", CODECS)
def test_truncate_inside_an_earlier_segment_deletes_later_ones(tmp_path: Path, codec: str) -> None:
    log, writer, records, boundaries, bases = several_segments(tmp_path, codec)
    cut = next(b for b in boundaries if bases[1] < b < bases[2])
    writer.truncate(cut)
    assert list_segments(partition_dir(log)) == bases[:2]
    assert len(segment_files(log)) == 4
    check_truncation(log, writer, codec, records, cut)


@pytest.mark.parametrize("codec", CODECS)
def test_truncate_inside_the_first_segment(tmp_path: Path, codec: str) -> None:
    log, writer, records, boundaries, bases = several_segments(tmp_path, codec)
    cut = boundaries[2]
    assert 0 < cut < bases[1]
    check_truncation(log, writer, codec, records, cut)


@pytest.mark.parametrize("codec", CODECS)
def test_truncate_twice_then_append(tmp_path: Path, codec: str) -> None:
    log, writer, records, boundaries, bases = several_segments(tmp_path, codec)
    writer.truncate(boundaries[-5])
    writer.truncate(bases[1])
    assert read_all(log) == records[: bases[1]]
    check_truncation(log, writer, codec, records, boundaries[1])


# -- refusals and the no-op --------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("where", ["inside a batch", "inside a batch of an earlier segment"])
def test_truncate_inside_a_batch_is_refused(tmp_path: Path, codec: str, where: str) -> None:
    log, writer, records, boundaries, bases = several_segments(tmp_path, codec)
    if where == "inside a batch":
        cut = boundaries[-2] + 1
    else:
        cut = next(
            b + 1 for b in boundaries if bases[1] <= b < bases[2] and b + 1 not in boundaries
        )
    assert cut not in boundaries
    before = segment_files(log)
    with pytest.raises(LogError, match="inside a batch"):
        writer.truncate(cut)
    # Nothing changed, and the writer still works.
    assert segment_files(log) == before
    assert writer.next_offset == len(records)
    records += append(writer, codec, 2)
    assert read_all(log) == records
    writer.close()


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("delta", [1, 100])
def test_truncate_beyond_the_end_is_refused(tmp_path: Path, codec: str, delta: int) -> None:
    log = make_log(tmp_path, codec)
    with log.writer(TOPIC) as writer:
        records, _ = fill(writer, codec, [3, 4])
        with pytest.raises(LogError, match=f"cannot truncate to offset {7 + delta}"):
            writer.truncate(len(records) + delta)
        with pytest.raises(LogError, match="cannot truncate to offset -1"):
            writer.truncate(-1)
        assert writer.next_offset == len(records)
        records += append(writer, codec, 1)
    assert read_all(log) == records


@pytest.mark.parametrize("codec", CODECS)
def test_truncate_to_the_end_is_a_no_op(tmp_path: Path, codec: str) -> None:
    log, writer, records, _, _ = several_segments(tmp_path, codec)
    directory = partition_dir(log)
    sizes = {name: (directory / name).stat().st_size for name in segment_files(log)}
    writer.truncate(len(records))
    assert {name: (directory / name).stat().st_size for name in segment_files(log)} == sizes
    assert writer.next_offset == len(records)
    assert read_all(log) == records
    check_truncation(log, writer, codec, records, len(records))


def test_truncate_an_empty_partition_to_zero(tmp_path: Path) -> None:
    log = make_log(tmp_path, "msgpack")
    with log.writer(TOPIC) as writer:
        writer.truncate(0)
        with pytest.raises(LogError):
            writer.truncate(1)
        records = append(writer, "msgpack", 2)
    assert read_all(log) == records


# -- property ------------------------------------------------------------------------------------


@given(
    codec=st.sampled_from(CODECS),
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=40),
    cut_at=st.floats(0, 1),
    new_sizes=st.lists(st.integers(1, 30), max_size=15),
    reopen_before=st.booleans(),
    reopen_after=st.booleans(),
)
def test_reader_sees_the_prefix_then_the_new_batches(
    codec: str,
    sizes: list[int],
    cut_at: float,
    new_sizes: list[int],
    reopen_before: bool,
    reopen_after: bool,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = make_log(Path(tmp), codec)
        writer = log.writer(TOPIC)
        try:
            records, boundaries = fill(writer, codec, sizes)
            cut = boundaries[int(cut_at * (len(boundaries) - 1))]
            if reopen_before:
                writer.close()
                writer = log.writer(TOPIC)
            writer.truncate(cut)
            assert read_all(log) == records[:cut]
            if reopen_after:
                writer.close()
                writer = log.writer(TOPIC)
                assert writer.torn_tail is None
            assert writer.next_offset == cut
            added, _ = fill(writer, codec, new_sizes, generation=1)
        finally:
            writer.close()
        assert read_all(log) == records[:cut] + added
        with log.writer(TOPIC) as reopened:
            assert reopened.torn_tail is None
            assert reopened.next_offset == cut + len(added)


# -- crash in the middle of a truncation ---------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_a_segment_whose_index_is_gone_is_rewritten_from_scratch(
    tmp_path: Path, codec: str
) -> None:
    """A crash between deleting a segment's index and its data leaves an orphan data file;
    the segment created again at that offset must not inherit its bytes."""
    log, writer, records, _, bases = several_segments(tmp_path, codec)
    writer.close()
    stem = partition_dir(log) / f"{bases[-1]:020d}"
    Path(f"{stem}.index").unlink()
    assert Path(f"{stem}.data").stat().st_size > 0

    with log.writer(TOPIC) as writer:
        assert writer.torn_tail is None
        assert writer.next_offset == bases[-1]
        expected = records[: bases[-1]] + append(writer, codec, 2, generation=1)
    assert list_segments(partition_dir(log)) == bases
    with log.writer(TOPIC) as reopened:
        assert reopened.torn_tail is None
        assert reopened.next_offset == len(expected)
    assert read_all(log) == expected
