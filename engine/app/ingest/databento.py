"""Databento DBN files (``.dbn``, ``.dbn.zst``) to events, read with Databento's own
``databento-dbn`` package: its decoder for the metadata header and definitions, and the numpy
layouts it publishes for each record type (``MBOMsg._dtypes``...) for the market records, which
are fixed-size C structs read here a block at a time.

Mapping (``ts_event``, ``ts_recv`` as Databento gives them; prices stay in Databento's 1e-9
units, so the session's price scale is 9 and every price is exact; sizes in contracts/shares):

* MBO: ``A`` add -> ``market.order_added``, ``C`` cancel -> ``market.order_cancelled`` (the size
  cancelled), ``M`` modify -> ``market.order_modified``, ``F`` fill -> ``market.order_filled``
  (no book change: Databento sends the cancel or modify that takes the quantity off), ``T``
  trade -> ``market.trade`` (side = aggressor), ``R`` clear -> ``market.book_cleared``; ``N`` is
  not journaled (its F_LAST moves to the record before it). Databento's F_LAST becomes F_LAST,
  and the last record of a snapshot (F_SNAPSHOT) ends a message too.
* MBP-1: each record -> ``market.quote`` (best bid and ask after the event; F_LAST as
  Databento's), preceded by a ``market.trade`` when its action is ``T``.
* MBP-10: each record -> a ``market.book_snapshot`` of its ten levels a side (empty levels left
  out; none at all -> ``market.book_cleared``), preceded by a ``market.trade`` for ``T``.
* trades: each record -> ``market.trade``; a trade that an MBP file of the same session already
  carries (same ``ts_recv`` and ``sequence``) is not repeated.
* definitions: tick size, multiplier and currency of the session's instrument go into
  ``session.opened`` and an ``instrument.defined`` event.

Only records of the session's instrument are journaled (others are counted). A record whose
time is beyond int64, whose ``ts_recv`` goes backwards, or whose action is unknown is
quarantined with its record number, byte offset and bytes (hex).
"""

from __future__ import annotations

import dataclasses
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import databento_dbn as dbn
import numpy as np

from engine.app.ingest import databento_fast as kernel
from engine.app.ingest.decimal import format_scaled
from engine.app.ingest.records import FixedArray
from engine.app.ingest.session import Bad, Item
from engine.app.ingest.source import Cut, InputFile, Line
from engine.events.control import BookDescribed, InstrumentDefined, InstrumentSpec
from engine.events.market import F_LAST, MARKET_RECORD

IMPORTER_VERSION = "databento/1"
PRICE_SCALE = 9
RTYPES = {160: ("mbo", dbn.MBOMsg), 1: ("mbp-1", dbn.MBP1Msg), 10: ("mbp-10", dbn.MBP10Msg),
          0: ("trades", dbn.TradeMsg)}  # fmt: skip
SCHEMA_RTYPE = {name: rtype for rtype, (name, _) in RTYPES.items()}
TIME_ZONES = {"GLBX.MDP3": "America/Chicago", "XNAS.ITCH": "America/New_York",
              "XNYS.PILLAR": "America/New_York", "DBEQ.BASIC": "America/New_York",
              "EQUS.MINI": "America/New_York", "IFEU.IMPACT": "Europe/London"}  # fmt: skip
_UNDEF_I32 = 2**31 - 1
_DEFINITIONS = (dbn.InstrumentDefMsg, dbn.InstrumentDefMsgV1, dbn.InstrumentDefMsgV2)
_BLOCK = 1 << 22
_ACTION_NAMES = {b"A": "A add", b"C": "C cancel", b"M": "M modify", b"F": "F fill",
                 b"T": "T trade", b"R": "R clear", b"N": "N none"}  # fmt: skip
_REASONS = {
    kernel.BAD_TIME_RANGE: ("out_of_range", "a time is beyond int64 ns"),
    kernel.BAD_BACKWARDS: ("time_backwards", "ts_recv goes backwards"),
    kernel.BAD_ACTION: ("unknown_event", "the action is not one of A C M F T R N"),
}


class DatabentoError(ValueError):
    """A file that is not DBN, or a session that cannot be formed; the message says why."""


@dataclass(frozen=True)
class DbnFile:
    """A DBN file's metadata: schema, dataset, symbols and where its records start."""

    path: Path
    metadata: Any
    header: int
    """Decompressed bytes before the first record."""

    @property
    def schema(self) -> str:
        """``mbo``, ``mbp-1``, ``mbp-10``, ``trades`` or ``definition``."""
        return str(self.metadata.schema)


def inspect(path: Path) -> DbnFile:
    """Read the metadata header of a DBN file (plain or zstd)."""
    head = b""
    for chunk in InputFile(path).lines().chunks(1 << 16):
        head += chunk
        if len(head) >= 8 and len(head) >= 8 + struct.unpack("<I", head[4:8])[0]:
            break
    if not head.startswith(b"DBN") or len(head) < 8:
        raise DatabentoError(f"{path} is not a DBN file (it does not start with 'DBN')")
    size = 8 + struct.unpack("<I", head[4:8])[0]
    decoder = dbn.DBNDecoder()
    decoder.write(head[:size])
    try:
        metadata: Any = decoder.decode()[0]
    except (dbn.DBNError, IndexError) as exc:
        raise DatabentoError(f"{path}: the DBN metadata header does not decode: {exc}") from None
    schema = str(metadata.schema)
    if schema != "definition" and schema not in SCHEMA_RTYPE:
        raise DatabentoError(
            f"{path} holds schema {schema}; Tapedeck reads mbo, mbp-1, mbp-10, trades and "
            "definition"
        )
    return DbnFile(path, metadata, size)


def instrument_ids(files: list[DbnFile], symbol: str | None) -> tuple[str, set[int]]:
    """The session's symbol and the instrument ids it maps to in the files' metadata."""
    symbols = sorted({s for f in files if f.schema != "definition" for s in f.metadata.symbols})
    if symbol is None:
        if len(symbols) != 1:
            raise DatabentoError(
                f"the files hold {len(symbols)} symbols ({', '.join(symbols)}); a session "
                "holds one instrument: choose it with --symbol"
            )
        symbol = symbols[0]
    ids = {
        int(interval["symbol"])
        for f in files
        for interval in f.metadata.mappings.get(symbol, [])
        if str(interval["symbol"]).isdigit()
    }
    if not ids:
        raise DatabentoError(
            f"no instrument id maps to symbol {symbol!r} in the files' metadata (symbols there: "
            f"{', '.join(symbols) or 'none'})"
        )
    return symbol, ids


def definitions(files: list[DbnFile], ids: set[int]) -> tuple[list[Any], int]:
    """Definition records of the session's instruments, and how many others were left out."""
    found, others = [], 0
    for f in files:
        if f.schema != "definition":
            continue
        decoder = dbn.DBNDecoder()
        for chunk in InputFile(f.path).lines().chunks():
            decoder.write(chunk)
        for record in decoder.decode():
            if isinstance(record, _DEFINITIONS):
                if record.instrument_id in ids:
                    found.append(record)
                else:
                    others += 1
    return found, others


def instrument(symbol: str, files: list[DbnFile], defs: list[Any]) -> InstrumentSpec:
    """The session's instrument: prices in 1e-9 units, tick size and currency from its
    definition (tick 1 unit and no currency without one)."""
    dataset = next(str(f.metadata.dataset) for f in files)
    zone = TIME_ZONES.get(dataset, "UTC")
    if not defs:
        return InstrumentSpec(symbol, dataset, zone, PRICE_SCALE, 0, 1, 1, "")
    d = defs[-1]
    lot = d.min_lot_size_round_lot if 0 < d.min_lot_size_round_lot < _UNDEF_I32 else 1
    return InstrumentSpec(
        d.raw_symbol, dataset, zone, PRICE_SCALE, 0, d.min_price_increment, lot, d.currency
    )


def defined(d: Any, path: Path) -> InstrumentDefined:
    """A definition record as an ``instrument.defined`` event."""
    if 0 < d.unit_of_measure_qty < kernel.UNDEF_PRICE:
        multiplier = format_scaled(d.unit_of_measure_qty, PRICE_SCALE).rstrip("0").rstrip(".")
    elif 0 < d.contract_multiplier < _UNDEF_I32:
        multiplier = str(d.contract_multiplier)
    else:
        multiplier = "1"
    expiration = d.expiration if d.expiration < 2**63 else 0
    return InstrumentDefined(
        d.ts_event, d.ts_recv, d.instrument_id, d.raw_symbol, str(d.instrument_class),
        d.exchange, d.currency, d.min_price_increment, multiplier, d.unit_of_measure,
        expiration, f"{path.name}: Databento definition of {d.raw_symbol} ({d.instrument_id})",
    )  # fmt: skip


def book_description(files: list[DbnFile]) -> BookDescribed:
    """How the session's book is built from its schemas."""
    schemas = {f.schema for f in files}
    if "mbo" in schemas:
        return BookDescribed(0, 0, 0, False, "Databento MBO: the whole order-by-order book")
    if "mbp-10" in schemas:
        return BookDescribed(0, 0, 10, False, "Databento MBP-10: ten levels a side")
    quotes = "mbp-1" in schemas
    detail = "Databento MBP-1: level 1 only" if quotes else "Databento trades: no book"
    return BookDescribed(0, 0, 1 if quotes else 0, quotes, detail)


def trade_keys(files: list[DbnFile], ids: set[int]) -> np.ndarray[Any, Any]:
    """(ts_recv, sequence) of every trade the session's MBP files carry, as 12-byte keys."""
    keys = [np.zeros(0, "V12")]
    for f in files:
        if f.schema in ("mbp-1", "mbp-10"):
            conv = DatabentoConverter(f, ids)
            for rec in conv.records(InputFile(f.path)):
                t = rec[(rec["action"] == b"T") & np.isin(rec["instrument_id"], list(ids))]
                keys.append(_keys(t["ts_recv"], t["sequence"]))
    return np.concatenate(keys)


def _keys(ts: np.ndarray[Any, Any], seq: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    out = np.zeros(len(ts), [("t", "<u8"), ("s", "<u4")])
    out["t"], out["s"] = ts, seq
    return out.view("V12")


class DatabentoConverter:
    """The records of one DBN file to journal items, a block at a time (pure: no I/O besides
    reading through the :class:`~engine.app.ingest.source.InputFile` it is given)."""

    def __init__(self, file: DbnFile, ids: set[int], seen_trades: Any = None,
                 block: int = _BLOCK) -> None:  # fmt: skip
        self.file, self.block = file, block
        self.ids = np.array(sorted(ids), np.uint32)
        self.rtype = SCHEMA_RTYPE[file.schema]
        self.dtype = kernel.record_dtype(RTYPES[self.rtype][1], 8 if file.metadata.ts_out else 0)
        self.size = self.dtype.itemsize
        self.seen_trades = seen_trades
        self.counts: Counter[str] = Counter()
        self.state = np.zeros(kernel.STATE_SIZE, np.int64)
        self._out = FixedArray(MARKET_RECORD, 1024)
        self._number = 0  # records read so far
        self._offset = file.header  # decompressed offset of the next record

    def records(self, inp: InputFile) -> Iterator[np.ndarray[Any, Any]]:
        """The file's records as numpy rows, a block at a time (any cut is noted on ``inp``)."""
        rest = b""
        skip = self.file.header
        for chunk in inp.lines().chunks(self.block):
            if skip:
                cut = min(skip, len(chunk))
                chunk, skip = chunk[cut:], skip - cut
            data = rest + chunk if rest else chunk
            whole = len(data) - len(data) % self.size
            rest = data[whole:]
            if whole:
                yield np.frombuffer(data, self.dtype, whole // self.size)
        if rest and inp.cut is None:
            inp.cut = Cut(inp.path, inp.size, inp.size, "the file ends inside a DBN record",
                          self._offset - self.file.header)  # fmt: skip
        if inp.cut is not None:
            inp.cut = dataclasses.replace(inp.cut, unit="record")
            if rest:
                inp.partial = Line(self._number + 1, self._offset, rest.hex().encode())

    def convert(self, inp: InputFile) -> Iterator[Item]:
        """Journal items of every record of the file, in order."""
        for rec in self.records(inp):
            if ((rec["length"] != self.size // 4) | (rec["rtype"] != self.rtype)).any():
                raise DatabentoError(
                    f"{self.file.path}: records of other types or sizes among the "
                    f"{self.file.schema} records near record {self._number + 1}; Tapedeck reads "
                    "files of one schema"
                )
            yield from self._block(rec)
            self._number += len(rec)
            self._offset += len(rec) * self.size
            inp.lines_read = self._number
        yield from self._finish()

    def _block(self, rec: np.ndarray[Any, Any]) -> Iterator[Item]:
        if self.rtype == 160:
            yield from self._mbo(rec)
            return
        mine = np.isin(rec["instrument_id"], self.ids)
        self.counts["records of other instruments (not journaled)"] += int((~mine).sum())
        ok = self._times(rec) & mine
        yield from self._bad(rec, mine & ~ok)
        rec = rec[ok]
        if self.rtype == 0:
            out = self._trades(rec)
        else:
            out = self._mbp(rec, 10 if self.rtype == 10 else 1)
        if len(out):
            yield out

    def _times(self, rec: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Which records have times in range and ``ts_recv`` not going backwards."""
        recv = rec["ts_recv"]
        ok = (recv <= kernel.INT64_MAX) & (rec["ts_event"] <= kernel.INT64_MAX)
        start = np.uint64(max(int(self.state[kernel.S_LAST_RECV]), 0))
        high = np.maximum.accumulate(np.where(ok, recv, 0))
        before = np.concatenate([[start], np.maximum(high[:-1], start)])
        ok &= recv >= before
        if ok.any():
            self.state[kernel.S_LAST_RECV] = max(int(recv[ok].max()), int(start))
        return ok

    def _bad(self, rec: np.ndarray[Any, Any], bad: np.ndarray[Any, Any]) -> Iterator[Bad]:
        for i in np.flatnonzero(bad).tolist():
            r = rec[i]
            if r["ts_recv"] > kernel.INT64_MAX or r["ts_event"] > kernel.INT64_MAX:
                yield self._bad_one(rec, i, kernel.BAD_TIME_RANGE)
            else:
                yield self._bad_one(rec, i, kernel.BAD_BACKWARDS)

    def _bad_one(self, rec: np.ndarray[Any, Any], i: int, code: int) -> Bad:
        reason, detail = _REASONS[code]
        raw = rec[i : i + 1].tobytes().hex()
        ts = int(self.state[kernel.S_LAST_RECV])
        number, offset = self._number + i + 1, self._offset + i * self.size
        return Bad(str(self.file.path), number, offset, raw, reason,
                   f"record {number}: {detail}", ts)  # fmt: skip

    def _trades(self, rec: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if self.seen_trades is not None and len(self.seen_trades):
            again = np.isin(_keys(rec["ts_recv"], rec["sequence"]), self.seen_trades)
            self.counts["trades already in the MBP file (not repeated)"] += int(again.sum())
            rec = rec[~again]
        out = np.zeros(len(rec), MARKET_RECORD)
        kernel.trade_fields(out, rec)
        out["flags"] = F_LAST
        return out

    def _mbp(self, rec: np.ndarray[Any, Any], depth: int) -> np.ndarray[Any, Any]:
        """Per record: a trade first when its action is T, then its book (a quote, or the
        slots of ``databento_fast.levels``); slots left empty (type id 0) are dropped."""
        trades = np.zeros((len(rec), 1), MARKET_RECORD)
        kernel.trade_fields(trades[:, 0], rec)
        trades["type_id"][rec["action"] != b"T"] = 0
        books = kernel.quotes(rec)[:, None] if depth == 1 else kernel.levels(rec, depth)
        both = np.concatenate([trades, books], axis=1)
        return np.asarray(both[both["type_id"] != 0])

    def _mbo(self, rec: np.ndarray[Any, Any]) -> Iterator[Item]:
        out = self._out
        out.reserve(len(rec) + 1)
        bad = np.zeros(len(rec), np.int64)
        codes = np.zeros(len(rec), np.int64)
        action, side = rec["action"].view(np.uint8), rec["side"].view(np.uint8)
        n, nbad = kernel.mbo(
            rec["ts_event"], rec["ts_recv"], action, side, rec["price"], rec["size"],
            rec["order_id"], rec["flags"], rec["instrument_id"], self.ids, kernel.ACTIONS,
            kernel.SIDES, self.state, out.words, out.n, bad, codes,
        )  # fmt: skip
        for i, code in zip(bad[:nbad].tolist(), codes[:nbad].tolist(), strict=True):
            yield self._bad_one(rec, i, code)
        mine = np.isin(rec["instrument_id"], self.ids)
        actions, counts = np.unique(rec["action"][mine], return_counts=True)
        for a, c in zip(actions.tolist(), counts.tolist(), strict=True):
            self.counts[f"records: {_ACTION_NAMES.get(a, a.decode())}"] += c
        # the last record waits: the next one may end its message
        if n > 1:
            last = out.array[n - 1 : n].copy()
            out.n = n - 1
            yield out.take_array()
            out.extend(last)
        else:
            out.n = n

    def _finish(self) -> Iterator[Item]:
        out = self._out
        if out.n:
            if self.state[kernel.S_PREV_SNAPSHOT]:
                out.array["flags"][out.n - 1] |= F_LAST
            yield out.take_array()
        self.counts["records of other instruments (not journaled)"] += int(
            self.state[kernel.S_OTHER]
        )
        if self.state[kernel.S_NONE]:
            self.counts["records without an action (N, not journaled)"] += int(
                self.state[kernel.S_NONE]
            )
