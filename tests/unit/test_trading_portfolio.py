"""The simulated account: fills, average price, realised and unrealised PnL, fees, equity."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.events.control import InstrumentSpec
from engine.events.trading import PORTFOLIO_STATE, R_FILL
from streams.trading.config import contract_multiplier, trading_defaults
from streams.trading.portfolio import (
    Account,
    PortfolioConfig,
    apply_fill,
    equity_at,
    new_account,
    state_record,
    states_array,
)

WDO = InstrumentSpec("WDOU25", "B3", "America/Sao_Paulo", 1, 0, 5, 1, "BRL")


def record(account: Account, mid: float, reason: int, ts: int, cause: int) -> Any:
    """One ``portfolio.state`` record of the account."""
    return states_array([state_record(account, mid, reason, ts, cause)])[0]


def test_a_hand_computed_round_trip() -> None:
    """Dollars with cents (price scale 2), whole shares: every figure worked out by hand."""
    a = new_account(PortfolioConfig(starting_equity=10_000.0), 2, 0)
    assert a.value_factor == 0.01
    apply_fill(a, +1, 10_000, 10, 0.5)  # buy 10 @ 100.00, fee 0.50
    apply_fill(a, +1, 10_200, 10, 0.5)  # buy 10 @ 102.00
    assert (a.position, a.avg_price) == (20, 10_100.0)  # average 101.00
    assert a.unrealised(10_150.0) == pytest.approx(10.0)  # 20 * 0.50
    realised = apply_fill(a, -1, 10_300, 5, 0.25)  # sell 5 @ 103.00: 5 * 2.00
    assert realised == pytest.approx(10.0)
    assert (a.position, a.avg_price) == (15, 10_100.0)  # reducing keeps the average
    apply_fill(a, -1, 9_900, 15, 0.75)  # sell 15 @ 99.00: 15 * -2.00
    assert a.position == 0
    assert a.avg_price == 0.0
    assert a.realised == pytest.approx(-20.0)
    assert a.fees == pytest.approx(2.0)
    assert a.equity(12_345.0) == pytest.approx(10_000.0 - 20.0 - 2.0)  # flat: mid is moot


def test_a_fill_larger_than_the_position_reverses_it() -> None:
    a = new_account(PortfolioConfig(starting_equity=1000.0), 0, 0)
    apply_fill(a, -1, 50, 3, 0.0)  # short 3 @ 50
    realised = apply_fill(a, +1, 40, 5, 0.0)  # cover 3 (+30), then long 2 @ 40
    assert realised == 30.0
    assert (a.position, a.avg_price) == (2, 40.0)


@given(
    fills=st.lists(
        st.tuples(
            st.sampled_from([-1, 1]),
            st.integers(1, 1_000_000),
            st.integers(1, 10_000),
            st.floats(0, 5, allow_nan=False),
        ),
        max_size=30,
    ),
    mid=st.floats(1, 1_000_000, allow_nan=False),
)
def test_equity_is_start_plus_realised_plus_unrealised_minus_fees(fills: list, mid: float) -> None:
    """Exactly, in the documented order of operations, after any sequence of fills."""
    a = new_account(PortfolioConfig(starting_equity=123_456.0), 2, 3)
    for side, price, size, fee in fills:
        apply_fill(a, side, price, size, fee)
        state = record(a, mid, R_FILL, 1, 2)
        assert state["equity"] == a.start + a.realised + state["unrealised"] - a.fees
        assert state["realised"] == a.realised
        assert state["fees"] == a.fees
        assert state["position"] == a.position
    assert a.position == sum(side * size for side, _, size, _ in fills)
    assert a.fees == pytest.approx(sum(f for *_, f in fills))


def test_equity_at_is_the_one_formula() -> None:
    assert equity_at(100.0, 1.0, 10.0, 0.0, math.nan) == 99.0
    assert equity_at(100.0, 1.0, 10.0, 2.0, math.nan) == 99.0  # no mid yet: nothing unrealised
    assert equity_at(100.0, 1.0, 10.0, 2.0, 12.5) == 100.0 + 2.5 * 2.0 - 1.0


def test_state_record_tracks_peak_drawdown_and_exposure() -> None:
    a = new_account(PortfolioConfig(starting_equity=1000.0), 0, 0)
    apply_fill(a, +1, 100, 5, 0.0)  # 500 of notional on 1000 of equity
    up = record(a, 120.0, R_FILL, 10, 3)  # +100
    down = record(a, 90.0, R_FILL, 11, 4)  # -50
    assert up.dtype == PORTFOLIO_STATE.dtype
    assert (up["equity"], up["peak_equity"], up["drawdown"]) == (1100.0, 1100.0, 0.0)
    assert down["equity"] == 950.0
    assert down["peak_equity"] == 1100.0
    assert down["drawdown"] == pytest.approx(150.0 / 1100.0)
    assert down["exposure"] == pytest.approx(5 * 90.0 / 950.0)
    assert (int(down["ts_event"]), int(down["cause"]), int(down["reason"])) == (11, 4, R_FILL)
    flat = record(new_account(PortfolioConfig(), 0, 0), math.nan, R_FILL, 0, 0)
    assert flat["exposure"] == 0.0
    assert math.isnan(flat["mid"])


def test_wdo_is_worth_ten_reais_per_point() -> None:
    """B3 quotes WDO in BRL per USD 1,000 with a USD 10,000 contract: one point (1.0, ten price
    units at price scale 1) of one contract is BRL 10, a tick (0.5) BRL 5."""
    assert contract_multiplier(WDO) == 10.0
    assert trading_defaults(WDO)["contract_multiplier"] == 10.0
    config = PortfolioConfig(contract_multiplier=contract_multiplier(WDO))
    a = new_account(config, WDO.price_scale, WDO.size_scale)
    apply_fill(a, +1, 54_500, 1, 0.0)  # one contract at 5,450.0
    assert a.unrealised(54_510.0) == pytest.approx(10.0)  # +1.0 point
    assert a.unrealised(54_505.0) == pytest.approx(5.0)  # +1 tick
    assert abs(a.slope) * 54_500 == pytest.approx(54_500.0)  # notional: BRL 54,500
    apple = InstrumentSpec("AAPL", "NASDAQ", "America/New_York", 4, 0, 100, 1, "USD")
    assert contract_multiplier(apple) == 1.0


@given(
    values=st.tuples(*(st.floats(-1e12, 1e12, allow_nan=False) for _ in range(4))),
    mid=st.floats(0, 1e9),
)
def test_python_and_compiled_equity_agree_bit_for_bit(values: tuple, mid: float) -> None:
    """The account computes equity uncompiled, the venue loop compiled: the same bits."""
    from streams.trading.portfolio import _equity_at

    base, fees, avg, slope = values
    assert _equity_at(base, fees, avg, slope, mid) == equity_at(base, fees, avg, slope, mid)
