"""Several inputs of one session into one journal order.

Each input's converter yields its market records in its own order (time not going backwards);
:func:`merge` interleaves them by receive time. Ties keep the inputs in the order given, and a
run of records one input wrote with the same receive time (a source message of several
records) stays together. Everything that is not a market-record array (quarantined lines)
passes through as soon as its input yields it. Memory stays bounded: only records that no other
input can precede anymore are held back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from engine.app.ingest.session import Item
from engine.events.market import MARKET_RECORD

_EMPTY = np.zeros(0, MARKET_RECORD)


class _Input:
    def __init__(self, items: Iterator[Item]) -> None:
        self.items = items
        self.held = _EMPTY
        self.done = False

    def pull(self) -> Iterator[Item]:
        """Read until one more array arrives (passing other items through) or the end."""
        for item in self.items:
            if isinstance(item, np.ndarray):
                if len(item):
                    self.held = np.concatenate([self.held, item]) if len(self.held) else item
                    return
            else:
                yield item
        self.done = True


def merge(streams: list[Iterator[Item]]) -> Iterator[Item]:
    """The items of ``streams`` with their market records in receive-time order."""
    if len(streams) == 1:
        yield from streams[0]
        return
    inputs = [_Input(s) for s in streams]
    while True:
        for inp in inputs:
            if not inp.done and not len(inp.held):
                yield from inp.pull()
        live = [inp for inp in inputs if not inp.done]
        if not live:
            out = _take(inputs, None)
            if len(out):
                yield out
            return
        # Records before the earliest last-held time of a live input cannot be preceded by
        # anything still unread; a live input that holds only that time must read on.
        bound = min(int(inp.held["ts_recv"][-1]) for inp in live)
        out = _take(inputs, bound)
        if len(out):
            yield out
        else:
            for inp in live:
                if int(inp.held["ts_recv"][-1]) == bound:
                    yield from inp.pull()


def _take(inputs: list[_Input], bound: int | None) -> np.ndarray[Any, Any]:
    """Everything held before ``bound`` (all when None), merged: by time, then input order."""
    parts, order = [], []
    for k, inp in enumerate(inputs):
        n = len(inp.held) if bound is None else int(np.searchsorted(inp.held["ts_recv"], bound))
        if n:
            parts.append(inp.held[:n])
            order.append(np.full(n, k, np.int64))
            inp.held = inp.held[n:]
    if not parts:
        return _EMPTY
    records = np.concatenate(parts)
    # lexsort is stable: within one input and one time, the input's own order stays
    return records[np.lexsort((np.concatenate(order), records["ts_recv"]))]
