"""The end-of-run report: what the simulated account did, recomputed from the run's outputs.

:func:`build_report` is a pure function of the ``portfolio`` records and the ``executions``
(and ``risk``) events of a run, so anyone can recompute it from the log. Definitions
(docs/trading.md has the full text):

* **Round trip**: from a ``portfolio.state`` whose position leaves zero to the next one where it
  is zero again (a reversal closes one and opens another). Its net PnL is the change of
  ``realised - fees`` from the state before it opened to the state that closed it; it is a
  win when that is above zero.
* **Gross / net PnL**: realised + unrealised at the last state; net subtracts all fees
  (so net = final equity - starting equity).
* **Sharpe**: mean over standard deviation (sample, ``ddof = 1``) of the simple returns of
  equity between consecutive mark boundaries, per mark interval and **not annualised**:
  sessions are minutes long, and scaling their per-second noise to a year says nothing. A
  boundary with no mark (no journal event in that interval) takes the equity of the next mark,
  which is the state that was in effect through the gap.
* **Max drawdown**: the largest ``drawdown`` of any state (fraction of the running peak).
* **Exposure**: share of the time between the first and last state with a position open.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from engine.events.trading import (
    R_MARK,
    CircuitBreakerTripped,
    DecisionRejected,
    OrderFilled,
    OrderRejected,
)


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """The run's trading summary (money in the quote currency)."""

    starting_equity: float
    final_equity: float
    round_trips: int
    wins: int
    win_rate: float | None
    """wins / round_trips; None without a round trip."""
    gross_pnl: float
    fees: float
    net_pnl: float
    unrealised_pnl: float
    """Part of gross PnL still open at the end (marked to the last mid)."""
    open_position: int
    """Position at the end, size units."""
    sharpe: float | None
    """Per mark interval, not annualised; None with fewer than two returns or no variation."""
    sharpe_returns: int
    """Equity returns the Sharpe ratio was computed from."""
    mark_interval_ms: int
    max_drawdown: float
    """Largest drawdown, fraction of the running peak equity."""
    exposure: float
    """Share of the time with a position open."""
    fills: int
    maker_fills: int
    taker_fills: int
    mean_slippage_bp: float | None
    """Mean over fills of slippage / reference price, basis points (+ is worse)."""
    rejections: dict[str, int]
    """Decisions refused by risk, by reason."""
    order_rejections: dict[str, int]
    """Orders (and cancels) refused by the venue, by reason."""
    breaker_trips: int


def build_report(
    portfolio: np.ndarray[Any, Any],
    executions: Sequence[msgspec.Struct],
    risk: Sequence[msgspec.Struct] = (),
    mark_interval_ms: int = 1000,
) -> Report:
    """The report of one run from its ``portfolio``, ``executions`` and ``risk`` outputs."""
    if len(portfolio):
        last = portfolio[-1]
        realised, unrealised, fees = (float(last[f]) for f in ("realised", "unrealised", "fees"))
        final = float(last["equity"])
        position = int(last["position"])
    else:
        realised = unrealised = fees = final = 0.0
        position = 0
    net = realised + unrealised - fees
    trips = _round_trips(portfolio)
    wins = sum(1 for t in trips if t > 0)
    sharpe, n_returns = _sharpe(portfolio, mark_interval_ms * 1_000_000)
    fills = [e for e in executions if isinstance(e, OrderFilled)]
    slippage = [
        f.slippage / f.reference_price * 1e4
        for f in fills
        if math.isfinite(f.reference_price) and f.reference_price > 0
    ]
    return Report(
        starting_equity=final - net,
        final_equity=final,
        round_trips=len(trips),
        wins=wins,
        win_rate=wins / len(trips) if trips else None,
        gross_pnl=realised + unrealised,
        fees=fees,
        net_pnl=net,
        unrealised_pnl=unrealised,
        open_position=position,
        sharpe=sharpe,
        sharpe_returns=n_returns,
        mark_interval_ms=mark_interval_ms,
        max_drawdown=float(portfolio["drawdown"].max()) if len(portfolio) else 0.0,
        exposure=_exposure(portfolio),
        fills=len(fills),
        maker_fills=sum(1 for f in fills if f.liquidity == "maker"),
        taker_fills=sum(1 for f in fills if f.liquidity == "taker"),
        mean_slippage_bp=sum(slippage) / len(slippage) if slippage else None,
        rejections=_counts(e.reason for e in risk if isinstance(e, DecisionRejected)),
        order_rejections=_counts(e.reason for e in executions if isinstance(e, OrderRejected)),
        breaker_trips=sum(1 for e in risk if isinstance(e, CircuitBreakerTripped)),
    )


def _counts(reasons: Any) -> dict[str, int]:
    counted = Counter(reasons)
    return {reason: counted[reason] for reason in sorted(counted)}


def _round_trips(portfolio: np.ndarray[Any, Any]) -> list[float]:
    """Net PnL (change of realised - fees) of every closed round trip, in order."""
    trips: list[float] = []
    before = 0.0  # realised - fees of the state before the open round trip began
    previous_net, held = 0.0, 0
    for position, realised, fees in zip(
        portfolio["position"].tolist(),
        portfolio["realised"].tolist(),
        portfolio["fees"].tolist(),
        strict=True,
    ):
        net = realised - fees
        if held != 0 and (position == 0 or (position > 0) != (held > 0)):
            trips.append(net - before)
            before = net  # a reversal opens the next round trip at this state
        elif held == 0 and position != 0:
            before = previous_net
        previous_net, held = net, position
    return trips


def _sharpe(portfolio: np.ndarray[Any, Any], interval: int) -> tuple[float | None, int]:
    marks = portfolio[portfolio["reason"] == R_MARK]
    if len(marks) < 2:
        return None, 0
    ts = marks["ts_event"].astype(np.int64)
    slots = (ts - ts[0]) // interval
    grid = np.arange(int(slots[-1]) + 1)
    # Each boundary takes the next mark's equity: that state held through the gap before it.
    equity = marks["equity"][np.searchsorted(slots, grid, side="left")]
    returns = equity[1:] / equity[:-1] - 1.0
    if len(returns) < 2:
        return None, len(returns)
    spread = float(returns.std(ddof=1))
    if spread == 0.0 or not math.isfinite(spread):
        return None, len(returns)
    return float(returns.mean()) / spread, len(returns)


def _exposure(portfolio: np.ndarray[Any, Any]) -> float:
    if len(portfolio) < 2:
        return 0.0
    ts = portfolio["ts_event"].astype(np.int64)
    span = int(ts[-1] - ts[0])
    if span <= 0:
        return 0.0
    held = np.diff(ts)[portfolio["position"][:-1] != 0].sum()
    return float(held) / span


def report_rows(report: Report, currency: str = "", size_scale: int = 0) -> list[tuple[str, str]]:
    """The report as (label, value) strings for a two-column table; the open position is
    shown in the instrument's units (``size_scale`` decimal places)."""
    unit = f" {currency}" if currency else ""
    position = f"{report.open_position / 10**size_scale:,.{size_scale}f}"
    rate = "n/a" if report.win_rate is None else f"{report.win_rate:.1%}"
    sharpe = "n/a" if report.sharpe is None else f"{report.sharpe:.4f}"
    slip = "n/a" if report.mean_slippage_bp is None else f"{report.mean_slippage_bp:+.2f} bp"
    rejected = ", ".join(f"{r} {n}" for r, n in report.rejections.items()) or "none"
    refused = ", ".join(f"{r} {n}" for r, n in report.order_rejections.items()) or "none"
    return [
        ("starting equity", f"{report.starting_equity:,.2f}{unit}"),
        ("final equity", f"{report.final_equity:,.2f}{unit}"),
        ("round trips", f"{report.round_trips} ({report.wins} won, win rate {rate})"),
        ("gross PnL", f"{report.gross_pnl:+,.2f}{unit}"),
        ("fees", f"{report.fees:,.2f}{unit}"),
        ("net PnL", f"{report.net_pnl:+,.2f}{unit}"),
        ("open position", f"{position} (unrealised {report.unrealised_pnl:+,.2f})"),
        (
            "Sharpe",
            f"{sharpe} per {report.mark_interval_ms} ms, not annualised "
            f"({report.sharpe_returns} returns)",
        ),
        ("max drawdown", f"{report.max_drawdown:.3%}"),
        ("exposure", f"{report.exposure:.1%} of the time in a position"),
        (
            "fills",
            f"{report.fills} ({report.maker_fills} maker, {report.taker_fills} taker), "
            f"mean slippage {slip}",
        ),
        ("decisions rejected", rejected),
        ("orders rejected", refused),
        ("circuit breaker trips", str(report.breaker_trips)),
    ]
