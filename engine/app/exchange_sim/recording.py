"""A Binance recording (``<receive_ts_ns> <json>`` lines) loaded for replay over the wire.

The simulator sends each recorded message byte for byte, so it keeps the raw JSON; it reads
just enough of each line to route it (stream kind and symbol), to pace it (receive time) and
to keep its own book (depth updates and REST snapshots), with the same msgspec structs the
importer uses (:mod:`engine.app.ingest.binance_messages`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec

from engine.app.ingest import binance_messages as m
from engine.app.ingest.source import iter_file_lines


@dataclass(frozen=True)
class Message:
    """One recorded line: a stream message to send, or a REST depth snapshot to serve."""

    ts: int
    """The recorder's receive time, ns (paces the replay); 0 when the line has none."""
    body: bytes
    """The JSON exactly as recorded."""
    kind: str | None
    """depth, trade or ticker for stream messages; snapshot for REST snapshots; None when the
    line could not be read (it is still sent, byte for byte: the client must cope)."""
    symbol: str = ""
    """Lower-case symbol of the stream (``btcusdt``), as in stream names."""
    depth: m.DepthUpdate | None = None
    snapshot: m.DepthSnapshot | None = None


@dataclass(frozen=True)
class Recording:
    """Every line of a recording, in order, and what the simulator needs to know about it."""

    path: Path
    messages: list[Message]
    market: str
    """spot or usdm (USD-M futures: depth updates carry ``pu``)."""
    symbol: str
    """Upper-case venue symbol, as the REST API takes it (``BTCUSDT``)."""

    @property
    def stream_count(self) -> int:
        """Messages sent over the stream (everything but REST snapshots)."""
        return sum(1 for msg in self.messages if msg.kind != "snapshot")


def read_message(raw: bytes) -> Message:
    """One recording line, classified (never raises: unreadable lines have kind None)."""
    stamp, _, body = raw.partition(b" ")
    ts = int(stamp) if stamp.isdigit() and len(stamp) <= 19 else 0
    try:
        env = m.ENVELOPE.decode(body)
    except msgspec.ValidationError:
        try:
            return Message(ts, body, "snapshot", snapshot=m.SNAPSHOT.decode(body))
        except msgspec.DecodeError:
            return Message(ts, body, None)
    except msgspec.DecodeError:
        return Message(ts, body, None)
    kind = m.stream_kind(env.stream)
    symbol = env.stream.partition("@")[0]
    if kind == "depth":
        try:
            return Message(ts, body, kind, symbol, depth=m.DEPTH.decode(env.data))
        except msgspec.DecodeError:
            return Message(ts, body, None, symbol)
    return Message(ts, body, kind, symbol)


def load(path: Path, market: str | None = None) -> Recording:
    """Read a (possibly gzipped) recording into memory."""
    messages = [read_message(line.raw) for line in iter_file_lines(path) if line.raw]
    depths = [msg.depth for msg in messages if msg.depth is not None]
    if not depths:
        raise ValueError(f"{path}: no depthUpdate message; is this a Binance recording?")
    detected = "usdm" if depths[0].pu is not None else "spot"
    if market is not None and market != detected:
        raise ValueError(
            f"{path}: its depth updates are {detected} ones "
            f"({'with' if detected == 'usdm' else 'without'} pu), not {market}; "
            f"use --market {detected}"
        )
    return Recording(path, messages, detected, depths[0].s)
