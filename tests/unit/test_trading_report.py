"""The end-of-run report on hand-made outputs: round trips, PnL, Sharpe over the mark grid,
drawdown, exposure, fills, rejections; and its rendering."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from engine.events.trading import (
    R_CLOSE,
    R_FILL,
    R_MARK,
    CircuitBreakerTripped,
    DecisionRejected,
    OrderFilled,
    OrderRejected,
    new_states,
)
from streams.trading import Report, build_report, report_rows

S = 1_000_000_000
START = 1_000.0

# (reason, ts in s, position, realised, unrealised, fees, drawdown)
ROWS = [
    (R_MARK, 0, 0, 0.0, 0.0, 0.0, 0.0),
    (R_FILL, 0.5, 10, 0.0, 0.0, 1.0, 0.001),  # open long (before: net 0)
    (R_MARK, 1, 10, 0.0, 2.0, 1.0, 0.0),
    (R_FILL, 1.5, 0, 5.0, 0.0, 2.0, 0.0),  # flat: net 5 - 2 - 0 = +3, a win
    (R_MARK, 2, 0, 5.0, 0.0, 2.0, 0.0),
    (R_FILL, 2.2, -5, 5.0, 0.0, 2.5, 0.0),  # open short (before: net 3)
    (R_FILL, 2.4, 0, 4.0, 0.0, 3.0, 0.004),  # flat: (4 - 3) - 3 = -2, a loss
    (R_FILL, 2.6, 5, 4.0, 0.0, 3.5, 0.0),  # open long (before: net 1)
    (R_FILL, 2.8, -3, 6.0, 0.0, 4.0, 0.0),  # reversed: (6 - 4) - 1 = +1, a win; opens short
    (R_MARK, 5, -3, 6.0, -1.0, 4.0, 0.0025),  # no marks at 3 s and 4 s: nothing happened then
    (R_CLOSE, 6, -3, 6.0, -2.0, 4.0, 0.003),
]


def portfolio() -> np.ndarray:
    out = new_states(len(ROWS))
    for row, (reason, ts, position, realised, unrealised, fees, drawdown) in zip(
        out, ROWS, strict=True
    ):
        row["reason"], row["ts_event"], row["position"] = reason, int(ts * S), position
        row["realised"], row["unrealised"], row["fees"] = realised, unrealised, fees
        row["equity"] = START + realised + unrealised - fees
        row["drawdown"] = drawdown
    return out


def fill(side: int, price: int, slippage: float, liquidity: str) -> OrderFilled:
    return OrderFilled(1, 1, 1, side, "entry", price, 1, 0, 0.1, liquidity, 100.0, slippage)


EXECUTIONS = [
    fill(1, 101, 1.0, "taker"),
    fill(-1, 100, 0.0, "maker"),
    fill(1, 102, 2.0, "taker"),
    OrderRejected(1, 1, 9, "book_not_ready", "x"),
    OrderRejected(1, 1, 9, "too_late_to_cancel", "x"),
]
RISK = [
    DecisionRejected(1, 1, 1, 1, 0.5, "low_confidence", "x", 0.5, 0.6),
    DecisionRejected(1, 1, 1, 1, 0.5, "low_confidence", "x", 0.5, 0.6),
    DecisionRejected(1, 1, 1, 1, 0.9, "order_pending", "x", 1.0, 0.0),
    CircuitBreakerTripped(1, 1, "2024-01-01", 1.0, 2.0, 0.5, 0.03),
]


def test_round_trips_pnl_and_counts() -> None:
    report = build_report(portfolio(), EXECUTIONS, RISK)
    assert (report.round_trips, report.wins) == (3, 2)
    assert report.win_rate == pytest.approx(2 / 3)
    assert report.gross_pnl == 6.0 - 2.0
    assert report.fees == 4.0
    assert report.net_pnl == 0.0
    assert report.final_equity == START + 6.0 - 2.0 - 4.0
    assert report.starting_equity == START
    assert (report.unrealised_pnl, report.open_position) == (-2.0, -3)
    # equity peaks at 1003 (after the first trip) and falls to 1000 at the end: 3 / 1003
    assert report.max_drawdown == pytest.approx(3 / 1003)
    assert (report.fills, report.maker_fills, report.taker_fills) == (3, 1, 2)
    assert report.mean_slippage_bp == pytest.approx((100.0 + 0.0 + 200.0) / 3)
    assert report.rejections == {"low_confidence": 2, "order_pending": 1}
    assert list(report.rejections) == ["low_confidence", "order_pending"]
    assert report.order_rejections == {"book_not_ready": 1, "too_late_to_cancel": 1}
    assert report.breaker_trips == 1


def test_sharpe_uses_the_mark_grid_and_fills_gaps_from_the_next_mark() -> None:
    """Marks at 0, 1, 2 and 5 s: the 3 s and 4 s boundaries saw no event, so the state then
    was the one marked at 5 s. Per-interval returns of that grid, not annualised."""
    equity = [START, START + 1.0, START + 3.0, START + 1.0, START + 1.0, START + 1.0]
    returns = np.array(equity[1:]) / np.array(equity[:-1]) - 1.0
    report = build_report(portfolio(), EXECUTIONS, RISK, mark_interval_ms=1000)
    assert report.sharpe_returns == 5
    assert report.sharpe == pytest.approx(returns.mean() / returns.std(ddof=1))
    assert report.mark_interval_ms == 1000


def test_exposure_is_the_time_share_with_a_position() -> None:
    """Held from 0.5 to 1.5 s, 2.2 to 2.4 s and from 2.6 s to the end at 6 s, of 6 s."""
    report = build_report(portfolio(), EXECUTIONS, RISK)
    assert report.exposure == pytest.approx((1.0 + 0.2 + 3.4) / 6.0)


def test_an_empty_run() -> None:
    report = build_report(new_states(0), [])
    assert report.round_trips == report.fills == 0
    assert report.win_rate is None
    assert report.sharpe is None
    assert report.final_equity == report.net_pnl == 0.0
    flat = portfolio()[[0, 2, 4]]
    flat["equity"] = START
    assert build_report(flat, []).sharpe is None  # no variation: undefined, not 0 or inf


def test_the_report_is_a_msgspec_struct_that_renders_as_rows() -> None:
    report = build_report(portfolio(), EXECUTIONS, RISK)
    assert isinstance(report, Report)
    assert msgspec.json.decode(msgspec.json.encode(report), type=Report) == report
    rows = dict(report_rows(report, "USD"))
    assert rows["round trips"] == "3 (2 won, win rate 66.7%)"
    assert rows["net PnL"] == "+0.00 USD"
    assert rows["fees"] == "4.00 USD"
    assert rows["decisions rejected"] == "low_confidence 2, order_pending 1"
    assert rows["Sharpe"].endswith("per 1000 ms, not annualised (5 returns)")
    assert rows["max drawdown"] == "0.299%"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in report_rows(report))
    empty = dict(report_rows(build_report(new_states(0), [])))
    assert empty["Sharpe"].startswith("n/a")
    assert empty["decisions rejected"] == "none"
    assert not math.isnan(report.exposure)
