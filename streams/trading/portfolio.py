"""The simulated account: position, average price, realised and unrealised PnL, fees, equity.

A pure domain module: :class:`Account` changes only through :func:`apply_fill`, and every
money figure comes from one formula (:func:`equity_at`), which the compiled venue loop also
calls to watch the daily loss limit, so the number that trips the circuit breaker is the
number ``portfolio.state`` reports.

Money is float64 in the quote currency. A price unit times a size unit is worth
``value_factor`` of it: ``10**-(price_scale + size_scale) * contract_multiplier``. The
multiplier is 1 where the price is per unit of the size (shares, BTC) and the contract's
point value otherwise (B3 WDO: 10 BRL per point; docs/trading.md).

Identity kept exactly (same float operations everywhere)::

    equity = starting_equity + realised + unrealised - fees
    unrealised = (mid - avg_price) * slope,   slope = position * value_factor
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
from numba import njit

from engine.events.trading import new_states


@dataclass(frozen=True)
class PortfolioConfig:
    """Settings of the account (part of the ``trading`` stage's config)."""

    starting_equity: float = 100_000.0
    """Equity at the start of the run, quote currency."""
    contract_multiplier: float = 1.0
    """Quote currency per price point per contract (1 for shares and spot; WDO: 10)."""
    mark_interval_ms: int = 1000
    """A ``portfolio.state`` is emitted at each multiple of this much event time."""


@njit(cache=True)
def equity_at(base: float, fees: float, avg_price: float, slope: float, mid: float) -> float:
    """``base + (mid - avg_price) * slope - fees``: the one equity formula.

    ``base`` is starting equity + realised PnL; ``slope`` is position * value factor. Flat
    (``slope == 0``) or before any mid (NaN) the unrealised part is zero.
    """
    if slope == 0.0 or math.isnan(mid):
        return base - fees
    return base + (mid - avg_price) * slope - fees


class Account(msgspec.Struct, array_like=True):
    """The account's state; a msgspec Struct so it snapshots exactly."""

    start: float
    value_factor: float
    position: int = 0
    avg_price: float = 0.0
    realised: float = 0.0
    fees: float = 0.0
    peak: float = 0.0

    @property
    def base(self) -> float:
        """Starting equity plus realised PnL (the constant part of equity)."""
        return self.start + self.realised

    @property
    def slope(self) -> float:
        """Position times the value factor: how much equity moves per price unit of mid."""
        return self.position * self.value_factor

    def unrealised(self, mid: float) -> float:
        """PnL of the open position marked to ``mid``."""
        if self.position == 0 or math.isnan(mid):
            return 0.0
        return (mid - self.avg_price) * self.slope

    def equity(self, mid: float) -> float:
        """Equity marked to ``mid`` (see :func:`equity_at`)."""
        return float(_equity_at(self.base, self.fees, self.avg_price, self.slope, mid))


_equity_at = equity_at.py_func
"""The same formula uncompiled: from Python it costs a call, not a dispatch (same IEEE
operations, so the same bits as the compiled one)."""


def new_account(config: PortfolioConfig, price_scale: int, size_scale: int) -> Account:
    """A flat account with the configured starting equity."""
    factor = 10.0 ** -(price_scale + size_scale) * config.contract_multiplier
    return Account(config.starting_equity, factor, peak=config.starting_equity)


def apply_fill(account: Account, side: int, price: int, size: int, fee: float) -> float:
    """Book a fill of ``size`` at ``price`` (side +1 bought, -1 sold); the PnL it realised.

    Adding to (or opening) a position moves the average price to the size-weighted mean;
    reducing realises ``(price - avg_price) * closed * sign(position) * value_factor``; a fill
    larger than the position closes it and opens the rest at ``price``.
    """
    held = account.position
    realised = 0.0
    if held == 0 or (held > 0) == (side > 0):
        total = abs(held) + size
        account.avg_price = (account.avg_price * abs(held) + price * size) / total
    else:
        closed = min(size, abs(held))
        sign = 1 if held > 0 else -1
        realised = (price - account.avg_price) * (closed * sign * account.value_factor)
        account.realised += realised
        if size > abs(held):
            account.avg_price = float(price)
        elif size == abs(held):
            account.avg_price = 0.0
    account.position = held + side * size
    account.fees += fee
    return realised


STATE_FIELDS = (
    "reason",
    "ts_event",
    "cause",
    "position",
    "avg_price",
    "mid",
    "realised",
    "unrealised",
    "fees",
    "equity",
    "peak_equity",
    "drawdown",
    "exposure",
)
"""The ``portfolio.state`` fields :func:`state_record` gives values for, in its order."""


def state_record(account: Account, mid: float, reason: int, ts: int, cause: int) -> tuple:
    """The values (:data:`STATE_FIELDS`) of one ``portfolio.state`` of the account marked to
    ``mid``; updates the peak."""
    equity = account.equity(mid)
    account.peak = max(account.peak, equity)
    drawdown = (account.peak - equity) / account.peak if account.peak > 0 else 0.0
    notional = abs(account.slope) * mid if account.position and not math.isnan(mid) else 0.0
    exposure = notional / equity if equity > 0 else math.inf
    return (
        reason,
        ts,
        cause,
        account.position,
        account.avg_price,
        mid,
        account.realised,
        account.unrealised(mid),
        account.fees,
        equity,
        account.peak,
        drawdown,
        exposure,
    )


def states_array(values: list[tuple]) -> np.ndarray[Any, Any]:
    """``portfolio.state`` records from :func:`state_record` values."""
    out = new_states(len(values))
    for name, column in zip(STATE_FIELDS, zip(*values, strict=True), strict=False):
        out[name] = column
    return out
