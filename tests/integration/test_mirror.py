"""``tape mirror`` between the embedded log and Kafka: librdkafka's mock cluster on loopback,
then every real broker in ``TAPE_TEST_KAFKA`` (tests/kafka_support.py).

One cluster serves the module; every test mirrors its own session, so topic names never meet
(on a real broker, which outlives the run, they carry this run's mark too). The sessions are
slices of a real sample (a few lines damaged, so the quarantine has records).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import engine.app.mirror
from engine.app.cli import app
from engine.app.ingest.session import manifest_path
from engine.app.mirror import MirrorError, kafka_chain, mirror_session, target_count
from engine.app.pipelines import SHIPPED
from engine.log import EmbeddedLog
from engine.log.headers import CAUSE, SCHEMA, VERSION, header
from engine.log.journal import journal_topic, quarantine_topic
from engine.log.kafka import KafkaLog, read_range
from engine.log.locate import open_log
from engine.runtime import RunConfig, execute, read_manifest, verify
from engine.runtime.hashing import topic_chain
from engine.runtime.manifest import run_dir
from tests.ingest_samples import BINANCE_USDM, sample_lines, write_gz
from tests.kafka_support import ENV, RUN, KafkaTarget, missing

TAPE = [str(Path(sys.executable).with_name("tape"))]
MARK = f"t{RUN}-"
"""Every session's name starts with this run's mark: real brokers keep topics between runs."""
TRIP, RUN_S, RESUME_K, RESUME_E, BAD, CLI = (
    f"{MARK}mr-{name}" for name in ("trip", "run", "resume-k", "resume-e", "bad", "cli")
)
SESSIONS = (TRIP, RUN_S, RESUME_K, RESUME_E, BAD, CLI)
DAMAGED = (7, 400, 1200)
"""Lines of the sample cut short: each becomes a quarantined record."""


@pytest.fixture(scope="module")
def kafka(kafka_target: KafkaTarget) -> KafkaLog:
    log = open_log(kafka_target.url)
    assert isinstance(log, KafkaLog)
    return log


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedLog:
    """A data directory holding every session of this module, ingested through the CLI."""
    root = tmp_path_factory.mktemp("mirror-source")
    lines = sample_lines(BINANCE_USDM, 1500)
    for i in DAMAGED:
        lines[i] = lines[i][:60]
    sample = write_gz(root / "usdm-damaged.gz", lines)
    data = root / "data"
    ingest = ["--data", str(data), "--fsync", "never", "ingest", "binance", str(sample)]
    for session in SESSIONS:
        result = CliRunner().invoke(app, [*ingest, "--session", session, "--quiet"])
        assert result.exit_code == 0, result.output
    return EmbeddedLog(data)


def records(log: EmbeddedLog, topic: str) -> list[tuple[int, bytes]]:
    """``(timestamp, value)`` of every record of partition 0, in offset order."""
    reader = log.reader(topic)
    out: list[tuple[int, bytes]] = []
    offset = reader.start_offset
    while (batch := reader.read(offset, 1000)) is not None:
        out += zip(batch.timestamps.tolist(), batch.values(), strict=True)
        offset = batch.next_offset
    return out


def assert_same_topic(a: EmbeddedLog, b: EmbeddedLog, topic: str) -> None:
    assert b.config(topic) == a.config(topic)
    assert records(b, topic) == records(a, topic)
    assert topic_chain(b.reader(topic)) == topic_chain(a.reader(topic))


# -- round trips -------------------------------------------------------------------------------


def test_session_round_trip_through_kafka_is_byte_identical(
    source: EmbeddedLog, kafka: KafkaLog, tmp_path: Path
) -> None:
    session = TRIP
    journal, quarantine = journal_topic(session), quarantine_topic(session)
    assert source.watermarks(quarantine)[1] == len(DAMAGED)

    up = mirror_session(source, kafka, session, pipelines=SHIPPED)
    assert [c.topic for c in up] == [journal, quarantine]
    for copy in up:
        assert copy.identical
        assert copy.copied == copy.records
        assert kafka_chain(kafka, copy.topic) == topic_chain(source.reader(copy.topic))
    assert kafka.get_meta(f"session/{session}") == manifest_path(source, session).read_bytes()

    stored = list(read_range(kafka, journal, 0, 0, 50))
    assert [r.offset for r in stored] == list(range(50))
    for record in stored:
        assert record.key == b"BTCUSDT"
        assert header(record.headers, CAUSE) == str(record.offset).encode()
        assert header(record.headers, SCHEMA)
        assert (header(record.headers, VERSION) or b"").isdigit()
    assert header(stored[0].headers, SCHEMA) == b"session.opened"

    back = EmbeddedLog(tmp_path / "back")
    down = mirror_session(kafka, back, session, pipelines=SHIPPED)
    assert [(c.topic, c.records, c.copied, c.identical) for c in down] == [
        (c.topic, c.records, c.records, True) for c in up
    ]
    for topic in (journal, quarantine):
        assert_same_topic(source, back, topic)
    assert manifest_path(back, session).read_bytes() == manifest_path(source, session).read_bytes()


def test_run_is_mirrored_with_its_manifest_chains(
    source: EmbeddedLog, kafka: KafkaLog, tmp_path: Path
) -> None:
    session = RUN_S
    manifest = execute(source, session, RunConfig(pipeline="mid"), pipelines=SHIPPED).manifest
    run_id = manifest.run_id
    assert manifest.outputs
    assert all(o.count > 0 for o in manifest.outputs)

    up = mirror_session(source, kafka, session, runs=[run_id], pipelines=SHIPPED)
    assert {o.topic for o in manifest.outputs} <= {c.topic for c in up}
    for output in manifest.outputs:
        assert kafka_chain(kafka, output.topic) == (output.count, output.chain)
    assert (
        kafka.get_meta(f"run/{run_id}")
        == (run_dir(source.root, run_id) / "manifest.json").read_bytes()
    )

    back = EmbeddedLog(tmp_path / "back")
    mirror_session(kafka, back, session, runs=[run_id], pipelines=SHIPPED)
    assert read_manifest(back.root, run_id) == manifest
    for output in manifest.outputs:
        assert topic_chain(back.reader(output.topic)) == (output.count, output.chain)
        assert_same_topic(source, back, output.topic)
    # The copied journal reproduces the run bit for bit in its new home.
    assert verify(back, run_id, pipelines=SHIPPED).identical


def test_unknown_run_is_refused(source: EmbeddedLog, tmp_path: Path) -> None:
    with pytest.raises(MirrorError, match="no run 'ghost'"):
        mirror_session(
            source, EmbeddedLog(tmp_path / "t"), RUN_S, runs=["ghost"], pipelines=SHIPPED
        )


# -- resuming ----------------------------------------------------------------------------------


class _StopAt:
    """A progress callback that interrupts ``topic`` once ``at`` records were sent."""

    def __init__(self, topic: str, at: int) -> None:
        self.topic, self.at = topic, at
        self.stopped = 0

    def __call__(self, topic: str, done: int, _total: int) -> None:
        if topic == self.topic and done >= self.at:
            self.stopped = done
            raise InterruptedError(f"stopped {topic} at {done}")


def _interrupted_then_resumed(
    source: EmbeddedLog | KafkaLog, target: EmbeddedLog | KafkaLog, session: str
) -> None:
    journal = journal_topic(session)
    stop = _StopAt(journal, 2000)
    with pytest.raises(InterruptedError):
        mirror_session(source, target, session, on_progress=stop, pipelines=SHIPPED)
    # Everything sent before the stop is kept: exactly the first ``stopped`` records.
    assert target_count(target, journal) == stop.stopped > 0

    resumed = {c.topic: c for c in mirror_session(source, target, session, pipelines=SHIPPED)}
    assert resumed[journal].records > stop.stopped
    assert resumed[journal].copied == resumed[journal].records - stop.stopped
    assert all(c.identical for c in resumed.values())

    again = mirror_session(source, target, session, pipelines=SHIPPED)
    assert [c.copied for c in again] == [0] * len(again)
    assert [c.target_chain for c in again] == [c.target_chain for c in resumed.values()]


def test_interrupted_mirror_to_kafka_resumes_where_it_stopped(
    source: EmbeddedLog, kafka: KafkaLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine.app.mirror, "CHUNK", 1024)  # several chunks from a small session
    _interrupted_then_resumed(source, kafka, RESUME_K)
    assert kafka_chain(kafka, f"{RESUME_K}.journal") == topic_chain(
        source.reader(f"{RESUME_K}.journal")
    )


def test_interrupted_mirror_from_kafka_resumes_where_it_stopped(
    source: EmbeddedLog, kafka: KafkaLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = RESUME_E
    mirror_session(source, kafka, session, pipelines=SHIPPED)
    monkeypatch.setattr(engine.app.mirror, "CHUNK", 1024)
    back = EmbeddedLog(tmp_path / "back")
    _interrupted_then_resumed(kafka, back, session)
    assert_same_topic(source, back, journal_topic(session))


# -- mismatches --------------------------------------------------------------------------------


def _other_data(source: EmbeddedLog, topic: str) -> list[tuple[int, bytes]]:
    """The source's first 100 records with two of them swapped: same size, other content."""
    head = records(source, topic)[:100]
    head[40], head[41] = head[41], head[40]
    return head


def test_other_data_under_the_name_on_kafka_is_detected(
    source: EmbeddedLog, kafka: KafkaLog
) -> None:
    topic = journal_topic(BAD)
    kafka.create_topic(topic, source.config(topic))
    producer = kafka.producer()
    for stamp, value in _other_data(source, topic):
        producer.produce(topic, value, None, 0, stamp)
    producer.flush()
    with pytest.raises(MirrorError, match=f"differs from its source in {topic}"):
        mirror_session(source, kafka, BAD, pipelines=SHIPPED)


def test_other_data_under_the_name_in_a_data_directory_is_detected(
    source: EmbeddedLog, tmp_path: Path
) -> None:
    topic = journal_topic(BAD)
    target = EmbeddedLog(tmp_path / "t")
    target.create_topic(topic, source.config(topic))
    with target.writer(topic) as writer:
        writer.append_records([(t, None, None, v) for t, v in _other_data(source, topic)])
    with pytest.raises(MirrorError, match=f"differs from its source in {topic}"):
        mirror_session(source, target, BAD, pipelines=SHIPPED)


# -- the command line --------------------------------------------------------------------------


def test_tape_mirror_prints_the_table(source: EmbeddedLog, kafka_target: KafkaTarget) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["mirror", str(source.root), kafka_target.url, "--session", CLI])
    assert result.exit_code == 0, result.output
    for shown in ("identical", "copied now", f"{CLI}.journal", f"{CLI}.quarantine"):
        assert shown in result.output
    chain = topic_chain(source.reader(f"{CLI}.journal"))[1][:12]
    assert result.output.count(chain) == 2  # source and target columns

    again = runner.invoke(app, ["mirror", str(source.root), kafka_target.url, "--session", CLI])
    assert again.exit_code == 0, again.output
    total = sum(source.watermarks(f"{CLI}.{kind}")[1] for kind in ("journal", "quarantine"))
    assert f"0 of {total:,} records copied now" in again.output


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("kafka://nonsense", "bad Kafka address 'kafka://nonsense'"),
        ("ftp://somewhere", "unknown log address"),
    ],
)
def test_tape_mirror_bad_address_is_a_clean_error(
    source: EmbeddedLog, target: str, message: str
) -> None:
    result = CliRunner().invoke(app, ["mirror", str(source.root), target, "--session", CLI])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_tape_mirror_unknown_session_is_a_clean_error(source: EmbeddedLog, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["mirror", str(source.root), str(tmp_path / "t"), "--session", "nope"]
    )
    assert result.exit_code == 2
    assert "no session 'nope'" in result.output


def test_tape_kafka_mock_serves_until_stopped(source: EmbeddedLog) -> None:
    mock = subprocess.Popen(
        [*TAPE, "kafka-mock", "--brokers", "1"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert mock.stdout is not None
        url = mock.stdout.readline().strip()
        assert url.startswith("kafka://127.0.0.1:")
        assert "tape mirror" in mock.stdout.readline()
        log = open_log(url)
        assert isinstance(log, KafkaLog)
        assert (log.mock, log.brokers) == (True, 1)
        copies = mirror_session(source, log, CLI, pipelines=SHIPPED)
        assert all(c.identical for c in copies)
        log.close()
    finally:
        mock.send_signal(signal.SIGTERM)
        out, _ = mock.communicate(timeout=30)
    assert mock.returncode == 0
    assert "stopped" in out


# -- a broker that was just started ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[str]:
    """A real Kafka broker started for this test alone, empty, with auto-creation on (the stock
    default); stopped after. Needs ``../shared/kafka`` (the broker beside the checkout)."""
    script = Path(__file__).resolve().parents[2].parent / "shared" / "kafka" / "broker"
    if not script.exists():
        missing(f"no broker script at {script}")
    if not os.environ.get(ENV) and not os.environ.get("CI"):
        missing(f"{ENV} is unset: the real-broker tests are off")
    port = _free_port()
    env = {
        **os.environ,
        "KAFKA_BROKER_PORT": str(port),
        "KAFKA_BROKER_CPORT": str(_free_port()),
        "KAFKA_BROKER_STATE": str(tmp_path / "broker"),
        "KAFKA_BROKER_FRESH": "1",
    }
    started = subprocess.run(
        [str(script), "start"], env=env, capture_output=True, text=True, timeout=180
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield f"kafka://127.0.0.1:{port}"
    finally:
        subprocess.run([str(script), "stop"], env=env, capture_output=True, timeout=120)


def test_tape_mirror_to_a_freshly_started_broker_works_on_its_first_call(
    source: EmbeddedLog, fresh_broker: str
) -> None:
    """What failed before: the first mirror to a new broker read tapedeck.meta before its
    partition had a leader ("Not leader for partition"); the second call worked."""
    first = subprocess.run(
        [*TAPE, "mirror", str(source.root), fresh_broker, "--session", TRIP],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    assert "identical" in first.stdout
    log = open_log(fresh_broker)
    assert isinstance(log, KafkaLog)
    assert not log.mock
    assert kafka_chain(log, journal_topic(TRIP)) == topic_chain(source.reader(journal_topic(TRIP)))
    # Auto-creation is on there, yet every topic has the partitions Tapedeck asked for.
    assert log._partitions(journal_topic(TRIP)) == log.config(journal_topic(TRIP)).partitions
    log.close()
