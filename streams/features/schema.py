"""The feature schema: every feature's name, group, formula, window, units and warm-up.

This table is the single source of truth for the layout of a ``features.vector`` (value ``i``
of a vector is ``FEATURES[i]``), for ``docs/features.md`` (``python -m streams.features.docs``)
and for the tests, which compare each feature by name against a plain reference computation.
The compiled kernel (``streams.features.kernel``) writes the values in this order; a test
checks the two agree.

Changing what any feature means, or the order, is a new ``FEATURE_SCHEMA_VERSION``: models
record the schema version they were trained on, and every vector carries it.

Notation used in the formulas
    ``t``: the stage's event-time clock (the largest ``ts_event`` seen so far, ns).
    ``b, a, qb, qa``: best bid, best ask and their sizes from the L1 source (see docs).
    ``m``: mid ``(b + a) / 2``, the last two-sided one (carried while the book is one-sided).
    Bars: one-second event-time bars aligned to UTC seconds; ``C_j`` is the mid in force at the
    end of bar ``j`` (the current bar's ``C`` is ``m``), ``O_j = C_(j-1)``, ``H_j``/``L_j``
    the highest/lowest mid during bar ``j`` including ``O_j``; ``r_j = ln(C_j / C_(j-1))``.
    A ``k s`` window is the current (partial) bar and the ``k - 1`` bars before it, so it spans
    between ``k - 1`` and ``k`` seconds of event time. Sums over bars run oldest to newest.
    Decays: ``D_tau(x)`` is a sum of ``x`` over events, each weighted ``exp(-(t - t_i) / tau)``
    (updated recursively: ``S <- S * exp(-(t_i - t_prev) / tau) + x_i``).
    ``EMA_tau(y)``: exponential moving average of the step path ``y(t)`` in continuous event
    time: on a change of ``y`` at ``t_i``, ``E <- y_prev + (E - y_prev) * exp(-(t_i -
    t_prev) / tau)``, evaluated at ``t`` the same way with the current ``y``.
    ``bps``: 1e-4 (basis points). Sizes are in the instrument's base unit (shares, BTC,
    contracts), i.e. integer size units times ``10**-size_scale``.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.events.features import N_VALUES

FEATURE_SCHEMA_VERSION = 1
"""Version of the feature definitions below; carried by every ``features.vector``."""


@dataclass(frozen=True)
class FeatureSpec:
    """One feature as documented in ``docs/features.md``."""

    name: str
    group: str
    formula: str
    window: str
    units: str
    warmup: str
    no_order_ids: str = "same (uses the aggregated book only)"
    """What the feature does on sources without order ids (L2 or top-of-book only)."""
    no_trades: str = "same (uses no trades)"
    """What the feature does on sources without trades (quotes only, e.g. B3 top of book)."""


GROUPS = (
    "volatility",
    "returns",
    "order_flow",
    "volume",
    "technical",
    "microstructure",
    "temporal",
)
GROUP_SIZES = {
    "volatility": 10,
    "returns": 10,
    "order_flow": 8,
    "volume": 8,
    "technical": 8,
    "microstructure": 15,
    "temporal": 6,
}


def _window(k: int) -> str:
    if k == 1:
        return "bars: 1 x 1 s (the current partial bar)"
    return f"bars: {k} x 1 s (the current partial bar and the {k - 1} before it)"


def _whole(k: int) -> str:
    return f"{k} whole bar{'s' if k > 1 else ''} after the first event"


_NO_TRADES = "always NaN (no trade is ever seen)"
_TRADE_SIGN = "same (how trades are signed: see Sources)"
_BOOK = "NaN while no usable `book.top` has been seen (not synced, or stale)"


def _bars(
    group: str, name: str, formula: str, k: int, units: str = "bps of log mid"
) -> FeatureSpec:
    """A feature over a window of ``k`` one-second bars of mid (and L1) only."""
    warm = f"NaN until {_whole(k)} and while no mid existed at the window's start"
    return FeatureSpec(name, group, formula, _window(k), units, warm)


def _trade(
    group: str, name: str, formula: str, k: int, units: str, signed: bool = False
) -> FeatureSpec:
    """A feature over a window of ``k`` one-second bars that uses trades (``signed``: signs)."""
    warm = f"NaN until {_whole(k)} and until a first trade"
    ids = _TRADE_SIGN if signed else "same (uses trades, not order ids)"
    return FeatureSpec(name, group, formula, _window(k), units, warm, ids, _NO_TRADES)


def _decay(
    group: str,
    name: str,
    formula: str,
    tau: int,
    units: str,
    since: str,
    trades: bool,
    signed: bool = False,
) -> FeatureSpec:
    """A decayed sum with time constant ``tau`` seconds."""
    warm = f"NaN until {3 * tau} s (3 tau) after the {since}"
    if trades:
        warm += " and until a first trade"
    return FeatureSpec(
        name,
        group,
        formula,
        f"decay: tau = {tau} s of event time",
        units,
        warm,
        _TRADE_SIGN if signed else "same (uses no order ids)",
        _NO_TRADES if trades else "same (uses no trades)",
    )


def _now(group: str, name: str, formula: str, units: str, warm: str) -> FeatureSpec:
    """An instantaneous feature of the current state (temporal ones: of the clock alone)."""
    if group == "temporal":
        clock = "same (uses only the clock and the calendar)"
        return FeatureSpec(name, group, formula, "instantaneous", units, warm, clock, clock)
    return FeatureSpec(name, group, formula, "instantaneous", units, warm)


_L1 = "NaN while the L1 is not two-sided"

VOLATILITY = (
    _bars("volatility", "realized_vol_5s", "1e4 * sqrt(sum r_j^2)", 5),
    _bars("volatility", "realized_vol_15s", "1e4 * sqrt(sum r_j^2)", 15),
    _bars("volatility", "realized_vol_60s", "1e4 * sqrt(sum r_j^2)", 60),
    _bars("volatility", "parkinson_vol_15s", "1e4 * sqrt(sum ln(H_j/L_j)^2 / (4 ln 2))", 15),
    _bars("volatility", "parkinson_vol_60s", "1e4 * sqrt(sum ln(H_j/L_j)^2 / (4 ln 2))", 60),
    _bars(
        "volatility",
        "garman_klass_vol_15s",
        "1e4 * sqrt(sum (0.5 ln(H_j/L_j)^2 - (2 ln 2 - 1) ln(C_j/O_j)^2))",
        15,
    ),
    _bars(
        "volatility",
        "garman_klass_vol_60s",
        "1e4 * sqrt(sum (0.5 ln(H_j/L_j)^2 - (2 ln 2 - 1) ln(C_j/O_j)^2))",
        60,
    ),
    _bars(
        "volatility",
        "vol_ratio_5s_60s",
        "realized_vol_5s / realized_vol_60s * sqrt(12) (per-second vol, 5 s over 60 s); "
        "NaN when realized_vol_60s is 0",
        60,
        "ratio",
    ),
    _decay(
        "volatility",
        "tick_vol_10s",
        "1e4 * sqrt(D_10s(ln(m_i / m_(i-1))^2)) over every mid change i (unsampled, so it "
        "includes bid-ask bounce; compare with realized_vol_15s)",
        10,
        "bps of log mid",
        "first two-sided L1",
        trades=False,
    ),
    _bars("volatility", "high_low_range_60s", "1e4 * ln(max H_j / min L_j)", 60),
)

RETURNS = (
    _bars("returns", "return_1s", "1e4 * ln(m / C_(now-1)): since the start of the current bar", 1),
    _bars("returns", "return_5s", "1e4 * ln(m / C_(now-5))", 5),
    _bars("returns", "return_15s", "1e4 * ln(m / C_(now-15))", 15),
    _bars("returns", "return_30s", "1e4 * ln(m / C_(now-30))", 30),
    _bars("returns", "return_60s", "1e4 * ln(m / C_(now-60))", 60),
    FeatureSpec(
        "return_last_tick",
        "returns",
        "1e4 * ln(m_i / m_(i-1)) of the last mid change i",
        "the last mid change",
        "bps of log mid",
        "NaN until the mid has changed once",
    ),
    _bars(
        "returns",
        "return_zscore_5s",
        "return_5s * sqrt(12) / realized_vol_60s; NaN when realized_vol_60s is 0",
        60,
        "ratio",
    ),
    _bars(
        "returns",
        "return_autocorr_60s",
        "sum r_j r_(j-1) / sum r_j^2 (pairs inside the window); NaN when sum r_j^2 is 0",
        60,
        "ratio",
    ),
    _bars(
        "returns",
        "return_skew_60s",
        "(sum r_j^3 / 60) / (s2 * sqrt(s2)), s2 = sum r_j^2 / 60; NaN when s2 is 0",
        60,
        "ratio",
    ),
    _bars(
        "returns",
        "return_kurtosis_60s",
        "(sum r_j^4 / 60) / s2^2, s2 = sum r_j^2 / 60 (not excess); NaN when s2 is 0",
        60,
        "ratio",
    ),
)

_OFI = (
    "per L1 update n with both states two-sided: e_n = qb_n [b_n >= b_(n-1)] - qb_(n-1) "
    "[b_n <= b_(n-1)] - qa_n [a_n <= a_(n-1)] + qa_(n-1) [a_n >= a_(n-1)] (Cont, Kukanov, "
    "Stoikov); summed over the bars"
)

ORDER_FLOW = (
    _bars("order_flow", "ofi_5s", _OFI, 5, "base units"),
    _bars("order_flow", "ofi_30s", _OFI, 30, "base units"),
    _bars(
        "order_flow",
        "ofi_depth_ratio_5s",
        "ofi_5s / ((qb + qa) / 2); NaN while L1 is one-sided",
        5,
        "ratio",
    ),
    _trade(
        "order_flow",
        "trade_imbalance_5s",
        "(buy volume - sell volume) / (buy volume + sell volume); 0 when no volume",
        5,
        "ratio in [-1, 1]",
        signed=True,
    ),
    _trade(
        "order_flow",
        "trade_imbalance_30s",
        "(buy volume - sell volume) / (buy volume + sell volume); 0 when no volume",
        30,
        "ratio in [-1, 1]",
        signed=True,
    ),
    _trade(
        "order_flow",
        "trade_count_imbalance_30s",
        "(buy trades - sell trades) / (buy trades + sell trades); 0 when none",
        30,
        "ratio in [-1, 1]",
        signed=True,
    ),
    _decay(
        "order_flow",
        "signed_volume_rate_10s",
        "D_10s(sign_i * size_i) / 10 over trades i",
        10,
        "base units per second",
        "first event",
        trades=True,
        signed=True,
    ),
    _trade(
        "order_flow",
        "kyle_lambda_30s",
        "sum r_j s_j / sum s_j^2, r_j in bps, s_j = signed volume of bar j; NaN when "
        "sum s_j^2 is 0 or no mid existed 30 bars ago",
        30,
        "bps per base unit",
        signed=True,
    ),
)

VOLUME = (
    _trade("volume", "volume_5s", "sum of trade sizes", 5, "base units"),
    _trade("volume", "volume_30s", "sum of trade sizes", 30, "base units"),
    _trade(
        "volume",
        "volume_ratio_5s_30s",
        "volume_5s / volume_30s * 6 (per-second rates); NaN when volume_30s is 0",
        30,
        "ratio",
    ),
    _trade("volume", "trade_count_30s", "number of trades", 30, "trades"),
    _trade(
        "volume",
        "avg_trade_size_30s",
        "volume_30s / trade_count_30s; NaN when no trade in the window",
        30,
        "base units",
    ),
    _trade(
        "volume",
        "vwap_deviation_30s",
        "1e4 * (m - VWAP) / VWAP, VWAP = sum price*size / sum size; NaN when no trade in the "
        "window or no mid",
        30,
        "bps",
    ),
    _decay(
        "volume",
        "volume_rate_10s",
        "D_10s(size_i) / 10 over trades i",
        10,
        "base units per second",
        "first event",
        trades=True,
    ),
    _trade(
        "volume",
        "volume_depth_ratio_5s",
        "volume_5s / ((qb + qa) / 2): how many times the top of book traded; NaN while L1 is "
        "one-sided",
        5,
        "ratio",
    ),
)

_MACD_WARM = "NaN until 78 s (3 x 26 s) after the first two-sided L1"

TECHNICAL = (
    FeatureSpec(
        "macd_bps",
        "technical",
        "1e4 * (EMA_12s(m) - EMA_26s(m)) / m",
        "decay: tau = 12 s and 26 s",
        "bps",
        _MACD_WARM,
    ),
    FeatureSpec(
        "macd_signal_bps",
        "technical",
        "1e4 * S / m, S = EMA_9s of the MACD line (EMA_12s - EMA_26s) sampled at each mid "
        "change and held until the next",
        "decay: tau = 9 s",
        "bps",
        _MACD_WARM,
    ),
    FeatureSpec(
        "macd_hist_bps",
        "technical",
        "macd_bps - macd_signal_bps",
        "decay: tau = 12, 26 and 9 s",
        "bps",
        _MACD_WARM,
    ),
    _bars(
        "technical",
        "rsi_14s",
        "100 * sum max(r_j, 0) / sum |r_j| (Cutler's RSI on bar returns); 50 when no move",
        14,
        "0..100",
    ),
    _bars(
        "technical",
        "bollinger_pctb_20s",
        "(m - (mu - 2 sd)) / (4 sd), mu and sd (population) of the 20 closes C_j; 0.5 when sd is 0",
        20,
        "ratio (0..1 inside the bands)",
    ),
    _bars("technical", "bollinger_width_20s", "1e4 * 4 sd / mu over the 20 closes C_j", 20, "bps"),
    FeatureSpec(
        "ema_deviation_12s",
        "technical",
        "1e4 * (m - EMA_12s(m)) / EMA_12s(m)",
        "decay: tau = 12 s",
        "bps",
        "NaN until 36 s (3 tau) after the first two-sided L1",
    ),
    _bars(
        "technical",
        "stochastic_k_60s",
        "100 * (m - min L_j) / (max H_j - min L_j); 50 when the range is 0",
        60,
        "0..100",
    ),
)

MICROSTRUCTURE = (
    _now("microstructure", "spread_bps", "1e4 * (a - b) / m", "bps", _L1),
    _now("microstructure", "spread_ticks", "(a - b) / tick_size", "ticks", _L1),
    _now(
        "microstructure",
        "microprice_deviation_bps",
        "1e4 * (P - m) / m, P = (b qa + a qb) / (qb + qa)",
        "bps",
        _L1 + " or has no size",
    ),
    _now(
        "microstructure",
        "depth_imbalance_1",
        "(B_1 - A_1) / (B_1 + A_1), B_k / A_k = bid / ask size summed over the best k levels "
        "of the last `book.top`",
        "ratio in [-1, 1]",
        _BOOK,
    ),
    _now(
        "microstructure",
        "depth_imbalance_5",
        "(B_5 - A_5) / (B_5 + A_5)",
        "ratio in [-1, 1]",
        _BOOK,
    ),
    _now(
        "microstructure",
        "depth_imbalance_10",
        "(B_10 - A_10) / (B_10 + A_10)",
        "ratio in [-1, 1]",
        _BOOK,
    ),
    _now("microstructure", "bid_depth_10", "B_10", "base units", _BOOK),
    _now("microstructure", "ask_depth_10", "A_10", "base units", _BOOK),
    _now(
        "microstructure",
        "book_slope_bid",
        "B_n / (1e4 * (p_1 - p_n) / m) over the n <= 10 occupied bid levels; NaN when n < 2",
        "base units per bps",
        _BOOK,
    ),
    _now(
        "microstructure",
        "book_slope_ask",
        "A_n / (1e4 * (p_n - p_1) / m) over the n <= 10 occupied ask levels; NaN when n < 2",
        "base units per bps",
        _BOOK,
    ),
    _now("microstructure", "queue_bid_l1", "qb", "base units", _L1),
    _now("microstructure", "queue_ask_l1", "qa", "base units", _L1),
    _trade(
        "microstructure",
        "effective_spread_30s",
        "mean over trades of 1e4 * 2 |price - m_before| / m_before, m_before the mid in "
        "force just before the trade (trades with no two-sided L1 are skipped); NaN when none",
        30,
        "bps",
    ),
    _decay(
        "microstructure",
        "l1_update_rate_10s",
        "D_10s(1) / 10 over L1 changes (any of b, qb, a, qa or two-sidedness changed)",
        10,
        "changes per second",
        "first event",
        trades=False,
    ),
    FeatureSpec(
        "spread_ema_ratio_30s",
        "microstructure",
        "(a - b) / EMA_30s(a - b), the EMA over the two-sided spread path",
        "decay: tau = 30 s",
        "ratio",
        "NaN until 90 s (3 tau) after the first two-sided L1; " + _L1,
    ),
)

_TEMPORAL_WARM = "defined from the first event"
_SESSION = "; NaN on days that are not sessions of the calendar"

TEMPORAL = (
    _now(
        "temporal",
        "seconds_since_open",
        "(t - open) / 1e9, open of the calendar's session on the local date (negative before "
        "it; 24/7 venues: local midnight)" + _SESSION,
        "seconds",
        _TEMPORAL_WARM,
    ),
    _now(
        "temporal",
        "minutes_to_close",
        "(close - t) / 60e9, close of that session (early closes included; negative after it)"
        + _SESSION,
        "minutes",
        _TEMPORAL_WARM,
    ),
    _now(
        "temporal",
        "time_of_day_sin",
        "sin(2 pi s / 86400), s = local wall-clock seconds since midnight in the venue's time "
        "zone (InstrumentSpec.time_zone, DST applied)",
        "-1..1",
        _TEMPORAL_WARM,
    ),
    _now("temporal", "time_of_day_cos", "cos(2 pi s / 86400)", "-1..1", _TEMPORAL_WARM),
    _now(
        "temporal",
        "day_of_week",
        "local weekday, Monday = 0 ... Sunday = 6",
        "day",
        _TEMPORAL_WARM,
    ),
    _now(
        "temporal",
        "is_trading_hours",
        "1 when open <= t < close and t is outside the session's break, else 0 (always 1 on "
        "24/7 venues)",
        "0 or 1",
        _TEMPORAL_WARM,
    ),
)

FEATURES: tuple[FeatureSpec, ...] = (
    VOLATILITY + RETURNS + ORDER_FLOW + VOLUME + TECHNICAL + MICROSTRUCTURE + TEMPORAL
)
"""Every feature, in vector order."""

N_FEATURES = len(FEATURES)
NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
INDEX: dict[str, int] = {name: i for i, name in enumerate(NAMES)}
"""Position of each feature in a vector, by name."""

assert N_FEATURES == N_VALUES == 65, N_FEATURES
assert len(INDEX) == N_FEATURES, "feature names must be unique"
assert [f.group for f in FEATURES] == [g for g in GROUPS for _ in range(GROUP_SIZES[g])]
