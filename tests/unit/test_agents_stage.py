"""The agents stage's rule table, docs and config, hand-checked votes on constructed inputs,
and slicing / restore independence on synthetic streams."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events.book import new_tops
from engine.events.control import InstrumentSpec
from engine.events.decisions import VOTES
from engine.events.features import F_NO_BOOK, F_NO_TRADES, new_vectors
from engine.events.market import MARKET_RECORD
from engine.runtime import ConfigError, RunConfig, Slice, StageContext, Topology
from engine.runtime.topology import resolve
from streams.agents import AGENT_RULES, AGENTS_STAGE, AgentsStage, reason_names
from streams.agents import evaluate as ev
from streams.agents.docs import render_markdown
from streams.features import INDEX
from tests.decision_inputs import PIPELINES

DOC = Path(__file__).parents[2] / "docs" / "agents.md"
BTC = InstrumentSpec("BTCUSDT", "BINANCE-SPOT", "UTC", 2, 8, 1, 1, "USDT")
WDO = InstrumentSpec("WDOU25", "B3", "America/Sao_Paulo", 1, 0, 5, 1, "BRL")
T0 = 1_723_161_254_000_000_000
SEC = 1_000_000_000


def stage(spec: InstrumentSpec = BTC, **config: Any) -> AgentsStage:
    return AgentsStage(StageContext("s", spec, {**AGENTS_STAGE.defaults(spec), **config}, 0))


# -- rule table and docs -----------------------------------------------------------------------


def test_the_rule_table_names_every_bit_the_code_sets() -> None:
    prefixes = ("OF_", "LQ_", "TR_", "FP_")
    for agent, prefix in zip(AGENT_RULES, prefixes, strict=True):
        code = {getattr(ev, n) for n in dir(ev) if n.startswith(prefix)} | {ev.NO_DATA}
        table = [r.bit for r in agent.rules]
        assert sorted(table) == sorted(code), agent.name
        assert len(set(table)) == len(table)
        assert all(bit & (bit - 1) == 0 for bit in table)  # one bit each
        names = [r.name for r in agent.rules]
        assert len(set(names)) == len(names)
    for a, agent in enumerate(AGENT_RULES):
        ups = [r for r in agent.rules if r.effect == "vote +1"]
        downs = [r for r in agent.rules if r.effect == "vote -1"]
        assert len(ups) == len(downs) == ev.DIRECTIONAL_RULES[a], agent.name


def test_reason_names_read_the_bits() -> None:
    bits = ev.TR_RUN_BUYING | ev.TR_STALE
    assert reason_names(2, bits) == ["run_buying", "stale"]
    assert reason_names(0, 0) == []


def test_agents_doc_is_current() -> None:
    assert DOC.read_text() == render_markdown(), (
        "docs/agents.md is stale: run `.venv/bin/python -m streams.agents.docs > docs/agents.md`"
    )
    text = DOC.read_text()
    for agent in AGENT_RULES:
        for rule in agent.rules:
            assert f"`{rule.name}`" in text


# -- config --------------------------------------------------------------------------------------


def test_defaults_per_instrument() -> None:
    assert stage(BTC).config.l1 == "quote"
    assert stage(BTC).config.order_flow.ofi_depth_ratio == 10.0
    b3 = stage(WDO)
    assert (b3.config.l1, b3.config.order_flow.ofi_depth_ratio) == ("book", 2.0)
    # a nested table is merged over the instrument's defaults, key by key
    tuned = stage(WDO, order_flow={"aggressor_imbalance": 0.5})
    assert tuned.config.order_flow.aggressor_imbalance == 0.5
    assert tuned.config.order_flow.ofi_depth_ratio == 2.0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"l1": "depth"}, "l1 must be one of 'book', 'quote'"),
        ({"speed": 1}, r"unknown setting\(s\) \['speed'\]"),
        ({"order_flow": {"agressor": 0.3}}, r"unknown setting\(s\) \['agressor'\] in order_flow"),
        (
            {"order_flow": {"aggressor_imbalance": -1.0}},
            "order_flow.aggressor_imbalance must be a finite number > 0",
        ),
        ({"liquidity": {"slope_ratio": 1.0}}, r"liquidity.slope_ratio must be > 1"),
        ({"order_flow": {"quiet_ratio": 3.0}}, r"must be below intense_ratio \(2.0\)"),
        ({"footprint": {"row_ticks": -1}}, "footprint.row_ticks must be >= 0"),
        ({"tape_reading": {"run_trades": "five"}}, "Expected `int`"),
        ({"tape_reading": {"fast_tau_s": 40.0}}, "fast_tau_s .* must be below slow_tau_s"),
        ({"full_evidence": 0.0}, "full_evidence must be > 0"),
        ({"liquidity": {"trend": float("nan")}}, "liquidity.trend must be a finite number"),
    ],
)
def test_config_errors_say_what_is_allowed(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        stage(BTC, **config)


def test_a_bad_value_in_a_run_config_fails_when_the_pipeline_is_built() -> None:
    config = RunConfig(pipeline="test-agents", stages={"agents": {"footprint": {"window_s": 0}}})
    with pytest.raises(ConfigError, match=r"stage 'agents': footprint\.window_s must be"):
        Topology(PIPELINES.get("test-agents"), resolve(PIPELINES, config, BTC), "s", BTC)


# -- hand-checked votes on constructed inputs -----------------------------------------------------


def vector(cause: int, ts: int, flags: int = 0, **values: float) -> np.ndarray:
    out = new_vectors(1, 1)
    out["cause"], out["ts_event"], out["flags"] = cause, ts, flags
    row = np.full(65, np.nan)
    for name, value in values.items():
        row[INDEX[name]] = value
    out["values"] = row
    return out


def records(rows: list[tuple[int, int, int, int, int, int, int]]) -> np.ndarray:
    """(type_id, side, price, size, price2, size2, ts) market records."""
    out = np.zeros(len(rows), MARKET_RECORD)
    for name, column in zip(
        ("type_id", "side", "price", "size", "price2", "size2", "ts_event"),
        zip(*rows, strict=True),
        strict=True,
    ):
        out[name] = column
    return out


def feed(agents: AgentsStage, market: np.ndarray, vectors: np.ndarray, tops: Any = None) -> Any:
    piece = Slice(
        0,
        len(market),
        market=market,
        inputs={"features": vectors, "book": tops if tops is not None else new_tops(0)},
    )
    out = agents.process(piece)[0]
    assert isinstance(out, np.ndarray)
    assert out.dtype == VOTES.dtype
    return out


def one_vote(agents: AgentsStage, rows: list[Any], **vector_values: Any) -> Any:
    """The votes after ``rows`` for a vector caused by the last of them."""
    market = records(rows)
    last = len(rows) - 1
    flags = vector_values.pop("flags", 0)
    vec = vector(last, int(market["ts_event"][-1]), flags, **vector_values)
    return feed(agents, market, vec)[0]


def test_nothing_known_means_no_data_from_every_agent() -> None:
    vote = one_vote(stage(), [(7, 0, 0, 0, 0, 0, T0)], flags=F_NO_TRADES | F_NO_BOOK)
    assert vote["votes"].tolist() == [0, 0, 0, 0]
    assert vote["confidence"].tolist() == [0.0] * 4
    assert reason_names(0, int(vote["reasons"][0])) == ["no_data", "no_trades"]
    assert reason_names(1, int(vote["reasons"][1])) == ["no_data", "no_book"]
    assert reason_names(2, int(vote["reasons"][2])) == ["no_data", "no_trades"]
    assert reason_names(3, int(vote["reasons"][3])) == ["no_data", "no_trades"]


def test_order_flow_adds_evidence_and_scales_by_intensity() -> None:
    quote = [(7, 0, 0, 0, 0, 0, T0)]
    # aggressor 0.6 / 0.3 = 2 -> +1; OFI -10 / 10 = -1 -> -0.5; E = 0.5 of full 2
    vote = one_vote(stage(), quote, trade_imbalance_5s=0.6, ofi_depth_ratio_5s=-10.0)
    assert (int(vote["votes"][0]), float(vote["confidence"][0])) == (1, 0.25)
    assert reason_names(0, int(vote["reasons"][0])) == ["aggressive_buying", "ofi_ask"]
    # persistent 0.5 / 0.2 = 2.5 -> +1 (counts agree), intense (3 >= 2) x 1.25: E = 1.5
    vote = one_vote(
        stage(),
        quote,
        trade_imbalance_5s=0.6,
        ofi_depth_ratio_5s=-10.0,
        trade_imbalance_30s=0.5,
        trade_count_imbalance_30s=0.2,
        volume_ratio_5s_30s=3.0,
    )
    assert float(vote["confidence"][0]) == 1.5 / 2.0 * 1.25
    assert reason_names(0, int(vote["reasons"][0])) == [
        "aggressive_buying",
        "ofi_ask",
        "persistent_buying",
        "intense",
    ]
    # counts disagree: persistent does not fire; quiet (0.4 <= 0.5) halves
    vote = one_vote(
        stage(),
        quote,
        trade_imbalance_5s=0.6,
        trade_imbalance_30s=0.5,
        trade_count_imbalance_30s=-0.2,
        volume_ratio_5s_30s=0.4,
    )
    assert float(vote["confidence"][0]) == 1.0 / 2.0 * 0.5
    assert reason_names(0, int(vote["reasons"][0])) == ["aggressive_buying", "quiet"]


def test_liquidity_from_depth_touch_slopes_and_spread() -> None:
    vote = one_vote(
        stage(),
        [(7, 0, 0, 0, 0, 0, T0)],
        depth_imbalance_5=0.9,  # 0.9 / 0.6 = 1.5 -> +0.75
        depth_imbalance_1=-0.95,  # -0.95 / 0.9 -> -0.5278
        book_slope_bid=16.0,  # ln(16) / ln(4) = 2 -> +1
        book_slope_ask=1.0,
        spread_ema_ratio_30s=2.0,  # wide: x 0.5
    )
    evidence = 0.75 - (0.95 / 0.9) / 2.0 + 1.0
    assert int(vote["votes"][1]) == 1
    assert float(vote["confidence"][1]) == pytest.approx(evidence / 2.0 * 0.5, abs=1e-15)
    assert reason_names(1, int(vote["reasons"][1])) == [
        "bid_heavy",
        "touch_ask_pressure",
        "thin_ask",
        "wide_spread",
    ]


def test_a_run_of_buyers_then_silence() -> None:
    agents = stage()
    buys = [(1, 1, 6_000_000, 10**6, 0, 0, T0 + i * 10**8) for i in range(6)]
    vote = one_vote(agents, buys)
    # run 6 / 5 = 1.2 -> 0.6; no large print before 20 trades, no rate before 2 s
    assert (int(vote["votes"][2]), float(vote["confidence"][2])) == (1, 0.3)
    assert reason_names(2, int(vote["reasons"][2])) == ["run_buying"]
    later = records([(7, 0, 0, 0, 0, 0, T0 + 6 * SEC)])  # 5.5 s after the last trade
    after = feed(agents, later, vector(0, T0 + 6 * SEC))[0]
    assert int(after["votes"][2]) == 0
    assert not int(after["reasons"][2]) & (ev.TR_RUN_BUYING | ev.NO_DATA)


def test_a_large_print() -> None:
    agents = stage(tape_reading={"accel_ratio": 1e9})  # keep acceleration out of it
    small = [(1, 1 - 2 * (i % 2), 6_000_000, 10**6, 0, 0, T0 + i * 10**7) for i in range(25)]
    big = (1, 1, 6_000_000, 25 * 10**6, 0, 0, T0 + 25 * 10**7)  # 25 x a size of 1
    vote = one_vote(agents, [*small, big])
    assert (int(vote["votes"][2]), float(vote["confidence"][2])) == (1, 0.5)  # z = 2 -> 1 of 2
    assert reason_names(2, int(vote["reasons"][2])) == ["large_buying"]


def test_footprint_absorption_against_delta() -> None:
    """Rows of one tick (0.2 bps of 100.00 rounds to 0, at least 1): selling heavy at the bid
    row 10000 (absorbed: the bid stands) inside a window whose delta is selling."""
    ts = iter(range(T0, T0 + 10**9, 10**6))
    rows = [(7, 0, 10_000, 10**8, 10_001, 10**8, next(ts))]  # bid 100.00, ask 100.01
    rows += [(1, -1, 9_998, 1, 0, 0, next(ts)), (1, -1, 9_999, 1, 0, 0, next(ts))]
    rows += [(1, -1, 10_000, 5, 0, 0, next(ts)) for _ in range(10)]
    rows += [(1, 1, 10_001, 1, 0, 0, next(ts)) for _ in range(10)]
    vote = one_vote(stage(), rows)
    avg = 62 / 4
    delta = (10 - 52) / 62  # -> -1 (z <= -2)
    absorption = 50 / (3.0 * avg)  # 1.075 -> +0.538
    assert delta / 0.3 <= -2.0
    assert int(vote["votes"][3]) == -1
    assert float(vote["confidence"][3]) == (1.0 - absorption / 2.0) / 2.0
    assert reason_names(3, int(vote["reasons"][3])) == ["delta_selling", "absorption_bid"]


# -- determinism on synthetic streams -------------------------------------------------------------


@st.composite
def streams(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quotes, trades (signed and unsigned), tops and vectors, with jumps in time."""
    ts, mid, rows, vec, top_rows = T0, 6_000_000, [], [], []
    for i in range(draw(st.integers(1, 120))):
        ts += draw(st.sampled_from([0, 10**6, 3 * 10**8, 2 * SEC, 40 * SEC, -SEC]))
        if draw(st.booleans()):
            mid += draw(st.integers(-300, 300))
            rows.append((7, 0, mid, draw(st.integers(0, 9)) * 10**6, mid + 1, 10**6, ts))
        else:
            size = draw(st.sampled_from([1, 2, 5, 100])) * 10**5
            rows.append((1, draw(st.sampled_from([-1, 0, 1])), mid + draw(st.integers(-2, 3)),
                         size, 0, 0, ts))  # fmt: skip
        if draw(st.integers(0, 3)) == 0:
            top_rows.append((i, draw(st.sampled_from([0, 1, 3])), draw(st.integers(0, 9))))
        if draw(st.booleans()):
            values = {
                n: draw(st.floats(-3, 3)) for n in ("trade_imbalance_5s", "depth_imbalance_1")
            }
            vec.append(vector(i, ts, **values))
    tops = new_tops(len(top_rows))
    for k, (offset, status, size) in enumerate(top_rows):
        tops[k]["offset"], tops[k]["status"] = offset, status
        tops[k]["bid_price"][:3], tops[k]["ask_price"][:3] = (5, 4, 3), (6, 7, 8)
        tops[k]["bid_size"][:3], tops[k]["ask_size"][:3] = (size, 1, 1), (1, 2, 9 - size)
    joined = np.zeros(len(vec), vec[0].dtype) if vec else new_vectors(0, 1)
    for k, v in enumerate(vec):
        joined[k] = v[0]
    return records(rows), tops, joined


def run_sliced(agents: AgentsStage, stream: Any, cuts: list[int]) -> bytes:
    market, tops, vectors = stream
    out, start = [], 0
    for stop in [*sorted({c for c in cuts if 0 < c < len(market)}), len(market)]:
        piece = Slice(
            start,
            stop,
            market=market[start:stop],
            inputs={
                "features": vectors[(vectors["cause"] >= start) & (vectors["cause"] < stop)],
                "book": tops[(tops["offset"] >= start) & (tops["offset"] < stop)],
            },
        )
        out.append(agents.process(piece)[0].tobytes())
        start = stop
    return b"".join(out)


@settings(max_examples=25)
@given(stream=streams(), cuts=st.lists(st.integers(0, 120), max_size=6))
def test_synthetic_streams_give_the_same_bytes_in_any_slicing(stream: Any, cuts: list[int]) -> None:
    config = {"footprint": {"window_s": 3.0, "max_trades": 8}}  # expire and overflow often
    whole = run_sliced(stage(**config), stream, [])
    assert run_sliced(stage(**config), stream, cuts) == whole
    assert run_sliced(stage(**config), stream, list(range(120))) == whole


@settings(max_examples=20)
@given(stream=streams(), at=st.integers(0, 120))
def test_restore_mid_stream_continues_exactly(stream: Any, at: int) -> None:
    market, tops, vectors = stream
    at = min(at, len(market))
    whole = run_sliced(stage(), stream, [])
    first = stage()
    head = run_sliced(
        first, (market[:at], tops[tops["offset"] < at], vectors[vectors["cause"] < at]), []
    )
    second = stage()
    second.restore(first.snapshot())
    assert second.snapshot() == first.snapshot()
    tail_piece = Slice(
        at,
        len(market),
        market=market[at:],
        inputs={"features": vectors[vectors["cause"] >= at], "book": tops[tops["offset"] >= at]},
    )
    tail = second.process(tail_piece)[0].tobytes()
    assert head + tail == whole
    assert math.isfinite(second.inspect()["trade_size_ewma"])


def test_compiled_modules_repeat_each_others_constants_faithfully() -> None:
    """numba caches per source file, so each compiled module has its own copy of the
    constants it shares with another; the copies must agree."""
    from engine.events import features
    from streams.agents import tape

    names = [n for n in dir(tape) if n.startswith("M_")]
    assert len(names) == tape.N_M
    assert {n: getattr(ev, n) for n in names} == {n: getattr(tape, n) for n in names}
    assert (ev.F_NO_BOOK, ev.F_NO_TRADES) == (features.F_NO_BOOK, features.F_NO_TRADES)
