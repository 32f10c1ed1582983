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

import random

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


def simulate(messages: int, seed: int, levels: int = 80) -> tuple[list[bytes], list[bytes]]:
    """A hand-made LOBSTER pair ``levels`` deep: a random order flow on a tick grid.

    LOBSTER's deeper free samples (50 levels) are not in ``../shared/data``, so the tests of
    files deeper than ten levels use this: a book of resting orders (placed before message 1,
    as in a real file), then adds (type 1), partial cancels (2), deletions (3), executions at
    the best level (4) and hidden executions (5), with the orderbook row after each. Cut it
    with :func:`cut_depth` to the depth under test.
    """
    rng = random.Random(seed)
    orders: dict[int, list[int]] = {}  # id -> [side, price, size]
    next_id = 1
    for side in (1, -1):
        for k in range(1, levels + 20):
            for _ in range(rng.randint(1, 3)):
                orders[next_id] = [side, 1_000_000 - side * k * 100, rng.randint(1, 9) * 100]
                next_id += 1
    out_m: list[bytes] = []
    out_b: list[bytes] = []
    ts = 34_200_000_000_000
    for _ in range(messages):
        ts += rng.randint(1, 5_000_000)
        kind, oid, size, price, side = _event(rng, orders, next_id)
        next_id += kind == 1
        stamp = b"%d.%09d" % (ts // 10**9, ts % 10**9)
        out_m.append(b"%s,%d,%d,%d,%d,%d" % (stamp, kind, oid, size, price, side))
        out_b.append(_row(orders, levels))
    return out_m, out_b


def _event(
    rng: random.Random, orders: dict[int, list[int]], next_id: int
) -> tuple[int, int, int, int, int]:
    side = rng.choice((1, -1))
    mine = sorted((o for o in orders.items() if o[1][0] == side), key=lambda o: -side * o[1][1])
    best = mine[0][1][1]
    roll = rng.random()
    if roll < 0.45 or len(mine) < 40:
        price = best - side * 100 * rng.randint(-1, 60)
        other = [o[1] for o in orders.values() if o[0] == -side]
        if other and side * price >= side * min(other, key=lambda p: side * p):
            price = best  # never cross: join the best level instead
        size = rng.randint(1, 9) * 100
        orders[next_id] = [side, price, size]
        return 1, next_id, size, price, side
    if roll < 0.85:
        oid, (_, price, left) = rng.choice(mine)
        if roll < 0.55 and left > 100:
            take = rng.randint(1, left // 100 - 1) * 100
            orders[oid][2] -= take
            return 2, oid, take, price, side
        del orders[oid]
        return 3, oid, left, price, side
    if roll < 0.95:
        oid, (_, price, left) = mine[0]
        take = min(left, rng.randint(1, 5) * 100)
        orders[oid][2] -= take
        if orders[oid][2] == 0:
            del orders[oid]
        return 4, oid, take, price, side
    return 5, 0, 100, best, side


def _row(orders: dict[int, list[int]], levels: int) -> bytes:
    sides: dict[int, dict[int, int]] = {1: {}, -1: {}}
    for side, price, size in orders.values():
        sides[side][price] = sides[side].get(price, 0) + size
    bids = sorted(sides[1].items(), reverse=True)[:levels]
    asks = sorted(sides[-1].items())[:levels]
    cols: list[int] = []
    for k in range(levels):
        cols += asks[k] if k < len(asks) else (EMPTY_ASK, 0)
        cols += bids[k] if k < len(bids) else (EMPTY_BID, 0)
    return b",".join(b"%d" % c for c in cols)
