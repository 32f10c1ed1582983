"""The JSON a Binance stream connection carries besides market data: requests and answers.

Market-data messages themselves are :mod:`engine.app.ingest.binance_messages` (the importer's
structs): the feed and the importer read the same shapes.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Request(msgspec.Struct, omit_defaults=True):
    """A request over the stream, e.g. ``{"method": "LIST_SUBSCRIPTIONS", "id": 7}``."""

    method: str
    id: int
    params: list[str] | None = None


class Answer(msgspec.Struct):
    """The venue's answer to a :class:`Request`, matched by ``id``."""

    id: int | None = None
    result: Any = None
    error: Any = None


class Ids(msgspec.Struct):
    """The ids of a stream message that tell a repeat: ``u`` (depth, book ticker), ``t``
    (trade)."""

    u: int | None = None
    t: int | None = None


REQUEST = msgspec.json.Encoder()
ANSWER = msgspec.json.Decoder(Answer)
IDS = msgspec.json.Decoder(Ids)
