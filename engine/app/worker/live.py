"""A live session's pipeline on Kafka: the worker's loop on the session's journal topic.

On Kafka a live session keeps everything it has on a data directory (feed, clock, paper
broker, order gateway, status); what changes is the log under them. The journal goes to the
cluster (:class:`~engine.log.kafka.journal.KafkaJournalWriter`, every append acknowledged
before anything acts on it) and the pipeline is this worker (:class:`Worker`), hosted in a
thread of the live process: it consumes the journal topic read-committed and writes the run's
outputs, its state and its position in one Kafka transaction per cycle, exactly as ``tape
worker`` does, so the run is the bytes a worker or an embedded ``tape run`` of the journal
produces.

What the worker wrote reaches the session only once its transaction has committed: each
journal slice it processed, in order, with the outputs it caused
(:class:`~engine.runtime.live.Processed`). The session then does, slice by slice, what the
file-backed live runner does in its step: orders to the broker through the gateway, outputs to
the status, the slice to the broker. Orders therefore leave the process only once they are in
the run's ``orders`` topic on the cluster, and the broker's reports go back into the journal
topic like every other input.

The session does not import this module (use cases are independent, docs/architecture.md):
the CLI hands it :class:`LiveWorker` as the session's pipeline host.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from engine.app.worker.loop import Worker, WorkerProgress
from engine.app.worker.task import SessionTask, worker_run_id
from engine.events.control import InstrumentSpec
from engine.log.kafka import KafkaLog
from engine.models import ModelSource
from engine.runtime.driver import OutputWriter, PortOutput
from engine.runtime.live import Processed
from engine.runtime.topology import Catalog, RunConfig, resolve

POLL_SECONDS = 0.005
"""How long the live worker waits for journal records before committing what it has: each
non-empty wait is one transaction, so this bounds the latency the pipeline adds."""
COMMIT_EVERY = 5_000
"""At most this many journal events per transaction (a backlog is worked off in these)."""


def live_group(session: str) -> str:
    """The consumer group (and transactional id stem) of a live session's own worker."""
    return f"tapedeck.live.{session}"


class _Tap:
    """The task's output writer, noting each written output for the session as well."""

    def __init__(self, writer: OutputWriter, steps: list[Processed]) -> None:
        self.writer, self.steps = writer, steps

    def write(self, output: PortOutput) -> None:
        self.writer.write(output)
        self.steps[-1].outputs.append(output)

    def drain(self) -> None:
        self.writer.drain()


class LiveWorker:
    """A live session's worker thread; see the module docstring.

    Built before anything is journaled (it only derives the run id); :meth:`start` joins the
    session's own consumer group once the journal topic holds ``session.opened``.
    """

    def __init__(
        self,
        log: KafkaLog,
        session: str,
        config: RunConfig,
        instrument: InstrumentSpec,
        *,
        pipelines: Catalog,
        models: ModelSource | None,
    ) -> None:
        self.log, self.session, self.config = log, session, config
        self.pipelines, self.models = pipelines, models
        self.resolved = resolve(pipelines, config, instrument)
        self.run_id = worker_run_id(session, config.pipeline, self.resolved)
        """The run's id, derived as every worker derives it."""
        self.error: BaseException | None = None
        self._steps: list[Processed] = []
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self.worker: Worker | None = None

    def start(
        self,
        loop: asyncio.AbstractEventLoop,
        on_commit: Callable[[list[Processed]], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        """Join the group and consume the journal; ``on_commit`` gets each committed
        transaction's slices and ``on_error`` the error that stopped the worker, both called
        on ``loop``."""
        self.worker = Worker(
            self.log,
            self.config.pipeline,
            pipelines=self.pipelines,
            group=live_group(self.session),
            worker_id="live",
            sessions=[self.session],
            config=self.config,
            models=self.models,
            commit_every=COMMIT_EVERY,
            poll=POLL_SECONDS,
            on_task=self._tap,
        )
        worker = self.worker

        def committed(_progress: WorkerProgress) -> None:
            steps, self._steps[:] = list(self._steps), []
            if steps:
                loop.call_soon_threadsafe(on_commit, steps)

        def done() -> bool:
            tasks = worker.tasks.values()
            return self._closing.is_set() and bool(tasks) and all(t.closed for t in tasks)

        def run() -> None:
            try:
                worker.run(on_cycle=committed, until=done)
            except BaseException as exc:  # reported to the session, which stops
                self.error = exc
                loop.call_soon_threadsafe(on_error, exc)

        self._thread = threading.Thread(target=run, name=f"worker {self.session}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop once the run is complete (``session.closed`` journaled and processed)."""
        self._closing.set()

    async def finished(self) -> None:
        """Wait until the worker has stopped (after :meth:`close`, or on an error), and let
        the last committed transaction's callback run."""
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        await asyncio.sleep(0)

    def _tap(self, task: SessionTask) -> None:
        task.on_slice = lambda piece: self._steps.append(Processed(piece))
        task.driver.writer = _Tap(task.driver.writer, self._steps)
