"""``KafkaLog``: the log's contract on a Kafka or Redpanda cluster, through confluent-kafka.

Topics map one to one (same names, same partitions). What the embedded log keeps beside its
data (``topic.json``) lives in the compacted topic :data:`META_TOPIC`, so a cluster holds
everything needed to read it back.

Against a real broker (Apache Kafka, Redpanda) three rules keep the contract exact:

- no metadata request ever creates a topic: every client is made with
  ``allow.auto.create.topics=false``, so a broker with ``auto.create.topics.enable=true`` cannot
  make a one-partition topic behind ``create_topic``'s back;
- a topic is usable once ``create_topics`` answered AND every partition has a leader: the
  controller creates it asynchronously, so :meth:`KafkaLog.create_topic` polls the metadata;
- one-shot requests (watermarks, committed offsets, timestamps) are retried on retriable
  errors with bounded backoff (:mod:`engine.log.kafka.retry`).

librdkafka's mock cluster (``test.mock.num.brokers``) speaks the real protocol but lacks six
things; the backend recognises it by its cluster id and works within it where it can:

- it has no controller, so CreateTopics times out: topics are created by a metadata request
  instead, which the mock answers by auto-creating them with 4 partitions; the backend uses
  the first ``partitions`` of them and the rest stay empty;
- ListOffsets ignores timestamps ("FIXME: by timestamp" in rdkafka_mock_handlers.c):
  ``offsets_for_times`` scans the partition instead;
- each partition keeps only its newest 5 MiB of batches (rdkafka_mock.c), older ones vanish
  as on a real cluster with ``retention.bytes``;
- a group joined by a new member after another left (LeaveGroup is sent and answered) is only
  rebalanced once the session timeout has passed (45 s by default): tests pass a short
  ``session.timeout.ms`` in ``settings``;
- it keeps no last stable offset: read-committed readers see the records of open and aborted
  transactions, so a worker killed mid-transaction is exactly once only on a real broker
  (:meth:`KafkaLog.settle` returns at once there);
- it does not store offsets committed in a transaction: the worker resumes from its own
  committed state (engine.app.worker), which a real broker's stored offset must then match.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ClusterMetadata, NewTopic

from engine.log.errors import LogError, LogUnavailableError, TopicExistsError
from engine.log.kafka.retry import BOUND, Backoff, error_of, poll_until
from engine.log.kafka.settings import CLIENT, LOGGER, META_SCHEMA, META_TOPIC, topic_settings
from engine.log.topic import TopicCodec, TopicConfig

if TYPE_CHECKING:  # clients imports this module
    from engine.log.kafka.clients import KafkaConsumer

META_CONFIG = TopicConfig(META_SCHEMA, 1, TopicCodec.MSGPACK)


class KafkaTopicNotFoundError(LogError):
    """The topic is not on the cluster (or was not created by Tapedeck)."""


class KafkaLog:
    """A Kafka cluster seen as a Tapedeck log. Connects on construction, with bounded retries."""

    def __init__(
        self,
        servers: str,
        *,
        attempts: int = 3,
        timeout: float = 5.0,
        settings: dict[str, Any] | None = None,
    ) -> None:
        if not servers:
            raise LogError("a Kafka log needs bootstrap servers: kafka://host:port[,host:port]")
        self.servers = servers
        self.timeout = timeout
        self.settings = {
            "bootstrap.servers": servers,
            "logger": LOGGER,
            **CLIENT,
            **(settings or {}),
        }
        self._admin = AdminClient(self.settings)
        metadata = self._metadata(attempts)
        self.mock = str(metadata.cluster_id or "").startswith("mockCluster")
        self.brokers = len(metadata.brokers)
        self.replication = min(3, self.brokers)
        self._configs: dict[str, TopicConfig] = {}
        self._meta_producer: Producer | None = None
        self._probe: KafkaConsumer | None = None
        if META_TOPIC not in metadata.topics:
            self._create_on_broker(META_TOPIC, META_CONFIG)
        else:
            self._wait_for_leaders(META_TOPIC, META_CONFIG.partitions)

    @property
    def url(self) -> str:
        """``kafka://servers``: what ``--log`` takes to open this log."""
        return f"kafka://{self.servers}"

    def __repr__(self) -> str:
        return f"KafkaLog({self.url})"

    # -- connection ------------------------------------------------------------------------

    def _metadata(self, attempts: int = 3, topic: str | None = None) -> ClusterMetadata:
        began = time.monotonic()
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                return self._admin.list_topics(topic, timeout=self.timeout)
            except KafkaException as exc:
                last = exc
                if attempt + 1 < attempts:
                    time.sleep(min(0.5 * 2**attempt, 2.0))
        raise LogUnavailableError(
            f"cannot reach Kafka at {self.servers}: {_reason(last)} ({attempts} attempts over "
            f"{time.monotonic() - began:.1f} s). Check that the broker is running and listening "
            "there (`kcat -L -b HOST:PORT`), or choose another log with --log / TAPE_LOG."
        )

    # -- topics ----------------------------------------------------------------------------

    def create_topic(self, topic: str, config: TopicConfig) -> TopicConfig:
        """Create ``topic`` on the cluster and record its settings; again with the same: no-op."""
        config.validate(topic)
        existing = self._stored(topic)
        if existing is not None:
            if existing != config:
                raise TopicExistsError(
                    f"topic {topic!r} already exists on {self.servers} with different settings "
                    f"({msgspec.json.encode(existing).decode()}); choose another name"
                )
            return existing
        if self._partitions(topic) == 0:
            self._create_on_broker(topic, config)
        else:
            self._wait_for_leaders(topic, config.partitions)
        have = self._partitions(topic)
        if have < config.partitions or (have != config.partitions and not self.mock):
            raise TopicExistsError(
                f"topic {topic!r} exists on {self.servers} with {have} partitions but Tapedeck "
                f"needs {config.partitions}; it was made by something else. Delete it or "
                "choose another name."
            )
        self.put_meta(f"topic/{topic}", msgspec.json.encode(config))
        self._configs[topic] = config
        return config

    def _create_on_broker(self, topic: str, config: TopicConfig) -> None:
        if self.mock:
            # No controller on the mock: a metadata request that allows auto-creation, made
            # by a client of its own (every other client refuses to auto-create).
            creator = Producer({**self.settings, "allow.auto.create.topics": True})
            creator.list_topics(topic, timeout=self.timeout)
            self._wait_for_leaders(topic, 1)
            return
        new = NewTopic(
            topic,
            num_partitions=config.partitions,
            replication_factor=self.replication,
            config=topic_settings(config, self.replication),
        )
        try:
            self._admin.create_topics([new], request_timeout=self.timeout)[topic].result(
                self.timeout * 2
            )
        except KafkaException as exc:
            error = error_of(exc)
            if error is None or error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise LogUnavailableError(
                    f"cannot create topic {topic!r} on {self.servers}: {_reason(exc)}. Check "
                    "that this client may create topics there (ACLs) and that the cluster has "
                    f"{self.replication} broker(s) up, or create it by hand with "
                    f"{config.partitions} partition(s) (docs/operations.md)."
                ) from exc
        self._wait_for_leaders(topic, config.partitions)

    def _wait_for_leaders(self, topic: str, partitions: int) -> None:
        """Return once ``topic`` has at least ``partitions`` partitions, each with a leader:
        a topic the controller has just created answers "unknown" or "not leader" until then."""

        def missing() -> str | None:
            found = self._metadata(topic=topic).topics.get(topic)
            if found is None or found.error is not None:
                return f"unknown ({found.error.str() if found and found.error else 'absent'})"
            if len(found.partitions) < partitions:
                return f"{len(found.partitions)} of {partitions} partitions"
            leaderless = sorted(
                p.id for p in found.partitions.values() if p.leader < 0 or p.error is not None
            )
            return f"without a leader in partitions {leaderless}" if leaderless else None

        poll_until(missing, f"waiting for the partitions of topic {topic!r}", self.servers)

    def _partitions(self, topic: str) -> int:
        """Partitions of ``topic`` on the cluster; 0 if it is not there. Never creates it."""
        found = self._metadata(topic=topic).topics.get(topic)
        if found is None or (
            found.error is not None and found.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        ):
            return 0
        if found.error is not None and not found.partitions:
            # Known but not ready (leader not available): wait instead of calling it absent.
            self._wait_for_leaders(topic, 1)
            found = self._metadata(topic=topic).topics.get(topic)
        return len(found.partitions) if found is not None else 0

    def topics(self) -> list[str]:
        """Names of the Tapedeck topics on the cluster, sorted."""
        self._refresh_meta()
        return sorted(self._configs)

    def has_topic(self, topic: str) -> bool:
        """Whether ``topic`` was created through Tapedeck."""
        return self._stored(topic) is not None

    def config(self, topic: str) -> TopicConfig:
        """The settings ``topic`` was created with."""
        found = self._stored(topic)
        if found is None:
            known = ", ".join(self.topics()) or "none"
            raise KafkaTopicNotFoundError(
                f"topic {topic!r} does not exist on {self.servers} (topics there: {known}). "
                "Mirror a session there with `tape mirror`."
            )
        return found

    def watermarks(self, topic: str, partition: int = 0) -> tuple[int, int]:
        """(first offset, next offset) of the partition, from the partition leader."""
        from engine.log.kafka.clients import KafkaConsumer

        # One consumer answers every watermark query: a client per call costs a connection.
        if self._probe is None:
            self._probe = KafkaConsumer(self)
        return self._probe.watermarks(topic, partition)

    def settle(self, topic: str, partition: int = 0, bound: float | None = None) -> tuple[int, int]:
        """Wait until every transaction open on ``topic/partition`` now has ended; its
        watermarks as a read-committed reader then sees them.

        A read-committed reader sees a partition up to its last stable offset: records of a
        transaction still open (a worker mid-cycle, or one killed and not yet fenced by its
        successor nor timed out) stay invisible, and everything after them too. Call this
        before reading state or outputs that must be final. It waits for the transactions
        open at the call only, so writers that keep going cannot hold it forever; ``bound``
        (seconds, default the retry bound) should exceed the writers' transaction timeout.
        """
        from engine.log.kafka.clients import KafkaConsumer

        seen = KafkaConsumer(self, isolation="read_uncommitted")
        try:
            end = seen.watermarks(topic, partition)[1]
        finally:
            seen.close()

        def open_transaction() -> str | None:
            stable = self.watermarks(topic, partition)[1]
            return None if stable >= end else f"a transaction open (stable {stable} < {end})"

        backoff = BOUND if bound is None else Backoff(BOUND.first, BOUND.cap, bound)
        poll_until(open_transaction, f"settling {topic}/{partition}", self.servers, backoff=backoff)
        return self.watermarks(topic, partition)

    # -- clients ---------------------------------------------------------------------------

    def producer(
        self, transactional_id: str | None = None, settings: dict[str, Any] | None = None
    ) -> Any:
        """An idempotent producer (transactional when ``transactional_id`` is given);
        ``settings`` adds librdkafka settings (``transaction.timeout.ms`` for instance)."""
        from engine.log.kafka.clients import KafkaProducer

        return KafkaProducer(self, transactional_id, settings)

    def consumer(
        self,
        group_id: str | None = None,
        auto_offset_reset: str = "earliest",
        settings: dict[str, Any] | None = None,
    ) -> Any:
        """A read-committed consumer, in consumer group ``group_id`` if given; ``settings``
        adds librdkafka settings (``session.timeout.ms`` for instance)."""
        from engine.log.kafka.clients import KafkaConsumer

        return KafkaConsumer(self, group_id, auto_offset_reset, settings=settings)

    def close(self) -> None:
        """Flush what was written to the meta topic and let go of the cluster."""
        if self._meta_producer is not None:
            self._meta_producer.flush(self.timeout)
            self._meta_producer = None
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    # -- the meta topic --------------------------------------------------------------------

    def put_meta(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key`` in the meta topic, durably (waits for the acks)."""
        producer = self._producer_for_meta()
        failures: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        producer.produce(META_TOPIC, value, key.encode(), 0, on_delivery=delivered)
        left = producer.flush(self.timeout * 2)
        if left or failures:
            raise LogUnavailableError(
                f"could not store {key!r} in {META_TOPIC} on {self.servers}: "
                f"{failures[0] if failures else 'no acknowledgement in time'}; nothing was "
                "recorded, retry the command"
            )

    def get_meta(self, key: str) -> bytes | None:
        """The newest value stored under ``key``, or None."""
        return self.meta(key.partition("/")[0] + "/").get(key)

    def meta(self, prefix: str) -> dict[str, bytes]:
        """Every key starting with ``prefix`` and its newest value."""
        records = self._read_meta()
        return {k: v for k, v in records.items() if k.startswith(prefix)}

    def _read_meta(self) -> dict[str, bytes]:
        from engine.log.kafka.clients import latest_by_key

        return latest_by_key(self, META_TOPIC)

    def _refresh_meta(self) -> None:
        for key, value in self.meta("topic/").items():
            self._configs[key.removeprefix("topic/")] = msgspec.json.decode(value, type=TopicConfig)

    def _stored(self, topic: str) -> TopicConfig | None:
        if topic == META_TOPIC:
            return META_CONFIG
        if topic not in self._configs:
            self._refresh_meta()
        return self._configs.get(topic)

    def _producer_for_meta(self) -> Producer:
        if self._meta_producer is None:
            self._meta_producer = Producer(
                {**self.settings, "enable.idempotence": True, "acks": "all"}
            )
        return self._meta_producer


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return str(exc.args[0].str())
    return str(exc)
