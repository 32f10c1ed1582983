"""What a restarted feed needs from its session journal (the journal, not memory, is the
truth): the newest ids journaled per stream, the last receive time, how many connections the
session has had, and whether the session is open or closed."""

from __future__ import annotations

from dataclasses import dataclass

from engine.events import decode
from engine.events.control import FeedSubscribed, SessionClosed, SessionOpened, SessionResumed
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic

_TRADE, _LEVEL, _QUOTE = 1, 6, 7
_READ = 1 << 20


@dataclass(frozen=True)
class FeedResume:
    """Where a session's feed left off (all zero for a new session)."""

    last_trade_id: int = 0
    last_depth_id: int = 0
    last_ticker_id: int = 0
    last_recv: int = 0
    last_event: int = 0
    """The newest market event time journaled (the venue's clock when the journal stopped)."""
    connections: int = 0
    opened: bool = False
    closed: bool = False
    """The last session event is ``session.closed`` (stopped by its operator)."""
    end_offset: int = 0


def resume_from_journal(log: EmbeddedLog, session: str) -> FeedResume:
    """Read the session's journal (a new session: nothing) for :class:`FeedResume`."""
    topic = journal_topic(session)
    if not log.has_topic(topic):
        return FeedResume()
    reader = log.reader(topic)
    newest = {_TRADE: 0, _LEVEL: 0, _QUOTE: 0}
    last_recv = last_event = connections = 0
    opened = closed = False
    offset = reader.start_offset
    while (batch := reader.read(offset, _READ)) is not None:
        offset = batch.next_offset
        if isinstance(batch, FixedBatch):
            records = batch.view(MARKET_RECORD)
            last_recv = max(last_recv, int(records["ts_recv"].max()))
            last_event = max(last_event, int(records["ts_event"].max()))
            for type_id in newest:
                ids = records["id"][records["type_id"] == type_id]
                if len(ids):
                    newest[type_id] = max(newest[type_id], int(ids.max()))
            continue
        for value in batch.values():
            event = decode(value)
            last_recv = max(last_recv, int(getattr(event, "ts_recv", 0)))
            opened = opened or isinstance(event, SessionOpened)
            connections += isinstance(event, FeedSubscribed)
            if isinstance(event, SessionClosed | SessionResumed):
                closed = isinstance(event, SessionClosed)
    return FeedResume(
        newest[_TRADE], newest[_LEVEL], newest[_QUOTE], last_recv, last_event, connections,
        opened, closed, offset,
    )  # fmt: skip
