"""Out-of-sample windows from the predictions' flags, the account over a window, and the three
baselines, on hand-made outputs with hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from engine.events.book import BOOK_MID
from engine.events.decisions import P_IN_SAMPLE, PREDICTION, new_records
from engine.events.models import ModelSwitched
from engine.events.trading import R_FILL, R_MARK, new_states
from streams.trading.baselines import RANDOM_DRAWS, Held, Market, compare
from streams.trading.evaluation import END, bundle_windows, sample_windows
from streams.trading.report import build_report

S = 1_000_000_000


def predictions(causes: list[int], in_sample: list[bool]) -> np.ndarray:
    out = new_records(PREDICTION, len(causes))
    out["cause"] = causes
    out["flags"] = [P_IN_SAMPLE if flag else 0 for flag in in_sample]
    return out


def test_windows_follow_the_in_sample_flag() -> None:
    p = predictions([10, 20, 30, 40, 50], [True, True, False, False, True])
    oos, ins, basis = sample_windows(p)
    assert oos == [(30, 50)]
    assert ins == [(0, 30), (50, END)]
    assert "in sample" in basis
    assert sample_windows(predictions([1, 2], [False, False]))[:2] == ([(0, END)], [])
    assert sample_windows(None)[:2] == ([(0, END)], [])


def test_each_bundle_gets_its_out_of_sample_stretch() -> None:
    switches = [
        ModelSwitched(0, 0, "a" * 64, "schedule", -1, 5),
        ModelSwitched(0, 30, "b" * 64, "schedule", 0, 6),
        ModelSwitched(0, 70, "c" * 64, "promotion", -1, 7),
    ]
    windows = bundle_windows(switches, [(25, 100)])
    assert [(w.name, w.intervals) for w in windows] == [
        ("schedule aaaaaaaaaaaa", [(25, 30)]),
        ("fold 0", [(30, 70)]),
        ("promotion cccccccccccc", [(70, 100)]),
    ]
    assert bundle_windows(switches[:1], [(0, 100)]) == []


def account() -> np.ndarray:
    """Equity path 1000 -> 1010 (a long trip closed at +10, fee 1) -> 1004 -> 1006."""
    rows = [  # (reason, cause, ts s, position, realised, unrealised, fees)
        (R_MARK, 0, 0, 0, 0.0, 0.0, 0.0),
        (R_FILL, 5, 1, 10, 0.0, 0.0, 0.5),  # open
        (R_MARK, 8, 2, 10, 0.0, 5.0, 0.5),
        (R_FILL, 12, 3, 0, 11.0, 0.0, 1.0),  # close: net 11 - 1 = +10
        (R_FILL, 20, 4, -5, 11.0, 0.0, 1.5),  # open short
        (R_MARK, 25, 5, -5, 11.0, -5.5, 1.5),
        (R_MARK, 30, 6, -5, 11.0, -3.5, 1.5),
    ]
    out = new_states(len(rows))
    for row, (reason, cause, ts, position, realised, unrealised, fees) in zip(
        out, rows, strict=True
    ):
        row["reason"], row["cause"], row["ts_event"] = reason, cause, ts * S
        row["position"], row["realised"], row["unrealised"], row["fees"] = (
            position, realised, unrealised, fees
        )  # fmt: skip
        row["equity"] = 1000.0 + realised + unrealised - fees
    return out


def test_the_account_over_a_window_counts_its_own_trips_and_equity() -> None:
    first = build_report(account(), [], intervals=[(0, 15)], starting_equity=1000.0)
    assert (first.round_trips, first.wins, first.net_pnl) == (1, 1, 10.0)
    assert first.fees == 1.0
    assert first.starting_equity == 1000.0
    later = build_report(account(), [], intervals=[(15, 100)], starting_equity=1000.0)
    assert later.round_trips == 0  # the short is still open
    assert later.starting_equity == 1010.0
    assert later.net_pnl == pytest.approx(-2.0 - 2.0)  # 1010 -> 1006, the short marked to mid
    assert later.open_position == -5
    assert later.max_drawdown == pytest.approx((1010.0 - 1004.0) / 1010.0)
    whole = build_report(account(), [], starting_equity=1000.0)
    assert whole.net_pnl == pytest.approx(first.net_pnl + later.net_pnl)


def mids(rows: list[tuple[int, int, float, int]]) -> np.ndarray:
    """(cause, ts s, mid, spread) two-sided updates."""
    out = np.zeros(len(rows), BOOK_MID.dtype)
    for row, (cause, ts, mid, spread) in zip(out, rows, strict=True):
        row["two_sided"], row["cause"], row["ts_event"] = 1, cause, ts * S
        row["mid"], row["spread"] = mid, spread
    return out


def test_buy_and_hold_crosses_the_spread_and_pays_the_taker_fee_twice() -> None:
    market = Market.of(mids([(0, 0, 100.0, 2), (50, 5, 110.0, 2)]), value=1.0, taker_bp=10.0)
    b = compare(3.0, market, [(0, 100)], [], fallback_size=4, seed=1)
    # buy 4 at 101, sell 4 at 109: +32, fees (101 + 109) * 4 * 10 bp = 0.84
    assert b.buy_and_hold == pytest.approx(32.0 - 0.84)
    assert b.buy_and_hold_size == 4
    assert (b.no_trade, b.beats_no_trade, b.beats_buy_and_hold) == (0.0, True, False)
    assert b.random_trades == 0
    assert b.random_median == 0.0


def test_random_entries_with_a_flat_book_lose_the_spread_and_fees_whatever_the_draw() -> None:
    market = Market.of(mids([(0, 0, 100.0, 2), (90, 9, 100.0, 2)]), value=1.0, taker_bp=10.0)
    held = [Held(0, 2 * S, 3), Held(0, 1 * S, 1)]
    b = compare(-1.0, market, [(0, 100)], held, fallback_size=0, seed=7)
    # each trade: -2 per unit of spread, fees (99 + 101) * size * 10 bp
    loss = -(2.0 * 3 + 0.6) - (2.0 * 1 + 0.2)
    assert b.random_median == pytest.approx(loss)
    assert b.random_p05 == pytest.approx(loss)
    assert b.random_draws == RANDOM_DRAWS
    assert b.buy_and_hold_size == 2  # the strategy's mean trip size
    assert b.beats_random
    assert b.random_beaten_share == 1.0


def test_random_entries_are_drawn_from_the_run_seed() -> None:
    rows = [(k, k, 100.0 + np.sin(k) * 5, 2) for k in range(100)]
    market = Market.of(mids(rows), value=1.0, taker_bp=1.0)
    held = [Held(0, 3 * S, 2)] * 4
    a = compare(0.0, market, [(0, 100)], held, 0, seed=11)
    assert compare(0.0, market, [(0, 100)], held, 0, seed=11) == a
    assert compare(0.0, market, [(0, 100)], held, 0, seed=12).random_median != a.random_median
