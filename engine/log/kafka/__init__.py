"""The Kafka / Redpanda backend of the log (see docs/operations.md)."""

from engine.log.kafka.clients import KafkaConsumer, KafkaProducer, read_range, read_values
from engine.log.kafka.cluster import KafkaLog, KafkaTopicNotFoundError
from engine.log.kafka.mock import MockCluster

__all__ = [
    "KafkaConsumer",
    "KafkaLog",
    "KafkaProducer",
    "KafkaTopicNotFoundError",
    "MockCluster",
    "read_range",
    "read_values",
]
