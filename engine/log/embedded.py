"""The embedded log: Kafka's topic / partition / offset contract on local files.

Layout of a data directory::

    topics/<topic>/topic.json                 TopicConfig
    topics/<topic>/<partition>/<base>.data    segment payloads
    topics/<topic>/<partition>/<base>.index   segment batch index
    topics/<topic>/<partition>/writer.lock    held by the partition's single writer
    groups/<group>.json                       committed offsets of a consumer group
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import Any

import msgspec

from engine.log.errors import (
    DiskFullError,
    LogError,
    LogUnavailableError,
    TopicExistsError,
    TopicNotFoundError,
)
from engine.log.files import atomic_write
from engine.log.reader import PartitionReader
from engine.log.topic import TopicConfig, read_config, write_config
from engine.log.writer import FsyncPolicy, PartitionWriter, free_bytes


class EmbeddedLog:
    """A data directory of topics. Cheap to construct; opens files only when asked."""

    def __init__(self, root: Path | str, fsync: FsyncPolicy | None = None) -> None:
        self.root = Path(root)
        self.fsync = fsync or FsyncPolicy()

    # -- topics ----------------------------------------------------------------------------

    def create_topic(self, topic: str, config: TopicConfig) -> TopicConfig:
        """Create ``topic``; creating it again with the same config is a no-op."""
        config.validate(topic)
        directory = self._topic_dir(topic)
        meta = directory / "topic.json"
        if meta.exists():
            existing = read_config(meta)
            if existing != config:
                raise TopicExistsError(
                    f"topic {topic!r} already exists with different settings "
                    f"({msgspec.json.encode(existing).decode()}); choose another name"
                )
            return existing
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for p in range(config.partitions):
                (directory / str(p)).mkdir(exist_ok=True)
            write_config(meta, config)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DiskFullError(self.root, topic, 4096, free_bytes(self.root), exc) from exc
            raise LogUnavailableError(
                f"cannot create topic {topic!r} in {self.root}: {exc.strerror} ({exc.filename}). "
                "Check that the data directory is writable, or pass another --data / --log."
            ) from exc
        return config

    def topics(self) -> list[str]:
        """Names of all topics, sorted."""
        base = self.root / "topics"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "topic.json").is_file())

    def has_topic(self, topic: str) -> bool:
        """Whether ``topic`` exists."""
        return (self._topic_dir(topic) / "topic.json").is_file()

    def config(self, topic: str) -> TopicConfig:
        """The stored settings of ``topic``."""
        meta = self._topic_dir(topic) / "topic.json"
        if not meta.is_file():
            raise TopicNotFoundError(topic, self.root, self.topics())
        return read_config(meta)

    # -- partitions ------------------------------------------------------------------------

    def writer(self, topic: str, partition: int = 0) -> PartitionWriter:
        """The partition's writer (takes its lock; recovers a torn tail, see ``torn_tail``)."""
        config = self.config(topic)
        return PartitionWriter(self._partition_dir(topic, partition, config), config, self.fsync)

    def reader(self, topic: str, partition: int = 0) -> PartitionReader:
        """A reader of the partition; it can follow a live writer with ``refresh``."""
        config = self.config(topic)
        return PartitionReader(
            self._partition_dir(topic, partition, config), config, topic, partition
        )

    def producer(self) -> Any:
        """A :class:`~engine.log.client.Producer` writing to this log."""
        from engine.log.client import Producer

        return Producer(self)

    def consumer(self, group_id: str | None = None, auto_offset_reset: str = "earliest") -> Any:
        """A :class:`~engine.log.client.Consumer` of this log, in group ``group_id`` if given."""
        from engine.log.client import Consumer

        return Consumer(self, group_id, auto_offset_reset)

    @property
    def url(self) -> str:
        """The data directory: what ``--log`` takes to open this log."""
        return str(self.root)

    def close(self) -> None:
        """Nothing to release: writers and readers are closed by their owners."""

    def watermarks(self, topic: str, partition: int = 0) -> tuple[int, int]:
        """(first offset, next offset) of the partition, as Kafka's get_watermark_offsets."""
        reader = self.reader(topic, partition)
        return reader.start_offset, reader.end_offset

    # -- consumer groups -------------------------------------------------------------------

    def committed(self, group: str) -> dict[tuple[str, int], int]:
        """The group's committed offsets: the next offset each partition will consume."""
        path = self._group_path(group)
        if not path.exists():
            return {}
        stored = msgspec.json.decode(path.read_bytes(), type=dict[str, int])
        out = {}
        for key, offset in stored.items():
            topic, _, partition = key.rpartition("/")
            out[(topic, int(partition))] = offset
        return out

    def commit(self, group: str, offsets: dict[tuple[str, int], int]) -> None:
        """Durably store offsets for the group (merged with what it already committed)."""
        path = self._group_path(group)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            merged = {f"{t}/{p}": o for (t, p), o in self.committed(group).items()}
            merged.update({f"{t}/{p}": o for (t, p), o in offsets.items()})
            atomic_write(path, msgspec.json.encode(dict(sorted(merged.items()))))
        finally:
            os.close(lock_fd)

    # -- paths -----------------------------------------------------------------------------

    def _topic_dir(self, topic: str) -> Path:
        if "/" in topic or topic in {"", ".", ".."}:
            raise LogError(f"invalid topic name {topic!r}")
        return self.root / "topics" / topic

    def _partition_dir(self, topic: str, partition: int, config: TopicConfig) -> Path:
        if not 0 <= partition < config.partitions:
            raise LogError(
                f"topic {topic!r} has partitions 0..{config.partitions - 1}; "
                f"there is no partition {partition}"
            )
        return self._topic_dir(topic) / str(partition)

    def _group_path(self, group: str) -> Path:
        if not group or "/" in group or group.startswith("."):
            raise LogError(f"invalid consumer group name {group!r}")
        return self.root / "groups" / f"{group}.json"
