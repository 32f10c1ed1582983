"""The simulated exchange: orders in (``OrderSubmitted``, ``CancelRequested``), reports out.

The venue acts against the replayed book: an order reaches it ``latency_ms`` of event time
after it was sent and acts on the first book state at or after that instant (the state after
the first journal event whose time reaches it). Our orders never change the replayed book: no
market impact, and the same displayed liquidity can fill us again later (docs/trading.md).

* **Market** orders walk the opposite side's ten levels of ``book.top``; what ten levels cannot
  fill is cancelled (``book_too_thin``). Without a synced, fresh book they are rejected
  (``book_not_ready``), against an empty side too (``no_liquidity``).
* **Limit** orders first take what the opposite side offers at or through their price (taker),
  then rest behind the size displayed at their price (maker). ``queue_model = "fifo"`` (order
  ids, LOBSTER): the queue ahead is exactly the orders that rested there before us — their
  cancels and executions shrink it, orders that arrive later queue behind us, and an execution
  of one of those fills us. ``queue_model = "trades"`` (Binance, B3): trades at our price
  shrink the queue ahead and fill us once it is gone; a level that shrinks without trades
  lost orders behind us unless it shrinks below our queue ahead. Either way a trade through
  our price fills us (up to its size), and the opposite quote reaching our price fills us
  (up to the size quoted there, once per crossing).
* **Stop** orders trigger when the mid or a trade reaches their price and then execute as
  market orders. Reduce-only orders (stop loss, take profit, exit) never exceed the position,
  and when it is flat the venue cancels them (``position_closed``): one cancels the other.

Fees are basis points of notional (``maker_fee_bp`` / ``taker_fee_bp``, per venue by
default); slippage is measured from the mid when a market order was sent, and from the order's
own price for stops and limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec
import numpy as np

from engine.events.book import BOOK_MID, BOOK_TOP_DTYPE
from engine.events.market import MARKET_RECORD
from engine.events.trading import (
    CancelRequested,
    OrderAcknowledged,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
)
from streams.trading import matching as m

VenueReport = OrderAcknowledged | OrderFilled | OrderCancelled | OrderRejected
"""What the venue says about an order."""
QUEUE_MODELS = ("fifo", "trades")
VENUES = ("simulated", "broker")
KINDS = {"market": m.MARKET, "limit": m.LIMIT, "stop": m.STOP}
CANCEL_REASONS = {
    m.CANCEL_REQUESTED: "requested",
    m.CANCEL_THIN: "book_too_thin",
    m.CANCEL_POSITION_CLOSED: "position_closed",
}
REJECT_REASONS = {
    m.REJECT_BOOK_NOT_READY: (
        "book_not_ready",
        "a market order needs a synced, fresh book; the book was not synced or was stale",
    ),
    m.REJECT_NO_LIQUIDITY: ("no_liquidity", "the opposite side of the book was empty"),
    m.REJECT_TOO_LATE: (
        "too_late_to_cancel",
        "the order was already filled or cancelled when the cancel reached the venue",
    ),
}
CAPACITY = 8
"""Orders (and cancel requests) the venue holds at once; risk never has more than four."""
ROWS = 512


@dataclass(frozen=True)
class ExecutionConfig:
    """Settings of the simulated venue (part of the ``trading`` stage's config)."""

    latency_ms: float = 1.0
    """Event time from sending an order (or cancel) to the venue acting on it."""
    maker_fee_bp: float = 0.0
    """Fee on fills that rested in the book, basis points of notional (negative: rebate)."""
    taker_fee_bp: float = 0.0
    """Fee on fills that took liquidity, basis points of notional."""
    queue_model: str = "trades"
    """``fifo`` (exact, by venue order ids; needs L3 records) or ``trades`` (queue model)."""
    venue: str = "simulated"
    """``simulated`` (backtest: this stage is the exchange) or ``broker`` (live: orders leave
    through the order gateway and the broker's reports come back through the journal)."""
    account: str = ""
    """With ``venue = "broker"``: whose ``broker.*`` reports this stage takes (the run id)."""


class Live(msgspec.Struct, array_like=True, frozen=True):
    """What the venue wrapper remembers of a live order to write its reports."""

    side: int
    purpose: str
    reference_price: float
    """Slippage base: the mid when sent for market orders, else the order's own price."""


class _State(msgspec.Struct, array_like=True):
    st: list[int]
    fs: list[float]
    top: list[int]
    orders: list[list[int]]
    cancels: list[list[int]]
    behind: list[list[int]]
    live: list[tuple[int, Live]]
    seq: int


class Venue:
    """The simulated exchange of one instrument; see the module docstring."""

    def __init__(self, config: ExecutionConfig, value_factor: float) -> None:
        self.config, self.value_factor = config, value_factor
        self.latency = round(config.latency_ms * 1_000_000)
        self.st = np.zeros(m.N_S, np.int64)
        self.st[m.S_FIFO] = 1 if config.queue_model == "fifo" else 0
        self.st[m.S_DUE] = np.iinfo(np.int64).max
        self.fs = np.zeros(m.N_F, np.float64)
        self.fs[m.F_MID], self.fs[m.F_FLOOR] = math.nan, -math.inf
        self.top = np.zeros(m.TOP_WORDS, np.int64)
        self.orders = np.zeros((CAPACITY, m.N_ORDER), np.int64)
        self.cancels = np.zeros((CAPACITY, 3), np.int64)
        self.behind = np.zeros((CAPACITY, 64), np.int64)
        self.rows = np.zeros((ROWS, 8), np.int64)
        self.live: dict[int, Live] = {}
        self.seq = 0

    @property
    def clock(self) -> int:
        """The venue's event-time clock: the largest ``ts_event`` it has seen."""
        return int(self.st[m.S_CLOCK])

    @property
    def position(self) -> int:
        """The position as the venue has executed it, size units."""
        return int(self.st[m.S_POSITION])

    @property
    def busy(self) -> bool:
        """Whether any order or cancel request is on its way or working."""
        return bool(self.st[m.S_ACTIVE] + self.st[m.S_CANCELS] > 0)

    def submit(self, order: OrderSubmitted) -> None:
        """Send ``order``: it reaches the venue at ``order.arrives_at``."""
        free = np.flatnonzero(self.orders[:, m.O_STATE] == m.FREE)
        if not len(free):
            raise RuntimeError(f"the simulated venue holds {CAPACITY} orders already")
        self.seq += 1
        row = np.zeros(m.N_ORDER, np.int64)
        row[m.O_STATE], row[m.O_ID], row[m.O_SEQ] = m.FLIGHT, order.order_id, self.seq
        row[m.O_SIDE], row[m.O_KIND], row[m.O_PRICE] = order.side, KINDS[order.kind], order.price
        row[m.O_LEFT], row[m.O_ARRIVE], row[m.O_REDUCE] = (
            order.size,
            order.arrives_at,
            order.reduce_only,
        )
        self.orders[free[0]] = row
        self.st[m.S_ACTIVE] += 1
        self.st[m.S_DUE] = min(self.st[m.S_DUE], order.arrives_at)
        reference = order.reference_mid if order.kind == "market" else float(order.price)
        self.live[order.order_id] = Live(order.side, order.purpose, reference)

    def cancel(self, request: CancelRequested) -> None:
        """Send ``request``: it reaches the venue at ``request.arrives_at``."""
        free = np.flatnonzero(self.cancels[:, m.C_ID] == 0)
        if not len(free):
            raise RuntimeError(f"the simulated venue holds {CAPACITY} cancel requests already")
        self.seq += 1
        self.cancels[free[0]] = (request.order_id, self.seq, request.arrives_at)
        self.st[m.S_CANCELS] += 1
        self.st[m.S_DUE] = min(self.st[m.S_DUE], request.arrives_at)

    def working(self, order_id: int) -> bool:
        """Whether ``order_id`` is on its way to the venue or working there."""
        return order_id in self.live

    def queue_ahead(self, order_id: int) -> int | None:
        """Size ahead of a working limit order at its price (-1 unknown); None if there is no
        such order."""
        rows = self.orders[:, m.O_ID] == order_id
        rows &= self.orders[:, m.O_STATE] == m.WORKING
        rows &= self.orders[:, m.O_KIND] == m.LIMIT
        found = np.flatnonzero(rows)
        return int(self.orders[found[0], m.O_AHEAD]) if len(found) else None

    def grow(self) -> None:
        """Double the room for orders queued behind ours (the kernel asked for it)."""
        self.behind = np.concatenate([self.behind, np.zeros_like(self.behind)], axis=1)

    def run(self, market: Market, start: int) -> tuple[int, int]:
        """Walk ``market`` from index ``start``: (index, ``matching`` reason) where it stopped."""
        i, reason = m.run(
            market.base,
            market.records,
            market.tops,
            market.mids,
            market.mid_values,
            market.decision_at,
            self.st,
            self.fs,
            self.top,
            self.orders,
            self.cancels,
            self.behind,
            self.rows,
            start,
        )
        return int(i), int(reason)

    def settle(self, index: int) -> None:
        """Let what is due by the clock reach the venue now (after a submission)."""
        m.settle(self.orders, self.cancels, self.st, self.fs, self.rows, index, self.top)

    def reports(self, base_offset: int) -> list[VenueReport]:
        """The venue's reports since the last call, as events (slice index + base = cause)."""
        out: list[VenueReport] = []
        if not self.st[m.S_ROWS]:
            return out
        for kind, i, ts, oid, a, b, c, d in self.rows[: self.st[m.S_ROWS]].tolist():
            cause = base_offset + i
            if kind == m.E_ACK:
                out.append(OrderAcknowledged(ts, cause, oid, a))
            elif kind == m.E_FILL:
                out.append(self._filled(ts, cause, oid, a, b, c, d == 1))
            elif kind == m.E_CANCEL:
                self.live.pop(oid)
                out.append(OrderCancelled(ts, cause, oid, a, CANCEL_REASONS[b]))
            else:
                reason, detail = REJECT_REASONS[b]
                if b != m.REJECT_TOO_LATE:
                    self.live.pop(oid)
                out.append(OrderRejected(ts, cause, oid, reason, detail))
        self.st[m.S_ROWS] = 0
        return out

    def _filled(
        self, ts: int, cause: int, oid: int, price: int, size: int, left: int, taker: bool
    ) -> OrderFilled:
        live = self.live[oid] if left else self.live.pop(oid)
        bp = self.config.taker_fee_bp if taker else self.config.maker_fee_bp
        fee = price * size * self.value_factor * bp / 10_000.0
        return OrderFilled(
            ts,
            cause,
            oid,
            live.side,
            live.purpose,
            price,
            size,
            left,
            fee,
            "taker" if taker else "maker",
            live.reference_price,
            live.side * (price - live.reference_price) + 0.0,  # never -0.0
        )

    def snapshot(self) -> bytes:
        """Every array and the live orders, exactly."""
        state = _State(
            self.st.tolist(),
            self.fs.tolist(),
            self.top.tolist(),
            self.orders.tolist(),
            self.cancels.tolist(),
            self.behind.tolist(),
            sorted(self.live.items()),
            self.seq,
        )
        return msgspec.msgpack.encode(state)

    def restore(self, state: bytes) -> None:
        """Continue from a :meth:`snapshot`."""
        s = msgspec.msgpack.decode(state, type=_State)
        self.st[:], self.fs[:], self.top[:] = s.st, s.fs, s.top
        self.orders[:], self.cancels[:] = s.orders, s.cancels
        self.behind = np.array(s.behind, np.int64).reshape(CAPACITY, -1)
        self.live, self.seq = dict(s.live), s.seq


class Market(NamedTuple):
    """One slice of the replayed market as the kernel reads it: int64 (and float64) views of
    the records' bytes, so building it copies nothing per event."""

    base: int
    """Journal offset of the first record."""
    records: np.ndarray[Any, Any]
    """The market records as int64 words, one row per journal event."""
    tops: np.ndarray[Any, Any]
    """The ``book.top`` records as int64 words."""
    mids: np.ndarray[Any, Any]
    """The ``book.mid`` records as int64 words."""
    mid_values: np.ndarray[Any, Any]
    """The same records as float64 words (the mid is word 4)."""
    decision_at: np.ndarray[Any, Any]
    """Slice index of the record behind each decision the kernel must stop after."""


def market_slice(
    start: int,
    market: np.ndarray[Any, Any],
    tops: np.ndarray[Any, Any],
    mids: np.ndarray[Any, Any],
    decision_causes: np.ndarray[Any, Any],
) -> Market:
    """The kernel's view of journal records ``market`` (from offset ``start``) with the
    ``book.top`` and ``book.mid`` records and decision causes of the same slice."""
    mids = _exact(mids, _MID_DTYPE)
    return Market(
        start,
        _words(_exact(market, MARKET_RECORD), np.int64),
        _words(_exact(tops, BOOK_TOP_DTYPE), np.int64),
        _words(mids, np.int64),
        _words(mids, np.float64),
        decision_causes.astype(np.int64) - start,
    )


_MID_DTYPE: np.dtype[Any] = BOOK_MID.dtype  # type: ignore[assignment]


def _exact(records: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """``records`` contiguous in exactly ``dtype`` (a concatenation may have repacked it)."""
    if records.dtype != dtype:
        records = records.astype(dtype)
    return np.ascontiguousarray(records)


def _words(records: np.ndarray[Any, Any], kind: Any) -> np.ndarray[Any, Any]:
    """Contiguous fixed-width records as a 2-D array of 8-byte words (a view, no copy)."""
    width = records.dtype.itemsize // 8
    return np.frombuffer(records.data, kind).reshape(len(records), width)
