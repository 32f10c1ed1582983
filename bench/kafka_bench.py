"""Throughput of the Kafka backend on librdkafka's mock cluster (1 and 3 brokers) and on a real
broker.

Usage: ``PYTHONPATH=. .venv/bin/python bench/kafka_bench.py [--bootstrap HOST:PORT [--no-mock]]``

With ``--bootstrap`` it also measures a real broker (e.g. ``../shared/kafka/broker start``:
127.0.0.1:19092), see :func:`real_broker`: every topic it makes there starts with
``bench-<random>-`` and is deleted at the end.

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

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="a real broker, HOST:PORT")
    parser.add_argument("--no-mock", action="store_true", help="skip the mock cluster")
    args = parser.parse_args()
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
        print("| brokers | measurement | records | seconds | records/s | load (1 min) |")
        print("|---:|---|---:|---:|---:|---:|")

        def row(brokers: int | str, what: str, n: int, seconds: float) -> None:
            print(
                f"| {brokers} | {what} | {n:,} | {seconds:.2f} | {n / seconds:,.0f} | "
                f"{os.getloadavg()[0]:.1f} |",
                flush=True,
            )

        if args.bootstrap:
            real_broker(args.bootstrap, source, row)
        for brokers in () if args.no_mock else (1, 3):
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


Row = Callable[[int | str, str, int, float], None]


def real_broker(bootstrap: str, source: EmbeddedLog, row: Row) -> None:
    """The same measurements on a real broker, which keeps everything (so the USD-M day is
    consumed whole and mirrored back), plus a worker against the embedded run.

    - produce: every USD-M journal value into a fresh topic per attempt, as ``tape mirror``
      sends them, until ``flush`` returns;
    - consume: that topic from offset 0 to the end: ``consume`` (full records: headers
      included), ``consume`` decoding every header, and ``consume_values``;
    - mirror: the USD-M day embedded -> Kafka (under a fresh session name) and back into a
      fresh data directory (once each: a second attempt would find the session there);
    - worker: the spot day mirrored up, then ``tape worker --pipeline default`` (a
      subprocess, until it reports the run complete) beside ``tape run`` of the same session
      on the embedded log (a subprocess too: both include the process start).
    """
    mark = f"bench-{uuid.uuid4().hex[:6]}-"
    log = KafkaLog(bootstrap)
    made: list[str] = []
    try:
        topic = journal_topic("usdm")
        records = _as_mirror_sends(source, topic)
        best, kept = float("inf"), ""
        for attempt in range(ATTEMPTS):
            name = f"{mark}produce-{attempt}.journal"
            log.create_topic(name, source.config(topic))
            made.append(name)
            producer = log.producer()
            began = time.perf_counter()
            for value, stamp, headers in records:
                producer.produce(name, value, b"BTCUSDT", 0, stamp, headers)
            producer.flush()
            best = min(best, time.perf_counter() - began)
            producer.close()
            kept = name
        row("real", "produce (KafkaProducer, acknowledged)", len(records), best)
        for what, mode in (
            ("consume (KafkaConsumer.consume)", "records"),
            ("consume, every header decoded", "headers"),
            ("consume_values", "values"),
        ):
            seconds, n = _consume_all(log, kept, mode)
            row("real", f"{what}, whole day", n, seconds)
        for session, down in (("usdm", True),):
            seconds, back = _mirror_real(source, bootstrap, session, mark, made, down)
            n = source.watermarks(journal_topic(session))[1]
            row("real", f"mirror {session} day, embedded -> Kafka", n, seconds)
            row("real", f"mirror {session} day, Kafka -> embedded", n, back)
        _worker_vs_run(source, bootstrap, mark, made, row)
    finally:
        _delete(bootstrap, made)
        log.close()


def _consume_all(log: KafkaLog, topic: str, mode: str) -> tuple[float, int]:
    """Best seconds to read the whole topic; how many records."""
    low, high = log.watermarks(topic, 0)
    best, count = float("inf"), 0
    for _ in range(ATTEMPTS):
        consumer = KafkaConsumer(log)
        consumer.assign([TopicPartition(topic, 0, low)])
        count, last = 0, -1
        began = time.perf_counter()
        while last + 1 < high:
            if mode == "values":
                offsets, values = consumer.consume_values(10_000, 0.2)
                count += len(values)
                last = offsets[-1] if offsets else last
                continue
            records = consumer.consume(10_000, 0.2)
            if mode == "headers":
                for r in records:
                    for _key, raw in r.headers or ():
                        raw.decode()
            count += len(records)
            last = records[-1].offset if records else last
        best = min(best, time.perf_counter() - began)
        consumer.close()
    return best, count


def _mirror_real(
    source: EmbeddedLog, bootstrap: str, session: str, mark: str, made: list[str], down: bool
) -> tuple[float, float]:
    """Seconds of one mirror embedded -> Kafka of ``session`` (renamed with ``mark``) and,
    if ``down``, back into a fresh data directory."""
    renamed = f"{mark}{session}"
    with tempfile.TemporaryDirectory(dir=source.root.parent) as tmp:
        copy = EmbeddedLog(Path(tmp) / "renamed")
        _ingest(copy.root, USDM if session == "usdm" else SPOT, renamed)
        log = KafkaLog(bootstrap)
        made += [journal_topic(renamed), f"{renamed}.quarantine"]
        began = time.perf_counter()
        copies = mirror_session(copy, log, renamed, pipelines=SHIPPED)
        up = time.perf_counter() - began
        assert all(c.identical for c in copies)
        back = float("nan")
        if down:
            target = EmbeddedLog(Path(tmp) / "back")
            began = time.perf_counter()
            copies = mirror_session(log, target, renamed, pipelines=SHIPPED)
            back = time.perf_counter() - began
            assert all(c.identical for c in copies)
        log.close()
    return up, back


def _worker_vs_run(
    source: EmbeddedLog, bootstrap: str, mark: str, made: list[str], row: Row
) -> None:
    """``tape worker`` on the spot day on the broker beside ``tape run`` on the embedded log."""
    session = f"{mark}spot"
    tape = str(Path(sys.executable).with_name("tape"))
    with tempfile.TemporaryDirectory(dir=source.root.parent) as tmp:
        data = Path(tmp) / "data"
        _ingest(data, SPOT, session)
        n = EmbeddedLog(data).watermarks(journal_topic(session))[1]
        log = KafkaLog(bootstrap)
        mirror_session(EmbeddedLog(data), log, session, pipelines=SHIPPED)
        made += [journal_topic(session), f"{session}.quarantine"]
        env = {**os.environ, "TAPE_DATA": str(data)}
        began = time.perf_counter()
        worker = subprocess.Popen(
            [tape, "worker", "--log", f"kafka://{bootstrap}", "--pipeline", "default",
             "--session", session, "--group", f"{mark}workers", "--worker-id", f"{mark}w1"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert worker.stdout is not None
        lines, commits = [], []
        for line in worker.stdout:
            lines.append(line)
            if line.startswith("committed transaction"):
                commits.append(time.perf_counter() - began)
            if "complete; its manifest is in the meta topic" in line:
                break
        seconds = time.perf_counter() - began
        print(
            f"# worker: first transaction committed {commits[0]:.2f} s after start, last "
            f"{commits[-1]:.2f} s ({len(commits)} transactions), run complete (output topics "
            f"hashed as stored, manifest written) {seconds:.2f} s"
        )
        worker.terminate()
        worker.wait(timeout=60)
        assert any("complete;" in x for x in lines), "".join(lines)
        made += [t for t in _topics(bootstrap) if t.startswith(f"run.{session}-")]
        row("real", "tape worker, default pipeline, spot day (process start to run complete)",
            n, seconds)  # fmt: skip
        began = time.perf_counter()
        done = subprocess.run(
            [tape, "--data", str(data), "run", session, "--pipeline", "default", "--quiet"],
            capture_output=True, text=True, env=env, check=True,
        )  # fmt: skip
        seconds = time.perf_counter() - began
        assert "complete" in done.stdout, done.stdout
        row("embedded", "tape run, default pipeline, spot day (process start to exit)", n,
            seconds)  # fmt: skip
        log.close()


def _topics(bootstrap: str) -> list[str]:
    from confluent_kafka.admin import AdminClient

    return list(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def _delete(bootstrap: str, topics: list[str]) -> None:
    """Delete the bench's topics from the broker (their meta entries stay: harmless)."""
    from confluent_kafka.admin import AdminClient

    if topics:
        admin = AdminClient({"bootstrap.servers": bootstrap})  # alive until every answer
        for future in admin.delete_topics(sorted(set(topics)), operation_timeout=30).values():
            try:
                future.result()
            except Exception as exc:  # a topic already gone: nothing to clean
                print(f"# could not delete a topic: {exc}")


if __name__ == "__main__":
    main()
