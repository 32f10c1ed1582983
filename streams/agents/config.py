"""Settings of the ``agents`` processor: one table per agent, thresholds with their defaults.

In a run config they are nested tables (``[stages.agents.order_flow]``); each nested table is
merged key by key over the instrument's defaults, so setting one threshold keeps the others.
Thresholds are unit-free (ratios, multiples of a running average or of volatility) so one
default suits every instrument, except ``order_flow.ofi_depth_ratio`` (order-flow imbalance in
L1 depths, whose scale differs by venue) and ``l1`` (where the best bid/ask come from).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.events.control import InstrumentSpec
from engine.runtime.topology import ConfigError, typed_config
from streams.agents import evaluate as ev
from streams.agents import tape

STAGE = "agents"
L1_SOURCES = ("book", "quote")


@dataclass(frozen=True)
class OrderFlowConfig:
    """Order flow: who is aggressive and how the queues move."""

    aggressor_imbalance: float = 0.3
    """``trade_imbalance_5s`` at which aggressive buying (selling) fires."""
    ofi_depth_ratio: float = 10.0
    """``ofi_depth_ratio_5s`` (order-flow imbalance in L1 depths) at which OFI fires."""
    persistent_imbalance: float = 0.2
    """``trade_imbalance_30s`` (with trade counts agreeing) at which persistent flow fires."""
    intense_ratio: float = 2.0
    """``volume_ratio_5s_30s`` at or above which the tape is intense (confidence x 1.25)."""
    quiet_ratio: float = 0.5
    """``volume_ratio_5s_30s`` at or below which the tape is quiet (confidence x 0.5)."""


@dataclass(frozen=True)
class LiquidityConfig:
    """Liquidity: where the resting size is and how it changes."""

    depth_imbalance: float = 0.6
    """``depth_imbalance_5`` at which the book is bid (ask) heavy."""
    touch_imbalance: float = 0.9
    """``depth_imbalance_1`` at which the touch presses up (down)."""
    slope_ratio: float = 4.0
    """Ratio of the book slopes (size per bps) at which the other side is thin (> 1)."""
    trend: float = 0.3
    """Rise of the 10-level depth imbalance over its EMA at which depth is building."""
    trend_tau_s: float = 10.0
    """Time constant of that EMA, seconds of event time."""
    wide_spread_ratio: float = 1.5
    """``spread_ema_ratio_30s`` at or above which the spread is wide (confidence x 0.5)."""


@dataclass(frozen=True)
class TapeReadingConfig:
    """Tape reading: the sequence, size and speed of the prints."""

    run_trades: int = 5
    """Consecutive same-side trades that make a run."""
    run_age_s: float = 5.0
    """A run counts only while its last trade is at most this old, seconds."""
    large_multiple: float = 20.0
    """A print is large at this multiple of the trade-size EWMA."""
    large_halflife_trades: float = 200.0
    """Half-life of the trade-size EWMA, in trades."""
    large_tau_s: float = 5.0
    """Time constant of the decayed net count of large prints, seconds."""
    large_net: float = 0.5
    """Decayed net large prints at which large buying (selling) fires."""
    fast_tau_s: float = 2.0
    """Time constant of the fast trade rate, seconds."""
    slow_tau_s: float = 30.0
    """Time constant of the slow trade rate, seconds."""
    accel_ratio: float = 2.0
    """Fast over slow trade rate at which the tape accelerates."""
    vwap_vol: float = 0.5
    """``vwap_deviation_30s`` in units of ``realized_vol_15s`` at which price vs VWAP fires."""
    stale_s: float = 10.0
    """Seconds since the last trade after which the tape is stale (confidence x 0.5)."""


@dataclass(frozen=True)
class FootprintConfig:
    """Footprint: volume at price by aggressor side over a window."""

    window_s: float = 30.0
    """The footprint window, seconds of event time."""
    row_ticks: int = 0
    """Price row height in ticks; 0: from the first trade, ``row_bps`` of its price."""
    row_bps: float = 0.2
    """Row height in bps of the first trade's price when ``row_ticks`` is 0 (at least 1 tick)."""
    max_trades: int = 16384
    """Trades the window holds; beyond it the oldest leave early."""
    delta_ratio: float = 0.3
    """Window delta (buy - sell) / (buy + sell) at which delta buying (selling) fires."""
    absorption_multiple: float = 3.0
    """Aggressive volume at the current bid (ask) row, in average row volumes, that the
    quote absorbed."""
    exhaustion_fraction: float = 0.25
    """Volume at the window's extreme row, in average row volumes, at or below which the
    move is exhausted."""
    stack_rows: int = 3
    """Consecutive diagonal imbalances that make a stack."""
    stack_ratio: float = 3.0
    """Buy volume at a row over sell volume one row below (and the mirror) for an imbalance."""
    stack_share: float = 0.5
    """Least volume of an imbalanced row, in average row volumes."""
    divergence_delta: float = 0.2
    """Window delta against the price at its extreme at which divergence fires."""
    min_trades: int = 20
    """Fewer trades in the window make it thin (confidence x 0.5)."""


@dataclass(frozen=True)
class AgentsConfig:
    """Settings of the ``agents`` processor."""

    l1: str = "book"
    """Best bid/ask for signing trades and the footprint: ``book`` (level 1 of ``book.top``)
    or ``quote`` (``market.quote``); default as the features stage: ``quote`` on Binance."""
    full_evidence: float = 2.0
    """Evidence at which an agent's confidence reaches 1 (two rules at twice their threshold)."""
    order_flow: OrderFlowConfig = field(default_factory=OrderFlowConfig)
    liquidity: LiquidityConfig = field(default_factory=LiquidityConfig)
    tape_reading: TapeReadingConfig = field(default_factory=TapeReadingConfig)
    footprint: FootprintConfig = field(default_factory=FootprintConfig)


NESTED = ("order_flow", "liquidity", "tape_reading", "footprint")


def agents_config(spec: InstrumentSpec) -> AgentsConfig:
    """The defaults for an instrument: its L1 source and its OFI scale."""
    binance = spec.venue.startswith("BINANCE")
    # B3 top of book is thin and slow: 5 s of OFI is a few L1 depths where deep venues see tens
    ofi = 2.0 if spec.venue == "B3" else 10.0
    return AgentsConfig(
        l1="quote" if binance else "book",
        order_flow=OrderFlowConfig(ofi_depth_ratio=ofi),
    )


def defaults(spec: InstrumentSpec) -> dict[str, Any]:
    """The stage's default settings for ``spec`` as a plain (nested) dict."""
    return dataclasses.asdict(agents_config(spec))


def load(spec: InstrumentSpec, config: dict[str, Any]) -> AgentsConfig:
    """``config`` over the instrument defaults (nested tables key by key), validated."""
    merged = defaults(spec)
    for key, value in config.items():
        if key in NESTED and isinstance(value, dict):
            known = merged[key]
            unknown = sorted(set(value) - set(known))
            if unknown:
                raise ConfigError(
                    f"stage {STAGE!r}: unknown setting(s) {unknown} in {key}; it takes "
                    f"{', '.join(known)}"
                )
            merged[key] = {**known, **value}
        else:
            merged[key] = value
    return _validated(typed_config(AgentsConfig, STAGE, merged))


def _positive(table: str, obj: Any) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        ok = value > 0 if f.name != "row_ticks" else value >= 0
        if not (isinstance(value, int | float) and math.isfinite(value) and ok):
            allowed = ">= 0" if f.name == "row_ticks" else "a finite number > 0"
            raise ConfigError(f"stage {STAGE!r}: {table}.{f.name} must be {allowed}, got {value}")


def _validated(c: AgentsConfig) -> AgentsConfig:
    if c.l1 not in L1_SOURCES:
        raise ConfigError(
            f"stage {STAGE!r}: l1 must be one of {', '.join(map(repr, L1_SOURCES))}, got {c.l1!r}"
        )
    if not (math.isfinite(c.full_evidence) and c.full_evidence > 0):
        raise ConfigError(f"stage {STAGE!r}: full_evidence must be > 0, got {c.full_evidence}")
    for name in NESTED:
        _positive(name, getattr(c, name))
    if c.liquidity.slope_ratio <= 1:
        raise ConfigError(
            f"stage {STAGE!r}: liquidity.slope_ratio must be > 1 (a ratio of slopes), got "
            f"{c.liquidity.slope_ratio}"
        )
    if c.order_flow.quiet_ratio >= c.order_flow.intense_ratio:
        raise ConfigError(
            f"stage {STAGE!r}: order_flow.quiet_ratio ({c.order_flow.quiet_ratio}) must be "
            f"below intense_ratio ({c.order_flow.intense_ratio})"
        )
    tr = c.tape_reading
    if tr.fast_tau_s >= tr.slow_tau_s:
        raise ConfigError(
            f"stage {STAGE!r}: tape_reading.fast_tau_s ({tr.fast_tau_s}) must be below "
            f"slow_tau_s ({tr.slow_tau_s})"
        )
    return c


def thresholds(c: AgentsConfig) -> np.ndarray[Any, Any]:
    """The rule thresholds as the ``q`` array :mod:`streams.agents.evaluate` reads."""
    o, lq, tr, f = c.order_flow, c.liquidity, c.tape_reading, c.footprint
    q = np.zeros(ev.N_Q, np.float64)
    q[ev.Q_FULL] = c.full_evidence
    q[ev.Q_AGGRESSOR], q[ev.Q_OFI], q[ev.Q_PERSISTENT] = (
        o.aggressor_imbalance,
        o.ofi_depth_ratio,
        o.persistent_imbalance,
    )
    q[ev.Q_INTENSE], q[ev.Q_QUIET] = o.intense_ratio, o.quiet_ratio
    q[ev.Q_DEPTH], q[ev.Q_TOUCH], q[ev.Q_SLOPE] = (
        lq.depth_imbalance,
        lq.touch_imbalance,
        lq.slope_ratio,
    )
    q[ev.Q_TREND], q[ev.Q_WIDE] = lq.trend, lq.wide_spread_ratio
    q[ev.Q_RUN], q[ev.Q_LARGE_NET], q[ev.Q_ACCEL] = tr.run_trades, tr.large_net, tr.accel_ratio
    q[ev.Q_VWAP_VOL], q[ev.Q_STALE] = tr.vwap_vol, tr.stale_s
    q[ev.Q_DELTA], q[ev.Q_ABSORB], q[ev.Q_EXHAUST] = (
        f.delta_ratio,
        f.absorption_multiple,
        f.exhaustion_fraction,
    )
    q[ev.Q_STACK], q[ev.Q_DIVERGENCE], q[ev.Q_MIN_TRADES] = (
        f.stack_rows,
        f.divergence_delta,
        f.min_trades,
    )
    return q


def tape_params(c: AgentsConfig, spec: InstrumentSpec) -> tuple[np.ndarray[Any, Any], ...]:
    """The tape kernel's ``(tp, cfg)`` arrays."""
    tr, f, lq = c.tape_reading, c.footprint, c.liquidity
    tp = np.zeros(tape.N_P, np.float64)
    tp[tape.P_ROW_BPS] = f.row_bps
    tp[tape.P_SIZE_ALPHA] = 1.0 - 2.0 ** (-1.0 / tr.large_halflife_trades)
    tp[tape.P_LARGE_MULT] = tr.large_multiple
    tp[tape.P_LARGE_TAU] = tr.large_tau_s * tape.SEC
    tp[tape.P_FAST_TAU] = tr.fast_tau_s * tape.SEC
    tp[tape.P_SLOW_TAU] = tr.slow_tau_s * tape.SEC
    tp[tape.P_STACK_RATIO] = f.stack_ratio
    tp[tape.P_STACK_SHARE] = f.stack_share
    tp[tape.P_TREND_TAU] = lq.trend_tau_s * tape.SEC
    tp[tape.P_RUN_AGE] = tr.run_age_s * tape.SEC
    cfg = np.zeros(tape.N_C, np.int64)
    cfg[tape.C_L1_QUOTE] = 1 if c.l1 == "quote" else 0
    cfg[tape.C_ROW_TICKS] = f.row_ticks
    if spec.tick_size <= 0:
        raise ConfigError(f"stage {STAGE!r}: instrument tick_size must be > 0: {spec}")
    cfg[tape.C_TICK] = spec.tick_size
    cfg[tape.C_WINDOW] = round(f.window_s * tape.SEC)
    return tp, cfg
