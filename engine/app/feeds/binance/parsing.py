"""Received frames to journal items: the importer's converter, one message at a time.

A frame becomes the recorder's line ``<receive_ts_ns> <json>`` and goes through
:class:`~engine.app.ingest.binance.BinanceConverter`, so the feed journals exactly the events
``tape ingest binance`` writes for the same message. Its receive time is the records'
``ts_recv`` (NautilusTrader's ``ts_init``): replay reads it from the journal like any field.
Receive times never go backwards (the converter would quarantine such a line), so a wall clock
stepped back by NTP is held at the last time seen.

**Event time of messages without one.** Spot book tickers and REST snapshots carry no venue
time; the importer stamps them with the recorder's receive time. Live, the feed stamps them
with the venue's time estimated from the newest message that had one (its ``E`` plus the local
time since it was received), so a journal keeps the venue's time base even where the venue's
clock and ours differ (a recording replayed through the exchange simulator, a skewed local
clock). The estimate is journaled, so replay reads it like any field.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from engine.app.feeds.binance.resume import FeedResume
from engine.app.feeds.binance.schemas import IDS
from engine.app.ingest import binance_messages as m
from engine.app.ingest.binance import BinanceConverter
from engine.app.ingest.session import Item
from engine.app.ingest.source import Line
from engine.events.control import InstrumentSpec


class FrameParser:
    """Frames to items; the position of a bad frame is its number and byte offset in the
    session's feed (as if the frames were a recording's lines)."""

    def __init__(self, spec: InstrumentSpec, futures: bool, source: str, last_ts: int = 0) -> None:
        self.converter = BinanceConverter(spec, futures, source, fast=False)
        self.frames = 0
        self.bytes = 0
        self.last_ts = last_ts
        self.venue: tuple[int, int] | None = None
        """(venue event time, local receive time) of the newest message that had one."""

    def items(self, body: bytes, received: int) -> list[Item]:
        """The journal items of one frame received at ``received`` (ns)."""
        ts = self.stamp(received)
        raw = b"%d %s" % (ts, body)
        self.frames += 1
        line = Line(self.frames, self.bytes, raw)
        self.bytes += len(raw) + 1
        items = self.converter.message(line)
        for item in items:
            if isinstance(item, np.ndarray):
                self._venue_time(item)
        return items

    def _venue_time(self, records: np.ndarray[Any, Any]) -> None:
        """Stamp records without a venue time with the estimated venue time (see above)."""
        timed = records["ts_event"] != records["ts_recv"]
        if timed.any():
            last = np.flatnonzero(timed)[-1]
            self.venue = (int(records["ts_event"][last]), int(records["ts_recv"][last]))
        if not timed.all() and self.venue is not None:
            event, at = self.venue
            untimed = ~timed
            records["ts_event"][untimed] = event + (records["ts_recv"][untimed] - at)

    def stamp(self, received: int) -> int:
        """``received``, held at the last receive time if the clock went back."""
        self.last_ts = max(self.last_ts, received)
        return self.last_ts

    def resync(self) -> None:
        """The next depth update starts a new chain: the book waits for the next snapshot."""
        self.converter.resync()


class Seen:
    """The newest ids journaled per stream, so a message the venue sends again is skipped.

    Trade ids and depth / book-ticker update ids only grow, so a message at or below the
    newest of its kind is a repeat (a reconnect that overlaps, or a restart: the ids come from
    the journal, not from memory).
    """

    def __init__(self, resume: FeedResume) -> None:
        self.newest = {
            "trade": resume.last_trade_id,
            "depth": resume.last_depth_id,
            "ticker": resume.last_ticker_id,
        }
        self.repeats = 0

    def fresh(self, body: bytes) -> bool:
        """False if ``body`` is a market message already journaled; otherwise remember it."""
        try:
            env = m.ENVELOPE.decode(body)
            ids = IDS.decode(env.data)
        except msgspec.DecodeError:
            return True  # not a market message: the converter quarantines it
        kind = m.stream_kind(env.stream)
        ident = ids.t if kind == "trade" else ids.u
        if kind is None or ident is None:
            return True
        if ident <= self.newest[kind]:
            self.repeats += 1
            return False
        self.newest[kind] = ident
        return True
