"""The account report: what the simulated account did over a window of a run, recomputed from
the run's outputs.

:func:`build_report` is a pure function of the ``portfolio`` records and the ``executions``
(and ``risk``) events of a run, over the whole run or over a *window*: intervals
``[start, stop)`` of journal offsets (causes), such as the out-of-sample part of the run
(:mod:`streams.trading.evaluation`). Definitions (docs/trading.md has the full text):

* **Round trip**: from a ``portfolio.state`` whose position leaves zero to the next one where it
  is zero again (a reversal closes one and opens another). Its net PnL is the change of
  ``realised - fees`` from the state before it opened to the state that closed it; it is a
  win when that is above zero. A window counts the round trips that *opened* in it.
* **Gross / net PnL**: the change of equity over the window's intervals, each marked from the
  last state before it to the last state inside it (a position open at an edge is marked to
  mid there); net subtracts the fees paid in the window. Over a whole run, net = final equity
  - starting equity.
* **Sharpe**: mean over standard deviation (sample, ``ddof = 1``) of the simple returns of
  equity between consecutive mark boundaries inside the window, per mark interval and **not
  annualised**: sessions are minutes long, and scaling their per-second noise to a year says
  nothing. A boundary with no mark (no journal event in that interval) takes the equity of the
  next mark, which is the state that was in effect through the gap.
* **Max drawdown**: the largest fall of equity from its running peak within the window (the
  peak starts again at each interval), as a fraction of the peak.
* **Exposure**: share of the window's time (first to last state of each interval) with a
  position open.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import numpy as np

from engine.events.trading import (
    R_MARK,
    CircuitBreakerTripped,
    DecisionRejected,
    OrderFilled,
    OrderRejected,
)

EVERYTHING = ((0, 2**62),)
"""A window covering any run: every journal offset."""
Intervals = Sequence[tuple[int, int]]


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """The account over a window (money in the quote currency)."""

    starting_equity: float
    """Equity just before the window began."""
    final_equity: float
    """``starting_equity + net_pnl``."""
    round_trips: int
    wins: int
    win_rate: float | None
    """wins / round_trips; None without a round trip."""
    gross_pnl: float
    fees: float
    net_pnl: float
    unrealised_pnl: float
    """PnL of the position still open at the window's end (marked to the last mid)."""
    open_position: int
    """Position at the window's end, size units."""
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


class Trip(NamedTuple):
    """A round trip: indexes of its opening and closing states, and its net PnL once closed."""

    opened: int
    closed: int | None
    net: float | None


def trips(portfolio: np.ndarray[Any, Any]) -> list[Trip]:
    """Every round trip in order; the last may still be open."""
    out: list[Trip] = []
    before = 0.0  # realised - fees of the state before the open round trip began
    previous_net, held, opened = 0.0, 0, -1
    for i, (position, realised, fees) in enumerate(
        zip(
            portfolio["position"].tolist(),
            portfolio["realised"].tolist(),
            portfolio["fees"].tolist(),
            strict=True,
        )
    ):
        net = realised - fees
        if held != 0 and (position == 0 or (position > 0) != (held > 0)):
            out.append(Trip(opened, i, net - before))
            before, opened = net, i  # a reversal opens the next round trip at this state
        elif held == 0 and position != 0:
            before, opened = previous_net, i
        previous_net, held = net, position
    if held != 0:
        out.append(Trip(opened, None, None))
    return out


def inside(causes: np.ndarray[Any, Any], intervals: Intervals) -> np.ndarray[Any, Any]:
    """Which causes lie in any of the intervals."""
    mask = np.zeros(len(causes), bool)
    for lo, hi in intervals:
        mask |= (causes >= lo) & (causes < hi)
    return mask


def _before(portfolio: np.ndarray[Any, Any], offset: int) -> int:
    """Index of the last state caused before ``offset`` (-1: none)."""
    return int(np.searchsorted(portfolio["cause"].astype(np.int64), offset, side="left")) - 1


def build_report(
    portfolio: np.ndarray[Any, Any],
    executions: Sequence[msgspec.Struct],
    risk: Sequence[msgspec.Struct] = (),
    mark_interval_ms: int = 1000,
    intervals: Intervals = EVERYTHING,
    starting_equity: float | None = None,
) -> Report:
    """The report of one run's ``portfolio``, ``executions`` and ``risk`` outputs over the
    window ``intervals`` (default: the whole run). ``starting_equity`` is the account's
    equity before the first state (default: the first state's, less what it had made)."""
    start = _start_equity(portfolio, starting_equity)
    edges = [(_before(portfolio, lo), _before(portfolio, hi)) for lo, hi in intervals]
    equity = portfolio["equity"] if len(portfolio) else np.zeros(0)
    fees_paid = portfolio["fees"] if len(portfolio) else np.zeros(0)
    net = sum(_at(equity, b, start) - _at(equity, a, start) for a, b in edges)
    fees = sum(_at(fees_paid, b, 0.0) - _at(fees_paid, a, 0.0) for a, b in edges)
    last = edges[-1][1] if edges else -1
    window_start = _at(equity, edges[0][0], start) if edges else start
    causes = portfolio["cause"].astype(np.int64) if len(portfolio) else np.zeros(0, np.int64)
    mine = [t for t in trips(portfolio) if inside(causes[[t.opened]], intervals)[0]]
    closed = [t.net for t in mine if t.net is not None]
    wins = sum(1 for t in closed if t > 0)
    sharpe, n_returns = _sharpe(portfolio, mark_interval_ms * 1_000_000, intervals)
    fills = [e for e in executions if isinstance(e, OrderFilled) and _in(e, intervals)]
    slippage = [
        f.slippage / f.reference_price * 1e4
        for f in fills
        if math.isfinite(f.reference_price) and f.reference_price > 0
    ]
    chosen_risk = [e for e in risk if _in(e, intervals)]
    return Report(
        starting_equity=window_start,
        final_equity=window_start + net,
        round_trips=len(closed),
        wins=wins,
        win_rate=wins / len(closed) if closed else None,
        gross_pnl=net + fees,
        fees=fees,
        net_pnl=net,
        unrealised_pnl=float(portfolio["unrealised"][last]) if last >= 0 else 0.0,
        open_position=int(portfolio["position"][last]) if last >= 0 else 0,
        sharpe=sharpe,
        sharpe_returns=n_returns,
        mark_interval_ms=mark_interval_ms,
        max_drawdown=_drawdown(equity, edges, start),
        exposure=_exposure(portfolio, intervals),
        fills=len(fills),
        maker_fills=sum(1 for f in fills if f.liquidity == "maker"),
        taker_fills=sum(1 for f in fills if f.liquidity == "taker"),
        mean_slippage_bp=sum(slippage) / len(slippage) if slippage else None,
        rejections=_counts(e.reason for e in chosen_risk if isinstance(e, DecisionRejected)),
        order_rejections=_counts(
            e.reason for e in executions if isinstance(e, OrderRejected) and _in(e, intervals)
        ),
        breaker_trips=sum(1 for e in chosen_risk if isinstance(e, CircuitBreakerTripped)),
    )


def _start_equity(portfolio: np.ndarray[Any, Any], given: float | None) -> float:
    if given is not None:
        return given
    if not len(portfolio):
        return 0.0
    first = portfolio[0]
    return float(first["equity"] - first["realised"] - first["unrealised"] + first["fees"])


def _at(values: np.ndarray[Any, Any], index: int, before: float) -> float:
    return float(values[index]) if index >= 0 else before


def _in(event: msgspec.Struct, intervals: Intervals) -> bool:
    cause = int(getattr(event, "cause", -1))
    return any(lo <= cause < hi for lo, hi in intervals)


def _counts(reasons: Any) -> dict[str, int]:
    counted = Counter(reasons)
    return {reason: counted[reason] for reason in sorted(counted)}


def _sharpe(
    portfolio: np.ndarray[Any, Any], interval: int, intervals: Intervals
) -> tuple[float | None, int]:
    parts = []
    for lo, hi in intervals:
        marks = portfolio[
            (portfolio["reason"] == R_MARK)
            & inside(portfolio["cause"].astype(np.int64), ((lo, hi),))
        ]
        if len(marks) < 2:
            continue
        ts = marks["ts_event"].astype(np.int64)
        slots = (ts - ts[0]) // interval
        grid = np.arange(int(slots[-1]) + 1)
        # Each boundary takes the next mark's equity: that state held through the gap before it.
        equity = marks["equity"][np.searchsorted(slots, grid, side="left")]
        parts.append(equity[1:] / equity[:-1] - 1.0)
    returns = np.concatenate(parts) if parts else np.zeros(0)
    if len(returns) < 2:
        return None, len(returns)
    spread = float(returns.std(ddof=1))
    if spread == 0.0 or not math.isfinite(spread):
        return None, len(returns)
    return float(returns.mean()) / spread, len(returns)


def _drawdown(equity: np.ndarray[Any, Any], edges: list[tuple[int, int]], start: float) -> float:
    worst = 0.0
    for a, b in edges:
        path = np.concatenate([[_at(equity, a, start)], equity[a + 1 : b + 1]])
        peaks = np.maximum.accumulate(path)
        if len(path) and peaks.max() > 0:
            worst = max(worst, float(((peaks - path) / peaks).max()))
    return worst


def _exposure(portfolio: np.ndarray[Any, Any], intervals: Intervals) -> float:
    held = span = 0
    causes = portfolio["cause"].astype(np.int64) if len(portfolio) else np.zeros(0, np.int64)
    for lo, hi in intervals:
        part = portfolio[inside(causes, ((lo, hi),))]
        if len(part) < 2:
            continue
        ts = part["ts_event"].astype(np.int64)
        span += int(ts[-1] - ts[0])
        held += int(np.diff(ts)[part["position"][:-1] != 0].sum())
    return held / span if span > 0 else 0.0


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
