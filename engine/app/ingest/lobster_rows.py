"""LOBSTER rows, parsed and checked exactly: a message row, an orderbook row, the book before
message 1, and a first line that is a header. ``DecimalError`` carries the quarantine reason."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.app.ingest.decimal import DecimalError, parse_scaled
from engine.app.ingest.records import INT64_MAX, UINT64_MAX, check_range
from engine.app.ingest.source import Line

EMPTY_ASK, EMPTY_BID = 9999999999, -9999999999
"""Prices LOBSTER writes for an empty level (its size is 0)."""


def _int(text: str, what: str) -> int:
    try:
        return parse_scaled(text, 0)
    except DecimalError as exc:
        if exc.reason == "out_of_range":  # thousands of digits: an integer, just far too big
            raise DecimalError(exc.reason, f"{what}: {exc}") from exc
        raise DecimalError("not_numeric", f"{what} {text!r} is not an integer") from exc


Message = tuple[int, int, int, int, int, int]
"""(ts_ns, type, order_id, size, price, direction)."""


def parse_seconds(text: str) -> tuple[int, bool]:
    """Seconds after midnight in ns, and whether digits past the 9th decimal were rounded off.

    LOBSTER's times are nanoseconds printed from a float, so a few carry float noise past the
    9th decimal (``43002.632812672004``): those round to the nearest nanosecond, ties to even.
    """
    whole, _, frac = text.partition(".")
    if len(frac) <= 9:
        return parse_scaled(text, 9), False
    ns = parse_scaled(f"{whole}.{frac[:9]}", 9)
    rest = frac[9:]
    if not (rest.isascii() and rest.isdigit()):
        raise DecimalError("not_numeric", f"{text!r} is not a decimal number")
    if not rest.strip("0"):
        return ns, False
    half = "5" + "0" * (len(rest) - 1)
    up = rest > half or (rest == half and ns % 2 == 1)
    return ns + (-1 if ns < 0 else 1) * up, True


def parse_message(text: str, midnight: int) -> tuple[Message, bool]:
    """One message row, validated, and whether its time was rounded to the nanosecond;
    raises :class:`DecimalError` with the reason."""
    cols = text.split(",")
    if len(cols) != 6:
        raise DecimalError("bad_columns", f"expected 6 columns, found {len(cols)}")
    seconds, rounded = parse_seconds(cols[0])
    kind = _int(cols[1], "event type")
    order_id, size = _int(cols[2], "order id"), _int(cols[3], "size")
    price, direction = _int(cols[4], "price"), _int(cols[5], "direction")
    if kind not in range(1, 8):
        raise DecimalError("unknown_event", f"event type {kind} is not one of 1..7")
    if size < 0:
        raise DecimalError("negative_size", f"size {size} is negative")
    if seconds < 0 or order_id < 0 or direction not in (1, -1):
        raise DecimalError("bad_field", "time and order id must be >= 0, direction 1 or -1")
    if kind != 7 and price < 0:
        raise DecimalError("negative_price", f"price {price} is negative")
    check_range(f"time {cols[0][:30]!r} s after midnight", midnight + seconds, 0, INT64_MAX, " ns")
    check_range("order id", order_id, 0, UINT64_MAX)
    check_range("size", size, 0, INT64_MAX)
    check_range("price", price, -INT64_MAX - 1, INT64_MAX)
    return (midnight + seconds, kind, order_id, size, price, direction), rounded


def parse_book(text: str, levels: int) -> np.ndarray[Any, Any]:
    """An orderbook row as a ``(levels, 4)`` array: ask price, ask size, bid price, bid size."""
    cols = text.split(",")
    if len(cols) != 4 * levels:
        raise DecimalError("bad_columns", f"expected {4 * levels} columns, found {len(cols)}")
    ints = [_int(c, "orderbook value") for c in cols]
    for k, value in enumerate(ints):
        what = f"column {k + 1} (level {k // 4 + 1} {_BOOK_COLUMNS[k % 4]})"
        check_range(what, value, -INT64_MAX - 1, INT64_MAX)
    values = np.array(ints, dtype=np.int64).reshape(-1, 4)
    if (values[:, 1] < 0).any() or (values[:, 3] < 0).any():
        raise DecimalError("negative_size", "an orderbook size is negative")
    empty_ask, empty_bid = values[:, 0] == EMPTY_ASK, values[:, 2] == EMPTY_BID
    values[empty_ask, :2] = 0
    values[empty_bid, 2:] = 0
    return values


_BOOK_COLUMNS = ("ask price", "ask size", "bid price", "bid size")


def initial_levels(book: np.ndarray[Any, Any], first: Message) -> dict[int, dict[int, int]]:
    """The visible book before message ``first``: its row with the message's effect undone.

    Raises :class:`DecimalError` ``out_of_range`` if undoing it gives a size beyond int64.
    """
    sides: dict[int, dict[int, int]] = {1: {}, -1: {}}
    for ask_p, ask_s, bid_p, bid_s in book.tolist():
        if ask_s:
            sides[-1][ask_p] = ask_s
        if bid_s:
            sides[1][bid_p] = bid_s
    _, kind, _, size, price, direction = first
    if kind in (1, 2, 3, 4):
        level = sides[direction]
        level[price] = level.get(price, 0) + (-size if kind == 1 else size)
        if level[price] <= 0:
            del level[price]
        else:
            what = f"orderbook row 1 with message 1 undone, size at price {price}"
            check_range(what, level[price], 0, INT64_MAX)
    return sides


def no_header(line: Line) -> None:
    """Raise ``header`` for a first line without a single number: column names, which LOBSTER
    files do not have (one added by hand or by a spreadsheet is skipped, not parsed)."""
    if line.number == 1 and not any(c.strip().lstrip("-").replace(".", "", 1).isdigit()
                                    for c in line.text().split(",")):  # fmt: skip
        raise DecimalError(
            "header",
            "LOBSTER files have no header line; line 1 holds no number, so it is "
            "taken for column names and skipped",
        )
