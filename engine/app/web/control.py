"""Operator commands from the dashboard: halt, resume and flatten, journaled.

The journal is the only input of a pipeline, so a command is an event appended to the
session's journal (``engine.log.journal.append_command``); the trading stage reads it in
journal order, live and in every replay. This is the dashboard's only write, and only when
``tape serve --control`` allows it.
"""

from __future__ import annotations

import time

from engine.events import decode
from engine.events.control import (
    FlattenPosition,
    HaltTrading,
    OperatorCommand,
    ResumeTrading,
    SessionClosed,
)
from engine.log import EmbeddedLog, PartitionLockedError, RecordBatch
from engine.log.journal import append_command, journal_topic

COMMANDS = ("halt", "resume", "flatten")
LOCK_WAIT_SECONDS = 2.0
"""How long to wait for the journal's writer while another process appends a batch."""


class ControlError(RuntimeError):
    """A command that cannot be journaled; the message says why and what to do."""


def command_event(command: str, operator: str, reason: str, now_ns: int) -> OperatorCommand:
    """The journal event of ``command`` issued at wall-clock ``now_ns``."""
    if command == "halt":
        return HaltTrading(now_ns, now_ns, reason or "operator halt", operator)
    if command == "resume":
        return ResumeTrading(now_ns, now_ns, operator)
    if command == "flatten":
        return FlattenPosition(now_ns, now_ns, reason or "operator flatten", operator)
    raise ControlError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")


def is_closed(log: EmbeddedLog, session: str) -> bool:
    """Whether the session's journal ends with ``session.closed``."""
    reader = log.reader(journal_topic(session))
    if reader.end_offset == 0:
        return False
    last = reader.read(reader.end_offset - 1, 1)
    return isinstance(last, RecordBatch) and isinstance(decode(last.values()[0]), SessionClosed)


def journal(log: EmbeddedLog, session: str, command: str, operator: str, reason: str) -> int:
    """Append ``command`` to ``session``'s journal; the offset it got."""
    if is_closed(log, session):
        raise ControlError(f"session {session} is closed: a command would come after its end")
    event = command_event(command, operator, reason, time.time_ns())
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            return append_command(log, session, event)
        except PartitionLockedError as exc:
            if time.monotonic() >= deadline:
                raise ControlError(
                    f"the journal of {session} is held by another writer for more than "
                    f"{LOCK_WAIT_SECONDS:.0f} s ({exc}); send the command to that process"
                ) from None
            time.sleep(0.02)
