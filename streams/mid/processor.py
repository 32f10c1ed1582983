"""The ``mid`` processor: one ``book.mid`` event per ``book.top``.

Inputs
    Port ``book`` (``book.top`` records) of the same slice.
Outputs
    Port ``mid``: ``book.mid`` records, one per input top, with the top's cause.
State
    The previous two-sided mid and the running exponentially weighted variance of mid
    log-returns (two float64), plus the count of two-sided updates.
Guarantees
    Deterministic and batch-independent: the compiled loop visits tops in order and carries its
    state between calls, so a slice of one top and a slice of a million give identical bits
    (no fastmath, no reassociation). Pure: no I/O, clock or environment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
from numba import njit

from engine.events.book import BOOK_MID
from engine.runtime.processor import Output, Port, Slice, StageContext, load_state
from engine.runtime.topology import Stage, typed_config

MID_PORT = Port("mid", BOOK_MID)
STATE_VERSION = 1


@dataclass(frozen=True)
class MidConfig:
    """Settings of the ``mid`` processor."""

    halflife: float = 100.0
    """Updates after which an old squared return's weight in the variance has halved."""


class _State(msgspec.Struct, array_like=True):
    version: int
    prev_mid: float
    variance: float
    updates: int


@njit(cache=True)
def _kernel(
    bid: np.ndarray[Any, Any],
    bid_size: np.ndarray[Any, Any],
    ask: np.ndarray[Any, Any],
    ask_size: np.ndarray[Any, Any],
    out_two: np.ndarray[Any, Any],
    out_spread: np.ndarray[Any, Any],
    out_mid: np.ndarray[Any, Any],
    out_micro: np.ndarray[Any, Any],
    out_ret: np.ndarray[Any, Any],
    out_var: np.ndarray[Any, Any],
    state: np.ndarray[Any, Any],
    alpha: float,
) -> None:
    # state: [previous mid (0: none), variance, two-sided updates]
    for i in range(len(bid)):
        b, a = bid[i], ask[i]
        if b > 0 and a > 0 and a > b:
            mid = (b + a) / 2.0
            sizes = bid_size[i] + ask_size[i]
            micro = (b * ask_size[i] + a * bid_size[i]) / sizes if sizes > 0 else mid
            ret = math.log(mid / state[0]) if state[0] > 0.0 else 0.0
            if state[0] > 0.0:
                state[1] = state[1] + alpha * (ret * ret - state[1])
            state[0] = mid
            state[2] += 1.0
            out_two[i], out_spread[i] = 1, a - b
            out_mid[i], out_micro[i], out_ret[i] = mid, micro, ret
        out_var[i] = state[1]


class MidStage:
    """See the module docstring."""

    def __init__(self, context: StageContext) -> None:
        self.config: MidConfig = typed_config(MidConfig, "mid", context.config)
        if not self.config.halflife > 0:
            raise ValueError(f"mid: halflife must be > 0, got {self.config.halflife}")
        self.alpha = 1.0 - 2.0 ** (-1.0 / self.config.halflife)
        self.state = np.zeros(3, np.float64)

    def process(self, piece: Slice) -> tuple[Output, ...]:
        """One ``book.mid`` per ``book.top`` of the slice."""
        tops = piece.inputs["book"]
        assert isinstance(tops, np.ndarray)
        out = np.zeros(len(tops), BOOK_MID.dtype)
        out["type_id"] = BOOK_MID.type_id
        out["ts_event"], out["cause"] = tops["ts_event"], tops["offset"]
        if len(tops):
            two = np.zeros(len(tops), np.uint8)
            spread = np.zeros(len(tops), np.int64)
            floats = np.zeros((4, len(tops)), np.float64)
            _kernel(
                np.ascontiguousarray(tops["bid_price"][:, 0]),
                np.ascontiguousarray(tops["bid_size"][:, 0]),
                np.ascontiguousarray(tops["ask_price"][:, 0]),
                np.ascontiguousarray(tops["ask_size"][:, 0]),
                two,
                spread,
                floats[0],
                floats[1],
                floats[2],
                floats[3],
                self.state,
                self.alpha,
            )
            out["two_sided"], out["spread"] = two, spread
            out["mid"], out["microprice"] = floats[0], floats[1]
            out["log_return"], out["ewm_variance"] = floats[2], floats[3]
        return (out,)

    def snapshot(self) -> bytes:
        """Previous mid, variance and update count (floats exactly, as msgpack float64)."""
        prev, var, n = self.state.tolist()
        return msgspec.msgpack.encode(_State(STATE_VERSION, prev, var, int(n)))

    def restore(self, state: bytes) -> None:
        """Continue from a state :meth:`snapshot` produced."""
        s = load_state("mid", state, _State, STATE_VERSION)
        self.state[:] = (s.prev_mid, s.variance, float(s.updates))

    def inspect(self) -> dict[str, Any]:
        """The state in readable form."""
        prev, var, n = self.state.tolist()
        return {"previous_mid": prev, "ewm_variance": var, "two_sided_updates": int(n)}


MID_STAGE = Stage(
    "mid",
    MidStage,
    (MID_PORT,),
    inputs=("book",),
    doc="mid, microprice, spread and EWMA return variance after each book change",
)
