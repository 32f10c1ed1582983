"""What doing something simple would have made over the same window, net of the same fees.

Beside every trading report (docs/trading.md, "Baselines"):

* **no trade**: 0;
* **buy and hold**: buy at the window's first ask (the first two-sided ``book.mid``: mid +
  spread / 2) and sell at its last bid, paying the taker fee on both sides, with the strategy's
  mean round-trip size (without round trips: the largest position risk allows,
  ``max_position_pct`` of the starting equity at the first mid, in whole lots); a window of
  several intervals holds through each interval separately;
* **random entry**: as many trades as the strategy opened in the window, each with the same
  holding time and size as one of the strategy's, entered at a uniformly random time of the
  interval it opened in (so that it ends inside it) in a random direction, at the touch, taker
  fee on both sides. ``RANDOM_DRAWS`` such strategies are drawn from a generator seeded with
  the run's seed for the trading stage (so a replay draws the same); the report gives their
  median, 5th and 95th percentiles, and the share the strategy beat.

Prices are the touch implied by ``book.mid`` (``mid`` and ``spread``) in effect at a time: the
last two-sided update at or before it. The strategy itself may get better or worse prices
(limit orders, depth): these baselines are simple on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

RANDOM_DRAWS = 1000
"""Random-entry strategies drawn per window."""


class Baselines(msgspec.Struct, frozen=True, kw_only=True):
    """The strategy's net PnL over a window beside the three baselines'."""

    strategy: float
    no_trade: float
    buy_and_hold: float | None
    """None: no two-sided book in the window."""
    buy_and_hold_size: int
    random_median: float | None
    """None: no two-sided book in the window."""
    random_p05: float | None
    random_p95: float | None
    random_trades: int
    random_draws: int
    random_seed: int
    beats_no_trade: bool
    beats_buy_and_hold: bool | None
    beats_random: bool | None
    """Whether the strategy made more than the random strategies' median."""
    random_beaten_share: float | None
    """Share of the random strategies that made less than the strategy."""


@dataclass(frozen=True)
class Market:
    """The touch over time (from ``book.mid``) and what a price times a size is worth."""

    ts: np.ndarray[Any, Any]
    """Non-decreasing event times of two-sided updates."""
    cause: np.ndarray[Any, Any]
    bid: np.ndarray[Any, Any]
    ask: np.ndarray[Any, Any]
    value: float
    """Quote currency per price unit per size unit."""
    taker_bp: float

    @classmethod
    def of(cls, mids: np.ndarray[Any, Any], value: float, taker_bp: float) -> Market:
        """From a run's ``book.mid`` records."""
        two = mids[mids["two_sided"] == 1]
        half = two["spread"].astype(np.float64) / 2
        ts = np.maximum.accumulate(two["ts_event"].astype(np.int64)) if len(two) else np.zeros(0)
        return cls(
            ts, two["cause"].astype(np.int64), two["mid"] - half, two["mid"] + half, value, taker_bp
        )

    def at(self, ts: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Index of the update in effect at each time (at or before it; the first if none)."""
        return np.maximum(np.searchsorted(self.ts, ts, side="right") - 1, 0)

    def trade(
        self, side: np.ndarray[Any, Any], size: np.ndarray[Any, Any], enter: Any, leave: Any
    ) -> np.ndarray[Any, Any]:
        """Net PnL of round trips entered at update ``enter`` and left at ``leave`` (indexes),
        ``side`` +1 long / -1 short, crossing the spread both ways, taker fee on both."""
        buy_in = np.where(side > 0, self.ask[enter], self.bid[enter])
        sell_out = np.where(side > 0, self.bid[leave], self.ask[leave])
        gross = side * (sell_out - buy_in) * size * self.value
        fees = (buy_in + sell_out) * size * self.value * self.taker_bp * 1e-4
        return np.asarray(gross - fees)


@dataclass(frozen=True)
class Held:
    """A strategy round trip opened in the window: interval index, holding time, size."""

    interval: int
    hold_ns: int
    size: int


def compare(
    strategy: float,
    market: Market,
    intervals: list[tuple[int, int]],
    held: list[Held],
    fallback_size: int,
    seed: int,
) -> Baselines:
    """The baselines of a window (see the module docstring) beside ``strategy``'s net PnL."""
    spans = [_span(market, lo, hi) for lo, hi in intervals]
    live = [s for s in spans if s is not None]
    size = round(sum(h.size for h in held) / len(held)) if held else fallback_size
    hold = (
        float(sum(market.trade(np.ones(1), np.full(1, size), a, b)[0] for a, b in live))
        if live
        else None
    )
    draws = _random(market, spans, held, seed) if live else None
    return Baselines(
        strategy=strategy,
        no_trade=0.0,
        buy_and_hold=hold,
        buy_and_hold_size=size,
        random_median=None if draws is None else float(np.median(draws)),
        random_p05=None if draws is None else float(np.percentile(draws, 5)),
        random_p95=None if draws is None else float(np.percentile(draws, 95)),
        random_trades=len(held),
        random_draws=RANDOM_DRAWS if draws is not None else 0,
        random_seed=seed,
        beats_no_trade=strategy > 0.0,
        beats_buy_and_hold=None if hold is None else strategy > hold,
        beats_random=None if draws is None else strategy > float(np.median(draws)),
        random_beaten_share=None if draws is None else float(np.mean(draws < strategy)),
    )


def _span(market: Market, lo: int, hi: int) -> tuple[int, int] | None:
    """First and last two-sided update caused in ``[lo, hi)``, as indexes."""
    a, b = np.searchsorted(market.cause, [lo, hi], side="left")
    return (int(a), int(b) - 1) if b > a else None


def _random(
    market: Market, spans: list[tuple[int, int] | None], held: list[Held], seed: int
) -> np.ndarray[Any, Any]:
    """Net PnL of ``RANDOM_DRAWS`` random-entry strategies (see the module docstring)."""
    rng = np.random.default_rng(seed)
    total = np.zeros(RANDOM_DRAWS)
    for trip in held:
        span = spans[trip.interval]
        if span is None:
            continue
        first, last = int(market.ts[span[0]]), int(market.ts[span[1]])
        latest = max(first, last - trip.hold_ns)
        starts = first + np.floor(rng.random(RANDOM_DRAWS) * (latest - first + 1)).astype(np.int64)
        side = np.where(rng.random(RANDOM_DRAWS) < 0.5, -1.0, 1.0)
        enter = np.clip(market.at(starts), span[0], span[1])
        leave = np.clip(market.at(starts + trip.hold_ns), span[0], span[1])
        total += market.trade(side, np.full(RANDOM_DRAWS, float(trip.size)), enter, leave)
    return total
