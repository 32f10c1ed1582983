"""LOBSTER files of fewer levels, cut from a real 10-level pair the way LOBSTER cuts them.

LOBSTER's free samples come at 1, 5, 10 and 50 levels; only the 10-level files are in
``../shared/data``. A file of N levels holds the messages that touch the first N levels
(LOBSTER: "the message file contains the events that cause an update of the limit order book in
the requested price range"), and its orderbook rows hold those N levels. :func:`cut_depth` makes
such a pair from a 10-level one:

* orderbook row i is the first 4 N columns of the 10-level row i;
* message i is kept when it changes those N levels (row i differs from row i - 1 there), or is
  a trade that changes no visible level (hidden execution, type 5; cross, type 6) at a price
  inside the N-level window of row i - 1 (at or above the N-th bid, or at or below the N-th
  ask), or is a trading halt (type 7), or is the first message (the book starts from its row).

These are derived files, not LOBSTER's own: the tests say so where they use them.
"""

from __future__ import annotations

EMPTY_BID, EMPTY_ASK = -9999999999, 9999999999


def _window_holds(row: list[int], depth: int, price: int) -> bool:
    ask_n = row[4 * (depth - 1)]
    bid_n = row[4 * (depth - 1) + 2]
    return price >= bid_n != EMPTY_BID or price <= ask_n != EMPTY_ASK


def cut_depth(
    messages: list[bytes], books: list[bytes], depth: int
) -> tuple[list[bytes], list[bytes]]:
    """The message and orderbook lines of an N-level pair cut from a deeper pair."""
    out_m: list[bytes] = []
    out_b: list[bytes] = []
    previous: list[int] | None = None
    for message, book in zip(messages, books, strict=True):
        row = [int(x) for x in book.split(b",")]
        top = row[: 4 * depth]
        kind = int(message.split(b",")[1])
        price = int(message.split(b",")[4])
        keep = (
            previous is None
            or top != previous[: 4 * depth]
            or kind == 7
            or (kind in (5, 6) and _window_holds(previous, depth, price))
        )
        if keep:
            out_m.append(message)
            out_b.append(b",".join(book.split(b",")[: 4 * depth]))
        previous = row
    return out_m, out_b
