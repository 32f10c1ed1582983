"""Hand-made markets for the trading tests: journal records with the book they leave behind.

A :class:`Tape` is a list of journal events, each optionally changing the book (a ``book.top``
and a ``book.mid`` caused by it, as the book and mid stages would emit), and optionally
carrying a decision. :func:`drive` runs a :class:`~streams.trading.execution.Venue` over a
tape, calling test actions (submit, cancel) right after chosen events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from engine.events.book import BOOK_MID, S_SYNCED, new_tops
from engine.events.market import F_HIDDEN, F_LAST, MARKET_RECORD
from engine.events.trading import CancelRequested, OrderSubmitted
from streams.trading import matching as m
from streams.trading import risk
from streams.trading.execution import Market, Venue, market_slice

T0 = 1_700_000_000_000_000_000
"""2023-11-14 22:13:20 UTC: the tapes' first event time."""
MS = 1_000_000

Levels = list[tuple[int, int]]


class Tape:
    """Journal events (from offset ``base``) with the tops, mids and decisions they cause."""

    def __init__(self, base: int = 0) -> None:
        self.base = base
        self.records: list[np.ndarray[Any, Any]] = []
        self.tops: list[tuple[int, Levels, Levels, int]] = []
        self.decisions: list[tuple[int, int, float]] = []
        self.ts = T0 - MS  # events come 1 ms apart unless given a time: the first at T0

    def _record(self, kind: int, ts: int | None, **fields: int) -> int:
        self.ts = self.ts + MS if ts is None else ts
        record = np.zeros(1, MARKET_RECORD)
        record["type_id"], record["flags"], record["ts_event"] = kind, F_LAST, self.ts
        for name, value in fields.items():
            record[name] = value
        self.records.append(record)
        return len(self.records) - 1

    def book(
        self, bids: Levels, asks: Levels, ts: int | None = None, status: int = S_SYNCED
    ) -> int:
        """A book change (a level update record) leaving these levels, best first."""
        i = self._record(6, ts)
        self.tops.append((i, bids, asks, status))
        return i

    def trade(self, price: int, size: int, aggressor: int, ts: int | None = None) -> int:
        """A trade print (aggressor +1 buyer, -1 seller, 0 unknown); the book is unchanged."""
        return self._record(1, ts, side=aggressor, price=price, size=size)

    def hidden(self, price: int, size: int, aggressor: int, ts: int | None = None) -> int:
        """An execution against hidden liquidity (LOBSTER type 5)."""
        i = self._record(1, ts, side=aggressor, price=price, size=size)
        self.records[i]["flags"] = F_LAST | F_HIDDEN
        return i

    def order(
        self, kind: int, side: int, price: int, size: int, oid: int, ts: int | None = None
    ) -> int:
        """An L3 record: 2 added, 3 cancelled, 4 deleted, 5 executed (side of the order)."""
        return self._record(kind, ts, side=side, price=price, size=size, id=oid)

    def tick(self, ts: int | None = None) -> int:
        """An event that only moves the clock."""
        return self._record(0, ts)

    def decide(self, direction: int, confidence: float) -> None:
        """A decision caused by the last event."""
        self.decisions.append((len(self.records) - 1, direction, confidence))

    def market(self, stops: list[int] = ()) -> tuple[Market, list[risk.Decision]]:  # type: ignore[assignment]
        """The kernel's view; decisions (and ``stops``, as flat pseudo-decisions) stop it."""
        records = np.concatenate(self.records) if self.records else np.zeros(0, MARKET_RECORD)
        tops = new_tops(len(self.tops))
        mids = np.zeros(len(self.tops), BOOK_MID.dtype)
        for j, (i, bids, asks, status) in enumerate(self.tops):
            tops[j]["offset"], tops[j]["ts_event"] = self.base + i, records[i]["ts_event"]
            tops[j]["status"] = status
            for name, levels in (("bid", bids), ("ask", asks)):
                for k, (price, size) in enumerate(levels):
                    tops[j][f"{name}_price"][k], tops[j][f"{name}_size"][k] = price, size
            mids[j]["cause"], mids[j]["ts_event"] = self.base + i, records[i]["ts_event"]
            if bids and asks:
                mids[j]["two_sided"], mids[j]["mid"] = 1, (bids[0][0] + asks[0][0]) / 2
        chosen = sorted({i for i, _, _ in self.decisions} | set(stops))
        decisions = [
            risk.Decision(self.base + i, int(records[i]["ts_event"]), d, c)
            for i, d, c in self.decisions
        ]
        causes = np.array([self.base + i for i in chosen], np.int64)
        return market_slice(self.base, records, tops, mids, causes), decisions


def order(
    oid: int,
    side: int,
    kind: str,
    size: int,
    price: int = 0,
    *,
    ts: int,
    latency: int = MS,
    purpose: str = "entry",
    reduce_only: bool = False,
    mid: float = 0.0,
) -> OrderSubmitted:
    """An ``OrderSubmitted`` sent at ``ts`` (reaching the venue ``latency`` later)."""
    return OrderSubmitted(
        ts, 0, oid, 0, side, kind, purpose, price, size, reduce_only, mid, ts + latency
    )


def drive(
    venue: Venue, market: Market, base: int, actions: dict[int, Callable[[Venue], None]]
) -> list[msgspec.Struct]:
    """Run ``venue`` over ``market`` (journal offset ``base`` at index 0), calling
    ``actions[i](venue)`` right after event ``i`` (each ``i`` must be in
    ``market.decision_at``); every report the venue made, in order."""
    assert set(actions) <= set(market.decision_at.tolist())
    reports: list[msgspec.Struct] = []
    venue.st[m.S_TP] = venue.st[m.S_MP] = venue.st[m.S_DP] = 0
    venue.st[m.S_WAKE] = np.iinfo(np.int64).max  # no timers: the desk's business
    i = 0
    while True:
        i, reason = venue.run(market, i)
        reports += venue.reports(base)
        if reason == m.DONE:
            return reports
        if reason == m.GROW:
            venue.grow()
            continue
        assert reason == m.AFTER, reason
        if i in actions:
            actions[i](venue)
            venue.settle(i)
            reports += venue.reports(base)
        if venue.st[m.S_DP] < len(market.decision_at) and market.decision_at[venue.st[m.S_DP]] == i:
            venue.st[m.S_DP] += 1
        i += 1


def drive_tape(
    venue: Venue, tape: Tape, actions: dict[int, Callable[[Venue], None]]
) -> list[msgspec.Struct]:
    """:func:`drive` over a tape, stopping after each event that has an action."""
    market, _ = tape.market(stops=list(actions))
    return drive(venue, market, tape.base, actions)


def cancel(oid: int, ts: int, latency: int = MS) -> CancelRequested:
    """A ``CancelRequested`` sent at ``ts``."""
    return CancelRequested(ts, 0, oid, "entry_timeout", ts + latency)
