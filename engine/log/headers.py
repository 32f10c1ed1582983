"""The headers every Tapedeck record carries on Kafka (and may carry on the embedded log).

A Kafka record holds one event's canonical bytes as its value; these headers say what the
bytes are and which journal event caused them, so a consumer can route, check and deduplicate
records without decoding values. Values are ASCII so ``kcat -f '%h'`` shows them as they are.
"""

from __future__ import annotations

import functools

from engine.log.errors import LogError
from engine.log.format import Header

SCHEMA = "tapedeck.schema"
"""Event type of the value (``market.record``, ``features.vector``, ...)."""
VERSION = "tapedeck.version"
"""Schema version of the value, decimal."""
CAUSE = "tapedeck.cause"
"""Journal offset of the event that caused this one, decimal; a journal record's own offset."""


def event_headers(schema: str, version: int, cause: int) -> list[Header]:
    """The three headers of one record."""
    schema_header, version_header = _type_headers(schema, version)
    return [schema_header, version_header, (CAUSE, str(cause).encode())]


@functools.cache
def _type_headers(schema: str, version: int) -> tuple[Header, Header]:
    # Called once per record on the mirror's and the worker's produce paths: encode once.
    return (SCHEMA, schema.encode()), (VERSION, str(version).encode())


def header(headers: list[Header] | None, name: str) -> bytes | None:
    """The value of header ``name`` (the last one if repeated), or None."""
    found = None
    for key, value in headers or ():
        if key == name:
            found = value
    return found


def cause_of(headers: list[Header] | None, where: str) -> int:
    """The causing journal offset a record's headers carry; ``where`` names the record."""
    raw = header(headers, CAUSE)
    if raw is None or not raw.isdigit():
        raise LogError(
            f"{where} has no valid {CAUSE} header (got {raw!r}); it was not written by "
            "Tapedeck, or by a version that did not stamp causes. Re-mirror the topic."
        )
    return int(raw)
