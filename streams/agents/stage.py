"""The ``agents`` processor: four rule-based agents vote after every feature vector.

Inputs
    Port ``features`` (``features.vector``): the 65 features, read by every agent. The journal's
    market records: trades (``market.trade``, ``market.order_executed``) for the tape and the
    footprint, quotes (``market.quote``) for the L1 when ``l1 = "quote"``; ``clock.ticked``
    moves the clock. Port ``book`` (``book.top``): the L1 when ``l1 = "book"`` and the depth
    imbalance whose trend the liquidity agent reads.
Outputs
    Port ``votes``: one ``agents.votes`` record per vector, with the vector's cause and
    ``ts_event``: each agent's vote (-1/0/+1), confidence (0..1) and reason bits, in the order
    of ``engine.events.decisions.AGENTS`` (docs/agents.md lists every bit).
State
    The tape (clock, L1, last trade, current run, decayed trade rates and large prints, the
    trade-size EWMA), the footprint window's trades and its volume per price row, and the depth
    imbalance with its EMA (see :mod:`streams.agents.tape`); snapshot and restore are exact.
Guarantees
    Deterministic and batch-independent: one compiled loop applies records, tops and vectors in
    offset order and carries its state between calls, so slices of one event and of a million
    give identical bytes; the rules (:mod:`streams.agents.evaluate`) are pure functions of a
    vector and the state measured at it. Weights are not applied here (the consensus does).
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from engine.events.book import BOOK_TOP_DTYPE
from engine.events.decisions import AGENTS, VOTES, new_records
from engine.runtime.processor import Output, Port, Slice, StageContext, load_state
from engine.runtime.topology import Stage
from streams.agents import config as cf
from streams.agents import evaluate as ev
from streams.agents import tape
from streams.agents.rules import reason_names
from streams.columns import journal_columns
from streams.features.schema import INDEX

VOTES_PORT = Port("votes", VOTES)
STATE_VERSION = 1
_FI = np.array([INDEX[name] for name in ev.FEATURE_INPUTS], np.int64)


class _State(msgspec.Struct, array_like=True):
    version: int
    config: str
    si: list[int]
    sf: list[float]
    ring: list[list[int]]
    last: bytes
    votes: int


class AgentsStage:
    """See the module docstring."""

    def __init__(self, context: StageContext) -> None:
        self.spec = context.instrument
        self.config = cf.load(self.spec, context.config)
        self.q = cf.thresholds(self.config)
        self.tp, self.cfg = cf.tape_params(self.config, self.spec)
        self.identity = msgspec.json.encode(
            [msgspec.structs.asdict(self.spec), msgspec.to_builtins(self.config)]
        ).decode()
        self.si, self.sf, self.ring, self.fp = tape.new_state(self.config.footprint.max_trades)
        self.last = new_records(VOTES, 1)  # the last record emitted, for inspect()
        self._none = new_records(VOTES, 0)
        self.emitted = 0

    def process(self, piece: Slice) -> tuple[Output, ...]:
        """One ``agents.votes`` per ``features.vector`` of the slice."""
        vectors = piece.inputs["features"]
        tops = piece.inputs.get("book")
        assert isinstance(vectors, np.ndarray)
        if not isinstance(tops, np.ndarray):
            tops = np.zeros(0, BOOK_TOP_DTYPE)
        r = journal_columns(piece)
        meas = np.empty((len(vectors), tape.N_M), np.float64)
        tape.run(
            r.offsets,
            r.type_id,
            r.side,
            r.price,
            r.size,
            r.price2,
            r.ts_event,
            tops["offset"].astype(np.int64),
            tops["status"].astype(np.int64),
            (tops["bid_price"], tops["bid_size"], tops["ask_price"], tops["ask_size"]),
            vectors["cause"].astype(np.int64),
            vectors["ts_event"],
            self.si,
            self.sf,
            self.ring,
            self.fp,
            self.tp,
            self.cfg,
            meas,
        )
        return (self._votes(vectors, meas),)

    def _votes(self, vectors: np.ndarray[Any, Any], meas: np.ndarray[Any, Any]) -> Output:
        n = len(vectors)
        if n == 0:
            return self._none
        out = new_records(VOTES, n)
        flags = vectors["flags"].astype(np.int64)
        # the kernel writes straight into the records' columns
        ev.evaluate(
            vectors["values"], flags, meas, _FI, self.q, out["votes"], out["confidence"],
            out["reasons"],
        )  # fmt: skip
        out["ts_event"], out["cause"] = vectors["ts_event"], vectors["cause"]
        self.last[0] = out[-1]
        self.emitted += n
        return out

    def snapshot(self) -> bytes:
        """The tape state and the footprint window's trades, oldest first (exact)."""
        cap = len(self.ring)
        head, count = int(self.si[tape.I_HEAD]), int(self.si[tape.I_COUNT])
        live = self.ring[(head + np.arange(count)) % cap]
        si = self.si.copy()
        si[tape.I_HEAD] = 0  # the ring is written oldest first
        state = _State(
            STATE_VERSION,
            self.identity,
            si.tolist(),
            self.sf.tolist(),
            live.tolist(),
            self.last.tobytes(),
            self.emitted,
        )
        return msgspec.msgpack.encode(state)

    def restore(self, state: bytes) -> None:
        """Continue from a state :meth:`snapshot` produced with the same config."""
        s = load_state("agents", state, _State, STATE_VERSION, self.identity)
        self.si[:], self.sf[:] = s.si, s.sf
        self.ring[:] = 0
        count = len(s.ring)
        if count != self.si[tape.I_COUNT] or count > len(self.ring):
            raise ValueError(f"agents state holds {count} footprint trades but counts {s.si}")
        if count:
            self.ring[:count] = np.array(s.ring, np.int64)
        tape.rebuild(self.si, self.ring, self.fp)
        self.last[:] = np.frombuffer(s.last, VOTES.dtype)
        self.emitted = s.votes

    def inspect(self) -> dict[str, Any]:
        """The tape in readable form and the last votes with their reasons by name."""
        si, record = self.si, self.last[0]
        last = {
            name: {
                "vote": int(record["votes"][a]),
                "confidence": float(record["confidence"][a]),
                "reasons": reason_names(a, int(record["reasons"][a])),
            }
            for a, name in enumerate(AGENTS)
        }
        return {
            "clock": int(si[tape.I_CLOCK]),
            "votes_emitted": self.emitted,
            "last_cause": int(record["cause"]),
            "trades_seen": int(si[tape.I_TRADES]),
            "run": int(si[tape.I_RUN_SIGN] * si[tape.I_RUN_LEN]),
            "trade_size_ewma": float(self.sf[tape.F_SIZE]),
            "footprint_trades": int(si[tape.I_COUNT]),
            "footprint_row": int(si[tape.I_ROW]),
            "depth_imbalance": float(self.sf[tape.F_IMB]),
            **last,
        }


AGENTS_STAGE = Stage(
    "agents",
    AgentsStage,
    (VOTES_PORT,),
    inputs=("book", "features"),
    defaults=cf.defaults,
    doc="order flow, liquidity, tape reading and footprint agents: a vote, a confidence and "
    "the rules that fired after each feature vector (docs/agents.md)",
)
