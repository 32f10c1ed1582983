"""Tardis.dev CSV files (``quotes``, ``trades``, ``incremental_book_L2``, ``book_snapshot_N``).

Format (docs.tardis.dev, "Downloadable CSV files"): comma-separated with a header line, LF line
ends, ``.`` decimals, times in microseconds since the epoch (UTC). Every file starts
``exchange,symbol,timestamp,local_timestamp``: ``timestamp`` is the exchange's time (the
recorder's when the exchange gives none), ``local_timestamp`` the recorder's arrival time.

Mapping (one row -> records, ``ts_event`` = ``timestamp``, ``ts_recv`` = ``local_timestamp``,
both converted to ns exactly):

* ``quotes`` (``ask_amount,ask_price,bid_price,bid_amount``) -> ``market.quote``; an empty side
  is a side with no level (price and size 0).
* ``trades`` (``id,side,price,amount``) -> ``market.trade``; ``side`` is the aggressor (buy +1,
  sell -1, unknown 0); ``id`` becomes ``trade_id`` when it is an integer, else 0 (counted).
* ``incremental_book_L2`` (``is_snapshot,side,price,amount``) -> ``market.level_updated`` with
  the level's new absolute amount (0 removes it), or ``market.book_snapshot`` for snapshot rows.
  Rows with the same ``local_timestamp`` are one message (the last has F_LAST); snapshot rows
  after non-snapshot rows start a new snapshot (F_FIRST), which resets the book, as Tardis
  documents.
* ``book_snapshot_N`` (``asks[k].price,asks[k].amount,bids[k].price,bids[k].amount`` for k < N)
  -> one ``market.book_snapshot`` message per row, bids then asks, best first; a row with every
  level empty -> ``market.book_cleared``.

Exact decimals at the instrument's scales (:func:`scales`); a value needing more decimals is
quarantined as ``precision``. Rows whose ``local_timestamp`` goes backwards (``time_backwards``),
that repeat the row before byte for byte (``duplicate_line``), or name another exchange or
symbol than the session's (``symbol_mismatch``) are quarantined.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.app.ingest import tardis_fast as tf
from engine.app.ingest.binance import instrument as binance_instrument
from engine.app.ingest.blocks import BLOCK, LineBlocks
from engine.app.ingest.decimal import DecimalError, parse_scaled
from engine.app.ingest.fastparse import MAX_DIGITS
from engine.app.ingest.records import (
    INT64_MAX,
    UINT64_MAX,
    RecordArray,
    Row,
    check_range,
    fits_int64,
)
from engine.app.ingest.session import Bad, Item
from engine.app.ingest.source import FileLines, InputFile, Line
from engine.events.control import BookDescribed, InstrumentSpec
from engine.events.market import F_FIRST, F_LAST

IMPORTER_VERSION = "tardis/1"
KINDS = ("quotes", "trades", "incremental_book_L2", "book_snapshot")
_PREFIX = ("exchange", "symbol", "timestamp", "local_timestamp")
_COLUMNS = {
    "quotes": ("ask_amount", "ask_price", "bid_price", "bid_amount"),
    "trades": ("id", "side", "price", "amount"),
    "incremental_book_L2": ("is_snapshot", "side", "price", "amount"),
}
_BINANCE_MARKETS = {"binance": "spot", "binance-futures": "usdm"}
_SAMPLE_ROWS = 10_000
_PREV_BYTES = 8192  # longest row the fast path checks for an exact repeat
_T_TRADE, _T_LEVEL, _T_QUOTE, _T_SNAP, _T_CLEARED = 1, 6, 7, 8, 22
_SIDES = {"buy": 1, "sell": -1, "unknown": 0}


class TardisError(ValueError):
    """A file that is not a Tardis CSV Tapedeck reads; the message says what it is instead."""


@dataclass(frozen=True)
class TardisFile:
    """What one file holds, from its header and first row."""

    path: Path
    kind: str
    levels: int
    """Levels a side of a ``book_snapshot_N`` file (0 for the other kinds)."""
    columns: tuple[str, ...]
    exchange: str
    symbol: str

    @property
    def canonical(self) -> bool:
        """Whether the columns are in the documented order (what the fast path reads)."""
        return self.columns == expected_columns(self.kind, self.levels)


def expected_columns(kind: str, levels: int) -> tuple[str, ...]:
    """The documented header of a kind (``book_snapshot`` at ``levels`` levels)."""
    if kind != "book_snapshot":
        return _PREFIX + _COLUMNS[kind]
    cols = [
        f"{s}[{k}].{v}"
        for k in range(levels)
        for s in ("asks", "bids")
        for v in ("price", "amount")
    ]
    return _PREFIX + tuple(cols)


def inspect(path: Path) -> TardisFile:
    """Read the header and first row of a Tardis CSV file."""
    lines = InputFile(path).lines()
    header = next(lines, None)
    if header is None:
        raise TardisError(f"{path} holds no lines")
    columns = tuple(header.text().removeprefix("\ufeff").split(","))
    if columns[:4] != _PREFIX:
        if header.text().count(",") >= 4 and header.text().split(",")[2].isdigit():
            raise TardisError(
                f"{path} has no header line: line 1 is data ({header.text()[:80]}...). Tardis "
                f"CSV files start with a header ({','.join(_PREFIX)},...); put it back"
            )
        raise TardisError(
            f"{path}: the header does not start {','.join(_PREFIX)}; is this a Tardis.dev "
            f"CSV file? (line 1: {header.text()[:120]})"
        )
    kind, levels = _kind(path, columns)
    first = next(lines, None)
    exchange = symbol = ""
    if first is not None:
        fields = first.text().split(",")
        exchange, symbol = fields[0], fields[1] if len(fields) > 1 else ""
    return TardisFile(path, kind, levels, columns, exchange, symbol)


def _kind(path: Path, columns: tuple[str, ...]) -> tuple[str, int]:
    rest = set(columns[4:])
    for kind, cols in _COLUMNS.items():
        if rest == set(cols) and len(columns) == 8:
            return kind, 0
    levels = (len(columns) - 4) // 4
    if levels and set(columns) == set(expected_columns("book_snapshot", levels)):
        return "book_snapshot", levels
    raise TardisError(
        f"{path}: columns {','.join(columns[4:])} are not one of the Tardis types Tapedeck "
        "reads (quotes, trades, incremental_book_L2, book_snapshot_N)"
    )


def scales(files: list[TardisFile]) -> tuple[int, int]:
    """(price, size) decimals: the most any price or amount shows in the first rows."""
    price = size = 0
    for f in files:
        amounts = {i for i, c in enumerate(f.columns) if c.endswith("amount")}
        prices = {i for i, c in enumerate(f.columns) if c.endswith("price")}
        for line in _head(f.path, _SAMPLE_ROWS):
            for i, value in enumerate(line.split(b",")):
                decimals = len(value.partition(b".")[2].rstrip(b"\r").rstrip(b"0"))
                if i in prices:
                    price = max(price, decimals)
                elif i in amounts:
                    size = max(size, decimals)
    return min(price, MAX_DIGITS), min(size, MAX_DIGITS)


def _head(path: Path, rows: int) -> Iterator[bytes]:
    for line in InputFile(path).lines():
        if line.number > rows + 1:
            return
        if line.number > 1:
            yield line.raw


def instrument(
    exchange: str, symbol: str, price_scale: int | None, size_scale: int | None,
    files: list[TardisFile],
) -> InstrumentSpec:  # fmt: skip
    """The session's instrument: Binance's known scales for Binance markets, else the scales
    the files show (overridable)."""
    market = _BINANCE_MARKETS.get(exchange)
    if market is not None:
        return binance_instrument(market, symbol, price_scale, size_scale)
    ps, ss = scales(files)
    ps = ps if price_scale is None else price_scale
    ss = ss if size_scale is None else size_scale
    currency = next((c for c in ("USDT", "USDC", "USD", "BTC") if symbol.endswith(c)), "")
    return InstrumentSpec(symbol, exchange.upper(), "UTC", ps, ss, 1, 1, currency)


def book_description(files: list[TardisFile]) -> BookDescribed:
    """How the session's book is built: from its book files, else from its quotes."""
    kinds = {f.kind for f in files}
    names = ", ".join(f.path.name for f in files)
    if "incremental_book_L2" in kinds:
        return BookDescribed(0, 0, 0, False, f"Tardis incremental_book_L2 ({names})")
    depth = max((f.levels for f in files if f.kind == "book_snapshot"), default=0)
    if depth:
        return BookDescribed(0, 0, depth, False, f"Tardis book_snapshot_{depth} ({names})")
    quotes = "quotes" in kinds
    detail = "Tardis quotes: level 1 only" if quotes else "Tardis trades: no book"
    return BookDescribed(0, 0, 1 if quotes else 0, quotes, f"{detail} ({names})")


class TardisConverter:
    """The rows of one Tardis file to journal items (pure: no I/O).

    Given the :class:`~engine.app.ingest.source.FileLines` of a file in the documented column
    order, it converts blocks of rows with the compiled :func:`engine.app.ingest.tardis_fast.scan`
    and passes each row scan is not sure about through the row-by-row path (:meth:`_row`),
    which any other iterable of lines takes throughout. Both give the same items; ``fast=False``
    forces the row-by-row path. ``non_integer_ids`` counts trade ids that were not integers.
    """

    def __init__(self, file: TardisFile, spec: InstrumentSpec, exchange: str,
                 chunk: int = 8192, fast: bool = True, block: int = BLOCK) -> None:  # fmt: skip
        self.file, self.spec, self.exchange = file, spec, exchange
        self.source = str(file.path)
        self.chunk, self.block = chunk, block
        self.index = {name: i for i, name in enumerate(file.columns)}
        self.non_integer_ids = 0
        self.state = np.zeros(tf.STATE_SIZE, np.int64)
        self.state[tf.S_PREV_LEN] = -1
        self.prev = np.zeros(_PREV_BYTES, np.uint8)
        self._buf = RecordArray(chunk + 2 * file.levels + 1024)
        self._held: np.ndarray[Any, Any] | None = None  # the L2 record awaiting what follows
        self._carry = np.zeros(3, np.int64)
        self.fast = fast and file.canonical and chunk > 0

    def convert(self, lines: Iterable[Line]) -> Iterator[Item]:
        """Items for every data row (the header line is skipped), in order."""
        if self.fast and isinstance(lines, FileLines):
            yield from self._convert_blocks(lines)
        else:
            for line in lines:
                if line.number > 1:
                    yield from self._slow(line)
        yield from self._take(final=True)

    def _slow(self, line: Line) -> Iterator[Item]:
        try:
            self._row(line)
        except DecimalError as exc:
            yield Bad.at(self.source, line, exc.reason, str(exc), int(self.state[0]))
        if len(self._buf) >= self.chunk:
            yield from self._take(final=False)

    def _convert_blocks(self, lines: FileLines) -> Iterator[Item]:
        blocks = LineBlocks(lines, self.block)
        exchange = np.frombuffer(self.exchange.encode(), np.uint8)
        symbol = np.frombuffer(self.spec.symbol.encode(), np.uint8)
        kind = KINDS.index(self.file.kind)
        vals = np.zeros(max(4, 4 * self.file.levels), np.int64)
        buf, st = self._buf, self.state
        try:
            if blocks.available():
                blocks.take_line()  # the header
            while blocks.available():
                if not buf.settle():
                    yield from self._slow(blocks.take_line())
                    continue
                st[tf.S_COUNT] = buf.n
                status, pos, done = tf.scan(
                    blocks.array, blocks.pos, blocks.end, kind, exchange, symbol,
                    self.spec.price_scale, self.spec.size_scale, self.file.levels, self.chunk,
                    st, buf.words, self.prev, vals,
                )  # fmt: skip
                blocks.advance(pos, done)
                buf.n = int(st[tf.S_COUNT])
                if status == tf.FULL:
                    yield from self._take(final=False)
                elif status == tf.SLOW:
                    yield from self._slow(blocks.take_line())
                elif status == tf.GROW:
                    buf.reserve(int(st[tf.S_NEED]))
        finally:
            blocks.close()

    def _take(self, final: bool) -> Iterator[Item]:
        """The records so far; incremental L2 records get their flags and the last waits."""
        records = self._buf.take()
        if self.file.kind != "incremental_book_L2":
            if len(records):
                yield records
            return
        if self._held is not None:
            records = np.concatenate([self._held, records]) if len(records) else self._held
        if not len(records):
            return
        words = records.view(np.int64).reshape(len(records), 8)
        tf.finish_l2(words, len(records), self._carry, final)
        self._held = None if final else records[-1:].copy()
        done = records if final else records[:-1]
        if len(done):
            yield done

    # -- the row-by-row path ---------------------------------------------------------------

    def _row(self, line: Line) -> None:
        st = self.state
        n = int(st[tf.S_PREV_LEN])
        if n == len(line.raw) and bytes(self.prev[:n]) == line.raw:
            raise DecimalError("duplicate_line", "the same bytes as the row before it")
        cols = line.text().split(",")
        if len(cols) != len(self.index):
            raise DecimalError(
                "bad_columns", f"expected {len(self.index)} columns, found {len(cols)}"
            )
        row = dict(zip(self.file.columns, cols, strict=True))
        if (row["exchange"], row["symbol"]) != (self.exchange, self.spec.symbol):
            raise DecimalError(
                "symbol_mismatch",
                f"{row['exchange']} {row['symbol']}, the session is "
                f"{self.exchange} {self.spec.symbol}",
            )
        ts, recv = _time(row["timestamp"], "timestamp"), _time(row["local_timestamp"], "local")
        if recv < st[tf.S_LAST_RECV]:
            raise DecimalError(
                "time_backwards", f"local_timestamp {recv} ns < previous {st[tf.S_LAST_RECV]}"
            )
        self._buf.rows.extend(self._records(row, ts, recv))
        st[tf.S_LAST_RECV] = recv
        self._remember(line.raw)

    def _remember(self, raw: bytes) -> None:
        if len(raw) > len(self.prev):
            self.state[tf.S_PREV_LEN] = -1
            return
        self.prev[: len(raw)] = np.frombuffer(raw, np.uint8)
        self.state[tf.S_PREV_LEN] = len(raw)

    def _records(self, row: dict[str, str], ts: int, recv: int) -> list[Row]:
        kind = self.file.kind
        if kind == "quotes":
            bid, bid_size = self._level(row["bid_price"], row["bid_amount"], "bid")
            ask, ask_size = self._level(row["ask_price"], row["ask_amount"], "ask")
            return [(_T_QUOTE, 0, F_LAST, 0, ts, recv, bid, bid_size, 0, ask, ask_size)]
        if kind == "trades":
            side = _word(row["side"], _SIDES, "side")
            price, size = self._price(row["price"]), self._size(row["amount"])
            return [(_T_TRADE, side, F_LAST, 0, ts, recv, price, size, self._id(row["id"]), 0, 0)]
        if kind == "incremental_book_L2":
            t = _word(row["is_snapshot"], {"true": _T_SNAP, "false": _T_LEVEL}, "is_snapshot")
            side = _word(row["side"], {"bid": 1, "ask": -1}, "side")
            price, size = self._price(row["price"]), self._size(row["amount"])
            return [(t, side, 0, 0, ts, recv, price, size, 0, 0, 0)]
        return self._snapshot(row, ts, recv)

    def _snapshot(self, row: dict[str, str], ts: int, recv: int) -> list[Row]:
        levels = []
        for side, name in ((1, "bids"), (-1, "asks")):
            for k in range(self.file.levels):
                price, amount = row[f"{name}[{k}].price"], row[f"{name}[{k}].amount"]
                if price or amount:
                    levels.append((side, k, *self._level(price, amount, f"{name}[{k}]")))
        if not levels:
            return [(_T_CLEARED, 0, F_LAST, 0, ts, recv, 0, 0, 0, 0, 0)]
        last = len(levels) - 1
        return [
            (_T_SNAP, side, (F_FIRST if i == 0 else 0) | (F_LAST if i == last else 0), k,
             ts, recv, price, size, 0, 0, 0)
            for i, (side, k, price, size) in enumerate(levels)
        ]  # fmt: skip

    def _level(self, price: str, amount: str, what: str) -> tuple[int, int]:
        if not price and not amount:
            return 0, 0
        if not price or not amount:
            raise DecimalError("bad_field", f"{what}: a price without an amount or the reverse")
        return self._price(price), self._size(amount)

    def _price(self, text: str) -> int:
        return _scaled(text, self.spec.price_scale, "price", "negative_price")

    def _size(self, text: str) -> int:
        return _scaled(text, self.spec.size_scale, "amount", "negative_size")

    def _id(self, text: str) -> int:
        if text.isascii() and text.isdigit() and int(text) <= UINT64_MAX:
            return int(text)
        self.non_integer_ids += 1
        return 0


def _scaled(text: str, scale: int, what: str, negative: str) -> int:
    try:
        value = parse_scaled(text, scale)
    except DecimalError as exc:
        raise DecimalError(exc.reason, f"{what}: {exc}") from None
    if value < 0:
        raise DecimalError(negative, f"{what} {text!r} is negative")
    if not fits_int64(value):
        raise DecimalError("out_of_range", f"{what} {text!r} does not fit int64 at this scale")
    return value


def _time(text: str, what: str) -> int:
    try:
        us = parse_scaled(text, 0)
    except DecimalError:
        raise DecimalError("bad_time", f"{what} {text!r} is not microseconds") from None
    check_range(f"{what} {text[:24]!r} us", us, 0, INT64_MAX // 1000)
    return us * 1000


def _word(text: str, words: dict[str, int], what: str) -> int:
    try:
        return words[text]
    except KeyError:
        raise DecimalError(
            "bad_field", f"{what} {text[:40]!r} is not one of {', '.join(words)}"
        ) from None
