"""The simulated exchange's own order book, for the depth snapshots it serves.

The exchange moves on whatever its clients receive: a message the simulator drops (a fault)
still changes this book, so a client that re-snapshots after a gap gets the book as the
venue has it, and can resynchronise exactly as against Binance.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

import msgspec

from engine.app.ingest import binance_messages as m


def _is_zero(quantity: str) -> bool:
    return quantity.strip("0.") == ""


class SimBook:
    """Price levels (as the venue's strings) after the last depth update applied.

    Follows Binance's procedure: start from a REST snapshot and apply the updates whose last
    update id ``u`` is above its ``lastUpdateId``. Recent updates are kept, so a snapshot
    recorded after some updates (the recorder buffered the stream while fetching it) still
    ends up with the updates it does not contain.
    """

    def __init__(self, futures: bool, keep: int = 4096) -> None:
        self.futures = futures
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.last_update_id = 0
        self.event_time = self.transaction_time = 0
        self.synced = False
        self._recent: deque[m.DepthUpdate] = deque(maxlen=keep)

    def reset(self, snapshot: m.DepthSnapshot) -> None:
        """Start again from a REST snapshot (and the recent updates it does not contain)."""
        self.bids = dict(snapshot.bids)
        self.asks = dict(snapshot.asks)
        self.last_update_id = snapshot.lastUpdateId
        self.event_time = snapshot.E or 0
        self.transaction_time = snapshot.T or 0
        self.synced = True
        for update in self._recent:
            if update.u > snapshot.lastUpdateId:
                self._apply(update)

    def apply(self, update: m.DepthUpdate) -> None:
        """A depth update the exchange published (sent to clients or not)."""
        self._recent.append(update)
        if self.synced and update.u > self.last_update_id:
            self._apply(update)

    def _apply(self, update: m.DepthUpdate) -> None:
        for side, levels in ((self.bids, update.b), (self.asks, update.a)):
            for price, quantity in levels:
                if _is_zero(quantity):
                    side.pop(price, None)
                else:
                    side[price] = quantity
        self.last_update_id = update.u
        self.event_time = update.E
        self.transaction_time = update.T or update.E

    def snapshot_body(self, limit: int) -> bytes:
        """The REST ``GET depth`` response for the book as it is now (best ``limit`` levels)."""
        bids = sorted(self.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)[:limit]
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))[:limit]
        body: dict[str, object] = {"lastUpdateId": self.last_update_id}
        if self.futures:  # USD-M adds the message and transaction times
            body["E"], body["T"] = self.event_time, self.transaction_time
        body["bids"] = [list(level) for level in bids]
        body["asks"] = [list(level) for level in asks]
        return msgspec.json.encode(body)
