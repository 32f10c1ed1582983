"""Throughput of the Kafka backend on librdkafka's mock cluster, with 1 and with 3 brokers.

Usage: ``PYTHONPATH=. .venv/bin/python bench/kafka_bench.py``

Input: the shared Binance USD-M day (``../shared/data/crypto/binance_usdm_btcusdt_20240808.gz``,
532,925 journal events) and spot day (163,889), ingested into a temporary data directory.

- produce: every USD-M journal value through :class:`KafkaProducer` (key, event time and the
  three headers exactly as ``tape mirror`` sends them), timed until ``flush`` returns, i.e.
  every record acknowledged; a fresh cluster per attempt.
- consume: the mock keeps only the newest ~5 MiB of a partition, so what is retained is read,
  from the low to the high watermark, through ``KafkaConsumer.consume`` (full records) and
  ``consume_values`` (offsets and values: what hashing and mirroring use).
- mirror: ``mirror_session`` embedded -> Kafka of the USD-M day (copy plus the read-back of
  the hash chain), and of the spot day both ways; Kafka -> embedded needs the topic whole on
  the cluster, which the USD-M day is not on the mock.

Best of 3 attempts each. Prints one table row per measurement, with the machine and date.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.mirror import _headers, _items, _journal_cause, mirror_session
from engine.app.pipelines import SHIPPED
from engine.log import EmbeddedLog, TopicPartition
from engine.log.format import Header
from engine.log.journal import journal_topic
from engine.log.kafka import KafkaConsumer, KafkaLog, MockCluster

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "crypto"
USDM = SHARED / "binance_usdm_btcusdt_20240808.gz"
SPOT = SHARED / "binance_spot_btcusdt_20240808.gz"
ATTEMPTS = 3


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _ingest(data: Path, path: Path, session: str) -> None:
    args = ["--data", str(data), "--fsync", "never", "ingest", "binance", str(path)]
    result = CliRunner().invoke(app, [*args, "--session", session, "--quiet"])
    assert result.exit_code == 0, result.output


def _as_mirror_sends(log: EmbeddedLog, topic: str) -> list[tuple[bytes, int, list[Header]]]:
    config = log.config(topic)
    return [
        (item.value, item.timestamp, _headers(item))
        for chunk in _items(log, topic, config, _journal_cause)
        for item in chunk
    ]


def _kafka(brokers: int) -> tuple[MockCluster, KafkaLog]:
    cluster = MockCluster(brokers)
    return cluster, KafkaLog(cluster.bootstrap)


def bench_produce(
    brokers: int, source: EmbeddedLog, topic: str
) -> tuple[float, tuple[MockCluster, KafkaLog]]:
    """Seconds to produce and acknowledge the whole journal; the last cluster, still filled."""
    records = _as_mirror_sends(source, topic)
    best, kept = float("inf"), None
    for _ in range(ATTEMPTS):
        cluster, log = _kafka(brokers)
        log.create_topic(topic, source.config(topic))
        producer = log.producer()
        began = time.perf_counter()
        for value, stamp, headers in records:
            producer.produce(topic, value, b"BTCUSDT", 0, stamp, headers)
        producer.flush()
        best = min(best, time.perf_counter() - began)
        kept = (cluster, log)
    assert kept is not None
    return best, kept


def bench_consume(log: KafkaLog, topic: str, values_only: bool) -> tuple[float, int]:
    """Seconds to read what the partition retains, and how many records that is."""
    low, high = log.watermarks(topic, 0)
    best, count = float("inf"), 0
    for _ in range(ATTEMPTS):
        consumer = KafkaConsumer(log)
        consumer.assign([TopicPartition(topic, 0, low)])
        count, last = 0, -1
        began = time.perf_counter()
        while last + 1 < high:
            if values_only:
                offsets, values = consumer.consume_values(10_000, 0.2)
                count += len(values)
                last = offsets[-1] if offsets else last
            else:
                records = consumer.consume(10_000, 0.2)
                count += len(records)
                last = records[-1].offset if records else last
        best = min(best, time.perf_counter() - began)
        consumer.close()
    return best, count


def bench_mirror(
    brokers: int, source: EmbeddedLog, session: str, down: bool
) -> tuple[float, float]:
    """Best seconds of embedded -> Kafka and (if ``down``) Kafka -> a fresh data directory."""
    best_up = best_down = float("inf")
    for _ in range(ATTEMPTS):
        _cluster, log = _kafka(brokers)
        began = time.perf_counter()
        copies = mirror_session(source, log, session, pipelines=SHIPPED)
        best_up = min(best_up, time.perf_counter() - began)
        assert all(c.identical for c in copies)
        if down:
            with tempfile.TemporaryDirectory(dir=source.root.parent) as tmp:
                began = time.perf_counter()
                copies = mirror_session(log, EmbeddedLog(tmp), session, pipelines=SHIPPED)
                best_down = min(best_down, time.perf_counter() - began)
                assert all(c.identical for c in copies)
    return best_up, best_down


def main() -> None:
    """Ingest the inputs, then print one row per measurement."""
    print(
        f"# {datetime.now(UTC):%Y-%m-%d} {platform.node()}: {os.cpu_count()} cores, {_cpu()}, "
        f"Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="tape-kafka-bench-") as tmp:
        source = EmbeddedLog(Path(tmp) / "data")
        _ingest(source.root, USDM, "usdm")
        _ingest(source.root, SPOT, "spot")
        topic = journal_topic("usdm")
        events = source.watermarks(topic)[1]
        spot_events = source.watermarks(journal_topic("spot"))[1]
        print(f"USD-M journal: {events:,} events; spot journal: {spot_events:,} events")
        print("| brokers | measurement | records | seconds | records/s |")
        print("|---:|---|---:|---:|---:|")

        def row(brokers: int, what: str, n: int, seconds: float) -> None:
            print(f"| {brokers} | {what} | {n:,} | {seconds:.2f} | {n / seconds:,.0f} |")

        for brokers in (1, 3):
            seconds, (_cluster, log) = bench_produce(brokers, source, topic)
            row(brokers, "produce (KafkaProducer, acknowledged)", events, seconds)
            for what, values_only in (
                ("consume (KafkaConsumer.consume)", False),
                ("consume_values", True),
            ):
                seconds, n = bench_consume(log, topic, values_only)
                row(brokers, f"{what}, retained part", n, seconds)
            up, _ = bench_mirror(brokers, source, "usdm", down=False)
            row(brokers, "mirror USD-M day, embedded -> Kafka", events, up)
            up, down = bench_mirror(brokers, source, "spot", down=True)
            row(brokers, "mirror spot day, embedded -> Kafka", spot_events, up)
            row(brokers, "mirror spot day, Kafka -> embedded", spot_events, down)


if __name__ == "__main__":
    main()
