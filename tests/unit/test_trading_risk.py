"""Risk rules one by one: gates, Kelly sizing and its cap, lots, protective prices, days, config."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from engine.events.control import InstrumentSpec
from engine.runtime import ConfigError
from streams.trading import risk
from streams.trading.config import trading_config, trading_defaults

CONFIG = risk.RiskConfig()
DAY = risk.Day(trades=0, tripped=False, halted=False, venue_halted=False)
NS = 1_000_000_000


def account(**kw: Any) -> risk.AccountView:
    values = {"position": 0, "pending": False, "equity": 100_000.0, "mid": 10_000.0}
    values |= kw
    return risk.AccountView(value_factor=0.01, **values)  # price scale 2, whole shares


def decision(direction: int = 1, confidence: float = 0.9) -> risk.Decision:
    return risk.Decision(cause=7, ts=1, direction=direction, confidence=confidence)


def reason(verdict: risk.Verdict) -> str:
    assert isinstance(verdict, risk.Reject), verdict
    return verdict.reason


def test_min_confidence_is_inclusive() -> None:
    assert reason(risk.check(CONFIG, decision(confidence=0.5999), account(), DAY)) == (
        "low_confidence"
    )
    rejected = risk.check(CONFIG, decision(confidence=0.5), account(), DAY)
    assert isinstance(rejected, risk.Reject)
    assert (rejected.value, rejected.limit) == (0.5, 0.6)
    assert "0.5000 is below min_confidence 0.6000" in rejected.detail
    assert isinstance(risk.check(CONFIG, decision(confidence=0.60), account(), DAY), risk.Enter)
    assert reason(risk.check(CONFIG, decision(confidence=math.nan), account(), DAY)) == (
        "low_confidence"
    )


def test_gates_in_their_documented_order() -> None:
    everything = risk.Day(trades=99, tripped=True, halted=True, venue_halted=True)
    low = decision(confidence=0.1)
    assert reason(risk.check(CONFIG, low, account(pending=True), everything)) == "halted"
    assert reason(risk.check(CONFIG, low, account(), everything._replace(halted=False))) == (
        "venue_halted"
    )
    tripped = risk.Day(trades=99, tripped=True, halted=False, venue_halted=False)
    assert reason(risk.check(CONFIG, low, account(), tripped)) == "circuit_breaker"
    busy = risk.Day(trades=99, tripped=False, halted=False, venue_halted=False)
    assert reason(risk.check(CONFIG, low, account(pending=True), busy)) == "low_confidence"
    assert reason(risk.check(CONFIG, decision(), account(pending=True), busy)) == "order_pending"
    assert reason(risk.check(CONFIG, decision(), account(position=5), busy)) == (
        "already_in_position"
    )
    assert reason(risk.check(CONFIG, decision(), account(), busy)) == "max_trades_per_day"


@pytest.mark.parametrize("confidence", [math.nan, 0.3, 0.6, 0.9])
@pytest.mark.parametrize("direction", [-1, 1])
@pytest.mark.parametrize("position", [-5, 0, 5])
@pytest.mark.parametrize("pending", [False, True])
@pytest.mark.parametrize(
    "flags", [(False, False, False), (True, False, False), (False, False, True)]
)
@pytest.mark.parametrize("trades", [0, 10])
def test_the_day_gate_first_then_the_account_is_check(
    confidence: float,
    direction: int,
    position: int,
    pending: bool,
    flags: tuple[bool, bool, bool],
    trades: int,
) -> None:
    """The desk asks ``day_gate`` before it values the account, then ``check_account``: the
    verdict is ``check``'s for every combination of the gates' inputs."""
    tripped, halted, venue_halted = flags
    day = risk.Day(trades, tripped, halted, venue_halted)
    d, view = decision(direction, confidence), account(position=position, pending=pending)
    split = risk.day_gate(CONFIG, d, day) or risk.check_account(CONFIG, d, view, day)
    assert split == risk.check(CONFIG, d, view, day)


def test_opposite_decision_exits_or_is_ignored() -> None:
    assert risk.check(CONFIG, decision(-1), account(position=5), DAY) == risk.Exit()
    assert risk.check(CONFIG, decision(1), account(position=-5), DAY) == risk.Exit()
    ignoring = risk.RiskConfig(on_opposite="ignore")
    assert reason(risk.check(ignoring, decision(-1), account(position=5), DAY)) == (
        "opposite_ignored"
    )
    # an exit needs no trade left for the day: it reduces risk
    spent = DAY._replace(trades=CONFIG.max_trades_per_day)
    assert risk.check(CONFIG, decision(-1), account(position=5), spent) == risk.Exit()


def test_max_trades_per_day() -> None:
    nine, ten = DAY._replace(trades=9), DAY._replace(trades=10)
    assert isinstance(risk.check(CONFIG, decision(), account(), nine), risk.Enter)
    rejected = risk.check(CONFIG, decision(), account(), ten)
    assert reason(rejected) == "max_trades_per_day"
    assert isinstance(rejected, risk.Reject)
    assert (rejected.value, rejected.limit) == (10, 10)


def test_no_market_without_a_two_sided_mid() -> None:
    assert reason(risk.check(CONFIG, decision(), account(mid=math.nan), DAY)) == "no_market"


def test_kelly_formula() -> None:
    assert risk.kelly(0.6, 2.0) == pytest.approx(0.4)  # 0.6 - 0.4 / 2
    assert risk.kelly(0.5, 1.0) == 0.0
    assert risk.kelly(1 / 3, 2.0) == pytest.approx(0.0)


def test_kelly_size_below_the_cap_is_not_resized() -> None:
    """p = 0.62, b = 1 % / 0.5 % = 2: Kelly 0.43, a tenth of it 4.3 % of equity, under the 5 %
    cap: 4,300 of notional at mid 100.00 is 43 shares."""
    verdict = risk.check(CONFIG, decision(confidence=0.62), account(), DAY)
    assert verdict == risk.Enter(1, 43, None)


def test_kelly_size_above_the_cap_is_resized_to_max_position() -> None:
    """p = 0.9: Kelly 0.85, a tenth 8.5 % asks 85 shares; max_position (5 %) grants 50."""
    verdict = risk.check(CONFIG, decision(-1, 0.9), account(), DAY)
    assert isinstance(verdict, risk.Enter)
    assert (verdict.side, verdict.size) == (-1, 50)
    assert verdict.resize is not None
    assert (verdict.resize.requested, verdict.resize.granted) == (85, 50)
    assert verdict.resize.reason == "max_position"
    assert "8.5000%" in verdict.resize.detail
    assert "5.0000%" in verdict.resize.detail


def test_sizes_round_down_to_the_lot() -> None:
    lots = risk.RiskConfig(lot_size=20)
    verdict = risk.check(lots, decision(confidence=0.62), account(), DAY)
    assert verdict == risk.Enter(1, 40, None)  # 43 shares -> 2 lots of 20
    capped = risk.check(lots, decision(confidence=0.9), account(), DAY)
    assert isinstance(capped, risk.Enter)
    assert capped.size == 40  # 50 -> 40, and 85 -> 80 requested
    assert capped.resize is not None
    assert capped.resize.requested == 80


def test_below_one_lot_is_rejected() -> None:
    """WDO at 5,450.0 is BRL 54,500 a contract; 5 % of BRL 100,000 buys none."""
    wdo = risk.AccountView(0, False, 100_000.0, 54_500.0, 1.0)
    rejected = risk.check(CONFIG, decision(), wdo, DAY)
    assert reason(rejected) == "below_one_lot"
    assert isinstance(rejected, risk.Reject)
    assert (rejected.value, rejected.limit) == (5_000.0, 54_500.0)
    rich = wdo._replace(equity=2_000_000.0)
    assert risk.check(CONFIG, decision(confidence=0.61), rich, DAY) == risk.Enter(1, 1, None)


def test_non_positive_kelly_is_rejected() -> None:
    even = risk.RiskConfig(min_confidence=0.0, stop_loss_pct=1.0, take_profit_pct=1.0)
    assert reason(risk.check(even, decision(confidence=0.5), account(), DAY)) == (
        "kelly_not_positive"
    )


def test_protective_prices_round_away_from_the_entry() -> None:
    """Long at 100.03 (tick 0.05): stop 0.5 % -> 99.5299 rounds down to 99.50, target 1 % ->
    101.0303 rounds up to 101.05; a short mirrors it."""
    assert risk.protective_prices(CONFIG, 1, 10_003.0, 5) == (9_950, 10_105)
    assert risk.protective_prices(CONFIG, -1, 10_003.0, 5) == (10_055, 9_900)


def test_breaker_floor() -> None:
    assert risk.breaker_floor(CONFIG, 100_000.0) == pytest.approx(97_000.0)


def test_trading_day_is_the_local_date() -> None:
    """New York: 23:59:59 EDT on 21 June 2012 is still the 21st; the next day starts at local
    midnight (04:00 UTC). Sao Paulo and UTC likewise."""
    ny = dt.datetime(2012, 6, 22, 3, 59, 59, tzinfo=dt.UTC).timestamp()
    day, end = risk.trading_day(int(ny) * NS, "America/New_York")
    assert day == "2012-06-21"
    assert end == int(dt.datetime(2012, 6, 22, 4, tzinfo=dt.UTC).timestamp()) * NS
    assert risk.trading_day(end, "America/New_York")[0] == "2012-06-22"
    assert risk.trading_day(end - 1, "America/New_York")[0] == "2012-06-21"
    sp = int(dt.datetime(2025, 8, 11, 14, tzinfo=dt.UTC).timestamp()) * NS
    assert risk.trading_day(sp, "America/Sao_Paulo") == (
        "2025-08-11",
        int(dt.datetime(2025, 8, 12, 3, tzinfo=dt.UTC).timestamp()) * NS,
    )
    # a DST switch (New York, 11 March 2012) makes that day 23 hours long
    start, end = (
        risk.trading_day(int(dt.datetime(2012, 3, d, 12, tzinfo=dt.UTC).timestamp()) * NS,
                         "America/New_York")[1]
        for d in (10, 11)
    )  # fmt: skip
    assert end - start == 23 * 3600 * NS


def test_config_errors_name_the_stage_key_and_what_is_allowed() -> None:
    spec = InstrumentSpec("AAPL", "NASDAQ", "America/New_York", 4, 0, 100, 1, "USD")
    defaults = trading_defaults(spec)
    assert defaults["queue_model"] == "fifo"
    assert trading_config("trading", defaults).min_confidence == 0.6
    bad = {
        "min_confidence": 1.5,
        "stop_loss_pct": 0.0,
        "on_opposite": "reverse",
        "latency_ms": -1.0,
        "queue_model": "magic",
        "mark_interval_ms": 0,
    }
    for key, value in bad.items():
        with pytest.raises(ConfigError, match=rf"stage 'trading'.*{key}"):
            trading_config("trading", {**defaults, key: value})
    with pytest.raises(ConfigError, match="unknown setting"):
        trading_config("trading", {**defaults, "stop_los_pct": 1.0})
    with pytest.raises(ConfigError, match="min_confidence"):
        trading_config("trading", {**defaults, "min_confidence": "high"})
