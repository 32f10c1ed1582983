"""B3 top-of-book CSV (processed ProfitDLL snapshots) to ``market.quote`` events.

Only level 1 is taken (``bid_price_1``, ``bid_vol_1``, ``ask_price_1``, ``ask_vol_1``): the
file's levels 2-5 are always zero and its derived columns (spread, mid, imbalance, ...) were
computed by the file's author, so they are ignored rather than trusted or checked. ``timestamp``
is naive local time in America/Sao_Paulo (UTC-3, no DST since 2019; the zone from the pinned
``tzdata`` package), microseconds, converted
exactly; ``ts_event`` = ``ts_recv`` = that time (the poller's clock, the only one there is).
Prices: BRL per USD 1,000, scale 1 (tick 0.5 = 5 units); sizes in contracts. Times in ns,
prices and sizes must fit int64; a row outside is quarantined as ``out_of_range``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from engine.app.ingest.decimal import DecimalError, parse_scaled
from engine.app.ingest.records import INT64_MAX, RecordBuffer, check_range, fits_int64
from engine.app.ingest.session import Bad, Item
from engine.app.ingest.source import Line, iter_file_lines
from engine.events.control import InstrumentSpec
from engine.events.market import F_LAST
from streams.features.calendar import load_zone

IMPORTER_VERSION = "b3/1"
TIME_ZONE = "America/Sao_Paulo"
_NEEDED = ("timestamp", "symbol", "bid_price_1", "bid_vol_1", "ask_price_1", "ask_vol_1")
_QUOTE = 7


def instrument(symbol: str) -> InstrumentSpec:
    """WDO (mini dollar future) as quoted on B3."""
    return InstrumentSpec(symbol, "B3", TIME_ZONE, 1, 0, 5, 1, "BRL")


def detect_symbol(path: Path) -> str:
    """The ``symbol`` of the first data row (the header must name the columns read)."""
    header: list[str] = []
    for line in iter_file_lines(path):
        cols = line.text().removeprefix("\ufeff").split(",")
        if line.number == 1:
            header = cols
            missing = [c for c in _NEEDED if c not in header]
            if missing and cols[0][:4].isdigit():
                raise ValueError(
                    f"{path} has no header line: line 1 is data ({line.text()[:60]}...). B3 CSV "
                    f"files start with a header naming their columns ({','.join(_NEEDED)},...)"
                )
            if missing:
                raise ValueError(
                    f"{path}: the header lacks {', '.join(missing)}: {line.text()[:200]}"
                )
            continue
        if len(cols) == len(header):
            return cols[header.index("symbol")]
    raise ValueError(f"{path}: no data row")


def local_ns(text: str, zone: ZoneInfo) -> int:
    """``YYYY-MM-DD HH:MM:SS[.ffffff]`` local time to UTC ns, exactly (no float seconds)."""
    day, _, clock = text.partition(" ")
    hms, _, frac = clock.partition(".")
    try:
        y, mo, d = (int(x) for x in day.split("-"))
        h, mi, s = (int(x) for x in hms.split(":"))
        wall = datetime(y, mo, d, h, mi, s, tzinfo=zone)
    except ValueError as exc:
        raise DecimalError("bad_time", f"timestamp {text!r}: {exc}") from None
    offset = wall.utcoffset()
    assert offset is not None
    naive = (wall.replace(tzinfo=None) - datetime(1970, 1, 1)).total_seconds()
    seconds = int(naive) - int(offset.total_seconds())
    return seconds * 1_000_000_000 + (parse_scaled("0." + frac, 9) if frac else 0)


class B3Converter:
    """Header + rows to quote records (pure: no I/O)."""

    def __init__(self, spec: InstrumentSpec, source: str, chunk: int = 8192) -> None:
        self.spec, self.source, self.chunk = spec, source, chunk
        self.zone = load_zone(TIME_ZONE)
        self._buf = RecordBuffer()
        self._last_ts = 0

    def convert(self, lines: Iterable[Line]) -> Iterator[Item]:
        """Quotes in row order; bad rows as :class:`Bad`."""
        index: dict[str, int] = {}
        width = 0
        for line in lines:
            cols = line.text().split(",")
            if not index:
                cols[0] = cols[0].removeprefix("\ufeff")  # a byte order mark (spreadsheets)
                index, width = {name: i for i, name in enumerate(cols)}, len(cols)
                missing = [c for c in _NEEDED if c not in index]
                if missing:
                    yield Bad.at(
                        self.source, line, "bad_header", f"header lacks {', '.join(missing)}"
                    )
                    return
                continue
            try:
                if len(cols) != width:
                    raise DecimalError(
                        "bad_columns", f"expected {width} columns, found {len(cols)}"
                    )
                self._row(cols, index)
            except DecimalError as exc:
                yield Bad.at(self.source, line, exc.reason, str(exc), self._last_ts)
            if len(self._buf) >= self.chunk:
                yield self._buf.take()
        if len(self._buf):
            yield self._buf.take()

    def _row(self, cols: list[str], index: dict[str, int]) -> None:
        if cols[index["symbol"]] != self.spec.symbol:
            raise DecimalError(
                "symbol_mismatch",
                f"symbol {cols[index['symbol']]!r}, session is {self.spec.symbol!r}",
            )
        ts = local_ns(cols[index["timestamp"]], self.zone)
        if not fits_int64(ts):
            raise DecimalError(
                "out_of_range",
                f"timestamp {cols[index['timestamp']]!r} is outside the int64 ns range "
                "(1677-09-21 to 2262-04-11 UTC)",
            )
        if ts < self._last_ts:
            raise DecimalError("time_backwards", f"time {ts} ns < previous {self._last_ts}")
        bid = _value(cols, index, "bid_price_1", 1)
        ask = _value(cols, index, "ask_price_1", 1)
        bid_size = _value(cols, index, "bid_vol_1", 0)
        ask_size = _value(cols, index, "ask_vol_1", 0)
        if bid_size < 0 or ask_size < 0:
            raise DecimalError("negative_size", f"sizes {bid_size}, {ask_size}")
        if bid < 0 or ask < 0:
            raise DecimalError("negative_price", f"prices {bid}, {ask}")
        check_range("bid_price_1", bid, 0, INT64_MAX)
        check_range("bid_vol_1", bid_size, 0, INT64_MAX)
        check_range("ask_price_1", ask, 0, INT64_MAX)
        check_range("ask_vol_1", ask_size, 0, INT64_MAX)
        self._last_ts = ts
        self._buf.rows.append((_QUOTE, 0, F_LAST, 0, ts, ts, bid, bid_size, 0, ask, ask_size))


def _value(cols: list[str], index: dict[str, int], name: str, scale: int) -> int:
    """Column ``name`` as an exact integer of ``10**-scale`` units (column named if too long)."""
    try:
        return parse_scaled(cols[index[name]], scale)
    except DecimalError as exc:
        if exc.reason == "out_of_range":
            raise DecimalError(exc.reason, f"{name}: {exc}") from None
        raise
