"""Risk: which consensus decisions become orders, how large, and what protects them.

A pure domain module of small functions over plain values; the ``trading`` stage calls it per
decision, per completed entry and per trading day. docs/trading.md states every rule; in short:

1. A decision of direction 0 is no order and no event.
2. It is rejected (``DecisionRejected``, with its reason, in this order) when trading is halted
   by the operator (``halted``) or the venue (``venue_halted``), the daily circuit breaker has
   tripped (``circuit_breaker``), its confidence is below ``min_confidence``
   (``low_confidence``), an entry or exit is still working (``order_pending``), a position in
   the same direction is open (``already_in_position``), or, while in a position, the
   decision is opposite and ``on_opposite`` is ``ignore`` (``opposite_ignored``).
3. While in a position an opposite decision with ``on_opposite = exit`` closes it.
4. Flat, it is rejected after ``max_trades_per_day`` entries in the venue's trading day
   (``max_trades_per_day``), without a two-sided market (``no_market``), with a non-positive
   Kelly fraction (``kelly_not_positive``) or when its size rounds down to zero lots
   (``below_one_lot``). Otherwise it becomes an entry, sized by capped fractional Kelly
   (:func:`size_entry`); a cap that binds is reported as ``DecisionResized``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import NamedTuple

from streams.features.calendar import load_zone

_NS = 1_000_000_000
ON_OPPOSITE = ("exit", "ignore")
ENTRY_ORDERS = ("market", "limit")


@dataclass(frozen=True)
class RiskConfig:
    """Settings of the risk rules (part of the ``trading`` stage's config)."""

    min_confidence: float = 0.60
    """Decisions less confident than this are rejected."""
    max_trades_per_day: int = 10
    """Entries allowed per venue trading day (local date in the instrument's time zone)."""
    stop_loss_pct: float = 0.5
    """Stop-loss distance from the average entry price, percent."""
    take_profit_pct: float = 1.0
    """Take-profit distance from the average entry price, percent."""
    daily_loss_pct: float = 3.0
    """Circuit breaker: loss from the day's starting equity, percent, that stops the day."""
    max_position_pct: float = 5.0
    """Largest position, as notional at mid over equity, percent (caps the Kelly size)."""
    kelly_fraction: float = 0.1
    """Multiplier on the full Kelly fraction (fractional Kelly)."""
    lot_size: int = 1
    """Sizes are rounded down to a multiple of this, size units (default: the instrument's)."""
    on_opposite: str = "exit"
    """An opposite decision while in a position: ``exit`` closes it, ``ignore`` rejects it."""
    entry_order: str = "market"
    """Entries as ``market`` orders, or ``limit`` orders joining the near touch."""
    entry_timeout_ms: int = 5000
    """A limit entry still working after this much event time is cancelled."""


class Decision(NamedTuple):
    """The parts of a ``consensus.decision`` risk reads."""

    cause: int
    ts: int
    direction: int
    confidence: float


class AccountView(NamedTuple):
    """What risk knows of the account and the market when a decision arrives."""

    position: int
    """Signed position, size units."""
    pending: bool
    """An entry or exit order is working or on its way to the venue."""
    equity: float
    """Equity marked to mid, quote currency."""
    mid: float
    """Current two-sided mid, price units (NaN when the book is not two-sided)."""
    value_factor: float
    """Quote currency per price unit times size unit (with the contract multiplier)."""


class Day(NamedTuple):
    """What risk keeps per venue trading day."""

    trades: int
    """Entries sent today."""
    tripped: bool
    """The circuit breaker tripped today."""
    halted: bool
    """The operator halted trading (``control.halt_trading``)."""
    venue_halted: bool
    """The venue's last status was not ``trading``."""


class Reject(NamedTuple):
    """Refuse the decision."""

    reason: str
    detail: str
    value: float
    limit: float


class Resize(NamedTuple):
    """The Kelly size was capped."""

    requested: int
    granted: int
    reason: str
    detail: str


class Enter(NamedTuple):
    """Open a position of ``size`` on ``side``."""

    side: int
    size: int
    resize: Resize | None


class Exit(NamedTuple):
    """Close the open position."""


Verdict = Reject | Enter | Exit


def check(config: RiskConfig, decision: Decision, account: AccountView, day: Day) -> Verdict:
    """What to do with one decision of direction +1 or -1 (see the module docstring)."""
    gate = day_gate(config, decision, day)
    if gate is not None:
        return gate
    return check_account(config, decision, account, day)


def check_account(
    config: RiskConfig, decision: Decision, account: AccountView, day: Day
) -> Verdict:
    """:func:`check` for a decision that passed :func:`day_gate`: the rules that need the
    account, in the documented order."""
    gate = _account_gate(config, decision, account)
    if gate is not None:
        return gate
    if account.position != 0:
        return Exit()
    if day.trades >= config.max_trades_per_day:
        return Reject(
            "max_trades_per_day",
            f"{day.trades} entries today already; max_trades_per_day is "
            f"{config.max_trades_per_day}",
            day.trades,
            config.max_trades_per_day,
        )
    if math.isnan(account.mid):
        return Reject("no_market", "the book is not two-sided: no mid to size against", 0, 0)
    return size_entry(config, decision, account)


def day_gate(config: RiskConfig, decision: Decision, day: Day) -> Reject | None:
    """The first refusals, which need neither the account nor the book: halted, venue
    halted, circuit breaker, low confidence. Cheap, and the verdict of nearly every decision
    on a day where most decisions lack confidence, so the desk asks it before it values the
    account (:func:`check` is this, then :func:`check_account`)."""
    if day.halted:
        return Reject("halted", "the operator halted trading (control.halt_trading)", 1, 0)
    if day.venue_halted:
        return Reject("venue_halted", "the venue is not trading the instrument", 1, 0)
    if day.tripped:
        return Reject("circuit_breaker", "the daily loss circuit breaker tripped today", 1, 0)
    if not decision.confidence >= config.min_confidence:  # NaN is no confidence
        return Reject(
            "low_confidence",
            f"confidence {decision.confidence:.4f} is below min_confidence "
            f"{config.min_confidence:.4f}",
            decision.confidence,
            config.min_confidence,
        )
    return None


def _account_gate(config: RiskConfig, decision: Decision, account: AccountView) -> Reject | None:
    """The refusals after :func:`day_gate` that do not depend on sizing, in order."""
    if account.pending:
        return Reject("order_pending", "an entry or exit order is still working", 1, 0)
    held = (account.position > 0) - (account.position < 0)
    if held == decision.direction:
        return Reject(
            "already_in_position",
            f"already {'long' if held > 0 else 'short'} {abs(account.position)} size units",
            account.position,
            0,
        )
    if held != 0 and config.on_opposite == "ignore":
        return Reject(
            "opposite_ignored",
            "opposite decision while in a position, and on_opposite is 'ignore'",
            account.position,
            0,
        )
    return None


def kelly(p: float, b: float) -> float:
    """Full Kelly fraction ``p - (1 - p) / b`` for win probability ``p`` and payoff ratio ``b``."""
    return p - (1.0 - p) / b


def size_entry(config: RiskConfig, decision: Decision, account: AccountView) -> Verdict:
    """Capped fractional Kelly, as a fraction of equity held as notional at mid.

    ``p`` is the decision's confidence, ``b = take_profit_pct / stop_loss_pct``; the fraction is
    ``min(kelly_fraction * kelly(p, b), max_position_pct / 100)``, and the size is
    ``fraction * equity / (mid * value_factor)`` rounded down to the lot.
    """
    full = kelly(decision.confidence, config.take_profit_pct / config.stop_loss_pct)
    if full <= 0:
        return Reject(
            "kelly_not_positive",
            f"Kelly fraction {full:.4f} at confidence {decision.confidence:.4f} and payoff "
            f"ratio {config.take_profit_pct / config.stop_loss_pct:.4f} is not positive",
            full,
            0.0,
        )
    wanted = config.kelly_fraction * full
    cap = config.max_position_pct / 100.0
    lot_value = account.mid * account.value_factor * config.lot_size
    requested = _lots(wanted * account.equity, lot_value) * config.lot_size
    granted = _lots(min(wanted, cap) * account.equity, lot_value) * config.lot_size
    if granted <= 0:
        return Reject(
            "below_one_lot",
            f"{min(wanted, cap):.4%} of equity {account.equity:.2f} is less than one lot worth "
            f"{lot_value:.2f}",
            min(wanted, cap) * account.equity,
            lot_value,
        )
    resize = None
    if granted < requested:
        resize = Resize(
            requested,
            granted,
            "max_position",
            f"Kelly asks {wanted:.4%} of equity; max_position_pct caps it at {cap:.4%}",
        )
    return Enter(decision.direction, granted, resize)


def _lots(money: float, lot_value: float) -> int:
    if not lot_value > 0 or not money > 0:
        return 0
    return math.floor(money / lot_value)


def protective_prices(
    config: RiskConfig, side: int, avg_price: float, tick: int
) -> tuple[int, int]:
    """(stop-loss, take-profit) prices for a position on ``side`` entered at ``avg_price``.

    Both are rounded to the tick away from the entry, so neither distance is less than
    configured: a long's stop rounds down and its target up; a short's the reverse.
    """
    down = avg_price * (1 - side * config.stop_loss_pct / 100.0)
    up = avg_price * (1 + side * config.take_profit_pct / 100.0)
    if side > 0:
        return math.floor(down / tick) * tick, math.ceil(up / tick) * tick
    return math.ceil(down / tick) * tick, math.floor(up / tick) * tick


def breaker_floor(config: RiskConfig, day_start_equity: float) -> float:
    """Equity at or below which the circuit breaker trips."""
    return day_start_equity * (1.0 - config.daily_loss_pct / 100.0)


def trading_day(ts: int, time_zone: str) -> tuple[str, int]:
    """(ISO local date, ns at which the next local day starts) for event time ``ts``."""
    zone = load_zone(time_zone)
    local = dt.datetime.fromtimestamp(ts // _NS, zone).date()
    following = local + dt.timedelta(days=1)
    start = dt.datetime(following.year, following.month, following.day, tzinfo=zone)
    return local.isoformat(), int(start.timestamp()) * _NS


def validate(config: RiskConfig) -> list[str]:
    """What is wrong with ``config``, as ``key: problem`` strings (empty when usable)."""
    problems = []
    if not 0.0 <= config.min_confidence <= 1.0:
        problems.append(f"min_confidence must be in 0..1, got {config.min_confidence}")
    if config.max_trades_per_day < 0:
        problems.append(f"max_trades_per_day must be >= 0, got {config.max_trades_per_day}")
    for key in ("stop_loss_pct", "take_profit_pct", "daily_loss_pct", "max_position_pct"):
        value = getattr(config, key)
        if not 0.0 < value < 100.0:
            problems.append(f"{key} must be a percent in (0, 100), got {value}")
    if not 0.0 < config.kelly_fraction <= 1.0:
        problems.append(f"kelly_fraction must be in (0, 1], got {config.kelly_fraction}")
    if config.lot_size < 1:
        problems.append(f"lot_size must be >= 1 size unit, got {config.lot_size}")
    if config.on_opposite not in ON_OPPOSITE:
        problems.append(f"on_opposite must be one of {ON_OPPOSITE}, got {config.on_opposite!r}")
    if config.entry_order not in ENTRY_ORDERS:
        problems.append(f"entry_order must be one of {ENTRY_ORDERS}, got {config.entry_order!r}")
    if config.entry_timeout_ms <= 0:
        problems.append(f"entry_timeout_ms must be > 0, got {config.entry_timeout_ms}")
    return problems
