"""Databento records to market records, a block at a time: MBO in a compiled loop, the other
schemas column by column in numpy.

MBO needs a loop that remembers what came before: a record whose action is ``N`` (none) is not
journaled but may carry the F_LAST that ends an event, which then moves to the record before
it; and the last record of a book snapshot (records flagged F_SNAPSHOT) ends a message too,
although Databento does not flag it F_LAST. MBP-1, MBP-10 and trades convert record by record,
which numpy does a column at a time (:func:`quotes`, :func:`levels`, :func:`trade_fields`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.app.ingest.fastparse import kernel
from engine.events.market import F_FIRST, F_LAST, MARKET_RECORD

DBN_F_LAST, DBN_F_SNAPSHOT = 1 << 7, 1 << 5
INT64_MAX = 2**63 - 1
UNDEF_PRICE = INT64_MAX

# state slots kept across calls
S_LAST_RECV, S_PREV_SNAPSHOT, S_OTHER, S_NONE = 0, 1, 2, 3
STATE_SIZE = 4
# reasons a record is handed back instead of converted
BAD_TIME_RANGE, BAD_BACKWARDS, BAD_ACTION = 1, 2, 3

ACTIONS = np.zeros(256, np.int64)
"""MBO action byte -> catalogue type id (0: not journaled, -1: unknown)."""
ACTIONS[:] = -1
for _byte, _type in (
    (b"A", 2),
    (b"C", 3),
    (b"M", 20),
    (b"F", 21),
    (b"T", 1),
    (b"R", 22),
    (b"N", 0),
):
    ACTIONS[_byte[0]] = _type
SIDES = np.zeros(256, np.int64)
"""Side byte -> +1 bid / buyer, -1 ask / seller, 0 none."""
SIDES[ord("B")], SIDES[ord("A")] = 1, -1
_F_LAST = F_LAST
T_TRADE, T_QUOTE, T_SNAP, T_CLEARED = 1, 7, 8, 22


@kernel
def mbo(
    ts_event: Any, ts_recv: Any, action: Any, side: Any, price: Any, size: Any, order_id: Any,
    flags: Any, instrument: Any, ids: Any, actions: Any, sides: Any, st: Any, out: Any, n: int,
    bad: Any, bad_reason: Any,
) -> tuple[int, int]:  # fmt: skip
    """Convert MBO records into ``out`` from row ``n``: (rows now in ``out``, bad records).

    ``out[n - 1]`` (if ``n`` > 0) is the record kept from the previous call, whose flags may
    still change. Records of instruments not in ``ids`` are skipped (counted); bad ones are
    listed in ``bad`` with their reason code, and not converted.
    """
    nbad = 0
    for i in range(len(ts_recv)):
        mine = False
        for k in range(len(ids)):
            if instrument[i] == ids[k]:
                mine = True
        if not mine:
            st[S_OTHER] += 1
            continue
        recv, event = ts_recv[i], ts_event[i]
        t = actions[action[i]]
        reason = 0
        if recv > INT64_MAX or event > INT64_MAX:
            reason = BAD_TIME_RANGE
        elif np.int64(recv) < st[S_LAST_RECV]:
            reason = BAD_BACKWARDS
        elif t < 0:
            reason = BAD_ACTION
        if reason:
            bad[nbad], bad_reason[nbad] = i, reason
            nbad += 1
            continue
        st[S_LAST_RECV] = np.int64(recv)
        f = flags[i]
        snapshot = f & DBN_F_SNAPSHOT != 0
        if n > 0 and st[S_PREV_SNAPSHOT] and not snapshot:
            out[n - 1, 0] |= _F_LAST << 24  # the snapshot ended with the record before
        if t == 0:  # no action: nothing to journal, but it may end the event
            st[S_NONE] += 1
            if n > 0 and f & DBN_F_LAST:
                out[n - 1, 0] |= _F_LAST << 24
            continue
        p = price[i]
        if p == UNDEF_PRICE:
            p = 0
        ours = _F_LAST if f & DBN_F_LAST else 0
        out[n, 0] = t | ((sides[side[i]] & 0xFF) << 16) | (ours << 24)
        out[n, 1] = np.int64(event)
        out[n, 2] = np.int64(recv)
        out[n, 3] = p
        out[n, 4] = size[i]
        out[n, 5] = 0 if t == 1 else np.int64(order_id[i])
        out[n, 6] = 0
        out[n, 7] = 0
        st[S_PREV_SNAPSHOT] = snapshot
        n += 1
    return n, nbad


def record_dtype(cls: Any, ts_out: int) -> np.dtype[Any]:
    """The numpy layout ``databento-dbn`` publishes for a record type, with room for the
    8-byte ``ts_out`` a live-recorded file appends to each record."""
    base: np.dtype[Any] = np.dtype(cls._dtypes)
    if not ts_out:
        return base
    names = list(base.names or ())
    fields: Any = base.fields or {}
    return np.dtype({"names": names, "formats": [fields[n][0] for n in names],
                     "offsets": [fields[n][1] for n in names],
                     "itemsize": base.itemsize + ts_out})  # fmt: skip


def _price(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.where(values == UNDEF_PRICE, 0, values)


def trade_fields(out: np.ndarray[Any, Any], rec: np.ndarray[Any, Any]) -> None:
    """Fill ``out`` (market records) as the trades of Databento records ``rec``."""
    out["type_id"] = T_TRADE
    out["side"] = SIDES[rec["side"].view(np.uint8)]
    out["ts_event"], out["ts_recv"] = rec["ts_event"], rec["ts_recv"]
    out["price"], out["size"] = _price(rec["price"]), rec["size"]


def quotes(rec: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """MBP-1 records as ``market.quote`` records (an empty side: price and size 0)."""
    out = np.zeros(len(rec), MARKET_RECORD)
    out["type_id"] = T_QUOTE
    out["flags"] = np.where(rec["flags"] & DBN_F_LAST, F_LAST, 0)
    out["ts_event"], out["ts_recv"] = rec["ts_event"], rec["ts_recv"]
    bid, ask = _price(rec["bid_px_00"]), _price(rec["ask_px_00"])
    out["price"], out["size"] = bid, np.where(bid > 0, rec["bid_sz_00"], 0)
    out["price2"], out["size2"] = ask, np.where(ask > 0, rec["ask_sz_00"], 0)
    return out


def levels(rec: np.ndarray[Any, Any], depth: int) -> np.ndarray[Any, Any]:
    """``(records, 2 * depth + 1)`` slots: bids, asks, and a book_cleared when all are empty;
    unused slots have type id 0 (left out by the caller)."""
    n, width = len(rec), 2 * depth + 1
    out = np.zeros((n, width), MARKET_RECORD)
    for k in range(depth):
        for j, (side, name) in enumerate(((1, "bid"), (-1, "ask"))):
            col = out[:, j * depth + k]
            price, size = rec[f"{name}_px_{k:02d}"], rec[f"{name}_sz_{k:02d}"]
            present = (price != UNDEF_PRICE) & (size > 0)
            col["type_id"] = np.where(present, T_SNAP, 0)
            col["side"], col["aux"], col["price"], col["size"] = side, k, price, size
    out["ts_event"], out["ts_recv"] = rec["ts_event"][:, None], rec["ts_recv"][:, None]
    present = out["type_id"] != 0
    empty = ~present.any(axis=1)
    out[:, -1]["type_id"] = np.where(empty, T_CLEARED, 0)
    present[:, -1] = empty
    first = np.argmax(present, axis=1)
    last = width - 1 - np.argmax(present[:, ::-1], axis=1)
    rows = np.arange(n)
    flags = out["flags"]
    flags[rows, first] |= F_FIRST
    flags[rows, last] |= np.where(rec["flags"] & DBN_F_LAST, F_LAST, 0).astype(np.uint8)
    flags[:, -1] &= F_LAST  # a book_cleared is one record, no F_FIRST
    return np.asarray(out)
