"""Operator commands for a live session: ``tape halt | resume | flatten SESSION``.

A command is an event in the session journal (``control.halt_trading``,
``control.resume_trading``, ``control.flatten_position``), so the ``trading`` stage honours it
at the same journal offset live and in every replay. The journal has one writer: while ``tape live``
runs, it listens on a Unix socket (:func:`command_address`) and journals each command it is
sent, answering with the offset; when no session is live, the command is appended to the
journal directly (the next ``tape live`` or ``tape run`` of the session acts on it).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from engine.events.control import FlattenPosition, HaltTrading, OperatorCommand, ResumeTrading
from engine.log import EmbeddedLog, PartitionLockedError
from engine.log.journal import append_command, journal_topic

COMMANDS = ("halt", "resume", "flatten")
_UNIX_PATH_MAX = 100


class CommandError(Exception):
    """A command could not be delivered or journaled; the message says why."""


class Command(msgspec.Struct, frozen=True):
    """What the operator asked: ``halt``, ``resume`` or ``flatten``, why and who."""

    command: str
    reason: str = ""
    operator: str = ""

    def event(self, ts_event: int, ts_recv: int) -> OperatorCommand:
        """The journal event of this command."""
        if self.command == "halt":
            return HaltTrading(ts_event, ts_recv, self.reason, self.operator)
        if self.command == "resume":
            return ResumeTrading(ts_event, ts_recv, self.operator)
        if self.command == "flatten":
            return FlattenPosition(ts_event, ts_recv, self.reason, self.operator)
        raise CommandError(f"unknown command {self.command!r}: use one of {', '.join(COMMANDS)}")


class Reply(msgspec.Struct, frozen=True):
    """Where the command went: its journal offset, or why it did not."""

    offset: int = -1
    error: str = ""


def command_address(data: Path, session: str) -> str:
    """The Unix socket a live session listens on (an abstract one when the path is too long)."""
    path = str((data / "live" / f"{session}.sock").resolve())
    if len(path.encode()) < _UNIX_PATH_MAX:
        return path
    return "\0tapedeck-" + hashlib.sha256(path.encode()).hexdigest()[:24]


def default_operator() -> str:
    """Who is issuing a command: the login name and host."""
    try:
        user = os.getlogin()
    except OSError:
        user = os.environ.get("USER", "unknown")
    return f"{user}@{socket.gethostname()}"


async def serve_commands(address: str, journal: Callable[[Command], int]) -> asyncio.AbstractServer:
    """Listen for commands; ``journal`` journals one and returns its offset."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                reply = Reply(offset=journal(msgspec.json.decode(line, type=Command)))
            except (msgspec.DecodeError, CommandError) as exc:
                reply = Reply(error=str(exc))
            writer.write(msgspec.json.encode(reply) + b"\n")
            await writer.drain()
        finally:
            writer.close()

    if not address.startswith("\0"):
        Path(address).parent.mkdir(parents=True, exist_ok=True)
        Path(address).unlink(missing_ok=True)  # a socket left by a killed session
    return await asyncio.start_unix_server(handle, path=address)


def send_command(address: str, command: Command, timeout: float = 5.0) -> Reply | None:
    """Hand ``command`` to the live session listening at ``address``; None if none listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        sock.sendall(msgspec.json.encode(command) + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return msgspec.json.decode(answer, type=Reply)


def journal_directly(log: EmbeddedLog, session: str, command: Command, ts_event: int) -> int:
    """Append ``command`` to a session's journal while no live session runs; its offset."""
    if not log.has_topic(journal_topic(session)):
        raise CommandError(f"no session {session!r} in {log.root}")
    try:
        return append_command(log, session, command.event(ts_event, time.time_ns()))
    except PartitionLockedError as exc:
        raise CommandError(
            f"session {session!r} is being written ({exc}) but nothing answers on its command "
            "socket; is it a `tape ingest`? Commands go to live sessions."
        ) from None
