"""Live on Kafka: ``tape live ... --log kafka://`` journals the feed into a Kafka topic, the
pipeline runs on it as a worker, the paper broker's reports go back into that topic; the
finished run mirrors back to a data directory and verifies bit for bit.

Real loopback sockets throughout: the exchange simulator serving a bundled recording, the
Binance feed adapter, and a Kafka cluster (librdkafka's mock always; the real brokers of
``TAPE_TEST_KAFKA`` where set, see tests/kafka_support.py).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from engine.app.exchange_sim import BackgroundSim
from engine.app.feeds.binance import FeedConfig
from engine.app.ingest import binance
from engine.app.live.session import LiveConfig, LiveResult, LiveSession
from engine.app.mirror import kafka_chain, mirror_session
from engine.app.worker.live import LiveWorker
from engine.events.broker import BrokerOrderFilled, BrokerReport
from engine.events.control import SessionClosed, SessionOpened
from engine.log import EmbeddedLog, FsyncMode, FsyncPolicy
from engine.log.kafka import KafkaLog
from engine.runtime import RunConfig, read_manifest, verify
from engine.runtime.manifest import output_topic
from tests.kafka_support import KafkaTarget
from tests.live_support import PYTHON, REPO, USDM, Simulator, journal
from tests.trading_support import PIPELINES

SPEC = binance.instrument("usdm", "BTCUSDT")
SNAPSHOT = 8


@pytest.fixture(scope="module")
def filed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file-backed live session of the same recording and config, once per module."""
    data = tmp_path_factory.mktemp("filed")
    result = _live(data, "filed", None)
    assert result.manifest is not None
    assert result.reason == "end of feed"
    return data


def _config(urls: Any, session: str, run_id: str | None = None) -> LiveConfig:
    feed = FeedConfig("BTCUSDT", "usdm", urls.ws, urls.rest, end_with_feed=True)
    stages = {"decisions": {"every": 8}, "trading": {"on_opposite": "ignore"}}
    run = RunConfig(pipeline="test-trading", snapshot_every=100_000, stages=stages)
    # no clock ticks: they follow the wall clock, so two sessions would tick at other events
    return LiveConfig(session, feed, SPEC, PIPELINES, run, run_id=run_id, tick_ms=0)


def _worker(log: KafkaLog, session: str, run: RunConfig, instrument: Any) -> LiveWorker:
    """The pipeline host ``tape live --log kafka://`` wires in: the worker's loop."""
    return LiveWorker(log, session, run, instrument, pipelines=PIPELINES, models=None)


def _live(data: Path, session: str, kafka: KafkaLog | None) -> LiveResult:
    log = EmbeddedLog(data, FsyncPolicy(FsyncMode.NEVER))
    on_kafka = (kafka, _worker) if kafka is not None else None
    with BackgroundSim(USDM) as urls:  # as fast as the feed reads
        config = _config(urls, session, None if kafka else session)
        return asyncio.run(LiveSession(log, config, kafka=on_kafka).run())


def _comparable(records: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Receive times zeroed, and the event times the feed estimates from them (snapshots)."""
    out = records.copy()
    out["ts_recv"] = 0
    out["ts_event"][out["type_id"] == SNAPSHOT] = 0
    return out


def _steady(events: list[msgspec.Struct]) -> list[tuple[str, Any]]:
    """The low-rate events apart from the broker's reports, without their times (and the
    addresses naming the simulator's port)."""
    out = []
    for e in events:
        if isinstance(e, BrokerReport):
            continue
        fields = msgspec.structs.asdict(e)
        for name in ("ts_event", "ts_recv", "source", "url"):
            fields.pop(name, None)
        out.append((type(e).__name__, fields))
    return out


def test_a_paper_session_on_kafka_mirrors_back_and_verifies_bit_for_bit(
    kafka_target: KafkaTarget, filed: Path, tmp_path: Path
) -> None:
    kafka = kafka_target.log()
    session = f"{kafka_target.prefix}kafkalive-paper"
    result = _live(tmp_path / "scratch", session, kafka)
    manifest = result.manifest
    assert result.reason == "end of feed"
    assert manifest is not None
    assert manifest.status == "complete"
    orders = output_topic(manifest.run_id, "orders")
    assert kafka_chain(kafka, orders)[0] > 0  # the pipeline traded through the cluster

    back = tmp_path / "back"
    copies = mirror_session(
        kafka, EmbeddedLog(back), session, [manifest.run_id], pipelines=PIPELINES
    )
    assert all(c.identical for c in copies)
    checked = verify(EmbeddedLog(back), manifest.run_id, pipelines=PIPELINES)
    assert checked.identical, checked.differing_ports
    assert read_manifest(back, manifest.run_id).outputs_hash == manifest.outputs_hash

    records, events = journal(back, session)
    assert isinstance(events[0], SessionOpened)
    closed = [e for e in events if isinstance(e, SessionClosed)]
    assert [c.reason for c in closed] == ["end of feed"]
    fills = [e for e in events if isinstance(e, BrokerOrderFilled) and e.account == session]
    assert fills  # the paper broker's reports came back into the journal topic

    # the same recording journaled by the file-backed live session: the same journal, event
    # for event, receive times aside (the broker's reports land where each run's timing
    # put them, so they are compared only for being there)
    filed_records, filed_events = journal(filed, "filed")
    assert len(records) == len(filed_records) > 10_000
    assert _comparable(records).tobytes() == _comparable(filed_records).tobytes()
    assert _steady(events) == [
        (name, {**fields, "session": session} if "session" in fields else fields)
        for name, fields in _steady(filed_events)
    ]
    assert any(isinstance(e, BrokerOrderFilled) for e in filed_events)


def _tape(*args: str) -> subprocess.CompletedProcess[str]:
    command = [PYTHON, "-m", "tests.live_cli", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("stop", ["SIGTERM", "--duration"])
def test_tape_live_on_kafka_stops_then_mirror_and_replay_verify(
    kafka_target: KafkaTarget, tmp_path: Path, stop: str
) -> None:
    session = f"{kafka_target.prefix}kafkalive-cli-{stop.strip('-').lower()}"
    args = ["--market", "usdm", "--pipeline", "test-trading", "--tick-ms", "100", "--quiet"]
    if stop == "--duration":
        args += ["--duration", "6"]
    kafka = kafka_target.log()
    topic = f"{session}.journal"
    with Simulator(USDM, "--speed", "4") as (ws, rest):
        command = [
            PYTHON, "-m", "tests.live_cli", "--data", str(tmp_path), "live", "binance",
            "BTCUSDT", "--session", session, "--ws-url", ws, "--rest-url", rest,
            "--log", kafka_target.url, *args,
        ]  # fmt: skip
        proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if stop == "SIGTERM":
            deadline = time.monotonic() + 60
            while not (kafka.has_topic(topic) and kafka.watermarks(topic)[1] > 3000):
                assert proc.poll() is None, proc.communicate()[1].decode()
                assert time.monotonic() < deadline, "the journal topic never reached 3000"
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    reason = "SIGTERM received" if stop == "SIGTERM" else "duration reached"
    assert f"session {session} closed ({reason})" in text, text
    run_id = text.split("--run ")[1].split()[0]
    # nothing of the session is in the data directory until it is mirrored back
    assert not EmbeddedLog(tmp_path).has_topic(topic)
    mirrored = _tape(
        "--data", str(tmp_path), "mirror", kafka_target.url, str(tmp_path), "--session", session,
        "--run", run_id, "--quiet",
    )  # fmt: skip
    assert mirrored.returncode == 0, mirrored.stderr + mirrored.stdout
    replayed = _tape("--data", str(tmp_path), "replay", run_id, "--verify")
    assert replayed.returncode == 0, replayed.stderr + replayed.stdout
    records, events = journal(tmp_path, session)
    assert len(records) > 3000
    closed = [e for e in events if isinstance(e, SessionClosed)]
    assert [c.reason for c in closed] == [reason]
    assert read_manifest(tmp_path, run_id).journal_stop > len(records)
    if stop == "--duration":  # the same session again: refused, nothing appended
        again = _tape(
            "--data", str(tmp_path), "live", "binance", "BTCUSDT", "--session", session,
            "--ws-url", "ws://127.0.0.1:9", "--rest-url", "http://127.0.0.1:9",
            "--log", kafka_target.url, "--quiet",
        )  # fmt: skip
        assert again.returncode == 1
        assert "already has a journal" in " ".join(again.stderr.split()), again.stderr
        assert kafka_chain(kafka, topic)[0] == len(records) + len(events)


def test_an_unreachable_broker_fails_clearly_before_journaling(tmp_path: Path) -> None:
    done = _tape(
        "--data", str(tmp_path), "live", "binance", "BTCUSDT", "--session", "nowhere",
        "--log", "kafka://127.0.0.1:9", "--quiet",
    )  # fmt: skip
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert "cannot reach Kafka at 127.0.0.1:9" in message
    assert "Nothing was journaled" in message
    assert not EmbeddedLog(tmp_path).has_topic("nowhere.journal")
