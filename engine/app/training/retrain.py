"""Scheduled retraining: the gate (:mod:`engine.app.training.gate`) run once, or again each
time a live session has matured a given number of labels, until it closes.

The labels are counted by a ``labels`` pipeline that follows the last session's journal as it
grows (into a scratch directory, removed when the retrainer closes); each decision trains a
new candidate on everything journaled so far. A promoted candidate becomes the current bundle
the next decision compares against.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

from engine.app.pipelines import SHIPPED
from engine.app.training.data import PIPELINE
from engine.app.training.gate import GateDecision, evaluate
from engine.app.training.train import Step, TrainOptions
from engine.log import EmbeddedLog
from engine.log.journal import journal_topic
from engine.models import ModelStore
from engine.runtime import RunConfig, Runner, Topology
from engine.runtime.runner import Progress
from engine.runtime.runs import session_opened
from engine.runtime.topology import resolve


class Retrainer:
    """See the module docstring."""

    def __init__(
        self,
        log: EmbeddedLog,
        sessions: list[str],
        options: TrainOptions,
        store: ModelStore,
        current: str | None,
        on_progress: Callable[[Progress], None] | None = None,
        step: Step = lambda _: None,
    ) -> None:
        self.log, self.sessions, self.options, self.store = log, sessions, options, store
        self.current = current
        self.on_progress, self.step = on_progress, step
        self.closed = False
        """Whether the followed session has closed (``session.closed`` was counted)."""
        self.decided_at = 0
        """Labels counted when the last decision was taken."""
        self._runner: Runner | None = None

    def decide(self) -> GateDecision:
        """Train a candidate on everything journaled so far and gate it against the current."""
        decision = evaluate(
            self.log,
            self.sessions,
            self.current,
            self.options,
            self.store,
            self.on_progress,
            self.step,
        )
        if decision.promoted is not None:
            self.current = decision.candidate.bundle
        return decision

    def labels_so_far(self) -> int:
        """Labels the last session's journal has matured so far (its labels pipeline follows)."""
        runner = self._runner or self._follow()
        runner.reader.refresh()
        runner.advance(stop=runner.reader.end_offset)
        runner.drain()
        self.closed = runner.closed
        return next(s.count for s in runner.summaries() if s.port == "labels")

    def poll(self, every: int) -> GateDecision | None:
        """Decide when ``every`` more labels have matured since the last decision."""
        count = self.labels_so_far()
        if count - self.decided_at < every:
            return None
        self.decided_at = count
        return self.decide()

    def _follow(self) -> Runner:
        session = self.sessions[-1]
        spec = session_opened(self.log, session).instrument
        config = RunConfig(
            pipeline=PIPELINE, stages={"labels": self.options.labels} if self.options.labels else {}
        )
        resolved = resolve(SHIPPED, config, spec)
        topology = Topology(SHIPPED.get(PIPELINE), resolved, session, spec)
        scratch = EmbeddedLog(self._scratch())
        self._runner = Runner(self.log, journal_topic(session), scratch, "retrain", topology)
        self._runner.begin()
        return self._runner

    def _scratch(self) -> str:
        return str(self.log.root / "scratch" / f"retrain-{self.sessions[-1]}-{os.getpid()}")

    def close(self) -> None:
        """Stop following and remove the scratch directory."""
        if self._runner is not None:
            self._runner.close()
            shutil.rmtree(self._scratch(), ignore_errors=True)
            self._runner = None
