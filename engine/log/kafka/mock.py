"""librdkafka's mock cluster: real Kafka protocol on loopback sockets, inside this process.

For tests, benchmarks and trying the Kafka backend without a broker (``tape kafka-mock``).
Its limits are listed in :mod:`engine.log.kafka.cluster`.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka.admin import AdminClient

from engine.log.kafka.settings import LOGGER


class MockCluster:
    """A mock cluster of ``brokers`` brokers; it lives as long as this object."""

    def __init__(self, brokers: int = 3) -> None:
        # The mock belongs to the client that asked for it; this one only holds it open.
        settings: dict[str, Any] = {"test.mock.num.brokers": brokers, "logger": LOGGER}
        self._holder = AdminClient(settings)
        metadata = self._holder.list_topics(timeout=10)
        self.bootstrap = ",".join(
            f"{b.host}:{b.port}" for b in sorted(metadata.brokers.values(), key=lambda b: b.id)
        )

    @property
    def url(self) -> str:
        """``kafka://...``: what ``--log`` and :func:`engine.log.open_log` take."""
        return f"kafka://{self.bootstrap}"
