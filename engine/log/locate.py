"""Choosing a log by address: a data directory, or ``kafka://host:port[,host:port]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engine.log.embedded import EmbeddedLog
from engine.log.errors import LogError
from engine.log.writer import FsyncPolicy

if TYPE_CHECKING:  # importing confluent-kafka is deferred to the first Kafka address
    from engine.log.kafka import KafkaLog

KAFKA_SCHEME = "kafka://"


def open_log(address: str, fsync: FsyncPolicy | None = None) -> EmbeddedLog | KafkaLog:
    """The log at ``address``: ``kafka://servers`` opens the Kafka backend, anything else is a
    data directory of the embedded log."""
    if address.startswith(KAFKA_SCHEME):
        from engine.log.kafka import KafkaLog

        servers = address.removeprefix(KAFKA_SCHEME).rstrip("/")
        if not servers or any(not s.rpartition(":")[2].isdigit() for s in servers.split(",")):
            raise LogError(
                f"bad Kafka address {address!r}: write kafka://HOST:PORT[,HOST:PORT...], "
                "for example kafka://127.0.0.1:9092"
            )
        return KafkaLog(servers)
    if "://" in address:
        raise LogError(
            f"unknown log address {address!r}: use a data directory path or kafka://HOST:PORT"
        )
    return EmbeddedLog(Path(address), fsync)
