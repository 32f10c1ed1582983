"""Topic metadata: partitions, codec, schema, and the segment size, stored beside the data."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import msgspec

from engine.log.errors import LogError
from engine.log.files import atomic_write

# Kafka's own rule, so every embedded topic name is valid on a cluster too.
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024


class TopicCodec(StrEnum):
    """What kind of values a topic holds."""

    FIXED = "fixed"
    """Fixed-width records of ``record_size`` bytes only: O(1) seek, zero-copy batches."""
    MSGPACK = "msgpack"
    """Variable-size values (msgpack events) with per-record key, timestamp and headers."""
    MIXED = "mixed"
    """Runs of fixed-width records interleaved with variable batches: a session journal."""


class TopicConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a topic is laid out; fixed at creation, stored as ``topic.json``."""

    schema_name: str
    """What the values are: an event type (``market.trade``) or a family (``tapedeck.journal``)."""
    schema_version: int
    codec: TopicCodec
    partitions: int = 1
    record_size: int = 0
    """Bytes per fixed-width record (fixed and mixed topics)."""
    timestamp_offset: int = 8
    """Byte offset of the little-endian int64 timestamp inside each fixed-width record."""
    segment_bytes: int = DEFAULT_SEGMENT_BYTES
    """A new segment starts once the active one's data reaches this size."""

    def validate(self, topic: str) -> None:
        """Refuse settings the log cannot honour, saying which and why."""
        if not _TOPIC_NAME.match(topic):
            raise LogError(
                f"invalid topic name {topic!r}: use 1-249 characters from A-Z a-z 0-9 . _ -"
            )
        if self.partitions < 1:
            raise LogError(f"topic {topic!r}: partitions must be >= 1, got {self.partitions}")
        if self.codec != TopicCodec.MSGPACK:
            if self.record_size <= 0 or self.record_size > 65535:
                raise LogError(
                    f"topic {topic!r}: a {self.codec.value} topic needs record_size in "
                    f"1..65535, got {self.record_size}"
                )
            if not 0 <= self.timestamp_offset <= self.record_size - 8:
                raise LogError(
                    f"topic {topic!r}: timestamp_offset {self.timestamp_offset} does not fit "
                    f"an int64 inside a {self.record_size}-byte record"
                )
        if self.segment_bytes < 4096:
            raise LogError(f"topic {topic!r}: segment_bytes must be >= 4096")


def read_config(path: Path) -> TopicConfig:
    """Load ``topic.json``; a damaged file is reported with its path."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=TopicConfig)
    except (OSError, msgspec.DecodeError) as exc:
        raise LogError(f"cannot read topic metadata {path}: {exc}") from exc


def write_config(path: Path, config: TopicConfig) -> None:
    """Write ``topic.json`` atomically."""
    atomic_write(path, msgspec.json.format(msgspec.json.encode(config), indent=2))
