"""The ``toy`` processor: a minimal rule-based strategy, the comparable benchmark's workload.

Inputs
    Port ``book`` (``book.top`` records) and the journal's market records of the same slice.
    Only the best level of each side, the book status and the trade prints are read; control
    events are ignored.
Outputs
    Port ``orders`` (``orders.order_submitted``): market orders of ``order_size`` with purpose
    ``entry``, caused by the callback (a top or a trade print) that triggered them;
    ``reference_mid`` is the mid of the quote held, in price units, and ``arrives_at`` the
    callback's ``ts_event`` plus ``latency_ms``. Order ids count up from 1.
State
    The last level 1 seen, the quote held, the EMA of mid and its time, the position of the
    orders sent, the time of the last order, the next order id. :meth:`snapshot` writes all of
    it exactly (msgpack, versioned).
Guarantees
    Deterministic and batch-independent: one compiled loop (:mod:`streams.toy.kernel`) visits
    the callbacks in journal order and carries its state between calls, so any slicing and any
    snapshot/restore give the same bytes. Time comes only from ``ts_event``. Pure.

The rules are the peers' reference (``ToyLogic`` in ``shared/peers/lobster_common.py``) called
where NautilusTrader calls it: at every change of a usable level-1 quote and at every trade
print; :mod:`streams.toy.kernel` states them and docs/toy-benchmark.md compares the peers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from engine.events.book import BOOK_TOP_DTYPE
from engine.events.control import InstrumentSpec
from engine.events.market import BOOK_SNAPSHOT, MARKET_RECORD, ORDER_EXECUTED, TRADE
from engine.events.trading import ORDERS_FAMILY, OrderSubmitted
from engine.runtime.processor import Output, Port, Slice, StageContext, load_state
from engine.runtime.topology import ConfigError, Stage, typed_config
from streams.toy import kernel as k

ORDERS_PORT = Port("orders", ORDERS_FAMILY)
STATE_VERSION = 2
NS = 1_000_000_000


@dataclass(frozen=True)
class ToyConfig:
    """Settings of the ``toy`` strategy (defaults: the benchmark's, issue 5 item 11)."""

    order_size: int = 100
    """Size of each market order, size units (default 100 whole units of the instrument)."""
    max_position: int = 500
    """Largest |position| the orders sent may add up to, size units."""
    threshold_bp: float = 1.0
    """How far mid must be above (below) the EMA to buy (sell), basis points of the EMA."""
    min_imbalance: float = 0.2
    """L1 imbalance a buy must exceed (a sell must be below its negative)."""
    tau_s: float = 30.0
    """Time constant of the EMA of mid, seconds of event time."""
    spacing_s: float = 60.0
    """Least event time between two orders, seconds."""
    latency_ms: float = 1.0
    """Event time from sending an order to its reaching the venue (``arrives_at``)."""


def toy_defaults(spec: InstrumentSpec) -> dict[str, Any]:
    """The strategy's config for an instrument: 100 and 500 whole units in its size units."""
    unit = 10**spec.size_scale
    return dataclasses.asdict(ToyConfig(order_size=100 * unit, max_position=500 * unit))


def toy_config(stage_id: str, config: dict[str, Any]) -> ToyConfig:
    """``config`` as a :class:`ToyConfig`; a bad value raises :class:`ConfigError`."""
    parsed: ToyConfig = typed_config(ToyConfig, stage_id, config)
    problems = []
    if parsed.order_size <= 0:
        problems.append(f"order_size must be > 0 size units, got {parsed.order_size}")
    if parsed.max_position < parsed.order_size:
        problems.append(
            f"max_position must be >= order_size ({parsed.order_size}), got {parsed.max_position}"
        )
    problems += [
        f"{key} must be >= 0, got {getattr(parsed, key)}"
        for key in ("threshold_bp", "min_imbalance", "spacing_s", "latency_ms")
        if not getattr(parsed, key) >= 0
    ]
    if parsed.min_imbalance >= 1:
        problems.append(
            f"min_imbalance must be < 1 (imbalance is in -1..1), got {parsed.min_imbalance}"
        )
    if not parsed.tau_s > 0:
        problems.append(f"tau_s must be > 0 seconds, got {parsed.tau_s}")
    if problems:
        raise ConfigError(f"stage {stage_id!r}: " + "; ".join(problems))
    return parsed


class _State(msgspec.Struct, array_like=True):
    version: int
    config: bytes
    floats: list[float]
    ints: list[int]
    next_id: int


class ToyStage:
    """See the module docstring."""

    def __init__(self, context: StageContext) -> None:
        self.config = c = toy_config("toy", context.config)
        self.identity = msgspec.json.encode(dataclasses.asdict(c), order="sorted")
        self.latency = round(c.latency_ms * 1_000_000)
        spec = context.instrument
        self.params = np.array(
            [c.tau_s * 1e9, c.threshold_bp * 1e-4, c.min_imbalance,
             10.0**spec.price_scale, 10.0**spec.size_scale]
        )  # fmt: skip
        self.iparams = np.array([int(c.spacing_s * 1e9), c.order_size, c.max_position], np.int64)
        self.floats = np.zeros(k.FLOATS, np.float64)
        self.ints = np.zeros(k.INTS, np.int64)
        self.ints[k.I_LAST_ORDER_TS], self.ints[k.I_EMA_TS] = k.NEVER, -1
        self.next_id = 1

    def process(self, piece: Slice) -> tuple[Output, ...]:
        """The orders the slice's quotes and trade prints trigger."""
        tops = piece.inputs.get("book")
        tops = tops if isinstance(tops, np.ndarray) else _NO_TOPS
        at, stamps = _trades(piece)
        if not len(tops) and not len(at):
            return ([],)
        out = np.zeros((len(tops) + len(at), 5), np.int64)
        n = k.decide(
            _words(tops),
            _by_snapshot(piece, tops),
            at,
            stamps,
            self.floats,
            self.ints,
            self.params,
            self.iparams,
            out,
        )
        return ([self._order(*row) for row in out[:n].tolist()],)

    def _order(self, cause: int, ts: int, side: int, bid: int, ask: int) -> OrderSubmitted:
        order_id, self.next_id = self.next_id, self.next_id + 1
        size = self.config.order_size
        return OrderSubmitted(
            ts, cause, order_id, 0, side, "market", "entry", 0, size, False, (bid + ask) / 2.0,
            ts + self.latency,
        )  # fmt: skip

    def snapshot(self) -> bytes:
        """Every state variable, exactly (floats as msgpack float64)."""
        state = _State(
            STATE_VERSION, self.identity, self.floats.tolist(), self.ints.tolist(), self.next_id
        )
        return msgspec.msgpack.encode(state)

    def restore(self, state: bytes) -> None:
        """Continue from a state :meth:`snapshot` produced with the same config."""
        s = load_state("toy", state, _State, STATE_VERSION, self.identity)
        self.floats[:], self.ints[:], self.next_id = s.floats, s.ints, s.next_id

    def inspect(self) -> dict[str, Any]:
        """The state in readable form."""
        f, i = self.floats.tolist(), self.ints.tolist()
        return {
            "quote": {"bid": f[k.S_BID], "ask": f[k.S_ASK], "bid_size": f[k.S_BID_SIZE],
                      "ask_size": f[k.S_ASK_SIZE]},
            "ema": f[k.S_EMA] if i[k.I_EMA_TS] >= 0 else None,
            "ema_ts": i[k.I_EMA_TS] if i[k.I_EMA_TS] >= 0 else None,
            "position_sent": i[k.I_POSITION],
            "last_order_ts": None if i[k.I_LAST_ORDER_TS] == k.NEVER else i[k.I_LAST_ORDER_TS],
            "next_order_id": self.next_id,
        }  # fmt: skip


_NO_TOPS = np.zeros(0, BOOK_TOP_DTYPE)
_NO_TRADES = np.zeros(0, np.int64)


def _trades(piece: Slice) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Offsets and times of the slice's trade prints: executions of resting orders, and
    trades with an aggressor side (not an auction cross)."""
    if piece.market is None:
        return _NO_TRADES, _NO_TRADES
    r = piece.market.view(MARKET_RECORD)
    kind = r["type_id"]
    prints = (kind == ORDER_EXECUTED.type_id) | ((kind == TRADE.type_id) & (r["side"] != 0))
    at = np.flatnonzero(prints)
    return at + piece.start, r["ts_event"][at]


def _by_snapshot(piece: Slice, tops: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Whether each top was caused by a ``market.book_snapshot`` record."""
    if piece.market is None or not len(tops):
        return np.zeros(len(tops), np.bool_)
    kind = piece.market.view(MARKET_RECORD)["type_id"]
    at = tops["offset"].astype(np.int64) - piece.start
    caused: np.ndarray[Any, Any] = kind[at] == BOOK_SNAPSHOT.type_id
    return caused


def _words(tops: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``book.top`` records as rows of int64 words: a view, unless they need repacking."""
    if tops.dtype != BOOK_TOP_DTYPE or not tops.flags.c_contiguous:
        tops = np.ascontiguousarray(tops.astype(BOOK_TOP_DTYPE))
    return tops.view(np.int64).reshape(len(tops), BOOK_TOP_DTYPE.itemsize // 8)


TOY_STAGE = Stage(
    "toy",
    ToyStage,
    (ORDERS_PORT,),
    inputs=("book",),
    defaults=toy_defaults,
    doc="toy strategy: EMA of mid and L1 imbalance -> market orders (the comparable benchmark)",
)
