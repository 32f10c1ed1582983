"""The metrics module counts what it is given under Prometheus' names and labels."""

from __future__ import annotations

from engine.app.metrics import PipelineMetrics
from engine.events.control import FeedGapDetected
from engine.events.trading import DecisionRejected, OrderFilled, OrderRejected, OrderSubmitted


def sample(metrics: PipelineMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_events_are_counted_by_kind_and_reason() -> None:
    m = PipelineMetrics()
    m.count(
        "s",
        [
            OrderSubmitted(1, 1, 1, 0, 1, "market", "entry", 0, 1, False, 10.0, 1),
            OrderFilled(1, 1, 1, 1, "entry", 10, 1, 0, 0.01, "taker", 10.0, 0.0),
            DecisionRejected(1, 1, 1, 1, 0.5, "low_confidence", "", 0.5, 0.6),
            DecisionRejected(1, 2, 2, 1, 0.5, "low_confidence", "", 0.5, 0.6),
            OrderRejected(1, 3, 1, "book_not_ready", ""),
            FeedGapDetected(1, 1, 5, 7, "jump"),
        ],
    )
    assert sample(m, "tapedeck_orders_total", session="s", purpose="entry") == 1
    assert sample(m, "tapedeck_fills_total", session="s", liquidity="taker") == 1
    assert sample(m, "tapedeck_risk_rejections_total", session="s", reason="low_confidence") == 2
    assert sample(m, "tapedeck_venue_rejections_total", session="s", reason="book_not_ready") == 1
    assert sample(m, "tapedeck_feed_gaps_total", session="s") == 1


def test_processed_latency_and_lag() -> None:
    m = PipelineMetrics()
    m.processed("s", 10, 0.002, 3)
    m.processed("s", 5, None, 0)
    m.latency("s", [1_000_000_000], 1_004_000_000)
    assert sample(m, "tapedeck_events_processed_total", session="s") == 15
    assert sample(m, "tapedeck_journal_lag_events", session="s") == 0
    assert sample(m, "tapedeck_processing_seconds_count", session="s") == 1
    assert sample(m, "tapedeck_end_to_end_latency_seconds_sum", session="s") == 0.004
    assert sample(m, "tapedeck_end_to_end_latency_seconds_bucket", session="s", le="0.005") == 1
