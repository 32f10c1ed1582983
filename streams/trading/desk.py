"""The trading desk: risk, the venue and the portfolio taking turns within each journal event.

The venue's compiled loop (:mod:`streams.trading.matching`) walks the journal and stops where
Python must act; :meth:`Desk.walk` acts there, in this order:

* before an event whose time reaches a timer: the working limit entry's deadline (cancel it),
  a new venue trading day (trade count and breaker start afresh), a mark boundary (emit
  ``portfolio.state`` stamped with the boundary);
* after an event: the venue's reports (each fill updates the account and emits
  ``portfolio.state``; an entry that is complete gets its stop loss and take profit, or is
  closed if the breaker tripped meanwhile), the circuit breaker if equity reached the day's
  floor, then the decisions caused by this event (risk, then orders).

Orders sent at an event reach the venue no earlier than the clock plus ``latency_ms``; with a
latency of 0 they act on the book state of the event that caused them.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import msgspec

from engine.events.control import (
    ClockTicked,
    FlattenPosition,
    HaltTrading,
    InstrumentSpec,
    ResumeTrading,
    TradingStatusChanged,
)
from engine.events.trading import (
    R_CLOSE,
    R_FILL,
    R_MARK,
    CancelRequested,
    CircuitBreakerTripped,
    DecisionRejected,
    DecisionResized,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    TradingDayStarted,
)
from streams.trading import matching as m
from streams.trading import risk
from streams.trading.broker_venue import BrokerVenue
from streams.trading.config import TradingConfig
from streams.trading.execution import Market, Venue, VenueReport
from streams.trading.portfolio import Account, apply_fill, new_account, state_record


class Outputs(NamedTuple):
    """What the desk emitted since the outputs were last taken, per port."""

    risk: list[msgspec.Struct]
    orders: list[msgspec.Struct]
    executions: list[msgspec.Struct]
    portfolio: list[tuple[Any, ...]]
    """``portfolio.state`` values (:func:`~streams.trading.portfolio.state_record`)."""


class Day(msgspec.Struct, array_like=True):
    """The venue trading day in effect."""

    date: str = ""
    end: int = 0
    """ns at which the next local day starts (0: no day yet)."""
    start_equity: float = 0.0
    trades: int = 0
    tripped: bool = False


class DeskState(msgspec.Struct, array_like=True):
    """Everything of the desk but the venue, for snapshots."""

    account: Account
    day: Day
    halted: bool
    venue_halted: bool
    next_mark: int
    next_id: int
    entry: int
    deadline: int


class Desk:
    """See the module docstring."""

    def __init__(self, config: TradingConfig, spec: InstrumentSpec) -> None:
        self.config, self.spec = config, spec
        account = new_account(config, spec.price_scale, spec.size_scale)
        kind = BrokerVenue if config.venue == "broker" else Venue
        self.venue: Venue = kind(config, account.value_factor)
        self.interval = config.mark_interval_ms * 1_000_000
        self.state = DeskState(account, Day(), False, False, 0, 1, 0, 0)
        self.out = Outputs([], [], [], [])
        self.venue.st[m.S_WAKE] = 1  # the first event time starts the first day and mark
        self._sync()

    @property
    def account(self) -> Account:
        """The simulated account."""
        return self.state.account

    @property
    def mid(self) -> float:
        """The last two-sided mid (NaN before the first)."""
        return float(self.venue.fs[m.F_MID])

    def take(self) -> Outputs:
        """The outputs emitted since the last call."""
        out, self.out = self.out, Outputs([], [], [], [])
        return out

    # -- the walk ------------------------------------------------------------------------------

    def walk(self, market: Market, decisions: list[risk.Decision]) -> None:
        """Apply one slice; ``decisions`` line up with ``market.decision_at``."""
        base = market.base
        self.venue.st[m.S_TP] = self.venue.st[m.S_MP] = self.venue.st[m.S_DP] = 0
        i = 0
        while True:
            i, reason = self.venue.run(market, i)
            self._drain(base)
            if reason == m.DONE:
                return
            if reason == m.TIMER:
                clock = max(self.venue.clock, int(market.records[i, m.R_TS]))
                self._timers(base + i, clock)
            elif reason == m.GROW:
                self.venue.grow()
            else:
                self._after(base, i, market, decisions)
                i += 1

    def _after(self, base: int, i: int, market: Market, decisions: list[risk.Decision]) -> None:
        if self.venue.st[m.S_BREACH] and not self.state.day.tripped:
            self._trip(base + i)
        dp = int(self.venue.st[m.S_DP])
        while dp < len(decisions) and market.decision_at[dp] == i:
            self._decide(decisions[dp], base + i)
            dp += 1
        self.venue.st[m.S_DP] = dp
        while self.venue.latency == 0 and self.venue.busy:  # orders sent now act now
            self.venue.settle(i)
            if not self.venue.st[m.S_ROWS]:
                break
            self._drain(base)

    def _timers(self, cause: int, clock: int) -> None:
        s = self.state
        if s.deadline and s.deadline <= clock:
            self._cancel(s.entry, "entry_timeout", s.deadline, cause)
            s.deadline = 0
        if clock >= s.day.end:
            self._new_day(clock, cause)
        if clock >= s.next_mark:
            boundary = clock - clock % self.interval
            self._emit_state(R_MARK, boundary, cause)
            s.next_mark = boundary + self.interval
        self._set_wake()

    def _set_wake(self) -> None:
        s = self.state
        wake = min(s.next_mark, s.day.end)
        self.venue.st[m.S_WAKE] = min(wake, s.deadline) if s.deadline else wake

    def _new_day(self, clock: int, cause: int) -> None:
        date, end = risk.trading_day(clock, self.spec.time_zone)
        equity = self.account.equity(self.mid)
        self.state.day = Day(date, end, equity)
        self.venue.fs[m.F_FLOOR] = risk.breaker_floor(self.config, equity)
        self.out.risk.append(TradingDayStarted(clock, cause, date, self.spec.time_zone, equity))

    # -- reports from the venue ----------------------------------------------------------------

    def _drain(self, base: int) -> None:
        for report in self.venue.reports(base):
            self.out.executions.append(report)
            if isinstance(report, OrderFilled):
                self._filled(report)
            if report.order_id == self.state.entry and _completes(report):
                self._entry_done(report.cause)

    def _filled(self, fill: OrderFilled) -> None:
        apply_fill(self.account, fill.side, fill.price, fill.size, fill.fee)
        self._sync()
        self._emit_state(R_FILL, fill.ts_event, fill.cause)
        floor = self.venue.fs[m.F_FLOOR]
        if not self.state.day.tripped and self.account.equity(self.mid) <= floor:
            self._trip(fill.cause)

    def _entry_done(self, cause: int) -> None:
        """The entry is filled, or what is left of it is gone: protect what was filled."""
        parent = self.state.entry
        self.state.entry = self.state.deadline = 0
        self._set_wake()
        position = self.account.position
        if position == 0:
            return
        if self.state.day.tripped:
            self._close(parent, cause)
            return
        side = -1 if position > 0 else 1
        stop, take = risk.protective_prices(
            self.config, -side, self.account.avg_price, self.spec.tick_size
        )
        self._send(side, "stop", "stop_loss", stop, abs(position), parent, cause)
        self._send(side, "limit", "take_profit", take, abs(position), parent, cause)

    def _trip(self, cause: int) -> None:
        """The circuit breaker: cancel the entry, close the position, stop for the day."""
        day, equity = self.state.day, self.account.equity(self.mid)
        day.tripped = True
        self.venue.fs[m.F_FLOOR] = -math.inf
        limit = self.config.daily_loss_pct / 100.0
        loss = (day.start_equity - equity) / day.start_equity
        clock = self.venue.clock
        event = CircuitBreakerTripped(clock, cause, day.date, equity, day.start_equity, loss, limit)
        self.out.risk.append(event)
        if self.state.entry:
            self._cancel(self.state.entry, "circuit_breaker", clock, cause)
        if self.account.position and not self._working("exit"):
            self._close(0, cause)

    # -- decisions -----------------------------------------------------------------------------

    def _decide(self, decision: risk.Decision, cause: int) -> None:
        if decision.direction == 0:  # staying flat is no order, and nothing to reject
            return
        s = self.state
        day = risk.Day(s.day.trades, s.day.tripped, s.halted, s.venue_halted)
        verdict: risk.Verdict | None = risk.day_gate(self.config, decision, day)
        if verdict is None:  # only then is the account worth valuing (risk.check's order)
            last = self.mid
            view = risk.AccountView(
                self.account.position,
                self._working("entry") or self._working("exit"),
                self.account.equity(last),
                last if self.venue.fs[m.F_MID_OK] else math.nan,
                self.account.value_factor,
            )
            verdict = risk.check_account(self.config, decision, view, day)
        clock = self.venue.clock
        if isinstance(verdict, risk.Reject):
            self.out.risk.append(
                DecisionRejected(
                    clock,
                    cause,
                    decision.cause,
                    decision.direction,
                    decision.confidence,
                    verdict.reason,
                    verdict.detail,
                    float(verdict.value),
                    float(verdict.limit),
                )
            )
        elif isinstance(verdict, risk.Exit):
            self._close(0, cause)
        else:
            self._enter(decision, verdict, cause)

    def _enter(self, decision: risk.Decision, verdict: risk.Enter, cause: int) -> None:
        if verdict.resize is not None:
            r = verdict.resize
            self.out.risk.append(
                DecisionResized(
                    self.venue.clock,
                    cause,
                    decision.cause,
                    decision.direction,
                    decision.confidence,
                    r.requested,
                    r.granted,
                    r.reason,
                    r.detail,
                )
            )
        kind, price = "market", 0
        if self.config.entry_order == "limit":  # join the near touch
            kind = "limit"
            price = int(self.venue.top[m.BID_P if verdict.side > 0 else m.ASK_P])
        self.state.entry = self._send(verdict.side, kind, "entry", price, verdict.size, 0, cause)
        self.state.day.trades += 1
        if kind == "limit":
            self.state.deadline = self.venue.clock + self.config.entry_timeout_ms * 1_000_000
            self._set_wake()

    # -- orders --------------------------------------------------------------------------------

    def _send(
        self, side: int, kind: str, purpose: str, price: int, size: int, parent: int, cause: int
    ) -> int:
        s = self.state
        order_id, s.next_id = s.next_id, s.next_id + 1
        clock = self.venue.clock
        order = OrderSubmitted(
            clock,
            cause,
            order_id,
            parent,
            side,
            kind,
            purpose,
            price,
            size,
            purpose != "entry",
            self.mid,
            clock + self.venue.latency,
        )
        self.out.orders.append(order)
        self.venue.submit(order)
        return order_id

    def _close(self, parent: int, cause: int) -> None:
        """A reduce-only market order for the whole position."""
        position = self.account.position
        self._send(-1 if position > 0 else 1, "market", "exit", 0, abs(position), parent, cause)

    def _cancel(self, order_id: int, reason: str, ts: int, cause: int) -> None:
        request = CancelRequested(ts, cause, order_id, reason, ts + self.venue.latency)
        self.out.orders.append(request)
        self.venue.cancel(request)

    def _working(self, purpose: str) -> bool:
        return any(live.purpose == purpose for live in self.venue.live.values())

    # -- the account ---------------------------------------------------------------------------

    def _sync(self) -> None:
        """Hand the venue loop what it needs to watch the daily loss floor."""
        a, fs = self.account, self.venue.fs
        fs[m.F_BASE], fs[m.F_FEES], fs[m.F_AVG], fs[m.F_SLOPE] = (
            a.base,
            a.fees,
            a.avg_price,
            a.slope,
        )

    def _emit_state(self, reason: int, ts: int, cause: int) -> None:
        self.out.portfolio.append(state_record(self.account, self.mid, reason, ts, cause))

    # -- control events ------------------------------------------------------------------------

    def control(self, event: msgspec.Struct, cause: int) -> None:
        """Operator and venue status: halts stop entries (and exits) until resumed; a flatten
        cancels the working entry and closes the position at market."""
        if isinstance(event, HaltTrading):
            self.state.halted = True
        elif isinstance(event, ResumeTrading):
            self.state.halted = False
        elif isinstance(event, TradingStatusChanged):
            self.state.venue_halted = event.status != "trading"
        elif isinstance(event, FlattenPosition):
            self._flatten(cause)

    def _flatten(self, cause: int) -> None:
        """Cancel the working entry, then close what is open (protective orders go with the
        position: the venue drops reduce-only orders once it is flat)."""
        if self.state.entry:
            self._cancel(self.state.entry, "flatten", self.venue.clock, cause)
            self.state.entry = self.state.deadline = 0
            self._set_wake()
        if self.account.position and not self._working("exit"):
            self._close(0, cause)

    def close(self, cause: int) -> None:
        """The session closed: emit the final state."""
        self._emit_state(R_CLOSE, self.venue.clock, cause)


def _completes(report: VenueReport) -> bool:
    """Whether a report about an order means nothing more of it can execute."""
    if isinstance(report, OrderFilled):
        return report.remaining == 0
    if isinstance(report, OrderRejected):
        return report.reason != "too_late_to_cancel"
    return isinstance(report, OrderCancelled)


def clock_of(event: msgspec.Struct) -> int:
    """The event time a control event moves the clock to (0: it does not move it)."""
    return int(event.ts_event) if isinstance(event, ClockTicked) else 0
