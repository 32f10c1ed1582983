"""`tape monitor` on a real Kafka broker: its faust tables, read through its JSON views, equal
the figures computed here from the embedded run the topics were mirrored from; records of an
aborted transaction never reach them (read_committed).

faust needs a real broker (it speaks the protocol through aiokafka, which the mock cluster's
missing APIs stop), so this runs only on the brokers in ``TAPE_TEST_KAFKA`` (tests/
kafka_support.py: skipped with the how-to without one, failed under ``CI``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.request import urlopen

import msgspec
import numpy as np
import pytest

from engine.app.mirror import mirror_session
from engine.events import decode, encode
from engine.events.trading import (
    DecisionRejected,
    OrderAcknowledged,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
)
from engine.log import EmbeddedLog
from engine.log.journal import journal_topic
from engine.runtime import RunConfig, execute
from engine.runtime.manifest import output_topic
from tests.ingest_samples import BINANCE_USDM, tape
from tests.kafka_support import KafkaTarget, open_target, target_params
from tests.trading_support import PIPELINES, read_outputs

pytestmark = pytest.mark.integration

TAPE = str(Path(sys.executable).with_name("tape"))
MS = 1_000_000
REAL = [p for p in target_params() if p.values[0] != "mock"]


@pytest.fixture(params=REAL, scope="module")
def broker(request: pytest.FixtureRequest) -> KafkaTarget:
    return open_target(request.param)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str) -> Any:
    try:
        with urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return json.loads(answer.read())
    except (URLError, ConnectionError, TimeoutError):
        return None
    except OSError:
        return None


def _percentiles(values: list[int]) -> dict[str, Any]:
    """Nearest-rank percentiles (numpy's inverted CDF), max and count."""
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None, "count": 0}
    p = np.percentile(np.array(values), [50, 90, 99], method="inverted_cdf").tolist()
    return {"p50": p[0], "p90": p[1], "p99": p[2], "max": max(values), "count": len(values)}


def _expected(data: Path, session: str, run_id: str) -> dict[str, Any]:
    """The monitor's session view, computed from the embedded log (docs/monitor.md)."""
    log = EmbeddedLog(data)
    reader = log.reader(journal_topic(session))
    journal = [decode(v) for b in reader.batches() for v in b.values()]
    market = [e for e in journal if not isinstance(e, msgspec.Struct)]
    lags = [(int(e["ts_recv"]) - int(e["ts_event"])) // MS for e in market]
    out = read_outputs(data, run_id)
    pnl: dict[str, float] = {}
    for state in out.portfolio:
        minute = datetime.fromtimestamp(int(state["ts_event"]) // 10**9 // 60 * 60, UTC)
        net = float(state["realised"] + state["unrealised"] - state["fees"])
        pnl[minute.strftime("%Y-%m-%dT%H:%M")] = net
    names = {-1: "sell", 0: "flat", 1: "buy"}
    submitted = {e.order_id: e.ts_event for e in out.orders if isinstance(e, OrderSubmitted)}
    acked: dict[int, int] = {}
    filled: dict[int, int] = {}
    for e in out.executions:
        if isinstance(e, OrderAcknowledged):
            acked.setdefault(e.order_id, e.ts_event)
        if isinstance(e, OrderFilled):
            filled.setdefault(e.order_id, e.ts_event)
    causes = [int(out.portfolio["cause"].max()), int(out.decisions["cause"].max())]
    causes += [e.cause for e in (*out.risk, *out.orders, *out.executions)]
    run = {
        "through_journal_offset": max(causes),
        "pnl_by_minute": dict(sorted(pnl.items())),
        "net_pnl": pnl[max(pnl)],
        "position": int(out.portfolio["position"][-1]),
        "decisions": dict(Counter(names[int(d)] for d in out.decisions["direction"])),
        "risk_rejections": dict(
            Counter(e.reason for e in out.risk if isinstance(e, DecisionRejected))
        ),
        "orders": dict(Counter(e.purpose for e in out.orders if isinstance(e, OrderSubmitted))),
        "fills": dict(Counter(e.liquidity for e in out.executions if isinstance(e, OrderFilled))),
        "venue_rejections": dict(
            Counter(e.reason for e in out.executions if isinstance(e, OrderRejected))
        ),
        "processing_latency_ms": {
            "submitted_to_acknowledged": _percentiles(
                [(t - submitted[o]) // MS for o, t in acked.items()]
            ),
            "submitted_to_first_fill": _percentiles(
                [(t - submitted[o]) // MS for o, t in filled.items()]
            ),
        },
    }
    newest = datetime.fromtimestamp(max(int(e["ts_event"]) for e in market) / 1e9, UTC)
    return {
        "session": session,
        "journal": {
            "events": len(journal),
            "last_event_time": newest.isoformat(timespec="milliseconds"),
            "event_time_lag_ms": _percentiles(lags),
        },
        "runs": {run_id: run},
    }


def _abort_into(target: KafkaTarget, source: EmbeddedLog, run_id: str) -> int:
    """Write records into the run's executions and risk topics in a transaction, then abort it;
    the mirror appends the real records after them. Returns how many were aborted."""
    log = target.log()
    fake_fill = encode(OrderFilled(1, 0, 999, 1, "entry", 1, 1, 0, 0.0, "aborted", 1.0, 0.0))
    fake_reject = encode(DecisionRejected(1, 0, 0, 1, 0.1, "aborted", "", 0.0, 0.0))
    producer = log.producer(transactional_id=f"{target.prefix}monitor-abort")
    producer.begin_transaction()
    for port, value in (("executions", fake_fill), ("risk", fake_reject)):
        topic = output_topic(run_id, port)
        log.create_topic(topic, source.config(topic))
        for _ in range(5):
            producer.produce(topic, value, b"BTCUSDT", 0, 10**18)
    producer.flush()
    producer.abort_transaction()
    producer.close()
    log.close()
    return 10


def test_monitor_tables_equal_the_embedded_run_figures(broker: KafkaTarget, tmp_path: Path) -> None:
    data = tmp_path / "data"
    session = f"{broker.prefix}monitor-usdm"
    code, output = tape(data, "--fsync", "never", "ingest", "binance", str(BINANCE_USDM),
                        "--session", session, "--quiet")  # fmt: skip
    assert code == 0, output
    source = EmbeddedLog(data)
    run_id = f"{session}-test-trading-1"
    execute(source, session, RunConfig(pipeline="test-trading"), pipelines=PIPELINES,
            run_id=run_id)  # fmt: skip
    expected = _expected(data, session, run_id)
    assert expected["runs"][run_id]["fills"], "the run must trade for the test to mean anything"

    assert _abort_into(broker, source, run_id) == 10
    log = broker.log()
    copies = mirror_session(source, log, session, [run_id], pipelines=PIPELINES)
    assert all(c.identical for c in copies)
    log.close()

    monitor_data = tmp_path / "monitor-data"
    app_id = f"{broker.prefix}mon"
    _watch(broker, monitor_data, session, app_id, expected)
    # Restarted under the same app id, it resumes from its tables (changelog topics) and the
    # group's committed offsets; anything delivered again is folded once: the same tables.
    _watch(broker, monitor_data, session, app_id, expected)


def _watch(
    broker: KafkaTarget, data: Path, session: str, app_id: str, expected: dict[str, Any]
) -> None:
    """Start `tape monitor`, wait until its session view equals ``expected`` (at most 180 s),
    check every view, and stop it with Ctrl-C."""
    (run_id,) = expected["runs"]
    port = _free_port()
    args = ["--data", str(data), "monitor", "--log", broker.url]
    args += ["--session", session, "--web-port", str(port), "--app-id", app_id]
    monitor = subprocess.Popen(
        [TAPE, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        seen, deadline = None, time.monotonic() + 180
        while time.monotonic() < deadline and monitor.poll() is None:
            seen = _get(port, f"/sessions/{session}/")
            if seen == expected:
                break
            time.sleep(1)
        assert monitor.poll() is None, "the monitor exited"
        assert seen == expected
        assert _get(port, "/") == {"sessions": [session], "runs": [run_id]}
        assert _get(port, f"/runs/{run_id}/") == {"run": run_id, **expected["runs"][run_id]}
    finally:
        monitor.send_signal(signal.SIGINT)
        try:
            out, _ = monitor.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            monitor.kill()
            out, _ = monitor.communicate()
        print(out[-5000:])
