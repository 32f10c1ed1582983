"""``tape live --metrics-port``: ``/metrics`` scraped while a real ``tape live`` trades on paper
against ``tape exchange-sim`` over loopback, with a gap, a disconnect and a malformed frame
injected by the simulator's fault flags; the counters move, and each scrape agrees with what
the run wrote for the journal events it had processed (docs/dashboard.md, "Metrics")."""

from __future__ import annotations

import collections
import contextlib
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.events.control import FeedGapDetected, FeedSubscribed
from engine.events.trading import (
    CancelRequested,
    DecisionRejected,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
)
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic
from engine.runtime import verify
from tests.live_support import USDM, Simulator, live_process, quarantined
from tests.metrics_support import Samples, by_label, free_port, scrape, value
from tests.trading_support import PIPELINES, read_outputs

S = "metered"
FAULTS = ("--fault", "drop:40@1000", "--fault", "malformed@1500", "--fault", "close@2000")
"""A sequence gap (40 depth updates never sent), one frame that is not JSON, and every
connection closed, at stream messages 1,000, 1,500 and 2,000 of the recording's 3,000."""
ARGS = ("--market", "usdm", "--pipeline", "test-trading", "--tick-ms", "100", "--end-with-feed")


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Samples], str]:
    """A session at the recorded pace (12 s of USD-M BTCUSDT), scraped every 0.2 s."""
    data = tmp_path_factory.mktemp("live-metrics")
    config = data / "live.toml"  # a decision every 8th book change, so it trades
    config.write_text('[stages.decisions]\nevery = 8\n[stages.trading]\non_opposite = "ignore"\n')
    port = free_port()
    with Simulator(USDM, *FAULTS) as urls:
        proc = live_process(
            data, urls, S, S, *ARGS, "--config", str(config), "--metrics-port", str(port)
        )
        seen: list[Samples] = []
        deadline = time.monotonic() + 180
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # not listening yet, or closed at the end
                seen.append(scrape(port))
            time.sleep(0.2)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err.decode()
    assert f"metrics: http://127.0.0.1:{port}/metrics" in err.decode()
    return data, seen, err.decode()


def _processed(samples: Samples) -> int:
    return int(value(samples, "tapedeck_events_processed_total", session=S))


def _journal(data: Path) -> tuple[np.ndarray[Any, Any], list[tuple[int, Any]]]:
    """(offset, ts_recv) of every journal event, and (offset, event) of the low-rate ones."""
    from engine.events import decode
    from engine.events.market import MARKET_RECORD

    received, events = [], []
    for batch in EmbeddedLog(data).reader(journal_topic(S)).batches():
        if isinstance(batch, FixedBatch):
            records = batch.view(MARKET_RECORD)
            offsets = np.arange(batch.base_offset, batch.base_offset + len(records))
            received.append(np.stack([offsets, records["ts_recv"].astype(np.int64)], axis=1))
        else:
            for k, raw in enumerate(batch.values()):
                event = decode(raw)
                events.append((batch.base_offset + k, event))
                at = (batch.base_offset + k, getattr(event, "ts_recv", 0))
                received.append(np.array([at], np.int64))
    return np.concatenate(received), events


def test_the_counters_move_while_the_session_runs(
    scraped: tuple[Path, list[Samples], str],
) -> None:
    data, seen, _ = scraped
    processed = [_processed(s) for s in seen if _processed(s)]
    assert len(set(processed)) >= 5, processed  # it moved several times while we watched
    assert processed == sorted(processed)
    for name in ("tapedeck_feed_frames_total", "tapedeck_decision_latency_seconds_count"):
        moved = [value(s, name, session=S) for s in seen]
        assert moved == sorted(moved)
        assert len(set(moved)) >= 3, (name, moved)
    journal_end = EmbeddedLog(data).reader(journal_topic(S)).end_offset
    assert processed[-1] > 0.9 * journal_end  # the last scrape came near the end
    last = seen[-1]
    _, events = _journal(data)
    gaps = [e for _, e in events if isinstance(e, FeedGapDetected)]
    # the injected drop breaks continuity (and the reconnect may too: what was in flight when
    # the connection closed is lost); every break is counted
    assert value(last, "tapedeck_feed_gaps_total", session=S) == len(gaps) >= 1
    assert value(last, "tapedeck_feed_reconnects_total", session=S) == 1  # the injected close
    assert value(last, "tapedeck_quarantined_total", session=S) == 1  # the malformed frame
    assert value(last, "tapedeck_feed_snapshots_total", session=S) >= 3  # first, gap, reconnect
    assert value(last, "tapedeck_feed_connect_failures_total", session=S) == 0
    assert len(quarantined(data, S)) == 1
    assert value(last, "tapedeck_journal_lag_events", session=S) >= 0


def test_each_scrape_agrees_with_the_run_up_to_what_it_had_processed(
    scraped: tuple[Path, list[Samples], str],
) -> None:
    """Whatever the timing, a scrape that says N journal events were processed counts exactly
    the run's outputs caused by journal offsets below N (read back from the run's topics)."""
    data, seen, _ = scraped
    out = read_outputs(data, S)
    received, events = _journal(data)
    live_from = next(at for at, e in events if isinstance(e, FeedSubscribed))
    assert (received[:, 1] > 0).all()  # every journal event has a receive time
    checked = 0
    for samples in seen[-10:]:  # the last ones: after the faults, with trading under way
        n = _processed(samples)
        if not n:
            continue
        checked += 1
        below = [e for e in (*out.risk, *out.orders, *out.executions) if e.cause < n]
        orders = collections.Counter(e.purpose for e in below if isinstance(e, OrderSubmitted))
        fills = collections.Counter(e.liquidity for e in below if isinstance(e, OrderFilled))
        risk = collections.Counter(e.reason for e in below if isinstance(e, DecisionRejected))
        venue = collections.Counter(e.reason for e in below if isinstance(e, OrderRejected))
        assert by_label(samples, "tapedeck_orders_total", "purpose", session=S) == orders
        assert by_label(samples, "tapedeck_fills_total", "liquidity", session=S) == fills
        assert by_label(samples, "tapedeck_risk_rejections_total", "reason", session=S) == risk
        assert by_label(samples, "tapedeck_venue_rejections_total", "reason", session=S) == venue
        decisions = out.decisions[out.decisions["cause"] < n]
        directions = collections.Counter(
            ("sell", "flat", "buy")[d + 1] for d in decisions["direction"].tolist()
        )
        assert by_label(samples, "tapedeck_decisions_total", "direction", session=S) == directions
        assert value(samples, "tapedeck_decision_latency_seconds_count", session=S) == len(
            decisions
        )
        handed = [e for e in below if isinstance(e, OrderSubmitted | CancelRequested)]
        assert value(samples, "tapedeck_order_latency_seconds_count", session=S) == len(handed)
        # what the journal held before the feed connected (session.opened) is the run's
        # catch-up: counted as processed, but its latency is not a live one
        timed = received[(received[:, 0] >= live_from) & (received[:, 0] < n)]
        assert value(samples, "tapedeck_end_to_end_latency_seconds_count", session=S) == len(timed)
        assert value(samples, "tapedeck_processing_seconds_count", session=S) > 0
        gaps = sum(1 for at, e in events if at < n and isinstance(e, FeedGapDetected))
        connections = sum(1 for at, e in events if at < n and isinstance(e, FeedSubscribed))
        assert value(samples, "tapedeck_feed_gaps_total", session=S) == gaps
        assert value(samples, "tapedeck_feed_reconnects_total", session=S) == connections - 1
        portfolio = out.portfolio[out.portfolio["cause"] < n]
        if len(portfolio):
            p = portfolio[-1]
            assert value(samples, "tapedeck_position", session=S) == int(p["position"])
            pnl = float(p["realised"] + p["unrealised"] - p["fees"])
            assert value(samples, "tapedeck_pnl", session=S) == pytest.approx(pnl)
    assert checked >= 5
    last = seen[-1]
    assert sum(by_label(last, "tapedeck_orders_total", "purpose", session=S).values()) > 0
    assert sum(by_label(last, "tapedeck_fills_total", "liquidity", session=S).values()) > 0
    assert by_label(last, "tapedeck_risk_rejections_total", "reason", session=S)
    # measured on the clock the feed stamps ts_recv with (another clock, or a catch-up of
    # old events, would put them out of the histogram's range: not a speed test)
    for name in ("decision", "order", "end_to_end"):
        count = value(last, f"tapedeck_{name}_latency_seconds_count", session=S)
        within = value(last, f"tapedeck_{name}_latency_seconds_bucket", session=S, le="10.0")
        assert within == count > 0, name


def test_the_metered_run_replays_bit_for_bit(scraped: tuple[Path, list[Samples], str]) -> None:
    data, _, _ = scraped
    result = verify(EmbeddedLog(data), S, pipelines=PIPELINES)
    assert result.identical, result.differing_ports
