"""The monitor's figures (engine/app/monitor/figures.py) on hand-made events: each figure from
its event type, redelivery folded once, ports in any interleaving."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.app.monitor.figures import (
    RunFigures,
    SessionFigures,
    minute_of,
    percentiles,
    runs_of,
    split_run_topic,
)
from engine.events import encode
from engine.events.control import SessionClosed
from engine.events.decisions import DECISION, new_records
from engine.events.market import TRADE
from engine.events.trading import (
    DecisionRejected,
    OrderAcknowledged,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    new_states,
)
from tests.factories import market_record

T0 = 1_723_075_200_000_000_000  # 2024-08-08T00:00:00Z
MS = 1_000_000
MINUTE = 60_000 * MS


def _states(rows: list[tuple[int, float, float, float, int]]) -> list[bytes]:
    """portfolio.state values from (ts_event, realised, unrealised, fees, position)."""
    states = new_states(len(rows))
    for i, (ts, realised, unrealised, fees, position) in enumerate(rows):
        states[i]["ts_event"], states[i]["cause"] = ts, i
        states[i]["realised"], states[i]["unrealised"], states[i]["fees"] = (
            realised,
            unrealised,
            fees,
        )
        states[i]["position"] = position
    return [s.tobytes() for s in states]


def _submitted(order_id: int, ts: int, purpose: str = "entry") -> bytes:
    return encode(
        OrderSubmitted(ts, 5, order_id, 0, 1, "market", purpose, 0, 10, False, 100.0, ts + MS)
    )


def _filled(order_id: int, ts: int, liquidity: str) -> bytes:
    return encode(OrderFilled(ts, 6, order_id, 1, "entry", 100, 5, 5, 0.1, liquidity, 100.0, 0.0))


def _rejected(reason: str) -> bytes:
    return encode(DecisionRejected(T0, 3, 2, 1, 0.5, reason, "", 0.5, 0.6))


def _fold(figures: RunFigures, port: str, values: list[bytes], start: int = 0) -> None:
    figures.add(port, range(start, start + len(values)), values)


def test_pnl_by_minute_is_the_last_state_of_each_minute_net_of_fees() -> None:
    figures = RunFigures()
    states = _states(
        [
            (T0 + 1_000 * MS, 0.0, 0.0, 0.0, 0),
            (T0 + 59_999 * MS, 5.0, 2.0, 1.0, 3),  # last of 00:00: 5 + 2 - 1
            (T0 + MINUTE, 5.0, -4.0, 1.5, 3),  # 00:01 only: -0.5
        ]
    )
    _fold(figures, "portfolio", states)
    view = figures.view()
    assert view["pnl_by_minute"] == {"2024-08-08T00:00": 6.0, "2024-08-08T00:01": -0.5}
    assert view["net_pnl"] == -0.5
    assert view["position"] == 3
    assert view["through_journal_offset"] == 2


def test_counts_by_direction_reason_purpose_and_liquidity() -> None:
    figures = RunFigures()
    decisions = new_records(DECISION, 5)
    decisions["direction"] = [1, 1, -1, 0, 1]
    decisions["cause"] = [10, 11, 12, 13, 14]
    _fold(figures, "decisions", [d.tobytes() for d in decisions])
    _fold(figures, "risk", [_rejected("low_confidence"), _rejected("low_confidence"),
                            _rejected("max_trades")])  # fmt: skip
    _fold(figures, "orders", [_submitted(1, T0), _submitted(2, T0, "stop_loss")])
    _fold(figures, "executions", [
        encode(OrderAcknowledged(T0 + 2 * MS, 7, 1, 0)),
        _filled(1, T0 + 3 * MS, "taker"),
        _filled(1, T0 + 9 * MS, "maker"),
        encode(OrderRejected(T0, 8, 2, "reduce_only", "nothing to reduce")),
    ])  # fmt: skip
    view = figures.view()
    assert view["decisions"] == {"buy": 3, "flat": 1, "sell": 1}
    assert view["risk_rejections"] == {"low_confidence": 2, "max_trades": 1}
    assert view["orders"] == {"entry": 1, "stop_loss": 1}
    assert view["fills"] == {"maker": 1, "taker": 1}
    assert view["venue_rejections"] == {"reduce_only": 1}
    assert view["through_journal_offset"] == 14
    latency = view["processing_latency_ms"]
    # order 1: acknowledged 2 ms and first filled 3 ms after it was submitted; order 2 never
    assert latency["submitted_to_acknowledged"] == {
        "p50": 2, "p90": 2, "p99": 2, "max": 2, "count": 1
    }  # fmt: skip
    assert latency["submitted_to_first_fill"]["max"] == 3


def test_redelivered_records_fold_once_and_ports_may_arrive_in_any_order() -> None:
    ordered, shuffled = RunFigures(), RunFigures()
    orders = [_submitted(1, T0), _submitted(2, T0 + MS)]
    fills = [_filled(1, T0 + 4 * MS, "taker"), _filled(2, T0 + 5 * MS, "taker")]
    _fold(ordered, "orders", orders)
    _fold(ordered, "executions", fills)
    # executions first, and a batch seen twice (at-least-once), and one overlapping
    _fold(shuffled, "executions", fills[:1])
    _fold(shuffled, "executions", fills)
    _fold(shuffled, "orders", orders)
    _fold(shuffled, "orders", orders[1:], start=1)
    assert shuffled.view() == ordered.view()
    assert ordered.view()["fills"] == {"taker": 2}
    assert ordered.view()["processing_latency_ms"]["submitted_to_first_fill"]["p50"] == 4


def test_journal_lag_is_receive_minus_event_time_in_whole_ms() -> None:
    figures = SessionFigures()
    lags_ms = [1.5, 1.2, 3.0, 250.9, -2.5]
    values = [
        market_record(TRADE, ts_event=T0 + i, ts_recv=T0 + i + int(lag * MS)).tobytes()
        for i, lag in enumerate(lags_ms)
    ]
    values.append(encode(SessionClosed(T0 + 9, T0 + 9, "s", "end of input")))
    figures.add(range(6), values)
    figures.add(range(4, 6), values[4:])  # redelivered
    assert figures.events == 6
    assert figures.lag_ms == {"1": 2, "3": 1, "250": 1, "-3": 1}
    view = figures.view()
    assert view["event_time_lag_ms"] == {"p50": 1, "p90": 250, "p99": 250, "max": 250,
                                         "count": 5}  # fmt: skip
    assert view["last_event_time"] == "2024-08-08T00:00:00.000+00:00"


def test_percentiles_are_nearest_rank() -> None:
    hist: dict[str, Any] = {str(v): 1 for v in range(1, 101)}
    assert percentiles(hist) == {"p50": 50, "p90": 90, "p99": 99, "max": 100, "count": 100}
    assert percentiles({}) == {"p50": None, "p90": None, "p99": None, "max": None, "count": 0}
    same = np.percentile(np.arange(1, 101), [50, 90, 99], method="inverted_cdf")
    assert [percentiles(hist)[f"p{q}"] for q in (50, 90, 99)] == same.tolist()


def test_topic_names_and_minutes() -> None:
    assert split_run_topic("run.btc-day-default-1.portfolio") == ("btc-day-default-1", "portfolio")
    assert split_run_topic("run.btc-day-default-1.book") is None
    assert split_run_topic("btc-day.journal") is None
    runs = ["btc-day-default-1", "btc-day-2-default-1", "eth-default-abc"]
    assert runs_of("btc-day", runs) == ["btc-day-2-default-1", "btc-day-default-1"]
    assert runs_of("a.b", ["a_b-default-1"]) == ["a_b-default-1"]
    assert minute_of(T0 + MINUTE - 1) == "2024-08-08T00:00"
