"""The JSON messages of a Binance market-data recording, as typed msgspec structs.

Decoding into structs (rather than dicts) both validates the shape and is several times faster.
Prices and quantities stay strings here; :mod:`engine.app.ingest.decimal` makes them integers.
"""

from __future__ import annotations

import msgspec

Level = tuple[str, str]


class Envelope(msgspec.Struct, frozen=True):
    """A combined-stream message: ``{"stream": "btcusdt@trade", "data": {...}}``."""

    stream: str
    data: msgspec.Raw


class DepthUpdate(msgspec.Struct, frozen=True):
    """``depthUpdate``: absolute quantities at changed levels; ``pu`` only on futures."""

    e: str
    E: int
    s: str
    U: int
    u: int
    b: list[Level]
    a: list[Level]
    pu: int | None = None
    T: int | None = None


class Trade(msgspec.Struct, frozen=True):
    """``trade``: one print; ``m`` is true when the buyer was the maker (the aggressor sold)."""

    e: str
    E: int
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool


class BookTicker(msgspec.Struct, frozen=True):
    """``bookTicker``: best bid/ask after update ``u``; spot has no ``e``/``E``."""

    u: int
    s: str
    b: str
    B: str
    a: str
    A: str
    e: str | None = None
    E: int | None = None


class DepthSnapshot(msgspec.Struct, frozen=True):
    """REST ``GET /depth`` response; futures add ``E``/``T``."""

    lastUpdateId: int  # noqa: N815
    bids: list[Level]
    asks: list[Level]
    E: int | None = None
    T: int | None = None


ENVELOPE = msgspec.json.Decoder(Envelope)
DEPTH = msgspec.json.Decoder(DepthUpdate)
TRADE = msgspec.json.Decoder(Trade)
TICKER = msgspec.json.Decoder(BookTicker)
SNAPSHOT = msgspec.json.Decoder(DepthSnapshot)
ANY = msgspec.json.Decoder()

STREAM_KINDS = (("@depth", "depth"), ("@trade", "trade"), ("@bookTicker", "ticker"))
EVENT_NAMES = {"depth": "depthUpdate", "trade": "trade", "ticker": "bookTicker"}


def stream_kind(stream: str) -> str | None:
    """depth, trade or ticker from a stream name such as ``btcusdt@depth@100ms``."""
    for marker, kind in STREAM_KINDS:
        if marker in stream:
            return kind
    return None
