"""Client and topic settings of the Kafka backend: what Tapedeck asks of a cluster, and why.

docs/operations.md explains each choice for operators; the values live here only.
"""

from __future__ import annotations

import logging
from typing import Any

from engine.log.topic import TopicCodec, TopicConfig

LOGGER = logging.getLogger("tapedeck.kafka")
"""librdkafka's own log lines go here instead of raw stderr."""

CLIENT: dict[str, Any] = {
    # A metadata request must never create a topic: a broker with auto-creation on (the stock
    # default) would make it with one partition before create_topic could make it right.
    "allow.auto.create.topics": False,
}

PRODUCER: dict[str, Any] = {
    # Exactly one copy of each record in order, even when the client retries after a
    # broker failover: the idempotent producer, acknowledged by every in-sync replica.
    "enable.idempotence": True,
    "acks": "all",
    # Journals are kept forever: market records compress 5-10x with zstd.
    "compression.type": "zstd",
    # Throughput: big batches. 1 MB stays under a default broker's max.message.bytes.
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    # Only failures come back to Python: a callback per delivered record would halve throughput.
    "delivery.report.only.error": True,
}

CONSUMER: dict[str, Any] = {
    # Offsets move only when Tapedeck commits them (with its outputs, in a transaction).
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    # Never show records of aborted or still-open transactions.
    "isolation.level": "read_committed",
    # Prefetch up to a million records (within the 256 MiB below): with librdkafka's default
    # of 100,000 a fast reader waits on fetches, 170 k instead of 560 k records/s
    # (bench/kafka_bench.py, docs/performance.md).
    "queued.min.messages": 1_000_000,
    "fetch.max.bytes": 52_428_800,
    "max.partition.fetch.bytes": 8_388_608,
    "queued.max.messages.kbytes": 262_144,
    "fetch.wait.max.ms": 50,
    # Spread partitions one by one over a group's members: a session journal has a single
    # partition, and the default range assignor gives partition 0 of EVERY topic to the same
    # member, so one worker would host every session.
    "partition.assignment.strategy": "roundrobin",
}

DELIVERY_TIMEOUT_MS = 30_000
"""How long a record may wait for acknowledgement before the producer gives up and says so."""


def topic_settings(config: TopicConfig, replication: int) -> dict[str, str]:
    """Broker-side settings of a Tapedeck topic.

    Every topic is kept until an operator deletes it: replayed sessions carry event times from
    the past, so time-based retention would delete a freshly mirrored journal at once.
    """
    settings = {
        "cleanup.policy": "delete",
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "message.timestamp.type": "CreateTime",
        # Records carry their event time, years old for a replayed session: Kafka 4 refuses
        # records stamped more than an hour ahead by default, and operators may bound the past.
        "message.timestamp.before.max.ms": str(2**63 - 1),
        "message.timestamp.after.max.ms": str(2**63 - 1),
        "min.insync.replicas": str(max(1, min(2, replication - 1))),
        "max.message.bytes": "8388608",
    }
    if config.codec is TopicCodec.MSGPACK and config.schema_name in COMPACTED_SCHEMAS:
        settings["cleanup.policy"] = "compact"
    return settings


META_TOPIC = "tapedeck.meta"
"""Compacted topic of what a data directory keeps in files: topic settings, session records,
and run manifests, keyed ``<kind>/<name>``."""
META_SCHEMA = "tapedeck.meta"
WORKER_STATE_SCHEMA = "tapedeck.worker_state"
"""Schema of the worker's state topic (engine.app.worker): only each key's newest value matters."""
COMPACTED_SCHEMAS = frozenset({META_SCHEMA, WORKER_STATE_SCHEMA})
