"""LOBSTER message + orderbook CSV pairs to events, and the orderbook rows to the oracle.

Message row -> one record (flag F_LAST, ``ts_recv`` = ``ts_event``: LOBSTER has one clock):

=====  ===========================  =====================================================
type   event                        side
=====  ===========================  =====================================================
1      ``market.order_added``       direction (+1 bid, -1 ask)
2      ``market.order_cancelled``   direction
3      ``market.order_deleted``     direction
4      ``market.order_executed``    direction of the resting order
5      ``market.trade``, F_HIDDEN   aggressor = -direction (hidden resting order's opposite)
6      ``market.trade`` (cross)     0 (an auction cross has no aggressor)
7      ``feed.trading_status_changed``  price -1 halted, 0 quoting, 1 trading
=====  ===========================  =====================================================

The journal starts with a ``market.book_snapshot``: orderbook row 1 with message 1's effect
undone (LOBSTER gives no book before message 1). Orderbook row i becomes a ``book.top`` oracle
row tied to message i's journal record (for a file deeper than ten levels, followed by
``book.band`` records holding levels 11-20, 21-30, ...). Time: seconds after midnight in
America/New_York on ``--date`` (the zone from the pinned ``tzdata`` package), converted with
that day's UTC offset at noon (the trading day never spans a DST switch). LOBSTER prints
nanosecond times from floats, so a time may carry more than 9 decimals
(``43002.632812672004``): it is rounded to the nanosecond (half to even) and counted in
:attr:`LobsterConverter.rounded`, never quarantined.

The message file holds only events inside the file's levels, so levels that move up into view
from below never appear in it: after each message, :mod:`engine.app.ingest.lobster_depth`
writes what the orderbook row reveals beyond the messages as ``market.level_updated``
corrections (files of up to ten levels; deeper files keep their rows as the oracle only).

Without its orderbook file (``books`` is None) a message file still converts: no snapshot and
no oracle, so the book starts empty and cannot know the orders that rested before message 1.

Ranges: the time in ns, sizes, prices and orderbook values must fit int64 and an order id the
record's unsigned 64-bit slot; a row outside them is quarantined as ``out_of_range``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime
from itertools import zip_longest
from typing import Any

import numpy as np

from engine.app.ingest import lobster_fast as fast
from engine.app.ingest.blocks import BLOCK, LineBlocks
from engine.app.ingest.decimal import DecimalError
from engine.app.ingest.lobster_depth import DepthReconciler
from engine.app.ingest.lobster_rows import (
    Message,
    initial_levels,
    no_header,
    parse_book,
    parse_message,
)
from engine.app.ingest.records import (
    FixedArray,
    RecordArray,
    fits_int64,
)
from engine.app.ingest.session import Bad, Item, Oracle
from engine.app.ingest.source import FileLines, Line
from engine.events.book import BOOK_BAND, BOOK_TOP_DTYPE, TOP_LEVELS, new_tops
from engine.events.control import BookDescribed, InstrumentSpec, TradingStatusChanged
from engine.events.market import F_FIRST, F_HIDDEN, F_LAST
from streams.features.calendar import load_zone

IMPORTER_VERSION = "lobster/2"
DEFAULT_DEPTH = 10
"""The book processor's window for NASDAQ when the journal does not describe the depth."""
MESSAGE_ONLY_WARNING = (
    "no orderbook file: the book starts empty, so it cannot know the orders that rested before "
    "the first message (their cancels and executions name orders it never saw), nor anything "
    "outside the file's {levels} levels. `tape book-check` then checks the rebuild for "
    "consistency (crossed books, orders it never saw) instead of comparing it with LOBSTER's "
    "own book: ingest the orderbook file too for that."
)
TIME_ZONE = "America/New_York"
_KIND = {1: 2, 2: 3, 3: 4, 4: 5}  # LOBSTER type -> catalogue type id (L3 events)
_STATUS = {-1: "halted", 0: "quoting", 1: "trading"}


def instrument(symbol: str) -> InstrumentSpec:
    """NASDAQ equity as LOBSTER scales it: price in 1/10000 USD, size in shares."""
    return InstrumentSpec(symbol, "NASDAQ", TIME_ZONE, 4, 0, 100, 1, "USD")


def book_description(levels: int, name: str) -> tuple[BookDescribed, ...]:
    """The ``feed.book_described`` event for a file of ``levels`` levels (none for 10, the
    NASDAQ default, which keeps 10-level journals as they always were)."""
    if levels == DEFAULT_DEPTH:
        return ()
    return (BookDescribed(0, 0, levels, False, f"LOBSTER {name}: {levels} levels a side"),)


def midnight_ns(day: date, zone: str = TIME_ZONE) -> int:
    """UTC ns of local midnight of ``day`` plus the zone's offset at noon (exact integers)."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=load_zone(zone))
    offset = noon.utcoffset()
    assert offset is not None
    naive_days = (day - date(1970, 1, 1)).days
    return (naive_days * 86400 - int(offset.total_seconds())) * 1_000_000_000


class LobsterConverter:
    """Message and orderbook lines to journal items and oracle rows (pure: no I/O).

    Given the :class:`~engine.app.ingest.source.FileLines` of both files (or of the message
    file alone), it converts blocks of rows with the compiled
    :func:`engine.app.ingest.lobster_fast.scan` and passes each row scan is not sure about
    through the row-by-row path (:meth:`_pair`, :meth:`_alone`), which any other iterables of
    lines take throughout. Both give the same items; ``fast=False`` forces the row-by-row path
    (the reference the tests compare against); ``block`` is the size in bytes of the pieces the
    inputs are read in. ``rounded`` counts times rounded to the nanosecond.
    """

    def __init__(
        self,
        day: date,
        messages: str,
        books: str,
        levels: int = TOP_LEVELS,
        chunk: int = 8192,
        fast: bool = True,
        block: int = BLOCK,
    ) -> None:
        if levels < 1:
            raise ValueError(f"a LOBSTER file has at least 1 level, not {levels}")
        self.midnight = midnight_ns(day)
        self.sources = (messages, books)
        self.levels, self.chunk, self.block = levels, chunk, block
        self.rounded = 0
        self._buf = RecordArray(chunk + 1024)
        self._tops: list[tuple[int, int, np.ndarray[Any, Any]]] = []  # pending, from _pair
        self._top_rows = FixedArray(BOOK_TOP_DTYPE, chunk + 1024)
        self._ordinal = -1  # ordinal of the last market record yielded or buffered
        self._last_ts = 0
        # the compiled path writes one book.top per row: deeper rows go the Python way
        self.fast = fast and fits_int64(self.midnight) and chunk > 0 and levels <= TOP_LEVELS

    def convert(
        self, messages: Iterable[Line], books: Iterable[Line] | None = None
    ) -> Iterator[Item]:
        """Items for each (message, orderbook) row pair, in order, corrected by the depth each
        orderbook row reveals (:mod:`engine.app.ingest.lobster_depth`; files of up to ten
        levels); for each message row when there is no orderbook file."""
        items = self._items(messages, books)
        if books is None or self.levels > TOP_LEVELS:
            return items
        return DepthReconciler(self.levels).items(items)

    def _items(self, messages: Iterable[Line], books: Iterable[Line] | None) -> Iterator[Item]:
        if self.fast and isinstance(messages, FileLines) and isinstance(books, FileLines | None):
            yield from self._convert_blocks(messages, books)
            return
        if books is None:
            for msg_line in messages:
                yield from self._slow(msg_line, None)
        else:
            for msg_line, book_line in zip_longest(messages, books):
                if msg_line is None or book_line is None:
                    line = msg_line or book_line
                    assert line is not None
                    yield self._row_count(0 if msg_line is not None else 1, line)
                    continue
                yield from self._slow(msg_line, book_line)
        yield from self._flush()

    def _row_count(self, which: int, line: Line) -> Bad:
        return Bad.at(
            self.sources[which],
            line,
            "row_count",
            "the message and orderbook files have different row counts",
        )

    def _slow(self, msg_line: Line, book_line: Line | None) -> Iterator[Item]:
        if book_line is None:
            yield from self._alone(msg_line)
        else:
            yield from self._pair(msg_line, book_line)
        if len(self._buf) >= self.chunk:
            yield from self._flush()

    def _convert_blocks(self, messages: FileLines, books: FileLines | None) -> Iterator[Item]:
        rows = LineBlocks(messages, self.block)
        tops = LineBlocks(books, self.block) if books is not None else None
        state = np.zeros(fast.STATE_SIZE, np.int64)
        scratch = fast.scratch()
        empty = np.zeros(0, np.uint8)
        try:
            while rows.available() and (tops is None or tops.available()):
                # What the Python path added goes in first, in order; if it cannot (a value
                # out of range, which _flush will raise), rows go the Python way so that
                # everything happens as it always did.
                if not (self._buf.settle() and self._settle_tops() and self._state_in(state)):
                    yield from self._slow(rows.take_line(), tops.take_line() if tops else None)
                    continue
                status, mpos, bpos, done = fast.scan(
                    rows.array, rows.pos, rows.end,
                    tops.array if tops else empty, tops.pos if tops else 0, tops.end if tops else 0,
                    self.levels if tops else 0, self.midnight, self.chunk,
                    state, self._buf.words, self._top_rows.words, scratch,
                )  # fmt: skip
                rows.advance(mpos, done)
                if tops is not None:
                    tops.advance(bpos, done)
                self._state_out(state)
                if status == fast.FULL:
                    yield from self._flush()
                elif status == fast.SLOW:
                    yield from self._slow(rows.take_line(), tops.take_line() if tops else None)
                elif status == fast.GROW:
                    self._buf.reserve(self.chunk)
                    self._top_rows.reserve(self.chunk)
            # one file ended: the rest of the other are rows without a partner
            if tops is not None:
                for which, blocks in enumerate((rows, tops)):
                    while blocks.available():
                        yield self._row_count(which, blocks.take_line())
        finally:
            rows.close()
            if tops is not None:
                tops.close()
        yield from self._flush()

    def _state_in(self, state: np.ndarray[Any, Any]) -> bool:
        # in the order of lobster_fast's S_* slots
        values = (self._last_ts, self._ordinal, self._buf.n, self._top_rows.n)
        if not all(fits_int64(v) for v in values):
            return False
        state[:] = values
        return True

    def _state_out(self, state: np.ndarray[Any, Any]) -> None:
        self._last_ts = int(state[fast.S_LAST_TS])
        self._ordinal = int(state[fast.S_ORDINAL])
        self._buf.n = int(state[fast.S_RECORDS])
        self._top_rows.n = int(state[fast.S_TOPS])

    def _flush(self) -> Iterator[Item]:
        if len(self._buf):
            yield self._buf.take()
        if self._tops:
            self._top_rows.extend(self._pending_tops())
            self._tops = []
        if self._top_rows.n:
            yield Oracle(self._top_rows.take_array())

    def _settle_tops(self) -> bool:
        """Move the pending oracle rows into the array; False if a value does not fit."""
        if self._tops:
            try:
                pending = self._pending_tops()
            except Exception:  # _flush raises it again, where it always has
                return False
            self._top_rows.extend(pending)
            self._tops = []
        return True

    def _pending_tops(self) -> np.ndarray[Any, Any]:
        """The pending rows as ``book.top`` records, each followed by its ``book.band``
        records when the file is deeper than ten levels."""
        bands = -(-self.levels // TOP_LEVELS)
        tops = new_tops(len(self._tops) * bands)
        for i, (ordinal, ts, row) in enumerate(self._tops):
            for b in range(bands):
                top = tops[i * bands + b]
                top["offset"], top["ts_event"], top["ts_recv"] = ordinal, ts, ts
                if b:
                    top["type_id"], top["status"] = BOOK_BAND.type_id, b
                part = row[b * TOP_LEVELS : (b + 1) * TOP_LEVELS]
                n = len(part)
                top["ask_price"][:n], top["ask_size"][:n] = part[:, 0], part[:, 1]
                top["bid_price"][:n], top["bid_size"][:n] = part[:, 2], part[:, 3]
        return tops

    def _bad(self, which: int, line: Line, exc: DecimalError) -> Bad:
        return Bad.at(self.sources[which], line, exc.reason, str(exc), self._last_ts)

    def _parse(self, msg_line: Line) -> Message:
        no_header(msg_line)
        msg, rounded = parse_message(msg_line.text(), self.midnight)
        if msg[0] < self._last_ts:
            raise DecimalError("time_backwards", f"time {msg[0]} ns < previous {self._last_ts}")
        self.rounded += rounded
        return msg

    def _alone(self, msg_line: Line) -> Iterator[Item]:
        try:
            msg = self._parse(msg_line)
        except DecimalError as exc:
            yield self._bad(0, msg_line, exc)
            return
        yield from self._message(msg)

    def _pair(self, msg_line: Line, book_line: Line) -> Iterator[Item]:
        msg: Message | None = None
        try:
            msg = self._parse(msg_line)
        except DecimalError as exc:
            yield self._bad(0, msg_line, exc)
        try:
            no_header(book_line)
            book = parse_book(book_line.text(), self.levels)
        except DecimalError as exc:
            yield self._bad(1, book_line, exc)
            book = None
        if msg is not None and book is not None and self._ordinal < 0:
            try:
                sides = initial_levels(book, msg)
            except DecimalError as exc:
                msg = None
                yield self._bad(0, msg_line, exc)
            else:
                self._snapshot(sides, msg[0])
        if msg is not None and self._ordinal >= 0:
            yield from self._message(msg)
        if book is not None:
            if self._ordinal < 0:
                yield Bad.at(
                    self.sources[1],
                    book_line,
                    "no_message",
                    "its message row was quarantined and no book precedes it",
                )
            else:
                self._tops.append((self._ordinal, self._last_ts, book))

    def _snapshot(self, sides: dict[int, dict[int, int]], ts: int) -> None:
        levels = [(1, i, p, sides[1][p]) for i, p in enumerate(sorted(sides[1], reverse=True))]
        levels += [(-1, i, p, sides[-1][p]) for i, p in enumerate(sorted(sides[-1]))]
        for k, (side, i, p, q) in enumerate(levels):
            flags = (F_FIRST if k == 0 else 0) | (F_LAST if k == len(levels) - 1 else 0)
            self._buf.rows.append((8, side, flags, i, ts, ts, p, q, 0, 0, 0))
        self._ordinal += len(levels)

    def _message(self, msg: Message) -> Iterator[Item]:
        ts, kind, order_id, size, price, direction = msg
        self._last_ts = ts
        if kind == 7:
            yield from self._flush()
            status = _STATUS.get(price, f"unknown ({price})")
            yield TradingStatusChanged(ts, ts, status, f"LOBSTER type 7, price {price}")
            return
        if kind in _KIND:
            row = (_KIND[kind], direction, F_LAST, 0, ts, ts, price, size, order_id, 0, 0)
        else:
            side, flags = (-direction, F_LAST | F_HIDDEN) if kind == 5 else (0, F_LAST)
            row = (1, side, flags, 0, ts, ts, price, size, 0, 0, 0)
        self._buf.rows.append(row)
        self._ordinal += 1
