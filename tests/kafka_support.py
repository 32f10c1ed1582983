"""Where the Kafka tests run: librdkafka's mock cluster always, and every real broker named in
``TAPE_TEST_KAFKA`` (comma-separated bootstraps, e.g. ``127.0.0.1:19092,127.0.0.1:19192``).

Without ``TAPE_TEST_KAFKA`` the real-broker tests are skipped with a reason that says how to run
them; with ``CI`` set they FAIL instead, as they do when a named broker cannot be reached.
``.ci/run`` starts ``../shared/kafka/broker`` twice (auto-creation on and off) and sets it.

Real brokers keep their topics between test runs and are shared by everyone using them, so
every name a test creates there starts with :attr:`KafkaTarget.prefix`, unique per run.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:  # conftest imports this module: confluent-kafka loads when a test needs it
    from engine.log.kafka import KafkaLog, MockCluster

ENV = "TAPE_TEST_KAFKA"
HOW = (
    f"start any Kafka or Redpanda broker (e.g. `../shared/kafka/broker start`) and set {ENV}="
    "HOST:PORT[,HOST:PORT] to run the Kafka tests against it"
)
MOCK_GROUP_SETTINGS = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
"""The mock coordinator rebalances a group after a member leaves only once the session
timeout has passed (45 s by default): keep it short there. Real brokers use the defaults."""
RUN = uuid.uuid4().hex[:8]
"""This test run's mark in every name created on a real broker."""


@dataclass
class KafkaTarget:
    """One cluster the Kafka tests run against."""

    name: str
    """``mock`` or the bootstrap of a real broker."""
    bootstrap: str
    mock: bool
    settings: dict[str, Any] = field(default_factory=dict)
    """librdkafka settings every test client on this target takes."""
    holder: MockCluster | None = None
    """Keeps the mock cluster alive as long as the target."""

    @property
    def url(self) -> str:
        """``kafka://bootstrap``, as ``--log`` takes it."""
        return f"kafka://{self.bootstrap}"

    @property
    def prefix(self) -> str:
        """A prefix making names unique on this target: empty on a private mock cluster."""
        return "" if self.mock else f"t{RUN}-"

    def log(self, **kwargs: Any) -> KafkaLog:
        """A new handle on the cluster, with this target's settings."""
        from engine.log.kafka import KafkaLog

        return KafkaLog(self.bootstrap, settings={**self.settings, **kwargs})


def target_params() -> list[Any]:
    """The ``kafka_target`` parameters: the mock, then each configured broker (or one
    placeholder that skips, or fails under ``CI``, when none is configured)."""
    real = [b.strip() for b in os.environ.get(ENV, "").split(",") if b.strip()]
    params = [pytest.param("mock", id="mock")]
    if not real:
        return [*params, pytest.param("", id="kafka")]
    return params + [pytest.param(b, id=f"kafka-{b.rsplit(':', 1)[-1]}") for b in real]


def open_target(bootstrap: str) -> KafkaTarget:
    """The target for one parameter; skips or fails (``CI``) when a real broker is missing."""
    from engine.log import LogUnavailableError
    from engine.log.kafka import KafkaLog, MockCluster

    if bootstrap == "mock":
        cluster = MockCluster(brokers=3)
        return KafkaTarget("mock", cluster.bootstrap, True, dict(MOCK_GROUP_SETTINGS), cluster)
    if not bootstrap:
        missing(f"no real Kafka broker configured ({ENV} is unset)")
    try:
        probe = KafkaLog(bootstrap, attempts=2, timeout=5.0)
    except LogUnavailableError as exc:
        missing(f"the Kafka broker at {bootstrap} ({ENV}) is unreachable: {exc}")
    probe.close()
    if probe.mock:
        pytest.fail(f"{ENV} names {bootstrap}, a librdkafka mock cluster: name real brokers")
    return KafkaTarget(bootstrap, bootstrap, False)


def missing(reason: str) -> NoReturn:
    """Skip a real-broker test for ``reason``, or fail it when ``CI`` is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI requires it. {HOW}")
    pytest.skip(f"{reason}; {HOW}")
