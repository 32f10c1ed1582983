"""The single writer of a partition: exclusive lock, recovery on open, append, roll, fsync."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from engine.log.errors import CorruptionError, DiskFullError, LogError, PartitionLockedError
from engine.log.files import fsync_dir, write_all
from engine.log.format import (
    BATCH_ENTRY,
    ENTRY_SIZE,
    Layout,
    RecordTuple,
    crc,
    encode_variable,
    entries_from_bytes,
    make_entry,
)
from engine.log.segment import Segment, list_segments, segment_name
from engine.log.topic import TopicCodec, TopicConfig

DATA_CHUNK = 16 * 1024 * 1024
FIRST_CHUNK = 64 * 1024
INDEX_CHUNK = 64 * 1024


class FsyncMode(StrEnum):
    """When appended batches are forced to stable storage."""

    BATCH = "batch"
    INTERVAL = "interval"
    NEVER = "never"


@dataclass(frozen=True)
class FsyncPolicy:
    """The durability promise of a writer (see docs/log.md, "Durability").

    - ``batch``: an append returns only after its payload and index entry are on stable
      storage; an acknowledged batch survives a process crash and a power loss.
    - ``interval``: data and index are synced when ``interval_ms`` has passed since the last
      sync (checked at each append) and on close. A process crash loses nothing appended; a
      power loss may lose the batches of the last interval.
    - ``never``: the OS writes back when it likes. A process crash loses nothing appended; a
      power loss may lose anything not yet written back.

    In every mode recovery on open keeps the longest intact prefix, so what survives is a
    prefix of what was appended, never a log with holes.
    """

    mode: FsyncMode = FsyncMode.BATCH
    interval_ms: int = 1000

    @classmethod
    def parse(cls, text: str) -> FsyncPolicy:
        """``batch``, ``never`` or ``interval`` / ``interval:MS``."""
        name, _, arg = text.partition(":")
        try:
            mode = FsyncMode(name)
        except ValueError:
            raise LogError(
                f"unknown fsync policy {text!r}: use batch, interval[:MS] or never"
            ) from None
        if mode is FsyncMode.INTERVAL and arg:
            if not arg.isdigit():
                raise LogError(f"fsync interval must be milliseconds, got {arg!r}")
            return cls(mode, int(arg))
        return cls(mode)


@dataclass(frozen=True)
class TornTail:
    """What recovery cut off the end of a partition (a write that never completed)."""

    segment: Path
    next_offset: int
    dropped_batches: int
    dropped_bytes: int

    def __str__(self) -> str:
        return (
            f"recovered {self.segment.parent}: truncated a torn tail of {self.dropped_batches} "
            f"incomplete batch(es), {self.dropped_bytes} bytes, in {self.segment.name}; "
            f"the log continues at offset {self.next_offset}"
        )


class PartitionWriter:
    """Appends batches to one partition. At most one exists per partition, across processes."""

    def __init__(self, directory: Path, config: TopicConfig, fsync: FsyncPolicy) -> None:
        self.directory = directory
        self.config = config
        self.fsync = fsync
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(directory)
        self._last_sync = time.monotonic()
        self._data_fd = self._index_fd = -1
        self.next_offset = 0
        self.segment_base = 0
        self.data_end = self.index_end = 0
        self._data_alloc = self._index_alloc = 0
        try:
            self.torn_tail = self._recover()
        except BaseException:
            self.close()
            raise

    # -- appending ------------------------------------------------------------------------

    def append_array(self, records: np.ndarray[Any, Any]) -> int:
        """Append fixed-width records as one batch; returns the offset of the first."""
        size = self.config.record_size
        if self.config.codec is TopicCodec.MSGPACK:
            raise LogError(f"{self.directory}: a msgpack topic takes records, not arrays")
        if records.dtype.itemsize != size:
            raise LogError(
                f"{self.directory}: records are {records.dtype.itemsize} bytes, the topic "
                f"holds {size}-byte records"
            )
        if len(records) == 0:
            return self.next_offset
        records = np.ascontiguousarray(records)
        raw = records.view(np.uint8).reshape(len(records), size)
        ts_bytes = raw[:, self.config.timestamp_offset : self.config.timestamp_offset + 8]
        ts = np.ascontiguousarray(ts_bytes).view("<i8").ravel()
        payload = records.data.cast("B")
        return self._append(payload, len(records), Layout.FIXED, int(ts.min()), int(ts.max()))

    def append_records(self, records: list[RecordTuple]) -> int:
        """Append ``(timestamp, key, headers, value)`` records as one batch."""
        if self.config.codec is TopicCodec.FIXED:
            for _, key, headers, value in records:
                if key is not None or headers or len(value) != self.config.record_size:
                    raise LogError(
                        f"{self.directory}: a fixed-width topic takes only "
                        f"{self.config.record_size}-byte values without key or headers"
                    )
            return self.append_array(
                np.frombuffer(b"".join(r[3] for r in records), dtype=np.uint8).view(
                    np.dtype((np.void, self.config.record_size))
                )
            )
        if not records:
            return self.next_offset
        stamps = [r[0] for r in records]
        payload = encode_variable(records)
        return self._append(payload, len(records), Layout.VARIABLE, min(stamps), max(stamps))

    def truncate(self, offset: int) -> None:
        """Cut the partition back so that ``offset`` is the next offset (a batch boundary).

        For a run resuming from a snapshot: what was appended after it is discarded, so the
        resumed run appends it again exactly once. Later segments are deleted.
        """
        if offset == self.next_offset:
            return
        bases = list_segments(self.directory)
        if not bases or not bases[0] <= offset < self.next_offset:
            raise LogError(
                f"{self.directory}: cannot truncate to offset {offset}; the partition holds "
                f"{bases[0] if bases else 0}..{self.next_offset - 1}"
            )
        keep = [b for b in bases if b <= offset]
        base = keep[-1]
        if base == offset and len(keep) > 1:
            base = keep[-2]  # cut at a segment start: the previous segment becomes the tail
        segment = Segment(self.directory, base)
        count = len(segment.entries)
        i = count if offset == segment.next_offset else segment.locate(offset)
        if i < count and int(segment.entries["base_offset"][i]) != offset:
            raise LogError(
                f"{self.directory}: offset {offset} is inside a batch; truncation keeps whole "
                "batches only"
            )
        data_keep = segment.data_end if i == count else int(segment.entries["data_pos"][i])
        os.close(self._data_fd)
        os.close(self._index_fd)
        self._data_fd = self._index_fd = -1  # a failure below must not leave stale fds
        # Crash safety: delete later segments newest first (a crash leaves a shorter log,
        # never one with a hole), and make the deletions durable before the kept segment
        # shrinks (so no segment ever follows one that ends early). Index before data: a
        # segment exists for recovery and readers through its index file.
        for later in reversed(bases):
            if later > base:
                stem = self.directory / segment_name(later)
                Path(f"{stem}.index").unlink(missing_ok=True)
                Path(f"{stem}.data").unlink(missing_ok=True)
        fsync_dir(self.directory)
        for path, size in ((segment.data_path, data_keep), (segment.index_path, i * ENTRY_SIZE)):
            with open(path, "r+b") as f:
                f.truncate(size)
                os.fdatasync(f.fileno())
        self.next_offset = offset
        self._open_segment(base, create=False, data_end=data_keep, index_end=i * ENTRY_SIZE)

    def flush(self) -> None:
        """Force everything appended so far to stable storage, whatever the policy."""
        os.fdatasync(self._data_fd)
        os.fdatasync(self._index_fd)
        self._last_sync = time.monotonic()

    def close(self) -> None:
        """Sync (unless the policy is ``never``) and release the partition lock."""
        if self._data_fd >= 0:
            if self.fsync.mode is not FsyncMode.NEVER:
                self.flush()
            os.close(self._data_fd)
            os.close(self._index_fd)
            self._data_fd = self._index_fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> PartitionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _append(
        self, payload: bytes | memoryview, count: int, layout: Layout, min_ts: int, max_ts: int
    ) -> int:
        if self.data_end >= self.config.segment_bytes:
            self._roll()
        base = self.next_offset
        entry = make_entry(
            base_offset=base,
            data_pos=self.data_end,
            payload=payload,
            count=count,
            layout=layout,
            record_size=self.config.record_size if layout is Layout.FIXED else 0,
            min_ts=min_ts,
            max_ts=max_ts,
        )
        # Reserve as much again as the file holds (64 KiB at first, 16 MiB at most): a small
        # topic (most run outputs) stays small on disk, a large one soon reserves full chunks.
        data_chunk = min(DATA_CHUNK, self.config.segment_bytes, max(FIRST_CHUNK, self._data_alloc))
        try:
            needed = self.data_end + len(payload)
            self._data_alloc = _preallocate(self._data_fd, self._data_alloc, needed, data_chunk)
            needed = self.index_end + ENTRY_SIZE
            self._index_alloc = _preallocate(self._index_fd, self._index_alloc, needed, INDEX_CHUNK)
            write_all(self._data_fd, payload, self.data_end)
            write_all(self._index_fd, entry, self.index_end)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            wanted = max(data_chunk, len(payload)) + ENTRY_SIZE
            topic, root = self.directory.parent.name, self.directory.parents[2]
            raise DiskFullError(root, topic, wanted, free_bytes(root), exc) from exc
        self.data_end += len(payload)
        self.index_end += ENTRY_SIZE
        self.next_offset = base + count
        self._sync_per_policy()
        return base

    def _sync_per_policy(self) -> None:
        if self.fsync.mode is FsyncMode.BATCH or (
            self.fsync.mode is FsyncMode.INTERVAL
            and (time.monotonic() - self._last_sync) * 1000 >= self.fsync.interval_ms
        ):
            self.flush()

    # -- segments and recovery -------------------------------------------------------------

    def _roll(self) -> None:
        if self.fsync.mode is not FsyncMode.NEVER:
            self.flush()
        os.close(self._data_fd)
        os.close(self._index_fd)
        self._open_segment(self.next_offset, create=True)

    def _open_segment(
        self, base: int, *, create: bool, data_end: int = 0, index_end: int = 0
    ) -> None:
        stem = self.directory / segment_name(base)
        # A new segment starts empty, even over a data file a crash left orphaned.
        flags = os.O_RDWR | (os.O_CREAT | os.O_TRUNC if create else 0)
        self._data_fd = os.open(f"{stem}.data", flags, 0o644)
        self._index_fd = os.open(f"{stem}.index", flags, 0o644)
        self.segment_base = base
        self.data_end, self.index_end = data_end, index_end
        self._data_alloc = os.fstat(self._data_fd).st_size
        self._index_alloc = os.fstat(self._index_fd).st_size
        if create:
            fsync_dir(self.directory)

    def _recover(self) -> TornTail | None:
        bases = list_segments(self.directory)
        if not bases:
            self.next_offset = 0
            self._open_segment(0, create=True)
            return None
        expected = bases[0]
        for base in bases[:-1]:
            segment = Segment(self.directory, base)
            index_raw = segment.index_path.read_bytes()
            used = len(segment.entries) * ENTRY_SIZE
            if base != expected or len(segment.entries) == 0 or any(index_raw[used:]):
                raise CorruptionError(
                    segment.index_path,
                    segment.next_offset,
                    used,
                    f"sealed segment should start at offset {expected} and hold only intact "
                    "index entries followed by zeros",
                )
            expected = segment.next_offset
        if bases[-1] != expected:
            raise CorruptionError(
                self.directory / f"{segment_name(bases[-1])}.index",
                expected,
                0,
                f"the last segment starts at offset {bases[-1]}, but the one before it ends at "
                f"{expected}: offsets in between are missing",
            )
        return self._recover_tail(bases[-1], expected)

    def _recover_tail(self, base: int, expected: int) -> TornTail | None:
        """Keep the longest intact prefix of the last segment; cut the rest and say so.

        Files are preallocated with zeros, so after the intact batches there must be only
        zeros. Anything else is a torn tail when no intact batch follows it, and corruption
        (the log refuses to open) when one does.
        """
        stem = self.directory / segment_name(base)
        data_path, index_path = Path(f"{stem}.data"), Path(f"{stem}.index")
        index_raw = index_path.read_bytes()
        data = data_path.read_bytes()
        entries = np.frombuffer(index_raw, dtype=BATCH_ENTRY, count=len(index_raw) // ENTRY_SIZE)
        intact = [_entry_intact(index_raw, data, entries, i) for i in range(len(entries))]
        keep = intact.index(False) if False in intact else len(entries)
        if any(intact[keep:]):
            raise CorruptionError(
                data_path,
                int(entries["base_offset"][keep]) if _entry_ok(index_raw, keep) else expected,
                int(entries["data_pos"][keep]) if _entry_ok(index_raw, keep) else keep * ENTRY_SIZE,
                "a batch fails its CRC32C check and intact batches follow it",
            )
        last = entries[keep - 1] if keep else None
        self.next_offset = base if last is None else int(last["base_offset"]) + int(last["count"])
        data_keep = 0 if last is None else int(last["data_pos"]) + int(last["data_len"])
        index_keep = keep * ENTRY_SIZE
        torn_index = _nonzero_span(index_raw, index_keep)
        torn_data = _nonzero_span(data, data_keep)
        if torn_index or torn_data:
            # Cut the files back; preallocation zero-fills them again as they grow.
            with open(data_path, "r+b") as f:
                f.truncate(data_keep)
                os.fdatasync(f.fileno())
            with open(index_path, "r+b") as f:
                f.truncate(index_keep)
                os.fdatasync(f.fileno())
        self._open_segment(base, create=False, data_end=data_keep, index_end=index_keep)
        if not (torn_index or torn_data):
            return None
        batches = max(-(-torn_index // ENTRY_SIZE), 1 if torn_data else 0)
        return TornTail(data_path, self.next_offset, batches, torn_data + torn_index)


def _preallocate(fd: int, allocated: int, needed: int, chunk: int) -> int:
    """Reserve file space ahead of the writes (reads as zeros). A sync of a write into
    reserved space commits no file-size change, which made fdatasync markedly cheaper here
    (docs/log.md, "On disk")."""
    if needed <= allocated:
        return allocated
    target = max(needed, allocated + chunk)
    os.posix_fallocate(fd, allocated, target - allocated)
    return target


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on the file system holding ``directory``."""
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def _nonzero_span(raw: bytes, start: int) -> int:
    """Bytes from ``start`` to the last non-zero byte (0 if there are none)."""
    tail = np.frombuffer(raw, dtype=np.uint8)[start:]
    if not tail.any():
        return 0
    return int(np.flatnonzero(tail)[-1]) + 1


def _entry_ok(index_raw: bytes, i: int) -> bool:
    return entries_from_bytes(index_raw[i * ENTRY_SIZE : (i + 1) * ENTRY_SIZE])[1] == 1


def _entry_intact(index_raw: bytes, data: bytes, entries: np.ndarray[Any, Any], i: int) -> bool:
    if not _entry_ok(index_raw, i):
        return False
    pos, length = int(entries["data_pos"][i]), int(entries["data_len"][i])
    return pos + length <= len(data) and crc(data[pos : pos + length]) == int(
        entries["payload_crc"][i]
    )


def _lock(directory: Path) -> int:
    path = directory / "writer.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise PartitionLockedError(
            f"{directory} already has a writer (pid {holder}); a partition has exactly one. "
            "Stop that process, or write to another data directory."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd
