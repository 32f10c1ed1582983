"""Every reason bit of every agent: its name, its effect and what it means.

This table is the single source of truth for docs/agents.md (``python -m streams.agents.docs``)
and for :func:`reason_names` (readable reasons in ``inspect`` and traces). The bit values come
from :mod:`streams.agents.evaluate`, which sets them; a test checks that every bit the code can
set is here and that no two rules of an agent share a bit.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.agents import evaluate as ev

UP, DOWN, MISSING = "vote +1", "vote -1", "input missing"
DAMP = f"confidence x {ev.DAMP_FACTOR}"


@dataclass(frozen=True)
class Rule:
    """One reason bit of one agent."""

    bit: int
    name: str
    effect: str
    """``vote +1`` / ``vote -1`` (a directional rule), a confidence factor, or a note."""
    meaning: str
    samples: str = ""
    """Why it never fires in the bundled samples (empty: it fires in them; a test checks)."""


@dataclass(frozen=True)
class AgentRules:
    """One agent: what it reads, its rules, and what it does when data is missing."""

    name: str
    reads: str
    rules: tuple[Rule, ...]
    warm_up: str
    no_trades: str
    no_order_ids: str


_SIGNS = (
    "same: no rule needs order ids. Trades carry their aggressor where the venue flags it "
    "(Binance `m`); a LOBSTER execution's aggressor is opposite the resting order; an unsigned "
    "print (LOBSTER cross trade) is signed by the quote rule against the agents' L1, then the "
    "tick rule (Lee-Ready)"
)
_NO_DATA = Rule(
    ev.NO_DATA,
    "no_data",
    "vote 0, confidence 0",
    "no directional rule could be evaluated (every input missing: warming up, no trades, "
    "no book); the consensus gives this agent's weight to the other agents",
)

ORDER_FLOW = AgentRules(
    "order_flow",
    "features `trade_imbalance_5s`, `ofi_depth_ratio_5s`, `trade_imbalance_30s`, "
    "`trade_count_imbalance_30s`, `volume_ratio_5s_30s`; the vector's `no_trades` flag",
    (
        _NO_DATA,
        Rule(
            ev.OF_NO_TRADES,
            "no_trades",
            MISSING,
            "no trade seen yet in the session (the "
            "vector's `no_trades` flag): only the OFI rule can fire",
        ),
        Rule(
            ev.OF_AGGRESSIVE_BUYING,
            "aggressive_buying",
            UP,
            "`trade_imbalance_5s >= aggressor_imbalance`: buyers lift the offer",
        ),
        Rule(
            ev.OF_AGGRESSIVE_SELLING,
            "aggressive_selling",
            DOWN,
            "`trade_imbalance_5s <= -aggressor_imbalance`: sellers hit the bid",
        ),
        Rule(
            ev.OF_OFI_BID,
            "ofi_bid",
            UP,
            "`ofi_depth_ratio_5s >= ofi_depth_ratio`: bids added / offers pulled (Cont-Kukanov-"
            "Stoikov order-flow imbalance, in L1 depths)",
        ),
        Rule(ev.OF_OFI_ASK, "ofi_ask", DOWN, "`ofi_depth_ratio_5s <= -ofi_depth_ratio`"),
        Rule(
            ev.OF_PERSISTENT_BUYING,
            "persistent_buying",
            UP,
            "`trade_imbalance_30s >= persistent_imbalance` and `trade_count_imbalance_30s > 0`:"
            " buying over 30 s by volume and by count",
        ),
        Rule(
            ev.OF_PERSISTENT_SELLING,
            "persistent_selling",
            DOWN,
            "`trade_imbalance_30s <= -persistent_imbalance` and `trade_count_imbalance_30s < 0`",
        ),
        Rule(
            ev.OF_INTENSE,
            "intense",
            f"confidence x {ev.INTENSE_FACTOR}",
            "`volume_ratio_5s_30s >= intense_ratio`: the last 5 s trade faster than the 30 s "
            "average, so the 5 s imbalance rests on many trades (checked once the 30 s window "
            "is warm)",
        ),
        Rule(
            ev.OF_QUIET,
            "quiet",
            DAMP,
            "`volume_ratio_5s_30s <= quiet_ratio`, or no trade in the 30 s window: the 5 s "
            "imbalance rests on few trades",
        ),
    ),
    "rules are skipped while their feature is NaN: the 5 s rules for the first 5 bars, the "
    "persistent rule and the intensity modifiers for 30; `no_data` until a 5 s rule is defined",
    "only the OFI rule (from the L1 quotes) can fire, so confidence is at most a third of a "
    "trading venue's; `no_trades` is set on every vector (B3 top of book: demo-wdo)",
    "same: it reads aggregated features only",
)

LIQUIDITY = AgentRules(
    "liquidity",
    "features `depth_imbalance_5`, `depth_imbalance_1`, `book_slope_bid`, `book_slope_ask`, "
    "`spread_ema_ratio_30s`; port `book` (`book.top`): the 10-level depth imbalance after "
    "every usable top and its EMA; the vector's `no_book` flag",
    (
        _NO_DATA,
        Rule(
            ev.LQ_NO_BOOK,
            "no_book",
            MISSING,
            "no usable `book.top` (the vector's `no_book` flag): depth rules are skipped",
        ),
        Rule(
            ev.LQ_BID_HEAVY,
            "bid_heavy",
            UP,
            "`depth_imbalance_5 >= depth_imbalance`: more size resting on the bid over five "
            "levels, so the ask gives way first",
        ),
        Rule(ev.LQ_ASK_HEAVY, "ask_heavy", DOWN, "`depth_imbalance_5 <= -depth_imbalance`"),
        Rule(
            ev.LQ_TOUCH_BID,
            "touch_bid_pressure",
            UP,
            "`depth_imbalance_1 >= touch_imbalance`: the best ask queue is the short one "
            "(the microprice leans up)",
        ),
        Rule(
            ev.LQ_TOUCH_ASK, "touch_ask_pressure", DOWN, "`depth_imbalance_1 <= -touch_imbalance`"
        ),
        Rule(
            ev.LQ_THIN_ASK,
            "thin_ask",
            UP,
            "`book_slope_bid / book_slope_ask >= slope_ratio`: the ask side holds less size "
            "per bps of price, so a buy moves price further (needs two levels a side)",
        ),
        Rule(
            ev.LQ_THIN_BID,
            "thin_bid",
            DOWN,
            "`book_slope_ask / book_slope_bid >= slope_ratio`",
        ),
        Rule(
            ev.LQ_BID_BUILDING,
            "bid_building",
            UP,
            "10-level depth imbalance minus its EMA (`trend_tau_s`) `>= trend`: size is being "
            "added to the bid (or pulled from the ask); evaluated once the EMA has run one "
            "`trend_tau_s` since the book became usable",
        ),
        Rule(ev.LQ_ASK_BUILDING, "ask_building", DOWN, "the same `<= -trend`"),
        Rule(
            ev.LQ_WIDE_SPREAD,
            "wide_spread",
            DAMP,
            "`spread_ema_ratio_30s >= wide_spread_ratio`: the spread is wider than its 30 s "
            "EMA, liquidity has stepped back and depth says less",
        ),
    ),
    "the depth rules from the first usable `book.top`; the building rules once the EMA has run "
    "`trend_tau_s` of usable book; `no_book` (and `no_data`) while there is none (Binance "
    "before its REST snapshot, and after a feed gap until the next)",
    "same: it reads the book only",
    "same: it reads aggregated levels. With one level a side (B3 top of book) "
    "`depth_imbalance_5` equals `depth_imbalance_1`, so both rules fire together, and the "
    "slopes are NaN, so the thin-side rules are skipped",
)

TAPE_READING = AgentRules(
    "tape_reading",
    "the journal's trades (aggressor side; run, trade-size EWMA, decayed rates and large "
    "prints kept by the stage); features `vwap_deviation_30s`, `realized_vol_15s`",
    (
        _NO_DATA,
        Rule(
            ev.TR_NO_TRADES,
            "no_trades",
            MISSING,
            "no trade seen yet: only price vs VWAP could fire, and it needs trades too",
        ),
        Rule(
            ev.TR_RUN_BUYING,
            "run_buying",
            UP,
            "the last `run_trades` or more trades were all buyer-initiated and the last is at "
            "most `run_age_s` old",
        ),
        Rule(ev.TR_RUN_SELLING, "run_selling", DOWN, "the same with seller-initiated trades"),
        Rule(
            ev.TR_LARGE_BUYING,
            "large_buying",
            UP,
            "decayed net count of large prints (`large_tau_s`; a print is large at "
            "`large_multiple` x the trade-size EWMA, after 20 trades) `>= large_net`",
        ),
        Rule(ev.TR_LARGE_SELLING, "large_selling", DOWN, "the same `<= -large_net`"),
        Rule(
            ev.TR_ACCEL_BUYING,
            "accelerating_buying",
            UP,
            "fast trade rate / slow trade rate `>= accel_ratio` (`fast_tau_s`, `slow_tau_s`; "
            "rates bias-corrected for the time observed) with buyers ahead in the fast "
            "decayed signed volume",
        ),
        Rule(ev.TR_ACCEL_SELLING, "accelerating_selling", DOWN, "the same with sellers ahead"),
        Rule(
            ev.TR_ABOVE_VWAP,
            "above_vwap",
            UP,
            "`vwap_deviation_30s >= vwap_vol x realized_vol_15s`: price holds above where the "
            "last 30 s traded, buyers in control",
        ),
        Rule(
            ev.TR_BELOW_VWAP,
            "below_vwap",
            DOWN,
            "`vwap_deviation_30s <= -vwap_vol x realized_vol_15s`",
        ),
        Rule(
            ev.TR_STALE,
            "stale",
            DAMP,
            "the last trade is more than `stale_s` old: the tape says little about now",
            "no sample with trades pauses that long; tested on demo-aapl with a quiet period "
            "of clock ticks appended",
        ),
    ),
    "`no_trades` and `no_data` before the first trade; large prints after 20 trades; "
    "acceleration after `fast_tau_s` of event time; price vs VWAP once `vwap_deviation_30s` and "
    "`realized_vol_15s` are defined",
    "`no_trades` and `no_data` on every vector: it votes 0 with confidence 0 and the consensus "
    "gives its weight to the other agents",
    _SIGNS,
)

FOOTPRINT = AgentRules(
    "footprint",
    "the journal's trades over the last `window_s` as buy and sell volume per price row "
    "(`row_ticks`, or `row_bps` of the first trade's price); the L1",
    (
        _NO_DATA,
        Rule(ev.FP_NO_TRADES, "no_trades", MISSING, "no trade seen yet in the session"),
        Rule(
            ev.FP_DELTA_BUYING,
            "delta_buying",
            UP,
            "window delta `(buy - sell) / (buy + sell) >= delta_ratio`",
        ),
        Rule(ev.FP_DELTA_SELLING, "delta_selling", DOWN, "window delta `<= -delta_ratio`"),
        Rule(
            ev.FP_ABSORPTION_BID,
            "absorption_bid",
            UP,
            "sell volume traded at the current bid's row `>= absorption_multiple` x the "
            "average row volume and the bid still stands: passive buyers absorb the selling",
        ),
        Rule(
            ev.FP_ABSORPTION_ASK,
            "absorption_ask",
            DOWN,
            "buy volume at the current ask's row `>= absorption_multiple` x the average row "
            "volume: passive sellers absorb the buying",
        ),
        Rule(
            ev.FP_EXHAUSTION_LOW,
            "exhaustion_low",
            UP,
            "the ask is at or below the window's lowest traded row and that row traded at "
            "most `exhaustion_fraction` x the average row volume: sellers ran out",
        ),
        Rule(
            ev.FP_EXHAUSTION_HIGH,
            "exhaustion_high",
            DOWN,
            "the bid is at or above the highest traded row and that row traded at most "
            "`exhaustion_fraction` x the average: buyers ran out",
        ),
        Rule(
            ev.FP_STACKED_BUYING,
            "stacked_buying",
            UP,
            "`stack_rows` or more consecutive rows where buy volume `>= stack_ratio` x the "
            "sell volume one row below (and `>= stack_share` x the average row)",
        ),
        Rule(
            ev.FP_STACKED_SELLING,
            "stacked_selling",
            DOWN,
            "the same with sell volume against the buy volume one row above",
        ),
        Rule(
            ev.FP_DIVERGENCE_LOW,
            "divergence_low",
            UP,
            "the ask is at the window's low but the window delta is `>= divergence_delta`: "
            "the low is not backed by sellers",
        ),
        Rule(
            ev.FP_DIVERGENCE_HIGH,
            "divergence_high",
            DOWN,
            "the bid is at the window's high but the delta is `<= -divergence_delta`",
        ),
        Rule(
            ev.FP_THIN_WINDOW, "thin_window", DAMP, "fewer than `min_trades` trades in the window"
        ),
    ),
    "`no_trades` and `no_data` before the first trade, `no_data` while the window is empty; "
    "`thin_window` damps while it holds fewer than `min_trades`; the L1 rules (absorption, "
    "exhaustion, divergence) need a two-sided L1",
    "`no_trades` and `no_data` on every vector, as for tape reading",
    _SIGNS,
)

AGENT_RULES: tuple[AgentRules, ...] = (ORDER_FLOW, LIQUIDITY, TAPE_READING, FOOTPRINT)
"""Every agent, in the order of ``engine.events.decisions.AGENTS``."""


def reason_names(agent: int, bits: int) -> list[str]:
    """The names of the rules set in ``bits`` for agent number ``agent``, in bit order."""
    return [r.name for r in AGENT_RULES[agent].rules if bits & r.bit]
