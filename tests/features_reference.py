"""A plain, slow, pure-Python reference of every feature of ``streams.features``.

It shares no code with the stage: it keeps the whole history (every mid change, L1 update and
trade, with the clock at which it happened) in lists, and at each emission recomputes every
bar, window and feature from that history by scanning it; the calendar comes straight from
``exchange_calendars`` and the host's ``zoneinfo``. It follows the documented definitions
(docs/features.md) with the same floating-point operations in the same order (sums oldest to
newest, the decays' and EMAs' recursions as documented), so the stage must match it exactly.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import exchange_calendars
import numpy as np

from engine.app.pipelines import SHIPPED
from engine.events import decode
from engine.events.book import BOOK_TOP_DTYPE
from engine.events.control import ClockTicked, InstrumentSpec
from engine.events.features import FEATURES_VECTOR
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic
from engine.runtime import RunConfig, Runner, Topology
from engine.runtime.runs import session_opened
from engine.runtime.topology import resolve
from streams.features.schema import FEATURES, FeatureSpec

NAN = math.nan
S = 10**9
TAU = {9: 9e9, 10: 10e9, 12: 12e9, 26: 26e9, 30: 30e9}
LN2 = math.log(2.0)


@dataclass
class Event:
    """One journal record (kind 0: clock tick) and the ``book.top`` rows it caused."""

    offset: int
    kind: int
    side: int
    price: int
    size: int
    price2: int
    size2: int
    ts: int
    tops: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Emitted:
    cause: int
    ts: int
    flags: int
    values: dict[str, float]


class Reference:
    """Replays events in journal order and computes vectors at the cadence."""

    def __init__(
        self, spec: InstrumentSpec, cadence: str, interval_ms: int, l1: str, calendar: str
    ) -> None:
        self.spec, self.cadence, self.interval = spec, cadence, interval_ms * 1_000_000
        self.l1_from_quote = l1 == "quote"
        self.calendar = calendar
        self.zone = ZoneInfo(spec.time_zone)
        self.div = float(10**spec.size_scale)
        self.clock: int | None = None
        self.t0 = 0
        self.next_fire = 0
        # histories, each in clock order
        self.mids: list[tuple[int, float]] = []  # (clock, mid) at every mid change
        self.ofi: list[tuple[int, int]] = []  # (clock, OFI contribution)
        self.trades: list[tuple[int, int, int, int, float | None]] = []  # clock, p, q, sign, eff
        self.l1: tuple[int, int, int, int] | None = None  # current raw L1 (valid or not)
        self.l1_valid = False
        self.first_l1_time: int | None = None
        self.book: dict[str, Any] | None = None
        # the recursive decays and EMAs, as documented
        self.l1_count, self.l1_count_t = 0.0, 0
        self.vol, self.svol, self.trade_t = 0.0, 0.0, 0
        self.tick_var, self.last_tick_ret = 0.0, NAN
        self.e12 = self.e26 = self.sig = self.sig_hold = 0.0
        self.mid_t = 0
        self.spread_ema = self.spread_hold = 0.0
        self.spread_t = 0

    # -- applying events ---------------------------------------------------------------------

    def run(self, events: list[Event]) -> Iterator[Emitted]:
        for ev in events:
            self.clock = ev.ts if self.clock is None else max(self.clock, ev.ts)
            if not self.t0:
                self.t0 = self.clock
            traded = ev.kind in (1, 5)
            if traded:
                self._trade(ev)
            elif ev.kind == 7 and self.l1_from_quote:
                self._l1(ev.price, ev.size, ev.price2, ev.size2)
            for top in ev.tops:
                self.book = top
                if not self.l1_from_quote:
                    if top["status"] == 1:
                        self._l1(
                            top["bid_price"][0],
                            top["bid_size"][0],
                            top["ask_price"][0],
                            top["ask_size"][0],
                        )
                    else:
                        self._l1(0, 0, 0, 0)
            fire = (self.cadence == "trade" and traded) or (self.cadence == "book" and ev.tops)
            if self.cadence == "time" and self.clock >= self.next_fire:
                fire = True
                self.next_fire = (self.clock // self.interval + 1) * self.interval
            if fire:
                values = self.features()
                yield Emitted(ev.offset, self.clock, self.flags(values), values)

    def _mid(self) -> float:
        return self.mids[-1][1] if self.mids else NAN

    def _l1(self, b: int, qb: int, a: int, qa: int) -> None:
        t = self.clock
        assert t is not None
        valid = b > 0 and a > 0 and a > b
        if valid and self.l1_valid:
            assert self.l1 is not None
            pb, pqb, pa, pqa = self.l1
            e = (qb if b >= pb else 0) - (pqb if b <= pb else 0)
            e += -(qa if a <= pa else 0) + (pqa if a >= pa else 0)
            self.ofi.append((t, e))
        if (b, qb, a, qa) != (self.l1 or (0, 0, 0, 0)) or valid != self.l1_valid:
            self.l1_count = self.l1_count * math.exp(-(t - self.l1_count_t) / TAU[10]) + 1.0
            self.l1_count_t = t
        self.l1, self.l1_valid = (b, qb, a, qa), valid
        if not valid:
            return
        spread = float(a - b)
        if self.first_l1_time is None:
            self.first_l1_time = t
            self.spread_ema = self.spread_hold = spread
            self.spread_t = t
        elif spread != self.spread_hold:
            w = math.exp(-(t - self.spread_t) / TAU[30])
            self.spread_ema = self.spread_hold + (self.spread_ema - self.spread_hold) * w
            self.spread_hold, self.spread_t = spread, t
        m = (b + a) / 2.0
        if not self.mids:
            self.e12 = self.e26 = m
            self.mids.append((t, m))
            self.mid_t = t
        elif m != self._mid():
            x = self._mid()
            self.e12 = x + (self.e12 - x) * math.exp(-(t - self.mid_t) / TAU[12])
            self.e26 = x + (self.e26 - x) * math.exp(-(t - self.mid_t) / TAU[26])
            w9 = math.exp(-(t - self.mid_t) / TAU[9])
            self.sig = self.sig_hold + (self.sig - self.sig_hold) * w9
            self.sig_hold = self.e12 - self.e26
            r = math.log(m / x)
            self.last_tick_ret = r
            self.tick_var = self.tick_var * math.exp(-(t - self.mid_t) / TAU[10]) + r * r
            self.mids.append((t, m))
            self.mid_t = t

    def _trade(self, ev: Event) -> None:
        t = self.clock
        assert t is not None
        p, q = ev.price, ev.size
        if ev.kind == 5:
            sign = -ev.side
        elif ev.side != 0:
            sign = ev.side
        else:
            sign = 0
            if self.l1_valid:
                assert self.l1 is not None
                twice_mid = self.l1[0] + self.l1[2]
                sign = 1 if 2 * p > twice_mid else -1 if 2 * p < twice_mid else 0
            if sign == 0 and self.trades:
                last_price = self.trades[-1][1]
                last_sign = next((s for *_, s, _ in reversed(self.trades) if s != 0), 0)
                sign = 1 if p > last_price else -1 if p < last_price else last_sign
        eff = None
        if self.l1_valid:
            assert self.l1 is not None
            m = (self.l1[0] + self.l1[2]) / 2.0
            eff = 2.0 * abs(p - m) / m * 1e4
        w = math.exp(-(t - self.trade_t) / TAU[10])
        self.vol = self.vol * w + q / self.div
        self.svol = self.svol * w + sign * (q / self.div)
        self.trade_t = t
        self.trades.append((t, p, q, sign, eff))

    # -- bars from the history ---------------------------------------------------------------

    @staticmethod
    def in_bar(history: list[Any], j: int) -> list[Any]:
        """The entries of a clock-ordered history whose clock falls in bar ``j``."""
        lo = bisect.bisect_left(history, j * S, key=lambda e: e[0])
        hi = bisect.bisect_left(history, (j + 1) * S, key=lambda e: e[0])
        return history[lo:hi]

    def close(self, j: int) -> float:
        """The mid in force at the end of bar ``j``."""
        i = bisect.bisect_left(self.mids, (j + 1) * S, key=lambda e: e[0])
        return self.mids[i - 1][1] if i else NAN

    def high_low(self, j: int) -> tuple[float, float]:
        inside = [m for _, m in self.in_bar(self.mids, j)]
        opening = self.close(j - 1)
        points = inside + ([] if math.isnan(opening) else [opening])
        return (max(points), min(points)) if points else (NAN, NAN)

    def window(self, k: int) -> range:
        b = self.bar
        return range(b - k + 1, b + 1)

    @property
    def bar(self) -> int:
        assert self.clock is not None
        return self.clock // S

    def warm(self, k: int) -> bool:
        return self.bar - self.t0 // S >= k and not math.isnan(self.close(self.bar - k))

    def trade_warm(self, k: int) -> bool:
        return self.bar - self.t0 // S >= k and bool(self.trades)

    def bar_trades(self, j: int) -> list[tuple[int, int, int, int, float | None]]:
        return self.in_bar(self.trades, j)

    def returns(self, k: int) -> list[float]:
        return [math.log(self.close(j) / self.close(j - 1)) for j in self.window(k)]

    # -- the features ------------------------------------------------------------------------

    def features(self) -> dict[str, float]:
        v: dict[str, float] = {}
        self._volatility(v)
        self._returns(v)
        self._order_flow(v)
        self._volume(v)
        self._technical(v)
        self._micro(v)
        self._temporal(v)
        return v

    def _volatility(self, v: dict[str, float]) -> None:
        assert self.clock is not None
        for k in (5, 15, 60):
            v[f"realized_vol_{k}s"] = (
                1e4 * math.sqrt(sum_in_order(r * r for r in self.returns(k)))
                if self.warm(k)
                else NAN
            )
        for k in (15, 60):
            park = gk = NAN
            if self.warm(k):
                hl = [self.high_low(j) for j in self.window(k)]
                logs = [math.log(h / lo) for h, lo in hl]
                co = [math.log(self.close(j) / self.close(j - 1)) for j in self.window(k)]
                park = 1e4 * math.sqrt(sum_in_order(x * x for x in logs) / (4.0 * LN2))
                terms = (
                    0.5 * x * x - (2.0 * LN2 - 1.0) * c * c for x, c in zip(logs, co, strict=True)
                )
                gk = 1e4 * math.sqrt(sum_in_order(terms))
            v[f"parkinson_vol_{k}s"], v[f"garman_klass_vol_{k}s"] = park, gk
        rv60 = v["realized_vol_60s"]
        v["vol_ratio_5s_60s"] = (
            v["realized_vol_5s"] / rv60 * math.sqrt(12.0) if self.warm(60) and rv60 != 0 else NAN
        )
        v["tick_vol_10s"] = NAN
        if self.first_l1_time is not None and self.clock - self.first_l1_time >= 30e9:
            decayed = self.tick_var * math.exp(-(self.clock - self.mid_t) / TAU[10])
            v["tick_vol_10s"] = 1e4 * math.sqrt(decayed)
        v["high_low_range_60s"] = NAN
        if self.warm(60):
            hl = [self.high_low(j) for j in self.window(60)]
            v["high_low_range_60s"] = 1e4 * math.log(
                max(h for h, _ in hl) / min(lo for _, lo in hl)
            )

    def _returns(self, v: dict[str, float]) -> None:
        m = self._mid()
        for k in (1, 5, 15, 30, 60):
            ok = self.warm(k)
            v[f"return_{k}s"] = 1e4 * math.log(m / self.close(self.bar - k)) if ok else NAN
        v["return_last_tick"] = 1e4 * self.last_tick_ret if len(self.mids) >= 2 else NAN
        for name in ("zscore_5s", "autocorr_60s", "skew_60s", "kurtosis_60s"):
            v[f"return_{name}"] = NAN
        if not self.warm(60):
            return
        if v["realized_vol_60s"] != 0.0:
            v["return_zscore_5s"] = v["return_5s"] * math.sqrt(12.0) / v["realized_vol_60s"]
        r = self.returns(60)
        s2 = sum_in_order(x * x for x in r)
        if s2 != 0.0:
            lag = sum_in_order(r[i] * r[i - 1] for i in range(1, 60))
            m2 = s2 / 60.0
            v["return_autocorr_60s"] = lag / s2
            v["return_skew_60s"] = (sum_in_order(x * x * x for x in r) / 60.0) / (
                m2 * math.sqrt(m2)
            )
            v["return_kurtosis_60s"] = (sum_in_order((x * x) * (x * x) for x in r) / 60.0) / (
                m2 * m2
            )

    def _ofi(self, k: int) -> int:
        return sum(e for j in self.window(k) for _, e in self.in_bar(self.ofi, j))

    def _flow(self, k: int) -> tuple[int, int, int, int, int]:
        """(buy volume, sell volume, buy trades, sell trades, volume) over the window."""
        trades = [tr for j in self.window(k) for tr in self.bar_trades(j)]
        buy = sum(q for _, _, q, s, _ in trades if s > 0)
        sell = sum(q for _, _, q, s, _ in trades if s < 0)
        nb = sum(1 for *_, s, _ in trades if s > 0)
        ns = sum(1 for *_, s, _ in trades if s < 0)
        return buy, sell, nb, ns, sum(q for _, _, q, _, _ in trades)

    def _order_flow(self, v: dict[str, float]) -> None:
        assert self.clock is not None
        for k in (5, 30):
            v[f"ofi_{k}s"] = self._ofi(k) / self.div if self.warm(k) else NAN
        v["ofi_depth_ratio_5s"] = NAN
        if self.warm(5) and self.l1_valid and self.l1 and self.l1[1] + self.l1[3] > 0:
            v["ofi_depth_ratio_5s"] = self._ofi(5) / ((self.l1[1] + self.l1[3]) / 2.0)
        for k in (5, 30):
            v[f"trade_imbalance_{k}s"] = NAN
            if self.trade_warm(k):
                buy, sell, *_ = self._flow(k)
                v[f"trade_imbalance_{k}s"] = (buy - sell) / (buy + sell) if buy + sell else 0.0
        v["trade_count_imbalance_30s"] = NAN
        if self.trade_warm(30):
            _, _, nb, ns, _ = self._flow(30)
            v["trade_count_imbalance_30s"] = (nb - ns) / (nb + ns) if nb + ns else 0.0
        v["signed_volume_rate_10s"] = NAN
        if self.trades and self.clock - self.t0 >= 30e9:
            decayed = self.svol * math.exp(-(self.clock - self.trade_t) / TAU[10])
            v["signed_volume_rate_10s"] = decayed / 10.0
        v["kyle_lambda_30s"] = NAN
        if self.trade_warm(30) and self.warm(30):
            num = den = 0.0
            for j in self.window(30):
                bar = self.bar_trades(j)
                signed = sum(q for _, _, q, s, _ in bar if s > 0) - sum(
                    q for _, _, q, s, _ in bar if s < 0
                )
                flow = signed / self.div
                num += 1e4 * math.log(self.close(j) / self.close(j - 1)) * flow
                den += flow * flow
            if den != 0.0:
                v["kyle_lambda_30s"] = num / den

    def _volume(self, v: dict[str, float]) -> None:
        assert self.clock is not None
        names = (
            "volume_5s",
            "volume_30s",
            "volume_ratio_5s_30s",
            "trade_count_30s",
            "avg_trade_size_30s",
            "vwap_deviation_30s",
            "volume_rate_10s",
            "volume_depth_ratio_5s",
        )
        v.update(dict.fromkeys(names, NAN))
        if self.trade_warm(5):
            vol5 = self._flow(5)[4]
            v["volume_5s"] = vol5 / self.div
            if self.l1_valid and self.l1 and self.l1[1] + self.l1[3] > 0:
                v["volume_depth_ratio_5s"] = vol5 / ((self.l1[1] + self.l1[3]) / 2.0)
        if self.trade_warm(30):
            trades = [tr for j in self.window(30) for tr in self.bar_trades(j)]
            vol30 = sum(q for _, _, q, _, _ in trades)
            v["volume_30s"] = vol30 / self.div
            v["trade_count_30s"] = float(len(trades))
            if vol30:
                v["volume_ratio_5s_30s"] = v["volume_5s"] / v["volume_30s"] * 6.0
                v["avg_trade_size_30s"] = v["volume_30s"] / len(trades)
                notional = sum_in_order(
                    sum_in_order(float(p) * float(q) for _, p, q, _, _ in self.bar_trades(j))
                    for j in self.window(30)
                )
                vwap = notional / vol30
                v["vwap_deviation_30s"] = 1e4 * (self._mid() - vwap) / vwap
        if self.trades and self.clock - self.t0 >= 30e9:
            decayed = self.vol * math.exp(-(self.clock - self.trade_t) / TAU[10])
            v["volume_rate_10s"] = decayed / 10.0

    def _technical(self, v: dict[str, float]) -> None:
        assert self.clock is not None
        t, m = self.clock, self._mid()
        names = (
            "macd_bps",
            "macd_signal_bps",
            "macd_hist_bps",
            "rsi_14s",
            "bollinger_pctb_20s",
            "bollinger_width_20s",
            "ema_deviation_12s",
            "stochastic_k_60s",
        )
        v.update(dict.fromkeys(names, NAN))
        if self.first_l1_time is not None:
            e12 = m + (self.e12 - m) * math.exp(-(t - self.mid_t) / TAU[12])
            e26 = m + (self.e26 - m) * math.exp(-(t - self.mid_t) / TAU[26])
            sig = self.sig_hold + (self.sig - self.sig_hold) * math.exp(-(t - self.mid_t) / TAU[9])
            if t - self.first_l1_time >= 78e9:
                v["macd_bps"] = 1e4 * (e12 - e26) / m
                v["macd_signal_bps"] = 1e4 * sig / m
                v["macd_hist_bps"] = v["macd_bps"] - v["macd_signal_bps"]
            if t - self.first_l1_time >= 36e9:
                v["ema_deviation_12s"] = 1e4 * (m - e12) / e12
        if self.warm(14):
            r = self.returns(14)
            up, total = sum_in_order(max(x, 0.0) for x in r), sum_in_order(abs(x) for x in r)
            v["rsi_14s"] = 100.0 * up / total if total != 0.0 else 50.0
        if self.warm(20):
            closes = [self.close(j) for j in self.window(20)]
            mu = sum_in_order(closes) / 20.0
            sd = math.sqrt(sum_in_order((c - mu) * (c - mu) for c in closes) / 20.0)
            v["bollinger_pctb_20s"] = (m - (mu - 2.0 * sd)) / (4.0 * sd) if sd != 0.0 else 0.5
            v["bollinger_width_20s"] = 1e4 * 4.0 * sd / mu
        if self.warm(60):
            hl = [self.high_low(j) for j in self.window(60)]
            hh, ll = max(h for h, _ in hl), min(lo for _, lo in hl)
            v["stochastic_k_60s"] = 100.0 * (m - ll) / (hh - ll) if hh != ll else 50.0

    def _micro(self, v: dict[str, float]) -> None:
        assert self.clock is not None
        names = [f.name for f in FEATURES_BY_GROUP["microstructure"]]
        v.update(dict.fromkeys(names, NAN))
        m, t = self._mid(), self.clock
        if self.l1_valid and self.l1 is not None:
            b, qb, a, qa = self.l1
            v["spread_bps"] = 1e4 * (a - b) / m
            v["spread_ticks"] = (a - b) / self.spec.tick_size
            if qb + qa > 0:
                micro = (float(b) * float(qa) + float(a) * float(qb)) / float(qb + qa)
                v["microprice_deviation_bps"] = 1e4 * (micro - m) / m
            v["queue_bid_l1"], v["queue_ask_l1"] = qb / self.div, qa / self.div
            assert self.first_l1_time is not None
            if t - self.first_l1_time >= 90e9:
                w = math.exp(-(t - self.spread_t) / TAU[30])
                ema = self.spread_hold + (self.spread_ema - self.spread_hold) * w
                v["spread_ema_ratio_30s"] = (a - b) / ema
        if self.book is not None and self.book["status"] == 1:
            bids, asks = self.book["bid_size"], self.book["ask_size"]
            for n in (1, 5, 10):
                sb, sa = sum(bids[:n]), sum(asks[:n])
                if sb + sa > 0:
                    v[f"depth_imbalance_{n}"] = (sb - sa) / (sb + sa)
            for side, px, sz in (("bid", "bid_price", bids), ("ask", "ask_price", asks)):
                prices = [p for p in self.book[px] if p > 0]
                depth = sum(sz[: len(prices)])
                v[f"{side}_depth_10"] = depth / self.div
                if len(prices) >= 2:
                    distance = 1e4 * abs(prices[0] - prices[-1]) / m
                    v[f"book_slope_{side}"] = (depth / self.div) / distance
        if self.trade_warm(30):
            effs = [tr[4] for j in self.window(30) for tr in self.bar_trades(j)]
            per_bar = [
                sum_in_order(e for *_, e in self.bar_trades(j) if e is not None)
                for j in self.window(30)
            ]
            n = sum(1 for e in effs if e is not None)
            if n:
                v["effective_spread_30s"] = sum_in_order(per_bar) / n
        if t - self.t0 >= 30e9:
            decayed = self.l1_count * math.exp(-(t - self.l1_count_t) / TAU[10])
            v["l1_update_rate_10s"] = decayed / 10.0

    def _temporal(self, v: dict[str, float]) -> None:
        assert self.clock is not None
        t = self.clock
        local = dt.datetime.fromtimestamp(t // S, self.zone)
        sod = ((local.hour * 3600 + local.minute * 60 + local.second) * S + t % S) / 1e9
        v["time_of_day_sin"] = math.sin(2.0 * math.pi * sod / 86400.0)
        v["time_of_day_cos"] = math.cos(2.0 * math.pi * sod / 86400.0)
        v["day_of_week"] = float(local.weekday())
        day = local.date()
        if self.calendar == "24/7":
            start = int(dt.datetime.combine(day, dt.time(0), tzinfo=self.zone).timestamp()) * S
            session: tuple[int, int, int, int] | None = (start, start + 86400 * S, 0, 0)
        else:
            with warnings.catch_warnings():  # pandas 3.1 deprecates what the library reads
                warnings.filterwarnings("ignore", "Series.values returning", DeprecationWarning)
                cal = exchange_calendars.get_calendar(
                    self.calendar,
                    start=str(day - dt.timedelta(days=7)),
                    end=str(day + dt.timedelta(days=7)),
                )
            session = None
            if cal.is_session(day.isoformat()):
                label = day.isoformat()
                bs, be = cal.session_break_start(label), cal.session_break_end(label)
                session = (
                    cal.session_open(label).value,
                    cal.session_close(label).value,
                    0 if bs is None or bs != bs else bs.value,
                    0 if be is None or be != be else be.value,
                )
        if session is None:
            v["seconds_since_open"] = v["minutes_to_close"] = NAN
            v["is_trading_hours"] = 0.0
        else:
            opened, closed, bs, be = session
            v["seconds_since_open"] = (t - opened) / 1e9
            v["minutes_to_close"] = (closed - t) / 60e9
            v["is_trading_hours"] = 1.0 if opened <= t < closed and not bs <= t < be else 0.0

    def flags(self, v: dict[str, float]) -> int:
        assert self.clock is not None
        warm = (
            self.bar - self.t0 // S >= 60
            and self.first_l1_time is not None
            and self.clock - self.first_l1_time >= 90e9
        )
        book_ok = self.book is not None and self.book["status"] == 1
        return (
            (0 if warm else 1)
            | (0 if self.l1_valid else 2)
            | (0 if book_ok else 4)
            | (0 if self.trades else 8)
            | (0 if v["is_trading_hours"] == 1.0 else 16)
        )


def sum_in_order(values: Any) -> float:
    """Left-to-right float sum from 0.0 (not ``sum``, which compensates floats since 3.12)."""
    total = 0.0
    for x in values:
        total += x
    return total


FEATURES_BY_GROUP: dict[str, list[FeatureSpec]] = {}
for _f in FEATURES:
    FEATURES_BY_GROUP.setdefault(_f.group, []).append(_f)


# -- running the stage and feeding the reference the same journal -------------------------------


def _batches(log: EmbeddedLog, topic: str) -> Iterator[Any]:
    reader = log.reader(topic)
    offset = reader.start_offset
    while (batch := reader.read(offset, 1 << 16)) is not None:
        yield batch
        offset = batch.next_offset


def fixed_topic(log: EmbeddedLog, topic: str, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """Every record of a fixed-width topic as one array."""
    raw = b"".join(b.view(dtype).tobytes() for b in _batches(log, topic))
    # Exact bytes: np.concatenate would repack the dtype and .copy() leaves padding undefined.
    return np.frombuffer(bytearray(raw), dtype)


@dataclass
class FeaturesRun:
    """A ``features`` pipeline run over a session: its config, tops and vectors."""

    spec: InstrumentSpec
    settings: dict[str, Any]
    tops: np.ndarray[Any, Any]
    vectors: np.ndarray[Any, Any]
    topology: Topology


def run_features(
    data: Path,
    session: str,
    scratch: Path,
    settings: dict[str, Any] | None = None,
    batch: int = 65536,
) -> FeaturesRun:
    """Run pipeline ``features`` over ``session`` into ``scratch`` (run id ``t``)."""
    log = EmbeddedLog(data)
    spec = session_opened(log, session).instrument
    config = RunConfig(pipeline="features", stages={"features": settings or {}})
    resolved = resolve(SHIPPED, config, spec)
    topology = Topology(SHIPPED.get("features"), resolved, session, spec)
    runner = Runner(log, journal_topic(session), EmbeddedLog(scratch), "t", topology)
    runner.begin()
    runner.advance(batch=batch)
    runner.close()
    out = EmbeddedLog(scratch)
    return FeaturesRun(
        spec,
        resolved["stages"]["features"],
        fixed_topic(out, "run.t.book", BOOK_TOP_DTYPE),
        fixed_topic(out, "run.t.features", FEATURES_VECTOR.dtype),
        topology,
    )


def journal_events(data: Path, session: str, tops: np.ndarray[Any, Any]) -> list[Event]:
    """The session's journal as reference events, each with the tops it caused."""
    caused: dict[int, list[dict[str, Any]]] = {}
    for top in tops:
        row = {
            name: top[name].tolist()
            for name in ("status", "bid_price", "bid_size", "ask_price", "ask_size")
        }
        caused.setdefault(int(top["offset"]), []).append(row)
    events = []
    for batch in _batches(EmbeddedLog(data), journal_topic(session)):
        if isinstance(batch, FixedBatch):
            for i, rec in enumerate(batch.view(MARKET_RECORD).tolist()):
                kind, side, _, _, ts, _, price, size, _, price2, size2 = rec
                offset = batch.base_offset + i
                events.append(
                    Event(
                        offset, kind, side, price, size, price2, size2, ts, caused.get(offset, [])
                    )
                )
        else:
            for i, value in enumerate(batch.values()):
                event = decode(value)
                if isinstance(event, ClockTicked):
                    events.append(Event(batch.base_offset + i, 0, 0, 0, 0, 0, 0, event.ts_event))
    return events


def reference_vectors(data: Path, session: str, run: FeaturesRun) -> list[Emitted]:
    """What the reference emits for the run's journal, config and tops."""
    s = run.settings
    reference = Reference(run.spec, s["cadence"], s["interval_ms"], s["l1"], s["calendar"])
    return list(reference.run(journal_events(data, session, run.tops)))
