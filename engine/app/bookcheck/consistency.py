"""Book check without an oracle: an independent rebuild, and the invariants a real book keeps.

Databento MBO, MBP-10, Tardis book files and a LOBSTER message file without its orderbook come
with no book to compare against. This check rebuilds the book a second way (:class:`Reference`:
plain dicts of orders and levels, written for clarity, not speed) and, at the end of every
source message (F_LAST), compares it with what the ``book`` processor emitted, and checks it:

* never crossed (best bid below best ask when both sides have a level) once the instrument has
  traded: before its first trade a futures market is in its pre-open, where orders rest
  crossed until the opening auction matches them (Databento's ESH4 file shows 891 such
  messages), so crossings before the first trade are counted, not failed;
* no negative size (a cancel or execution larger than what rests at the order or the level);
* every cancel, delete, execution and modify names an order in the book, and every add a new
  one. A fill that names an order the book does not hold is counted, not failed: fills change
  no level (the book stays right), and at CME's opening auction Databento sends fills of orders
  that were never in its MBO book (7 in the ESH4 file). A fill larger than the order's displayed
  size is an iceberg's hidden quantity, not an error.

A message where the two rebuilds differ is a mismatch. Invariant breaks are mismatches too,
except for a LOBSTER message file without its orderbook, where orders resting before the first
message are unknown by construction: they are counted and reported, not failed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from engine.app.bookcheck import CheckReport, Journal
from engine.events.book import TOP_LEVELS
from engine.events.catalogue import by_id
from engine.events.market import F_FIRST, F_LAST
from streams.book import BookProcessor

CROSSED = "crossed after a message"
PRE_OPEN = "crossed after a message, before the first trade (pre-open)"
NEGATIVE = "size below zero (more taken than rested)"
UNKNOWN = "cancel/delete/execute/modify of an order not in the book"
UNKNOWN_FILL = "fill of an order not in the book (fills change no level)"
REUSED = "add of an order id already in the book"
COUNTED = frozenset({PRE_OPEN, UNKNOWN_FILL})
"""Reported but never failed (see the module docstring)."""


class Reference:
    """The book as dicts: orders by id, and the size at each price of each side."""

    def __init__(self, window: int, quote_book: bool) -> None:
        self.window, self.quote_book = window, quote_book
        self.orders: dict[int, list[int]] = {}  # id -> [side, price, size]
        self.sides: dict[int, dict[int, int]] = {1: {}, -1: {}}

    def apply(self, t: int, side: int, flags: int, price: int, size: int, oid: int,
              price2: int, size2: int) -> list[str]:  # fmt: skip
        """Apply one record; the invariants it broke."""
        if t == 2:
            return self._add(oid, side, price, size)
        if t in (3, 4, 5):
            return self._take(oid, side, price, size, delete=t == 4)
        if t == 20:
            return self._modify(oid, side, price, size)
        if t == 21:
            return [UNKNOWN_FILL] if oid not in self.orders else []
        if t == 22:
            self.orders.clear()
            self.sides = {1: {}, -1: {}}
        elif t == 6:
            self._set(side, price, size)
        elif t == 8:
            if flags & F_FIRST:
                self.sides = {1: {}, -1: {}}
            self._set(side, price, size)
        elif t == 7 and self.quote_book:
            self.sides = {1: {}, -1: {}}
            self._set(1, price, size)
            self._set(-1, price2, size2)
        return []

    def _set(self, side: int, price: int, size: int) -> None:
        if size > 0:
            self.sides[side][price] = size
        else:
            self.sides[side].pop(price, None)

    def _level(self, side: int, price: int, delta: int) -> list[str]:
        # As the book processor does it: a level below zero is removed and reported.
        level = self.sides[side]
        if price not in level and delta <= 0:
            return []
        left = level.get(price, 0) + delta
        self._set(side, price, max(left, 0))
        return [NEGATIVE] if left < 0 else []

    def _add(self, oid: int, side: int, price: int, size: int) -> list[str]:
        issues = [REUSED] if oid in self.orders else []
        self.orders[oid] = [side, price, size]
        return issues + self._level(side, price, size)

    def _take(self, oid: int, side: int, price: int, size: int, delete: bool) -> list[str]:
        issues = self._level(side, price, -size)
        order = self.orders.get(oid)
        if order is None:
            return [*issues, UNKNOWN]
        order[2] -= size
        if order[2] < 0 and not delete and NEGATIVE not in issues:
            issues.append(NEGATIVE)
        if delete or order[2] <= 0:
            del self.orders[oid]
        return issues

    def _modify(self, oid: int, side: int, price: int, size: int) -> list[str]:
        order = self.orders.pop(oid, None)
        issues = [UNKNOWN] if order is None else self._level(order[0], order[1], -order[2])
        if size > 0:
            self.orders[oid] = [side, price, size]
        return issues + self._level(side, price, size)

    def top(self) -> dict[str, list[tuple[int, int]]]:
        """Best levels of each side (the window applied, as the book processor does)."""
        if self.window:
            for side in (1, -1):
                keep = sorted(self.sides[side], reverse=side > 0)[: self.window]
                self.sides[side] = {p: self.sides[side][p] for p in keep}
        bids = sorted(self.sides[1].items(), reverse=True)[:TOP_LEVELS]
        asks = sorted(self.sides[-1].items())[:TOP_LEVELS]
        return {"bid": bids, "ask": asks}


def _book_top(top: Any) -> dict[str, list[tuple[int, int]]]:
    return {
        side: [
            (int(p), int(s))
            for p, s in zip(top[f"{side}_price"], top[f"{side}_size"], strict=True)
            if s
        ]
        for side in ("bid", "ask")
    }


def check(journal: Journal, session: str, unknown_expected: bool | None = None) -> CheckReport:
    """Rebuild twice and check every message; see the module docstring."""
    config = journal.book
    if unknown_expected is None:  # a LOBSTER message file without its orderbook
        unknown_expected = journal.opened.instrument.venue == "NASDAQ"
    report = CheckReport(session, "an independent rebuild and the book's invariants")
    records, offsets = journal.records, journal.offsets
    tops = BookProcessor(config).process(records, int(offsets[0]) if len(offsets) else 0)
    state = np.searchsorted(tops["offset"], offsets, side="right") - 1
    reference = Reference(config.window, config.quote_book)
    kinds: Counter[str] = Counter()
    issues: Counter[str] = Counter()
    pending: list[str] = []
    traded = False
    columns = ("type_id", "side", "flags", "price", "size", "id", "price2", "size2")
    rows = zip(*(records[c].tolist() for c in columns), strict=True)
    for i, (t, side, flags, price, size, oid, price2, size2) in enumerate(rows):
        kinds[by_id(t).name] += 1
        traded = traded or t in (1, 5)
        pending += reference.apply(t, side, flags, price, size, oid, price2, size2)
        if not flags & F_LAST:
            continue
        want = reference.top()
        if want["bid"] and want["ask"] and want["bid"][0][0] >= want["ask"][0][0]:
            pending.append(CROSSED if traded else PRE_OPEN)
        got = _book_top(tops[state[i]]) if state[i] >= 0 else {"bid": [], "ask": []}
        issues.update(pending)
        failing = [p for p in pending if p not in COUNTED and not unknown_expected]
        details = {"journal_offset": int(offsets[i]), "problems": sorted(set(pending))}
        report.tally(got == want and not failing,
                     {**details, "book": got, "independent rebuild": want})  # fmt: skip
        pending = []
    report.counts = {f"records: {k}": v for k, v in sorted(kinds.items())}
    for k, v in sorted(issues.items()):
        failed = k not in COUNTED and not unknown_expected
        report.counts[f"{'failed' if failed else 'counted'}: {k}"] = v
    if unknown_expected:
        report.notes.append(
            "no orderbook file: orders resting before the first message are unknown to the book, "
            "so cancels of them, negative sizes and crossed books are expected and only counted; "
            "the two rebuilds must still agree at every message"
        )
    return report
