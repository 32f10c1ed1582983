"""A plain, slow, pure-Python reference of the four agents of ``streams.agents``.

It shares no code with the stage: it keeps every trade in a list and, at each vector, rebuilds
the footprint window, the run and the decays from that history following docs/agents.md, with
the same floating-point operations in the same order, so the stage must match it exactly. The
thresholds come from the stage's config object (what a user sets), not from its arrays.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.events.features import F_NO_BOOK, F_NO_TRADES
from streams.agents.config import AgentsConfig
from streams.features import INDEX
from tests.features_reference import Event

S = 1e9
NAN = math.nan


@dataclass
class Trade:
    clock: int
    price: int
    size: int
    sign: int


@dataclass
class Vote:
    cause: int
    votes: tuple[int, ...]
    confidence: tuple[float, ...]
    reasons: tuple[int, ...]


class Evidence:
    """An agent's evidence, reasons and confidence factor, as documented."""

    def __init__(self) -> None:
        self.e, self.seen, self.bits, self.factor = 0.0, 0, 0, 1.0

    def rule(self, z: float, up: int, down: int) -> None:
        if z >= 1.0:
            self.e, self.bits = self.e + min(z, 2.0) / 2.0, self.bits | up
        elif z <= -1.0:
            self.e, self.bits = self.e - min(-z, 2.0) / 2.0, self.bits | down

    def result(self, full: float) -> tuple[int, float, int]:
        if self.seen == 0:
            return 0, 0.0, self.bits | 1
        if self.e == 0.0:
            return 0, 0.0, self.bits
        return (1 if self.e > 0 else -1), min(1.0, abs(self.e) / full * self.factor), self.bits


class AgentsReference:
    """Replays journal events (with their tops) and vectors in offset order."""

    def __init__(self, config: AgentsConfig, tick: int) -> None:
        self.c, self.tick = config, tick
        self.clock: int | None = None
        self.t0 = 0
        self.bid = self.ask = 0
        self.trades: list[Trade] = []
        self.first = 0
        """Index of the oldest trade still in the footprint window."""
        self.row = 0
        self.rate_t = 0
        self.fast = self.slow = self.fast_signed = 0.0
        self.size_ewma, self.large, self.large_t = 0.0, 0.0, 0
        self.run_sign, self.run_len, self.last_sign = 0, 0, 0
        self.imb = self.imb_ema = NAN
        self.imb_t = self.imb_t0 = 0

    def run(self, events: list[Event], vectors: np.ndarray[Any, Any]) -> Iterator[Vote]:
        by_cause = {int(v["cause"]): v for v in vectors}
        for ev in events:
            self._tick(ev.ts)
            if ev.kind in (1, 5):
                self._trade(ev)
            elif ev.kind == 7 and self.c.l1 == "quote":
                self.bid, self.ask = ev.price, ev.price2
            for top in ev.tops:
                self._top(top)
            if ev.offset in by_cause:
                v = by_cause[ev.offset]
                self._tick(int(v["ts_event"]))
                yield self._vote(ev.offset, v)

    def _tick(self, ts: int) -> None:
        if self.clock is None:
            self.clock = self.t0 = ts
        self.clock = max(self.clock, ts)

    @property
    def l1(self) -> bool:
        return self.bid > 0 and self.ask > self.bid

    def _trade(self, ev: Event) -> None:
        t, p, q = self.clock, ev.price, ev.size
        assert t is not None
        if ev.kind == 5:
            s = -ev.side
        elif ev.side != 0:
            s = ev.side
        else:
            twice = self.bid + self.ask
            s = (1 if 2 * p > twice else -1 if 2 * p < twice else 0) if self.l1 else 0
            if s == 0 and self.trades:
                last = self.trades[-1].price
                s = 1 if p > last else -1 if p < last else self.last_sign
        tr = self.c.tape_reading
        dt = t - self.rate_t if self.trades else 0
        self.fast = self.fast * math.exp(-dt / (tr.fast_tau_s * S)) + 1.0
        self.slow = self.slow * math.exp(-dt / (tr.slow_tau_s * S)) + 1.0
        self.fast_signed = self.fast_signed * math.exp(-dt / (tr.fast_tau_s * S)) + s * float(q)
        self.rate_t = t
        big = q >= tr.large_multiple * self.size_ewma
        if len(self.trades) >= 20 and big and s != 0:
            self.large = self.large * math.exp(-(t - self.large_t) / (tr.large_tau_s * S)) + s
            self.large_t = t
        alpha = 1.0 - 2.0 ** (-1.0 / tr.large_halflife_trades)
        self.size_ewma = (
            float(q) if not self.trades else self.size_ewma + alpha * (q - self.size_ewma)
        )
        if s != 0 and s == self.run_sign:
            self.run_len += 1
        else:
            self.run_sign, self.run_len = s, 1 if s != 0 else 0
        if s != 0:
            self.last_sign = s
        if not self.row:
            f = self.c.footprint
            ticks = f.row_ticks or max(1, round(p * f.row_bps * 1e-4 / self.tick))
            self.row = ticks * self.tick
        self.trades.append(Trade(t, p, q, s))

    def _top(self, top: dict[str, Any]) -> None:
        usable = top["status"] == 1
        if self.c.l1 == "book":
            self.bid, self.ask = (top["bid_price"][0], top["ask_price"][0]) if usable else (0, 0)
        b, a = sum(top["bid_size"]), sum(top["ask_size"])
        if not usable or b + a == 0:
            self.imb = NAN
            return
        imb, t = (b - a) / (b + a), self.clock
        assert t is not None
        tau = self.c.liquidity.trend_tau_s * S
        if math.isnan(self.imb):
            self.imb_ema, self.imb_t0 = imb, t
        else:
            self.imb_ema = self.imb + (self.imb_ema - self.imb) * math.exp(-(t - self.imb_t) / tau)
        self.imb, self.imb_t = imb, t

    def _vote(self, cause: int, vector: Any) -> Vote:
        x = {name: float(vector["values"][i]) for name, i in INDEX.items()}
        flags = int(vector["flags"])
        results = (
            self._order_flow(x, flags),
            self._liquidity(x, flags),
            self._tape(x),
            self._footprint(),
        )
        full = self.c.full_evidence
        out = [r.result(full) for r in results]
        return Vote(
            cause,
            tuple(o[0] for o in out),
            tuple(o[1] for o in out),
            tuple(o[2] for o in out),
        )

    def _order_flow(self, x: dict[str, float], flags: int) -> Evidence:
        c, ev = self.c.order_flow, Evidence()
        if flags & F_NO_TRADES:
            ev.bits |= 1 << 1
        if not math.isnan(x["trade_imbalance_5s"]):
            ev.seen += 1
            ev.rule(x["trade_imbalance_5s"] / c.aggressor_imbalance, 1 << 2, 1 << 3)
        if not math.isnan(x["ofi_depth_ratio_5s"]):
            ev.seen += 1
            ev.rule(x["ofi_depth_ratio_5s"] / c.ofi_depth_ratio, 1 << 4, 1 << 5)
        ti30, tci30 = x["trade_imbalance_30s"], x["trade_count_imbalance_30s"]
        if not (math.isnan(ti30) or math.isnan(tci30)):
            ev.seen += 1
            ev.rule(ti30 / c.persistent_imbalance if ti30 * tci30 > 0 else 0.0, 1 << 6, 1 << 7)
        if not math.isnan(ti30):
            ratio = x["volume_ratio_5s_30s"]
            if ratio >= c.intense_ratio:
                ev.bits, ev.factor = ev.bits | 1 << 8, 1.25
            elif math.isnan(ratio) or ratio <= c.quiet_ratio:
                ev.bits, ev.factor = ev.bits | 1 << 9, 0.5
        return ev

    def _liquidity(self, x: dict[str, float], flags: int) -> Evidence:
        c, ev = self.c.liquidity, Evidence()
        if flags & F_NO_BOOK:
            ev.bits |= 1 << 1
        if not math.isnan(x["depth_imbalance_5"]):
            ev.seen += 1
            ev.rule(x["depth_imbalance_5"] / c.depth_imbalance, 1 << 2, 1 << 3)
        if not math.isnan(x["depth_imbalance_1"]):
            ev.seen += 1
            ev.rule(x["depth_imbalance_1"] / c.touch_imbalance, 1 << 4, 1 << 5)
        bid, ask = x["book_slope_bid"], x["book_slope_ask"]
        if bid > 0 and ask > 0:
            ev.seen += 1
            ev.rule(math.log(bid / ask) / math.log(c.slope_ratio), 1 << 6, 1 << 7)
        t, tau = self.clock, c.trend_tau_s * S
        assert t is not None
        if not math.isnan(self.imb) and t - self.imb_t0 >= tau:
            ev.seen += 1
            ema = self.imb + (self.imb_ema - self.imb) * math.exp(-(t - self.imb_t) / tau)
            ev.rule((self.imb - ema) / c.trend, 1 << 8, 1 << 9)
        if x["spread_ema_ratio_30s"] >= c.wide_spread_ratio:
            ev.bits, ev.factor = ev.bits | 1 << 10, 0.5
        return ev

    def _tape(self, x: dict[str, float]) -> Evidence:
        c, ev, t = self.c.tape_reading, Evidence(), self.clock
        assert t is not None
        if not self.trades:
            ev.bits |= 1 << 1
        else:
            ev.seen += 1
            since = t - self.trades[-1].clock
            run = self.run_sign * self.run_len if since <= c.run_age_s * S else 0
            ev.rule(run / c.run_trades, 1 << 2, 1 << 3)
            if since / S > c.stale_s:
                ev.bits, ev.factor = ev.bits | 1 << 10, 0.5
        if len(self.trades) >= 20:
            ev.seen += 1
            large = self.large * math.exp(-(t - self.large_t) / (c.large_tau_s * S))
            ev.rule(large / c.large_net, 1 << 4, 1 << 5)
        span = float(t - self.t0)
        fast_tau, slow_tau = c.fast_tau_s * S, c.slow_tau_s * S
        if self.trades and span >= fast_tau:
            dt = t - self.rate_t
            w = math.exp(-dt / fast_tau)
            fast = self.fast * w / (fast_tau * (1.0 - math.exp(-span / fast_tau))) * S
            slow_decayed = self.slow * math.exp(-dt / slow_tau)
            slow = slow_decayed / (slow_tau * (1.0 - math.exp(-span / slow_tau))) * S
            if slow > 0:
                ev.seen += 1
                ratio, flow = fast / slow / c.accel_ratio, self.fast_signed * w
                ev.rule(ratio if flow > 0 else -ratio if flow < 0 else 0.0, 1 << 6, 1 << 7)
        vwap, vol = x["vwap_deviation_30s"], x["realized_vol_15s"]
        if vol > 0 and not math.isnan(vwap):
            ev.seen += 1
            ev.rule(vwap / (c.vwap_vol * vol), 1 << 8, 1 << 9)
        return ev

    def _footprint(self) -> Evidence:
        c, ev, t = self.c.footprint, Evidence(), self.clock
        assert t is not None
        if not self.trades:
            ev.bits |= 1 << 1
            return ev
        start = t - round(c.window_s * S)
        while self.first < len(self.trades) and self.trades[self.first].clock <= start:
            self.first += 1  # trades are in clock order
        window = self.trades[self.first :]
        buy: dict[int, int] = {}
        sell: dict[int, int] = {}
        for tr in window:
            side = buy if tr.sign > 0 else sell if tr.sign < 0 else None
            if side is not None:
                side[tr.price // self.row] = side.get(tr.price // self.row, 0) + tr.size
        rows = sorted(set(buy) | set(sell))
        total_buy, total_sell = sum(buy.values()), sum(sell.values())
        if not window or total_buy + total_sell == 0:
            return ev
        ev.seen += 2
        delta = (total_buy - total_sell) / (total_buy + total_sell)
        ev.rule(delta / c.delta_ratio, 1 << 2, 1 << 3)
        avg = (total_buy + total_sell) / len(rows)
        lo, hi = rows[0], rows[-1]
        ev.rule(self._stack(buy, sell, lo, hi, 1, avg) / c.stack_rows, 1 << 8, 0)
        ev.rule(-self._stack(sell, buy, lo, hi, -1, avg) / c.stack_rows, 0, 1 << 9)
        if self.l1:
            ev.seen += 3
            bid_row, ask_row = self.bid // self.row, self.ask // self.row
            unit = c.absorption_multiple * avg
            ev.rule(sell.get(bid_row, 0) / unit, 1 << 4, 0)
            ev.rule(-buy.get(ask_row, 0) / unit, 0, 1 << 5)
            thin = c.exhaustion_fraction * avg
            if ask_row <= lo:
                ev.rule(thin / (buy.get(lo, 0) + sell.get(lo, 0)), 1 << 6, 0)
                ev.rule(max(delta / c.divergence_delta, 0.0), 1 << 10, 0)
            if bid_row >= hi:
                ev.rule(-thin / (buy.get(hi, 0) + sell.get(hi, 0)), 0, 1 << 7)
                ev.rule(min(delta / c.divergence_delta, 0.0), 0, 1 << 11)
        if len(window) < c.min_trades:
            ev.bits, ev.factor = ev.bits | 1 << 12, 0.5
        return ev

    def _stack(
        self, own: dict[int, int], other: dict[int, int], lo: int, hi: int, step: int, avg: float
    ) -> int:
        """Longest run of rows whose ``own`` volume beats ``other`` one row against ``step``."""
        c = self.c.footprint
        best = run = 0
        for r in range(lo, hi + 1):
            v = own.get(r, 0)
            if v > 0 and v >= c.stack_share * avg and v >= c.stack_ratio * other.get(r - step, 0):
                run += 1
                best = max(best, run)
            else:
                run = 0
        return best
