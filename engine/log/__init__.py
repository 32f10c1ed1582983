"""The log: topics of partitions of offset-ordered records, on local files or on Kafka.

The embedded backend lives here; its contract (produce / consume / seek / commit, timestamps,
keys, headers, consumer groups) is the one the Kafka backend implements too.
"""

from engine.log.client import Consumer, Producer, Record, TopicPartition, records_of
from engine.log.embedded import EmbeddedLog
from engine.log.errors import (
    CorruptionError,
    DiskFullError,
    LogError,
    LogUnavailableError,
    OffsetOutOfRangeError,
    PartitionLockedError,
    TopicExistsError,
    TopicNotFoundError,
)
from engine.log.reader import Batch, FixedBatch, PartitionReader, RecordBatch
from engine.log.topic import TopicCodec, TopicConfig
from engine.log.writer import FsyncMode, FsyncPolicy, PartitionWriter, TornTail

__all__ = [
    "Batch",
    "Consumer",
    "CorruptionError",
    "DiskFullError",
    "EmbeddedLog",
    "FixedBatch",
    "FsyncMode",
    "FsyncPolicy",
    "LogError",
    "LogUnavailableError",
    "OffsetOutOfRangeError",
    "PartitionLockedError",
    "PartitionReader",
    "PartitionWriter",
    "Producer",
    "Record",
    "RecordBatch",
    "TopicCodec",
    "TopicConfig",
    "TopicExistsError",
    "TopicNotFoundError",
    "TopicPartition",
    "TornTail",
    "records_of",
]
