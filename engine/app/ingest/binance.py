"""Binance spot and USD-M futures recordings (``<receive_ts_ns> <json>`` lines) to events.

Mapping (one input line -> records in the same order):

* REST depth snapshot -> ``market.book_snapshot``, one per level, bids then asks, best first
  (``aux`` = level index); first has F_FIRST, last F_LAST; ``update_id`` = ``lastUpdateId``.
* ``depthUpdate`` -> ``market.level_updated`` per level, bids then asks (``update_id`` = ``u``,
  ``first_update_id`` = ``U``); first F_FIRST, last F_LAST.
* ``trade`` -> ``market.trade`` (side -1 when ``m``, the buyer was maker, else +1).
* ``bookTicker`` -> ``market.quote`` (``update_id`` = ``u``).

``ts_recv`` is the recorder's receive time; ``ts_event`` is ``E`` (ms -> ns) where the message
has it, else (spot bookTicker, spot REST snapshot) the receive time.

Ranges: the receive time and ``E`` in ns must fit int64 (``E`` >= 0), and trade and update ids
(``t``, ``U``, ``u``, ``pu``, ``lastUpdateId``) must be in 0..2**63-1, the range of Binance's own
(signed 64-bit) ids; a line outside them is quarantined as ``out_of_range``, and a line that is
not valid UTF-8 as ``bad_json``.

Sequencing follows Binance's "how to manage a local order book" procedure; :class:`Sequencer`
decides, and on a break the importer writes ``feed.gap_detected`` and sets F_GAP on the broken
message's records, which is what makes the ``book`` processor mark the book stale until the next
snapshot. Records are journaled whether or not the book applies them: the journal is the input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from engine.app.ingest import binance_fast as fast
from engine.app.ingest import binance_messages as m
from engine.app.ingest.blocks import BLOCK, LineBlocks
from engine.app.ingest.decimal import DecimalError, ScaledCache
from engine.app.ingest.fastparse import MAX_DIGITS
from engine.app.ingest.records import INT64_MAX, RecordArray, check_range, fits_int64
from engine.app.ingest.session import Bad, Item
from engine.app.ingest.source import FileLines, Line, iter_file_lines
from engine.events.control import FeedGapDetected, InstrumentSpec
from engine.events.market import F_FIRST, F_GAP, F_LAST

IMPORTER_VERSION = "binance/1"
_MS = 1_000_000
_MAX_E_MS = INT64_MAX // _MS  # largest event time in ms whose ns fit int64
_T_TRADE, _T_LEVEL, _T_QUOTE, _T_SNAP = 1, 6, 7, 8

# (price_scale, size_scale, tick_size, lot_size) per (market, symbol), from the venue's filters
# and checked against the recordings; other symbols get 8/8, which holds any Binance decimal.
KNOWN_SCALES = {("spot", "BTCUSDT"): (2, 8, 1, 1), ("usdm", "BTCUSDT"): (2, 3, 10, 1)}


def detect(path: Path, max_lines: int = 20000) -> tuple[str, str]:
    """(market, symbol) of a recording: ``usdm`` if its depth updates carry ``pu``."""
    for line in iter_file_lines(path):
        if line.number > max_lines:
            break
        try:
            env = m.ENVELOPE.decode(line.raw.partition(b" ")[2])
            if m.stream_kind(env.stream) == "depth":
                depth = m.DEPTH.decode(env.data)
                return ("usdm" if depth.pu is not None else "spot"), depth.s
        except (msgspec.DecodeError, UnicodeDecodeError):
            continue
    raise ValueError(
        f"{path}: no depthUpdate in the first {max_lines} lines; is this a Binance recording?"
    )


def instrument(
    market: str, symbol: str, price_scale: int | None = None, size_scale: int | None = None
) -> InstrumentSpec:
    """The instrument spec of a Binance symbol (scales overridable)."""
    ps, ss, tick, lot = KNOWN_SCALES.get((market, symbol), (8, 8, 1, 1))
    if price_scale is not None and price_scale != ps:
        ps, tick = price_scale, 1
    if size_scale is not None and size_scale != ss:
        ss, lot = size_scale, 1
    venue = "BINANCE-SPOT" if market == "spot" else "BINANCE-USDM"
    return InstrumentSpec(
        symbol, venue, "UTC", ps, ss, tick, lot, symbol[-4:] if symbol.endswith("USDT") else ""
    )


class Sequencer:
    """Binance depth continuity: one chain of ``U``/``u`` (spot) or ``pu``/``u`` (futures).

    Binance's procedure buffers the stream, fetches a snapshot, drops updates up to its
    ``lastUpdateId`` and needs the first update applied to straddle it. The recorder did the
    same, so updates that straddle the snapshot may be *older* lines than the snapshot line.
    Hence the chain is checked at all times (a break is a gap: what came before can never be
    applied), and a snapshot is usable only if the current chain starts at or before its
    ``lastUpdateId + 1`` (futures: ``lastUpdateId``). Each method returns None or the break as
    ``(expected, received, rule)``.
    """

    def __init__(self, futures: bool) -> None:
        self.futures = futures
        self.chain_start: int | None = None
        self.prev_u: int | None = None
        self.prev_first: int | None = None
        self.pending_bound: int | None = None

    def repeats(self, first: int, last: int) -> bool:
        """Whether a depthUpdate with ``U`` = first and ``u`` = last is the previous one again."""
        return self.prev_u == last and self.prev_first == first

    def on_snapshot(self, last_update_id: int) -> tuple[int, int, str] | None:
        """A REST snapshot at ``lastUpdateId`` arrived."""
        bound = last_update_id if self.futures else last_update_id + 1
        self.pending_bound = None
        if self.chain_start is None or self.prev_u is None or self.prev_u < bound:
            self.pending_bound = bound  # decided by the update that reaches it
            return None
        return self._straddle(bound)

    def _straddle(self, bound: int) -> tuple[int, int, str] | None:
        assert self.chain_start is not None
        if self.chain_start <= bound:
            return None
        return bound, self.chain_start, f"no update straddles the snapshot: need U <= {bound} <= u"

    def on_depth(self, first: int, last: int, prev: int | None) -> tuple[int, int, str] | None:
        """Check a depthUpdate with ``U`` = first, ``u`` = last and ``pu`` = prev."""
        gap = None
        if self.prev_u is None:
            self.chain_start = first
        elif self.futures and prev != self.prev_u:
            gap = (self.prev_u, prev or 0, "futures continuity: pu must equal the previous u")
        elif not self.futures and first != self.prev_u + 1:
            gap = (self.prev_u + 1, first, "spot continuity: U must equal the previous u + 1")
        if gap is not None:
            self.chain_start = first
        self.prev_u, self.prev_first = last, first
        if gap is None and self.pending_bound is not None and last >= self.pending_bound:
            gap = self._straddle(self.pending_bound)
            self.pending_bound = None
        return gap


_LEVEL_ROWS = 1 << 14  # levels of one message the fast path holds; more go to Python


class BinanceConverter:
    """Lines of one recording to journal items, in order (pure: no I/O).

    Given the :class:`~engine.app.ingest.source.FileLines` of an input file, it converts blocks of
    lines with the compiled :func:`engine.app.ingest.binance_fast.scan` and passes each line that
    scan is not sure about through the line-by-line path (:meth:`_line`), which any other
    iterable of lines takes throughout. Both give the same items; ``fast=False`` forces the
    line-by-line path (the reference the tests compare against); ``block`` is the size in
    bytes of the pieces the input is read in.
    """

    def __init__(
        self,
        spec: InstrumentSpec,
        futures: bool,
        source: str,
        chunk: int = 8192,
        fast: bool = True,
        block: int = BLOCK,
    ) -> None:
        self.spec, self.source, self.chunk, self.block = spec, source, chunk, block
        self.price = ScaledCache(spec.price_scale)
        self.size = ScaledCache(spec.size_scale)
        self.sequencer = Sequencer(futures)
        self.gaps = 0
        self.snapshots = 0
        self.last_trade = -1
        self._pending_gap = False
        self._last_ts = 0
        self._buf = RecordArray(chunk + 1024)
        self.fast = (
            fast
            and 0 <= spec.price_scale <= MAX_DIGITS
            and 0 <= spec.size_scale <= MAX_DIGITS
            and chunk > 0
        )

    def continue_from(
        self, bids: list[tuple[int, int]], asks: list[tuple[int, int]], update_id: int,
        last_u: int, ts: int,
    ) -> None:  # fmt: skip
        """Start from the final book of the recording this one continues (``--after``).

        Its levels become a ``market.book_snapshot`` at ``update_id`` (time ``ts``, the end of
        that recording), and the depth chain goes on from its last ``u``: the first update
        here must continue it (futures ``pu == u``, spot ``U == u + 1``) or it is a gap.
        """
        levels = [(1, i, p, q) for i, (p, q) in enumerate(bids)]
        levels += [(-1, i, p, q) for i, (p, q) in enumerate(asks)]
        for k, (side, i, p, q) in enumerate(levels):
            flags = (F_FIRST if k == 0 else 0) | (F_LAST if k == len(levels) - 1 else 0)
            self._buf.rows.append((_T_SNAP, side, flags, i, ts, ts, p, q, update_id, 0, 0))
        seq = self.sequencer
        seq.prev_u, seq.chain_start, seq.prev_first = last_u, update_id, None
        self._last_ts = ts
        self.snapshots += 1

    def convert(self, lines: Iterable[Line]) -> Iterator[Item]:
        """Items for each line: record arrays (chunked), gap events, and bad lines."""
        if self.fast and isinstance(lines, FileLines):
            yield from self._convert_blocks(lines)
            return
        for line in lines:
            yield from self._slow(line)
        if len(self._buf):
            yield self._buf.take()

    def message(self, line: Line) -> list[Item]:
        """Everything one line gives, at once: what a live feed journals per received message."""
        items = list(self._slow(line))
        if len(self._buf):
            items.append(self._buf.take())
        return items

    def resync(self) -> None:
        """Flag the next depth update F_GAP, so the book waits for the next snapshot: a feed
        that reconnected cannot vouch for continuity across the break."""
        self._pending_gap = True

    def _slow(self, line: Line) -> Iterator[Item]:
        try:
            yield from self._line(line)
        except DecimalError as exc:
            yield self._bad(line, exc.reason, str(exc))
        if len(self._buf) >= self.chunk:
            yield self._buf.take()

    def _convert_blocks(self, lines: FileLines) -> Iterator[Item]:
        blocks = LineBlocks(lines, self.block)
        symbol = np.frombuffer(self.spec.symbol.encode(), np.uint8)
        state = np.zeros(fast.STATE_SIZE, np.int64)
        fields = np.zeros((fast.FIELDS, 3), np.int64)
        levels = np.zeros((_LEVEL_ROWS, 2), np.int64)
        futures, buf = self.sequencer.futures, self._buf
        try:
            while blocks.available():
                # Rows the Python path added go in first, in order; if they cannot (a value
                # out of range, which take() will raise), or the state is out of int64
                # range, lines go the Python way so everything happens as it always did.
                if not (buf.settle() and self._state_in(state)):
                    yield from self._slow(blocks.take_line())
                    continue
                status, pos, done = fast.scan(
                    blocks.array, blocks.pos, blocks.end, symbol,
                    self.spec.price_scale, self.spec.size_scale, futures, self.chunk,
                    state, buf.words, fields, levels,
                )  # fmt: skip
                blocks.advance(pos, done)
                self._state_out(state)
                if status == fast.FULL:
                    yield buf.take()
                elif status == fast.SLOW:
                    yield from self._slow(blocks.take_line())
                elif status == fast.GROW:
                    buf.reserve(int(state[fast.S_NEED]))
        finally:
            blocks.close()
        if len(buf):
            yield buf.take()

    def _state_in(self, state: np.ndarray[Any, Any]) -> bool:
        seq = self.sequencer
        values = (  # in the order of binance_fast's S_* slots
            self._last_ts,
            seq.prev_u is not None,
            seq.prev_u or 0,
            seq.chain_start or 0,
            seq.pending_bound is not None,
            seq.pending_bound or 0,
            self._pending_gap,
            self._buf.n,
            seq.prev_first or 0,
            self.last_trade,
        )
        if not all(fits_int64(int(v)) for v in values):
            return False
        state[: len(values)] = values
        return True

    def _state_out(self, state: np.ndarray[Any, Any]) -> None:
        self._last_ts = int(state[fast.S_LAST_TS])
        if state[fast.S_HAS_PREV]:
            self.sequencer.prev_u = int(state[fast.S_PREV_U])
            self.sequencer.chain_start = int(state[fast.S_CHAIN_START])
            self.sequencer.prev_first = int(state[fast.S_PREV_FIRST])
        self.last_trade = int(state[fast.S_LAST_TRADE])
        self._pending_gap = bool(state[fast.S_PENDING_GAP])
        self._buf.n = int(state[fast.S_COUNT])

    def _bad(self, line: Line, reason: str, detail: str) -> Bad:
        return Bad.at(self.source, line, reason, detail, self._last_ts)

    def _line(self, line: Line) -> Iterator[Item]:
        stamp, _, body = line.raw.partition(b" ")
        if not (stamp.isdigit() and body):
            yield self._bad(line, "bad_line", 'expected "<receive_ts_ns> <json>"')
            return
        digits = stamp.lstrip(b"0")
        if len(digits) > len(str(INT64_MAX)) or int(digits or b"0") > INT64_MAX:
            yield self._bad(
                line,
                "out_of_range",
                f"receive time {_digits(digits)} ns is beyond int64 (at most {INT64_MAX})",
            )
            return
        ts = int(digits or b"0")
        if ts < self._last_ts:
            yield self._bad(line, "time_backwards", f"receive time {ts} < previous {self._last_ts}")
            return
        if not body.isascii():
            problem = _utf8_problem(body, len(stamp) + 1)
            if problem:
                yield self._bad(line, "bad_json", problem)
                return
        try:
            env = m.ENVELOPE.decode(body)
        except msgspec.ValidationError:
            yield from self._snapshot(line, body, ts)
            return
        except msgspec.DecodeError as exc:
            yield self._bad(line, "bad_json", f"not valid JSON: {exc}")
            return
        kind = m.stream_kind(env.stream)
        if kind is None:
            yield self._bad(
                line, "unknown_event", f"stream {env.stream!r} is not depth, trade or bookTicker"
            )
            return
        decoders: dict[str, msgspec.json.Decoder[Any]] = {
            "depth": m.DEPTH,
            "trade": m.TRADE,
            "ticker": m.TICKER,
        }
        try:
            msg = decoders[kind].decode(env.data)
        except msgspec.DecodeError as exc:
            yield self._shape_error(line, env.data, kind, exc)
            return
        event = getattr(msg, "e", None)
        if event not in (None, m.EVENT_NAMES[kind]):
            yield self._bad(line, "unknown_event", f"event type {event!r} on {env.stream!r}")
            return
        if msg.s != self.spec.symbol:
            yield self._bad(
                line, "symbol_mismatch", f"symbol {msg.s!r}, session is {self.spec.symbol!r}"
            )
            return
        _check_ranges(msg)
        if isinstance(msg, m.DepthUpdate):
            yield from self._depth(msg, ts)
        elif isinstance(msg, m.Trade):
            if msg.t <= self.last_trade:
                raise DecimalError(
                    "duplicate", f"trade id {msg.t} again (the last trade was {self.last_trade})"
                )
            price, size = self._price(msg.p), self._size(msg.q)
            self._buf.rows.append(
                (_T_TRADE, -1 if msg.m else 1, F_LAST, 0, msg.E * _MS, ts, price, size, msg.t, 0, 0)
            )
            self.last_trade = msg.t
        else:
            assert isinstance(msg, m.BookTicker)
            bid, bid_size = self._price(msg.b), self._size(msg.B)
            ask, ask_size = self._price(msg.a), self._size(msg.A)
            ts_event = msg.E * _MS if msg.E is not None else ts
            self._buf.rows.append(
                (_T_QUOTE, 0, F_LAST, 0, ts_event, ts, bid, bid_size, msg.u, ask, ask_size)
            )
        self._last_ts = ts  # only a converted line moves time forward

    def _shape_error(self, line: Line, data: bytes, kind: str, exc: Exception) -> Bad:
        try:
            obj = m.ANY.decode(data)
        except msgspec.ValidationError:  # valid JSON with an integer too large to decode
            return self._bad(line, "out_of_range", f"{m.EVENT_NAMES[kind]}: {exc}")
        except msgspec.DecodeError:
            return self._bad(line, "bad_json", f"not valid JSON: {exc}")
        event = obj.get("e") if isinstance(obj, dict) else None
        if event is not None and event != m.EVENT_NAMES[kind]:
            return self._bad(line, "unknown_event", f"unknown event type {event!r}")
        return self._bad(line, "bad_field", f"{m.EVENT_NAMES[kind]}: {exc}")

    def _snapshot(self, line: Line, body: bytes, ts: int) -> Iterator[Item]:
        try:
            snap = m.SNAPSHOT.decode(body)
        except msgspec.DecodeError as exc:
            obj = None
            too_large = False
            try:
                obj = m.ANY.decode(body)
            except msgspec.ValidationError:  # valid JSON with an integer too large to decode
                too_large = True
            except msgspec.DecodeError:
                pass
            known = isinstance(obj, dict) and "lastUpdateId" in obj
            reason = "out_of_range" if too_large else "bad_field" if known else "unknown_event"
            yield self._bad(line, reason, f"neither a stream message nor a depth snapshot: {exc}")
            return
        _check_ranges(snap)
        self.snapshots += 1
        bids = self._levels(snap.bids)
        asks = self._levels(snap.asks)
        self._last_ts = ts
        ts_event = snap.E * _MS if snap.E is not None else ts
        uid = snap.lastUpdateId
        levels = [(1, i, p, q) for i, (p, q) in enumerate(bids)]
        levels += [(-1, i, p, q) for i, (p, q) in enumerate(asks)]
        gap = self.sequencer.on_snapshot(uid)
        gap_flag = 0
        if gap is not None:
            self.gaps += 1
            if len(self._buf):
                yield self._buf.take()
            yield FeedGapDetected(ts_event, ts, gap[0], gap[1], gap[2])
            gap_flag = F_GAP
        self._pending_gap = False
        rows = self._buf.rows
        for k, (side, i, p, q) in enumerate(levels):
            flags = gap_flag | (F_FIRST if k == 0 else 0) | (F_LAST if k == len(levels) - 1 else 0)
            rows.append((_T_SNAP, side, flags, i, ts_event, ts, p, q, uid, 0, 0))

    def _depth(self, msg: m.DepthUpdate, ts: int) -> Iterator[Item]:
        if self.sequencer.repeats(msg.U, msg.u):
            raise DecimalError("duplicate", f"depthUpdate U={msg.U} u={msg.u} again")
        bids, asks = self._levels(msg.b), self._levels(msg.a)
        self._last_ts = ts
        ts_event = msg.E * _MS
        flags = 0
        gap = self.sequencer.on_depth(msg.U, msg.u, msg.pu)
        if gap is not None:
            self.gaps += 1
            if len(self._buf):
                yield self._buf.take()
            yield FeedGapDetected(ts_event, ts, gap[0], gap[1], gap[2])
            self._pending_gap = True
        n = len(bids) + len(asks)
        if n and self._pending_gap:
            flags, self._pending_gap = F_GAP, False
        rows, k = self._buf.rows, 0
        for side, levels in ((1, bids), (-1, asks)):
            for p, q in levels:
                f = flags | (F_FIRST if k == 0 else 0) | (F_LAST if k == n - 1 else 0)
                rows.append((_T_LEVEL, side, f, 0, ts_event, ts, p, q, msg.u, msg.U, 0))
                k += 1

    def _levels(self, levels: list[m.Level]) -> list[tuple[int, int]]:
        return [(self._price(p), self._size(q)) for p, q in levels]

    def _price(self, text: str) -> int:
        value = _named(self.price, text, "price")
        if value < 0 or not fits_int64(value):
            raise DecimalError("negative_price" if value < 0 else "out_of_range", f"price {text!r}")
        return value

    def _size(self, text: str) -> int:
        value = _named(self.size, text, "size")
        if value < 0 or not fits_int64(value):
            raise DecimalError("negative_size" if value < 0 else "out_of_range", f"size {text!r}")
        return value


def _named(parse: ScaledCache, text: str, what: str) -> int:
    """``parse(text)``, with ``what`` named when the number is too long to convert at all."""
    try:
        return parse(text)
    except DecimalError as exc:
        if exc.reason == "out_of_range":
            raise DecimalError(exc.reason, f"{what}: {exc}") from None
        raise


def _check_ranges(msg: m.DepthUpdate | m.Trade | m.BookTicker | m.DepthSnapshot) -> None:
    """Raise ``out_of_range`` for an id or event time the journal cannot hold (see the top)."""
    if msg.E is not None:
        check_range("event time E", msg.E, 0, _MAX_E_MS, " ms")
    if isinstance(msg, m.DepthUpdate):
        check_range("first update id U", msg.U, 0, INT64_MAX)
        check_range("last update id u", msg.u, 0, INT64_MAX)
        if msg.pu is not None:
            check_range("previous update id pu", msg.pu, 0, INT64_MAX)
    elif isinstance(msg, m.Trade):
        check_range("trade id t", msg.t, 0, INT64_MAX)
    elif isinstance(msg, m.BookTicker):
        check_range("update id u", msg.u, 0, INT64_MAX)
    else:
        check_range("snapshot lastUpdateId", msg.lastUpdateId, 0, INT64_MAX)


def _digits(text: bytes) -> str:
    """A run of ASCII digits for a message, shortened when long."""
    return text.decode() if len(text) <= 24 else f"{text[:12].decode()}... ({len(text)} digits)"


_KEY = re.compile(rb'"([^"\\]{1,64})"\s*:')


def _utf8_problem(body: bytes, start: int) -> str | None:
    """Why ``body`` (the JSON, ``start`` bytes into its line) is not UTF-8, or None.

    JSON text is UTF-8, and a byte that is not (``\\xff``, a cut multi-byte character) is
    damage the JSON decoder would only notice inside fields it reads. The message names the
    field it is in (or the field name it is part of), found by the last ``"name":`` before it.
    """
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        keys = _KEY.findall(body, 0, exc.start)
        in_key = re.match(rb'[^"]*"\s*:', body[exc.start :]) is not None
        where = ""
        if keys:
            name = keys[-1].decode(errors="backslashreplace")
            where = f" in a field name after {name!r}" if in_key else f" in field {name!r}"
        return (
            f"not valid JSON: byte 0x{body[exc.start]:02x} at column {start + exc.start + 1} "
            f"is not UTF-8{where}"
        )
    return None
