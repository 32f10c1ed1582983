"""The ``book`` processor: rebuilds the order book from market records and emits its top N.

Inputs
    Batches of 64-byte market records (``MARKET_RECORD`` view) from a session journal, with
    the journal offset of the first record. Low-rate journal events carry nothing the book needs:
    gaps reach it as the F_GAP flag on the broken message's records.
Outputs
    ``book.top`` records (``engine.events.book``): the top ``levels`` of each side plus status
    and venue update id, emitted after a source message (a record with F_LAST) that changed any
    of them, each carrying the journal offset of that record (its causation).
State
    L2 price levels per side (always), the L3 order map (order id -> side, price, remaining
    size) for sources with order ids, the book status (synced / stale) and the last applied
    venue update id. All numpy; :meth:`snapshot` / :meth:`restore` serialise it with a version.
Guarantees
    Deterministic: outputs and state depend only on the records, never on how they were cut
    into batches (a message spanning two batches is completed in the second; table growth
    happens at the same record whatever the batching). Pure: no I/O, clock or environment.

A ``feed.book_described`` journal event (:meth:`BookProcessor.describe`) sets the window and
quote handling to what the source says, overriding the venue's default.

Sequenced mode (Binance): a snapshot resets the book and its update id; level updates with
``update_id`` at or below the book's are discarded; a record flagged F_GAP marks the book stale
and it ignores updates until the next snapshot. Windowed mode (LOBSTER, ``window=10``): after
each message only the best ``window`` levels of a side are kept, because the source does not
report changes beyond them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from engine.events.book import BOOK_TOP, BOOK_TOP_DTYPE, TOP_LEVELS
from engine.events.control import BookDescribed, InstrumentSpec
from engine.events.market import F_LAST, MARKET_RECORD
from engine.runtime.processor import load_state
from streams.book import kernel as k

PROCESSOR_ID = "book"
# the kernel writes book.top records word by word: its layout must be this one
assert BOOK_TOP_DTYPE.itemsize == 8 * k.TOP_WORDS
assert TOP_LEVELS == k.TOP_LEVELS
assert BOOK_TOP.type_id == 9
STATE_VERSION = 1


@dataclass(frozen=True)
class BookConfig:
    """How a book is built: top-N size, visible window, sequencing and quote handling."""

    levels: int = TOP_LEVELS
    window: int = 0
    """Keep only this many best levels per side after each message (0: keep all)."""
    sequenced: bool = False
    """Venue update ids and snapshots govern which level updates apply (Binance)."""
    quote_book: bool = False
    """``market.quote`` records define a level-1 book (top-of-book-only sources such as B3)."""
    level_capacity: int = 1024
    order_capacity: int = 1024
    buffer_capacity: int = 65536
    """Level updates kept while waiting for a snapshot (sequenced mode)."""


def book_config(spec: InstrumentSpec) -> BookConfig:
    """How to build the book of an instrument, from its venue."""
    if spec.venue.startswith("BINANCE"):
        return BookConfig(sequenced=True)
    if spec.venue == "NASDAQ":
        return BookConfig(window=10)
    return BookConfig(quote_book=True)


def described(config: BookConfig, event: BookDescribed) -> BookConfig:
    """``config`` as a ``feed.book_described`` event says the source's book is: its window
    follows the source's depth, quotes are the book when the event says so, and it is never
    sequenced by venue update ids (sources that describe their book carry none)."""
    return dataclasses.replace(config, window=event.depth, quote_book=event.quotes, sequenced=False)


class _State(msgspec.Struct, array_like=True):
    version: int
    levels: int
    window: int
    sequenced: bool
    quote_book: bool
    meta: list[int]
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    orders: list[tuple[int, int, int, int]]
    last: list[int]
    level_capacity: int
    order_capacity: int
    buffer: list[list[int]]
    buffer_capacity: int


class BookProcessor:
    """See the module docstring. ``process`` is the only way state changes."""

    id = PROCESSOR_ID

    def __init__(self, config: BookConfig | None = None) -> None:
        self.config = config or BookConfig()
        if not 1 <= self.config.levels <= TOP_LEVELS:
            raise ValueError(f"levels must be 1..{TOP_LEVELS}, got {self.config.levels}")
        self.keys = np.zeros((2, self.config.level_capacity), dtype=np.int64)
        self.sizes = np.zeros_like(self.keys)
        self.meta = np.zeros(k.META_SIZE, dtype=np.int64)
        self._new_orders(self.config.order_capacity)
        self.last = np.zeros(4 * self.config.levels + 2, dtype=np.int64)
        self.buf = np.zeros(
            (self.config.buffer_capacity if self.config.sequenced else 1, 5), np.int64
        )

    def _new_orders(self, capacity: int) -> None:
        self.okeys = np.zeros(capacity, dtype=np.int64)
        self.oside = np.zeros(capacity, dtype=np.int64)
        self.oprice = np.zeros(capacity, dtype=np.int64)
        self.osize = np.zeros(capacity, dtype=np.int64)

    def process(self, records: np.ndarray[Any, Any], base_offset: int) -> np.ndarray[Any, Any]:
        """Apply a batch of market records (journal offsets from ``base_offset``); new tops."""
        r = records.view(MARKET_RECORD) if records.dtype != MARKET_RECORD else records
        flags = r["flags"]
        # every word of an emitted row is written by the kernel: no need to zero them
        out = np.empty((int(np.count_nonzero(flags & F_LAST)), k.TOP_WORDS), np.int64)
        cols = (
            r["type_id"],
            r["side"],
            flags,
            r["price"],
            r["size"],
            r["id"].view(np.int64),
            r["price2"],
            r["size2"],
            r["ts_event"],
            r["ts_recv"],
        )
        n_out, start = 0, 0
        c = self.config
        while True:
            n_out, start, grow = k.run(
                *cols,
                start,
                base_offset,
                self.keys,
                self.sizes,
                self.meta,
                self.okeys,
                self.oside,
                self.oprice,
                self.osize,
                self.buf,
                self.last,
                out,
                n_out,
                c.levels,
                c.window,
                c.sequenced,
                c.quote_book,
            )
            if grow == k.GROW_LEVELS:
                self._grow_levels()
            elif grow == k.GROW_ORDERS:
                self._grow_orders()
            else:
                break
        return self._tops(out[:n_out])

    @staticmethod
    def _tops(words: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """The kernel's rows, already laid out as ``book.top`` records, seen as such."""
        return words.view(BOOK_TOP_DTYPE).reshape(len(words))

    def _grow_levels(self) -> None:
        keys = np.zeros((2, 2 * self.keys.shape[1]), dtype=np.int64)
        sizes = np.zeros_like(keys)
        keys[:, : self.keys.shape[1]], sizes[:, : self.keys.shape[1]] = self.keys, self.sizes
        self.keys, self.sizes = keys, sizes

    def _grow_orders(self) -> None:
        old = (self.okeys, self.oside, self.oprice, self.osize)
        self._new_orders(2 * len(self.okeys))
        k.rehash(*old, self.okeys, self.oside, self.oprice, self.osize)

    def _load_orders(self, entries: list[tuple[int, int, int, int]]) -> None:
        self.meta[k.M_ORDERS] = 0
        for oid, side, price, size in entries:
            k._order(
                self.okeys,
                self.oside,
                self.oprice,
                self.osize,
                self.meta,
                2,
                oid,
                side,
                price,
                size,
            )

    def describe(self, event: BookDescribed) -> None:
        """Follow a ``feed.book_described`` event from the next record on (see :func:`described`).

        A narrower window takes effect at the next message, as the source's depth does."""
        self.config = described(self.config, event)

    # -- inspection ----------------------------------------------------------------------

    def levels(self, side: int) -> list[tuple[int, int]]:
        """(price, size) of every level of ``side`` (+1 bids, -1 asks), best first."""
        s, sign = (0, 1) if side > 0 else (1, -1)
        n = int(self.meta[s])
        return [(int(self.keys[s, i]) * sign, int(self.sizes[s, i])) for i in range(n - 1, -1, -1)]

    def orders(self) -> list[tuple[int, int, int, int]]:
        """The L3 map as (order_id, side, price, remaining size), sorted by order id."""
        used = np.flatnonzero(self.okeys)
        rows = zip(
            (self.okeys[used] - 1).tolist(),
            self.oside[used].tolist(),
            self.oprice[used].tolist(),
            self.osize[used].tolist(),
            strict=True,
        )
        return sorted(rows)

    @property
    def status(self) -> int:
        """Status bits (``engine.events.book.S_SYNCED`` / ``S_STALE``)."""
        return int(self.meta[k.M_STATUS])

    # -- snapshot / restore --------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole state as canonical msgpack bytes (version ``STATE_VERSION``)."""
        c = self.config
        state = _State(
            STATE_VERSION,
            c.levels,
            c.window,
            c.sequenced,
            c.quote_book,
            self.meta.tolist(),
            self.levels(1),
            self.levels(-1),
            self.orders(),
            self.last.tolist(),
            int(self.keys.shape[1]),
            len(self.okeys),
            self.buf[: self.meta[k.M_BUFFERED]].tolist(),
            len(self.buf),
        )
        return msgspec.msgpack.encode(state)

    @classmethod
    def restore(cls, data: bytes) -> BookProcessor:
        """A processor in exactly the state ``snapshot`` captured."""
        state = load_state("book", data, _State, STATE_VERSION)
        config = BookConfig(
            state.levels,
            state.window,
            state.sequenced,
            state.quote_book,
            state.level_capacity,
            state.order_capacity,
            state.buffer_capacity,
        )
        book = cls(config)
        for s, levels in ((0, state.bids), (1, state.asks)):
            sign = 1 if s == 0 else -1
            for i, (price, size) in enumerate(reversed(levels)):
                book.keys[s, i], book.sizes[s, i] = price * sign, size
        book._load_orders(state.orders)
        book.meta[:] = state.meta
        book.last[:] = state.last
        if state.buffer:
            book.buf[: len(state.buffer)] = state.buffer
        return book
