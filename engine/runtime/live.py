"""The live runner: the one driver loop fed in memory by the process that journals.

In a live session the journal is written by the same process that runs the pipeline, so the
events it appends are handed to :meth:`LiveRunner.step` as slices straight away (nothing is
read back, nothing polls); the driver, its topology and the run's topics are those of the
embedded :class:`~engine.runtime.runner.Runner`, so a live run and a replay of its journal
produce the same bytes. What differs is only when outputs become visible:

* **urgent** ports (the ``orders`` port: what leaves the process) are appended to their topic
  in the step that produced them, before anything acts on them;
* the others buffer as in a replay and are appended once :attr:`LiveRunner.visible_within`
  seconds have passed since the last drain (:meth:`LiveRunner.drain_due`, which the session
  calls after each burst of work and on a timer), so readers see them within that bound.

Slices are cut at snapshot boundaries, as a replay cuts them, and a snapshot is taken there.
A readers in another process follows the journal files instead (``Runner.advance`` with
``follow``, woken by :class:`~engine.log.notify.AppendWaiter`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.runtime.driver import PortOutput
from engine.runtime.processor import Slice
from engine.runtime.runner import Runner, RunTopics

OutputHook = Callable[[PortOutput, Slice], None]
"""Sees every written output with the slice that caused it (orders to the gateway, status)."""


@dataclass
class Processed:
    """One journal slice a pipeline processed elsewhere (a worker on Kafka), with the outputs
    it wrote for it, in order: what a live session acts on once they are committed."""

    piece: Slice
    outputs: list[PortOutput] = field(default_factory=list)


class _LiveTopics:
    """The run's topics with urgent ports appended at once and a hook on every output."""

    def __init__(self, topics: RunTopics, urgent: frozenset[str], hook: OutputHook | None):
        self.topics, self.urgent, self.hook = topics, urgent, hook
        self.piece: Slice | None = None
        self.buffered = False

    def write(self, output: PortOutput) -> None:
        name = output.port.name
        self.topics.write(output)
        if name in self.urgent:
            self.topics.topics[name].drain()
        else:
            self.buffered = True
        if self.hook is not None:
            assert self.piece is not None
            self.hook(output, self.piece)

    def drain(self) -> None:
        self.topics.drain()
        self.buffered = False


class LiveRunner:
    """See the module docstring."""

    def __init__(
        self,
        runner: Runner,
        urgent: frozenset[str] = frozenset({"orders"}),
        hook: OutputHook | None = None,
        visible_within: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runner = runner
        self.visible_within, self.clock = visible_within, clock
        self._topics = _LiveTopics(runner.topics, urgent, hook)
        runner.driver.writer = self._topics
        self._drained = clock()

    @property
    def offset(self) -> int:
        """The next journal offset to process."""
        return self.runner.offset

    @property
    def closed(self) -> bool:
        """Whether ``session.closed`` has been processed."""
        return self.runner.closed

    def step(self, piece: Slice) -> None:
        """Process one appended slice (cut at snapshot boundaries; snapshots taken there)."""
        every = self.runner.snapshot_every
        for part in _cut(piece, every):
            self._topics.piece = part
            self.runner.driver.step(part)
            if every and part.stop % every == 0:
                self.runner.take_snapshot()
                self._drained = self.clock()

    def drain_due(self) -> float | None:
        """Append buffered outputs if they have waited ``visible_within``; otherwise the
        seconds until they will have (None: nothing is buffered)."""
        if not self._topics.buffered:
            self._drained = self.clock()
            return None
        waited = self.clock() - self._drained
        if waited >= self.visible_within:
            self.drain()
            return None
        return self.visible_within - waited

    def drain(self) -> None:
        """Append every buffered output now."""
        self._topics.drain()
        self._drained = self.clock()

    def snapshot(self) -> None:
        """Take a snapshot at the current offset (a clean stop, so a restart resumes here)."""
        self.runner.take_snapshot()


def _cut(piece: Slice, every: int) -> list[Slice]:
    """``piece`` split where offsets reach multiples of ``every`` (0: never)."""
    if not every:
        return [piece]
    first = (piece.start // every + 1) * every
    return split(piece, list(range(first, piece.stop, every)))


def split(piece: Slice, offsets: list[int]) -> list[Slice]:
    """``piece`` cut just before each of ``offsets`` (ascending, inside the slice). The parts
    are new slices: what stages derived from the whole (``Slice.derived``) is not theirs."""
    out: list[Slice] = []
    start = piece.start
    for stop in [*offsets, piece.stop]:
        if stop <= start:
            continue
        lo, hi = start - piece.start, stop - piece.start
        market: Any = piece.market[lo:hi] if piece.market is not None else None
        out.append(Slice(start, stop, market, piece.control[lo:hi]))
        start = stop
    return out
