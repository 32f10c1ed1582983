"""One run's outputs read from the log, as arrays, series and marker rows.

Everything here is read straight from the run's topics (the log is the truth; no store is
needed). Fixed-width ports (``mid``, ``portfolio``, ``decisions``, ``predictions``,
``votes``) come back as zero-copy record arrays, msgpack ports (``risk``, ``orders``,
``executions``) as decoded events with their offsets. Prices and sizes are scaled to the
instrument's units (``price_scale``, ``size_scale``) for people.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from engine.app.runview.series import Series, series
from engine.events import by_name, decode
from engine.events.control import InstrumentSpec
from engine.events.decisions import AGENTS
from engine.events.trading import DecisionRejected, OrderFilled, OrderSubmitted
from engine.log import EmbeddedLog, FixedBatch
from engine.models import ModelCard, ModelStore, ModelStoreError, load_card
from engine.runtime.manifest import RunManifest, read_manifest
from engine.runtime.runs import session_opened

READ_CHUNK = 65536


def read_fixed(log: EmbeddedLog, topic: str) -> np.ndarray[Any, Any] | None:
    """Every record of a fixed-width topic, typed by its schema (None: no such topic)."""
    if not log.has_topic(topic):
        return None
    dtype = by_name(log.config(topic).schema_name).dtype
    assert dtype is not None, f"{topic} is not a fixed-width topic"
    reader = log.reader(topic)
    parts, offset = [], reader.start_offset
    while (batch := reader.read(offset, READ_CHUNK)) is not None:
        assert isinstance(batch, FixedBatch)
        parts.append(batch.view(dtype))
        offset = batch.next_offset
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def read_events(log: EmbeddedLog, topic: str) -> list[tuple[int, msgspec.Struct]]:
    """Every event of a msgpack topic with its offset (empty: no such topic)."""
    if not log.has_topic(topic):
        return []
    reader = log.reader(topic)
    out: list[tuple[int, msgspec.Struct]] = []
    offset = reader.start_offset
    while (batch := reader.read(offset, READ_CHUNK)) is not None:
        out.extend((batch.base_offset + i, decode(v)) for i, v in enumerate(batch.values()))
        offset = batch.next_offset
    return out


@dataclass
class RunData:
    """A run's outputs, loaded on first use and kept (a complete run never changes)."""

    log: EmbeddedLog
    manifest: RunManifest
    instrument: InstrumentSpec
    models: Path
    _cache: dict[str, Any] = field(default_factory=dict)

    def topic(self, port: str) -> str | None:
        """The topic of ``port`` if the run wrote it."""
        return next((o.topic for o in self.manifest.outputs if o.port == port), None)

    def fixed(self, port: str) -> np.ndarray[Any, Any] | None:
        """The records of a fixed-width port (None: the run has no such port)."""
        if port not in self._cache:
            topic = self.topic(port)
            self._cache[port] = None if topic is None else read_fixed(self.log, topic)
        result: np.ndarray[Any, Any] | None = self._cache[port]
        return result

    def events(self, port: str) -> list[tuple[int, msgspec.Struct]]:
        """The (offset, event) pairs of a msgpack port (empty: the run has no such port)."""
        if port not in self._cache:
            topic = self.topic(port)
            self._cache[port] = [] if topic is None else read_events(self.log, topic)
        result: list[tuple[int, msgspec.Struct]] = self._cache[port]
        return result

    def price(self, value: Any) -> Any:
        """Integer price units to the quote currency."""
        return value * 10.0**-self.instrument.price_scale

    def size(self, value: Any) -> Any:
        """Integer size units to the base unit."""
        return value * 10.0**-self.instrument.size_scale

    # --- lines ------------------------------------------------------------------------------

    def lines(self) -> dict[str, Series]:
        """Every line the run can draw, by name (absent when the run lacks the port)."""
        if "lines" not in self._cache:
            self._cache["lines"] = self._lines()
        lines: dict[str, Series] = self._cache["lines"]
        return lines

    def _lines(self) -> dict[str, Series]:
        out: dict[str, Series] = {}
        mid = self.fixed("mid")
        if mid is not None:
            two = mid[mid["two_sided"] == 1]
            out["mid"] = series(two["ts_event"], self.price(two["mid"]))
        p = self.fixed("portfolio")
        if p is not None:
            out["equity"] = series(p["ts_event"], p["equity"])
            out["drawdown"] = series(p["ts_event"], -100.0 * p["drawdown"])
            out["position"] = series(p["ts_event"], self.size(p["position"].astype(np.float64)))
        d = self.fixed("decisions")
        if d is not None:
            for name, direction in (("buy confidence", 1), ("sell confidence", -1)):
                chosen = d[d["direction"] == direction]
                out[name] = series(chosen["ts_event"], chosen["confidence"])
        pr = self.fixed("predictions")
        if pr is not None:
            for i, name in enumerate(("p(down)", "p(flat)", "p(up)")):
                out[name] = series(pr["ts_event"], pr["probs"][:, i])
        v = self.fixed("votes")
        if v is not None:
            for i, agent in enumerate(AGENTS):
                conviction = v["votes"][:, i].astype(np.float64) * v["confidence"][:, i]
                out[agent] = series(v["ts_event"], conviction)
        return out

    # --- markers and tables -----------------------------------------------------------------

    def orders(self) -> list[dict[str, Any]]:
        """Orders submitted: offset (in ``orders``), time, id, side, kind, purpose, price, size.

        A market order's price is the mid it was sent at (it has no price of its own)."""
        return [
            {
                "offset": offset,
                "ts": e.ts_event,
                "order_id": e.order_id,
                "side": e.side,
                "kind": e.kind,
                "purpose": e.purpose,
                "price": self.price(e.price) if e.price else self.price(e.reference_mid),
                "size": self.size(e.size),
            }
            for offset, e in self.events("orders")
            if isinstance(e, OrderSubmitted)
        ]

    def fills(self) -> list[dict[str, Any]]:
        """Fills: offset (in ``executions``), time, order id, side, price, size, liquidity."""
        return [
            {
                "offset": offset,
                "ts": e.ts_event,
                "order_id": e.order_id,
                "side": e.side,
                "purpose": e.purpose,
                "price": self.price(e.price),
                "size": self.size(e.size),
                "liquidity": e.liquidity,
                "fee": e.fee,
            }
            for offset, e in self.events("executions")
            if isinstance(e, OrderFilled)
        ]

    def rejections(self) -> dict[str, int]:
        """Decisions refused by risk, by reason (most frequent first).

        A complete run's trading report has them already (computed from the same events
        when the run ended); a running run's are counted from its ``risk`` topic."""
        done = self.manifest.report.get("trading", {}).get("rejections")
        if self.manifest.status == "complete" and isinstance(done, dict):
            return dict(sorted(((str(k), int(v)) for k, v in done.items()), key=lambda kv: -kv[1]))
        counts = Counter(
            e.reason for _, e in self.events("risk") if isinstance(e, DecisionRejected)
        )
        return dict(counts.most_common())

    @cached_property
    def card(self) -> ModelCard | None:
        """The model bundle's card, when the run used one and the store still holds it."""
        bundle = self.manifest.models.get("bundle")
        if not bundle:
            return None
        try:
            return load_card(ModelStore(self.models), bundle)
        except (ModelStoreError, ValueError):
            return None


def open_run(log: EmbeddedLog, run_id: str, models: Path | None = None) -> RunData:
    """The outputs of run ``run_id`` (models from ``models``, default ``<data>/models``)."""
    manifest = read_manifest(log.root, run_id)
    instrument = session_opened(log, manifest.session).instrument
    return RunData(log, manifest, instrument, models or log.root / "models")
