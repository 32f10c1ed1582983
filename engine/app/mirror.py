"""``tape mirror``: copy a session (and its runs) between logs, resumably, and prove the copy.

Either side is a data directory or a Kafka cluster. Each topic is copied in offset order, one
Kafka record per event with the event's canonical bytes as value, the session's instrument
symbol as key, and the headers of :mod:`engine.log.headers`. What the embedded log keeps in
files (the session's ingest record, run manifests) goes to the cluster's meta topic and back.

Resuming: a target topic that already holds ``n`` records holds the source's first ``n``
(records are appended in order and acknowledged before the next mirror starts), so the copy
continues from the source's ``n``-th record. Nothing assumes offsets are contiguous.

Proof: every topic's hash chain (:mod:`engine.runtime.hashing`) is computed over the source as
it is read and over the target as stored, and the mirror fails unless they are equal. On a
Kafka target the read-back runs beside the copy, so it also works where the cluster keeps only
the newest part of a partition (the mock cluster keeps 5 MiB) as long as it keeps up.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import msgspec
import numpy as np

from engine.app.ingest.session import manifest_path, session_topics
from engine.events import decode
from engine.events.catalogue import is_msgpack, type_of_value
from engine.events.control import SessionOpened
from engine.log import EmbeddedLog, FixedBatch, LogError, TopicCodec, TopicConfig, TopicPartition
from engine.log.files import atomic_write
from engine.log.format import Header
from engine.log.headers import event_headers
from engine.log.journal import journal_topic
from engine.log.kafka import KafkaLog, read_range, read_values
from engine.runtime.hashing import ChainHasher
from engine.runtime.manifest import RunManifest, run_dir
from engine.runtime.topology import Catalog

AnyLog = EmbeddedLog | KafkaLog
CHUNK = 65_536


class MirrorError(LogError):
    """A mirror could not be made or does not match its source."""


@dataclass(frozen=True)
class TopicCopy:
    """One mirrored topic: how much was copied now, and both sides' hash chains."""

    topic: str
    records: int
    copied: int
    source_chain: str
    target_chain: str

    @property
    def identical(self) -> bool:
        """Whether source and target hash the same."""
        return self.source_chain == self.target_chain


@dataclass(frozen=True)
class Item:
    """One event on its way: canonical bytes plus what a record needs around them."""

    value: bytes
    timestamp: int
    cause: int
    fixed: bool
    headers: list[Header] | None = None


def mirror_session(
    source: AnyLog,
    target: AnyLog,
    session: str,
    runs: list[str] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    *,
    pipelines: Catalog,
) -> list[TopicCopy]:
    """Mirror ``session`` (and ``runs`` of it) from ``source`` to ``target``; see the module doc.

    A run's ports (and where each event names its cause) come from its pipeline in ``pipelines``.

    Raises :class:`MirrorError` if any topic's chains differ; ``on_progress(topic, done, total)``
    is called as records are copied.
    """
    journal = journal_topic(session)
    if not source.has_topic(journal):
        raise MirrorError(f"no session {session!r} in {source.url} (no topic {journal})")
    symbol = _symbol(source, journal)
    copies = [
        copy_topic(
            source, target, topic, symbol, _journal_cause if topic == journal else None, on_progress
        )
        for topic in session_topics(session)
        if source.has_topic(topic)
    ]
    _copy_sidecar(source, target, "session", session)
    for run_id in runs or []:
        copies += _mirror_run(source, target, session, run_id, symbol, on_progress, pipelines)
    bad = [c for c in copies if not c.identical]
    if bad:
        raise MirrorError(
            "the copy differs from its source in "
            + ", ".join(
                f"{c.topic} (source {c.source_chain[:12]}, target {c.target_chain[:12]})"
                for c in bad
            )
            + f". The target {target.url} holds other data under these names: delete those "
            "topics there and mirror again."
        )
    return copies


def _mirror_run(
    source: AnyLog,
    target: AnyLog,
    session: str,
    run_id: str,
    symbol: bytes,
    on_progress: Callable[[str, int, int], None] | None,
    pipelines: Catalog,
) -> list[TopicCopy]:
    raw = _read_sidecar(source, "run", run_id)
    if raw is None:
        raise MirrorError(f"no run {run_id!r} in {source.url}; see `tape runs`")
    manifest = msgspec.json.decode(raw, type=RunManifest)
    if manifest.session != session:
        raise MirrorError(f"run {run_id} is of session {manifest.session!r}, not {session!r}")
    ports = {port.name: port for _, port in pipelines.get(manifest.pipeline).written()}
    copies = []
    for output in manifest.outputs:
        port = ports[output.port]
        causes = _port_cause(port)
        copy = copy_topic(source, target, output.topic, symbol, causes, on_progress)
        if (copy.records, copy.target_chain) != (output.count, output.chain):
            raise MirrorError(
                f"{output.topic} hashes {copy.target_chain[:12]} over {copy.records} events but "
                f"run {run_id}'s manifest records {output.chain[:12]} over {output.count}"
            )
        copies.append(copy)
    _copy_sidecar(source, target, "run", run_id)
    return copies


# -- one topic ---------------------------------------------------------------------------------


def copy_topic(
    source: AnyLog,
    target: AnyLog,
    topic: str,
    key: bytes,
    causes: Callable[[FixedBatch | list[Any], int], list[int]] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> TopicCopy:
    """Copy partition 0 of ``topic`` from ``source`` to ``target`` (resuming), then compare."""
    config = source.config(topic)
    target.create_topic(topic, config)
    have = target_count(target, topic)
    total = _source_count(source, topic)
    verifier = _Verifier(target, topic, config) if isinstance(target, KafkaLog) else None
    hasher = ChainHasher(config.schema_name)
    sink = _sink(target, topic, config, key)
    seen = 0
    try:
        for items in _items(source, topic, config, causes):
            _absorb(hasher, config, items)
            fresh = items[max(0, have - seen) :]
            if fresh:
                sink.write(fresh)
            seen += len(items)
            if on_progress is not None:
                on_progress(topic, seen, total)
        sink.finish()
    except BaseException:
        # What was sent is kept (and the lock let go), so the next mirror resumes after it.
        sink.abandon()
        if verifier is not None:
            verifier.stop()
        raise
    if seen < have:
        raise MirrorError(
            f"{target.url} holds {have} records of {topic} but the source only {seen}; the "
            "target was written by something else. Delete the topic there and mirror again."
        )
    if verifier is not None:
        target_records, target_chain = verifier.finish(seen)
    else:
        assert isinstance(target, EmbeddedLog)
        target_records, target_chain = embedded_chain(target, topic)
    if target_records != seen:
        target_chain = f"{target_chain} ({target_records} records, source {seen})"
    return TopicCopy(topic, seen, seen - have, hasher.hexdigest(), target_chain)


def target_count(log: AnyLog, topic: str) -> int:
    """Records already in ``topic`` (partition 0) of ``log``."""
    low, high = log.watermarks(topic, 0)
    if isinstance(log, EmbeddedLog) or high == low:
        return high - low
    if low > 0:
        raise MirrorError(
            f"{topic} on {log.url} no longer starts at offset 0 (first offset {low}): retention "
            "removed its head, so a resumed copy cannot be proven. Delete the topic there and "
            "mirror again, with retention.ms=-1 (docs/operations.md)."
        )
    return sum(len(values) for values in read_values(log, topic, 0, low, high))


def _source_count(log: AnyLog, topic: str) -> int:
    low, high = log.watermarks(topic, 0)
    return high - low  # for progress only: a Kafka topic's markers make it an upper bound


def _items(
    log: AnyLog,
    topic: str,
    config: TopicConfig,
    causes: Callable[[FixedBatch | list[Any], int], list[int]] | None,
) -> Iterator[list[Item]]:
    if isinstance(log, KafkaLog):
        yield from _kafka_items(log, topic, config)
        return
    for batch in log.reader(topic).batches(size=CHUNK):
        if isinstance(batch, FixedBatch):
            values = batch.values()
            stamps = batch.timestamps.tolist()
            found = causes(batch, batch.base_offset) if causes else [0] * len(values)
            yield [Item(v, t, c, True) for v, t, c in zip(values, stamps, found, strict=True)]
        else:
            events = [decode(v) for v in batch.values()] if causes else []
            found = causes(events, batch.base_offset) if causes else [0] * len(batch)
            yield [Item(r[3], r[0], c, False) for r, c in zip(batch.records, found, strict=True)]


def _kafka_items(log: KafkaLog, topic: str, config: TopicConfig) -> Iterator[list[Item]]:
    low, high = log.watermarks(topic, 0)
    if low > 0:
        raise MirrorError(
            f"{topic} on {log.url} starts at offset {low}: retention removed its head, so it "
            "cannot be mirrored whole"
        )
    chunk: list[Item] = []
    fixed_topic = config.codec is TopicCodec.FIXED
    for record in read_range(log, topic, 0, low, high):
        fixed = fixed_topic or (config.codec is TopicCodec.MIXED and not is_msgpack(record.value))
        stamp = _event_time(record.value, fixed, config)
        chunk.append(Item(record.value, stamp, 0, fixed, record.headers))
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _event_time(value: bytes, fixed: bool, config: TopicConfig) -> int:
    # The exact ns time is in the value; Kafka's own timestamp only has milliseconds.
    if fixed:
        at = config.timestamp_offset
        return int.from_bytes(value[at : at + 8], "little", signed=True)
    return int(getattr(decode(value), "ts_event", 0))


def _absorb(hasher: ChainHasher, config: TopicConfig, items: list[Item]) -> None:
    _absorb_values(hasher, config, [i.value for i in items])


def _absorb_values(hasher: ChainHasher, config: TopicConfig, values: list[bytes]) -> None:
    if config.codec is TopicCodec.FIXED:
        raw = b"".join(values)
        hasher.update_fixed(np.frombuffer(raw, np.dtype((np.void, config.record_size))))
    else:
        hasher.update_values(values)


# -- writing -----------------------------------------------------------------------------------


class _Sink(Protocol):
    """Appends chunks of items to a target topic; ``finish`` or ``abandon`` ends it."""

    def write(self, items: list[Item]) -> None:
        """Append ``items`` after what was written before."""

    def finish(self) -> None:
        """Make everything written durable (acknowledged); raise if that fails."""

    def abandon(self) -> None:
        """Keep what was written so far if possible and release the target; never raise."""


def _sink(log: AnyLog, topic: str, config: TopicConfig, key: bytes) -> _Sink:
    if isinstance(log, KafkaLog):
        return _KafkaSink(log, topic, key)
    return _FileSink(log, topic, config)


class _KafkaSink:
    def __init__(self, log: KafkaLog, topic: str, key: bytes) -> None:
        self.log, self.topic, self.key = log, topic, key
        self.producer = log.producer()

    def write(self, items: list[Item]) -> None:
        produce, topic, key = self.producer.produce, self.topic, self.key
        for item in items:
            produce(topic, item.value, key, 0, item.timestamp, item.headers or _headers(item))

    def finish(self) -> None:
        self.producer.flush()

    def abandon(self) -> None:
        # Bounded: when the cluster is what failed, the original error matters, not this one.
        with contextlib.suppress(LogError):
            self.producer.flush(self.log.timeout)


class _FileSink:
    def __init__(self, log: EmbeddedLog, topic: str, config: TopicConfig) -> None:
        self.writer = log.writer(topic)
        self.record = np.dtype((np.void, config.record_size or 1))

    def write(self, items: list[Item]) -> None:
        start = 0
        for end in _run_ends(items):
            run = items[start:end]
            if run[0].fixed:
                self.writer.append_array(np.frombuffer(b"".join(i.value for i in run), self.record))
            else:
                self.writer.append_records([(i.timestamp, None, None, i.value) for i in run])
            start = end

    def finish(self) -> None:
        self.writer.close()

    def abandon(self) -> None:
        with contextlib.suppress(LogError, OSError):
            self.writer.close()


def _run_ends(items: list[Item]) -> Iterator[int]:
    for i in range(1, len(items)):
        if items[i].fixed != items[i - 1].fixed:
            yield i
    yield len(items)


def _headers(item: Item) -> list[Header]:
    et = type_of_value(item.value)
    return event_headers(et.name, et.version, item.cause)


# -- reading a target back ---------------------------------------------------------------------


def embedded_chain(log: EmbeddedLog, topic: str) -> tuple[int, str]:
    """``(records, chain)`` of partition 0 of an embedded topic."""
    from engine.runtime.hashing import topic_chain

    return topic_chain(log.reader(topic))


def kafka_chain(log: KafkaLog, topic: str, partition: int = 0) -> tuple[int, str]:
    """``(records, chain)`` of a Kafka topic's committed records, read from its first offset."""
    config = log.config(topic)
    hasher = ChainHasher(config.schema_name)
    low, high = log.watermarks(topic, partition)
    for values in read_values(log, topic, partition, low, high):
        _absorb_values(hasher, config, values)
    return hasher.total, hasher.hexdigest()


class _Verifier:
    """Reads a Kafka target back while it is being written, hashing what is stored."""

    def __init__(self, log: KafkaLog, topic: str, config: TopicConfig) -> None:
        self.log, self.topic, self.config = log, topic, config
        self.hasher = ChainHasher(config.schema_name)
        self.error: BaseException | None = None
        self._want: int | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"verify {topic}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        consumer = self.log.consumer()
        try:
            consumer.assign([TopicPartition(self.topic, 0, 0)])
            idle = time.monotonic()
            while not self._stopped:
                if self._want is not None and self.hasher.total >= self._want:
                    return
                _, values = consumer.consume_values(CHUNK, 0.2)
                if values:
                    idle = time.monotonic()
                    _absorb_values(self.hasher, self.config, values)
                elif self._want is not None and time.monotonic() - idle > self.log.timeout * 2:
                    return
        except BaseException as exc:  # reported by finish()
            self.error = exc
        finally:
            consumer.close()

    def finish(self, expected: int) -> tuple[int, str]:
        """Wait until ``expected`` records were read back (or reading stalls); the chain."""
        self._want = expected
        self._thread.join()
        if self.error is not None:
            raise MirrorError(
                f"reading {self.topic} back from {self.log.url} failed: {self.error}"
            ) from self.error
        return self.hasher.total, self.hasher.hexdigest()

    def stop(self) -> None:
        """Abandon the read-back."""
        self._stopped = True
        self._thread.join()


# -- what lives beside the topics --------------------------------------------------------------


def _sidecar_path(log: EmbeddedLog, kind: str, name: str) -> Path:
    if kind == "session":
        return manifest_path(log, name)
    return run_dir(log.root, name) / "manifest.json"


def _read_sidecar(log: AnyLog, kind: str, name: str) -> bytes | None:
    if isinstance(log, KafkaLog):
        return log.get_meta(f"{kind}/{name}")
    path = _sidecar_path(log, kind, name)
    return path.read_bytes() if path.is_file() else None


def _copy_sidecar(source: AnyLog, target: AnyLog, kind: str, name: str) -> None:
    raw = _read_sidecar(source, kind, name)
    if raw is None:
        return
    if isinstance(target, KafkaLog):
        target.put_meta(f"{kind}/{name}", raw)
    else:
        path = _sidecar_path(target, kind, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, raw)


# -- causes and keys ---------------------------------------------------------------------------


def _journal_cause(batch: FixedBatch | list[Any], base: int) -> list[int]:
    return list(range(base, base + len(batch)))


def _port_cause(port: Any) -> Callable[[FixedBatch | list[Any], int], list[int]]:
    def causes(batch: FixedBatch | list[Any], _base: int) -> list[int]:
        if isinstance(batch, FixedBatch):
            return [int(c) for c in port.causes(batch.view(port.event_type.dtype))]
        return [int(c) for c in port.causes(batch)]

    return causes


def _symbol(log: AnyLog, journal: str) -> bytes:
    if isinstance(log, KafkaLog):
        first = next(iter(read_range(log, journal, 0, *log.watermarks(journal, 0))), None)
        value = first.value if first is not None else b""
    else:
        batch = log.reader(journal).read(0, 1)
        value = batch.values()[0] if batch is not None else b""
    event = decode(value) if value else None
    if not isinstance(event, SessionOpened):
        raise MirrorError(f"{journal} on {log.url} does not start with session.opened")
    return event.instrument.symbol.encode()


__all__ = [
    "MirrorError",
    "TopicCopy",
    "copy_topic",
    "embedded_chain",
    "kafka_chain",
    "mirror_session",
    "target_count",
]
