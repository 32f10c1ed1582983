"""The ``trading`` processor: risk, a simulated venue and the portfolio, event by event.

Inputs
    Port ``decisions`` (``consensus.decision``), port ``book`` (``book.top``), port ``mid``
    (``book.mid``) and the journal's market records (trades; adds, cancels and executions with
    order ids), all of the same slice. Control events: ``clock.ticked`` moves the clock,
    ``control.halt_trading`` / ``control.resume_trading`` and ``feed.trading_status_changed``
    stop and allow new orders, ``session.closed`` emits the final portfolio state.
Outputs
    Port ``risk`` (``risk.*``: rejections, resizes, the circuit breaker, trading days),
    ``orders`` (``orders.*``: submissions, cancel requests), ``executions`` (``executions.*``:
    the venue's acknowledgements, fills, cancels, rejections) and ``portfolio``
    (``portfolio.state`` after every fill, every ``mark_interval_ms`` of event time, and at
    session close). Every event's ``cause`` is the journal offset whose processing made it.
State
    The venue's arrays (clock, book in effect, mid, our orders and their queue positions), the
    account, the trading day (entries, breaker), halts, the next mark, the next order id and
    the working entry's deadline; :meth:`snapshot` serialises all of it exactly.
Guarantees
    Deterministic and batch-independent: one compiled loop applies journal events in offset
    order and stops at the same events whatever the slicing; every Python step (risk, fills,
    timers) runs at a stop, in order. Time comes only from events; order ids count up from 1.
    Pure: no I/O but reading the pinned time-zone data.

Why one stage: risk needs the position and equity that fills change, fills come from the
venue, and the venue acts on the orders risk sends. Across stages that loop could only close
once per slice, so outputs would depend on slice boundaries. Here the pure modules
(:mod:`~streams.trading.risk`, :mod:`~streams.trading.execution`,
:mod:`~streams.trading.portfolio`) take turns within each journal event
(:mod:`~streams.trading.desk`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import numpy as np

from engine.events.book import BOOK_MID, BOOK_TOP_DTYPE
from engine.events.broker import BrokerReport
from engine.events.control import SessionClosed
from engine.events.decisions import DECISION
from engine.events.market import MARKET_RECORD
from engine.events.trading import (
    EXECUTIONS_FAMILY,
    ORDERS_FAMILY,
    PORTFOLIO_STATE,
    RISK_FAMILY,
)
from engine.runtime.processor import Output, Port, Slice, StageContext, load_state
from engine.runtime.topology import ConfigError, ReportContext, Stage
from streams.trading import risk
from streams.trading.broker_venue import BrokerVenue
from streams.trading.config import TradingConfig, trading_config, trading_defaults
from streams.trading.desk import Desk, DeskState, clock_of
from streams.trading.evaluation import Run, trading_report
from streams.trading.execution import market_slice
from streams.trading.portfolio import states_array

RISK_PORT = Port("risk", RISK_FAMILY)
ORDERS_PORT = Port("orders", ORDERS_FAMILY)
EXECUTIONS_PORT = Port("executions", EXECUTIONS_FAMILY)
PORTFOLIO_PORT = Port("portfolio", PORTFOLIO_STATE)
STATE_VERSION = 1
_NO_TOPS = np.zeros(0, BOOK_TOP_DTYPE)
_NO_MIDS = np.zeros(0, BOOK_MID.dtype)
_NO_DECISIONS = np.zeros(0, DECISION.dtype)


class _State(msgspec.Struct, array_like=True):
    version: int
    config: bytes
    desk: DeskState
    venue: bytes


class TradingStage:
    """See the module docstring."""

    def __init__(self, context: StageContext) -> None:
        self.config: TradingConfig = trading_config("trading", context.config)
        if context.instrument.tick_size <= 0:
            raise ConfigError(
                f"stage 'trading': the instrument's tick_size must be > 0 to price stop loss "
                f"and take profit orders: {context.instrument}"
            )
        self.identity = msgspec.json.encode(dataclasses.asdict(self.config), order="sorted")
        self.desk = Desk(self.config, context.instrument)

    def process(self, piece: Slice) -> tuple[Output, ...]:
        """Everything the slice's journal events, tops, mids and decisions lead to."""
        tops = _fixed(piece.inputs.get("book"), _NO_TOPS)
        mids = _fixed(piece.inputs.get("mid"), _NO_MIDS)
        decisions = _fixed(piece.inputs.get("decisions"), _NO_DECISIONS)
        if len(decisions):
            decisions = decisions[decisions["direction"] != 0]
        if piece.market is not None:
            market = market_slice(piece.start, piece.market, tops, mids, decisions["cause"])
            self.desk.walk(market, _decisions(decisions))
        else:
            for j, event in enumerate(piece.control):
                self._control(piece.start + j, event, decisions)
        out = self.desk.take()
        return (out.risk, out.orders, out.executions, _states(out.portfolio))

    def _control(self, offset: int, event: msgspec.Struct, decisions: np.ndarray) -> None:
        """One control event: its meaning, then the clock, timers and decisions it causes."""
        if isinstance(event, BrokerReport) and event.account == self.config.account:
            venue = self.desk.venue
            if isinstance(venue, BrokerVenue):
                venue.deliver(event, offset)
        self.desk.control(event, offset)
        mine = decisions[decisions["cause"] == offset]
        record = np.zeros(1, MARKET_RECORD)  # type 0: it only moves the clock
        record["ts_event"] = clock_of(event)
        market = market_slice(offset, record, _NO_TOPS, _NO_MIDS, mine["cause"])
        self.desk.walk(market, _decisions(mine))
        if isinstance(event, SessionClosed):
            self.desk.close(offset)

    def snapshot(self) -> bytes:
        """The desk and the venue, exactly (floats as msgpack float64)."""
        state = _State(STATE_VERSION, self.identity, self.desk.state, self.desk.venue.snapshot())
        return msgspec.msgpack.encode(state)

    def restore(self, state: bytes) -> None:
        """Continue from a state :meth:`snapshot` produced with the same config."""
        s = load_state("trading", state, _State, STATE_VERSION, self.identity)
        self.desk.state = s.desk
        self.desk.venue.restore(s.venue)

    def inspect(self) -> dict[str, Any]:
        """Account, trading day and the orders the venue holds, readably."""
        desk, account = self.desk, self.desk.account
        return {
            "clock": desk.venue.clock,
            "position": account.position,
            "avg_price": account.avg_price,
            "mid": desk.mid,
            "equity": account.equity(desk.mid),
            "realised": account.realised,
            "fees": account.fees,
            "trading_day": desk.state.day.date,
            "entries_today": desk.state.day.trades,
            "circuit_breaker_tripped": desk.state.day.tripped,
            "halted": desk.state.halted,
            "orders": [
                f"{oid} {'buy' if live.side > 0 else 'sell'} {live.purpose}"
                + ("" if (ahead := desk.venue.queue_ahead(oid)) is None else f", {ahead} ahead")
                for oid, live in sorted(desk.venue.live.items())
            ],
        }


def _fixed(value: Output | None, empty: np.ndarray) -> np.ndarray:
    if isinstance(value, np.ndarray) and len(value):
        return value
    return empty


def _decisions(records: np.ndarray) -> list[risk.Decision]:
    if not len(records):
        return []
    return [
        risk.Decision(cause, ts, direction, confidence)
        for cause, ts, direction, confidence in zip(
            records["cause"].tolist(),
            records["ts_event"].tolist(),
            records["direction"].tolist(),
            records["confidence"].tolist(),
            strict=True,
        )
    ]


def _states(values: list[Any]) -> Output:
    return states_array(values) if values else PORTFOLIO_PORT.empty()


def run_report(context: ReportContext) -> dict[str, Any]:
    """The run's trading report over its out-of-sample and in-sample windows, beside the
    baselines (:func:`~streams.trading.evaluation.trading_report`), as plain data."""
    config = trading_config("trading", context.config)
    run = Run(config, context.instrument, context.read, context.seed)
    report = trading_report(
        run, context.read("predictions"), context.read("switches"), context.journal
    )
    out: dict[str, Any] = msgspec.to_builtins(report)
    return out


TRADING_STAGE = Stage(
    "trading",
    TradingStage,
    (RISK_PORT, ORDERS_PORT, EXECUTIONS_PORT, PORTFOLIO_PORT),
    inputs=("decisions", "book", "mid"),
    defaults=trading_defaults,
    report=run_report,
    doc="risk, a simulated venue (latency, queue position, fees) and the portfolio, per event",
)
