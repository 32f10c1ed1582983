"""Verification from the page: ``tape replay RUN --verify`` as a background job.

One replay runs at a time (each is CPU-bound; queued requests wait their turn); results
are kept for the server's lifetime, so the runs list shows which runs this server verified
and how it went. Replays are written to a temporary directory outside the data directory.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.log import EmbeddedLog, LogError
from engine.models import ModelStore, ModelStoreError
from engine.runtime import ConfigError, RunError, verify
from engine.runtime.replay import Divergence, Verification
from engine.runtime.runner import Progress
from engine.runtime.topology import Catalog


@dataclass
class Job:
    """One verification: its state, progress and outcome."""

    run_id: str
    state: str = "queued"
    """queued, running, identical, diverged or failed."""
    offset: int = 0
    stop: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    finished: float = 0.0

    def view(self) -> dict[str, Any]:
        """The job as JSON for the page."""
        return {
            "run_id": self.run_id,
            "state": self.state,
            "progress": {"offset": self.offset, "stop": self.stop},
            "result": self.result,
            "error": self.error,
        }


class Verifier:
    """Runs verification jobs one at a time; see the module docstring."""

    def __init__(self, log: EmbeddedLog, pipelines: Catalog, models: Path) -> None:
        self.log, self.pipelines, self.models = log, pipelines, models
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify")

    def start(self, run_id: str) -> Job:
        """Queue a verification of ``run_id`` (the one already queued or running, if any)."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is not None and job.state in ("queued", "running"):
                return job
            job = self._jobs[run_id] = Job(run_id)
        self._pool.submit(self._run, job)
        return job

    def get(self, run_id: str) -> Job | None:
        """The latest job of ``run_id`` (None: never verified by this server)."""
        with self._lock:
            return self._jobs.get(run_id)

    def close(self) -> None:
        """Stop taking jobs; a running replay finishes."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, job: Job) -> None:
        job.state = "running"

        def progress(p: Progress) -> None:
            job.offset, job.stop = p.offset, p.stop

        scratch = Path(tempfile.mkdtemp(prefix="tapedeck-verify-"))
        try:
            outcome = verify(
                self.log,
                job.run_id,
                pipelines=self.pipelines,
                on_progress=progress,
                models=ModelStore(self.models),
                scratch_root=scratch,
            )
            job.result = verification_view(outcome)
            job.state = "identical" if outcome.identical else "diverged"
        except (RunError, ConfigError, ModelStoreError, LogError) as exc:
            job.error, job.state = str(exc), "failed"
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            job.finished = time.time()


def verification_view(outcome: Verification) -> dict[str, Any]:
    """What the page shows of a verification: counts, and the first divergence field by field."""
    recorded = {o.port: o for o in outcome.manifest.outputs}
    differing = []
    for o in outcome.replayed:
        r = recorded.get(o.port)
        if o.port in outcome.differing_ports:
            differing.append(
                {
                    "port": o.port,
                    "recorded_count": r.count if r else None,
                    "recorded_chain": r.chain if r else None,
                    "replayed_count": o.count,
                    "replayed_chain": o.chain,
                }
            )
    return {
        "identical": outcome.identical,
        "events": outcome.events,
        "topics": len(outcome.replayed),
        "outputs_hash": outcome.manifest.outputs_hash,
        "code_differences": outcome.code_differences,
        "differing": differing,
        "divergence": None if outcome.divergence is None else divergence_view(outcome),
    }


def divergence_view(outcome: Verification) -> dict[str, Any]:
    """The first divergent event: where, which fields, what caused it, where to trace it."""
    d: Divergence | None = outcome.divergence
    assert d is not None
    a, b = d.recorded or {}, d.replayed or {}
    differs = set(d.fields)
    run_id = outcome.manifest.run_id
    return {
        "port": d.port,
        "topic": d.topic,
        "offset": d.offset,
        "cause": d.cause,
        "missing": "recorded" if d.recorded is None else "replayed" if d.replayed is None else None,
        "fields": [
            {"name": k, "recorded": a.get(k), "replayed": b.get(k), "differs": k in differs}
            for k in dict.fromkeys([*a, *b])
        ],
        "journal_topic": outcome.manifest.journal_topic,
        "journal_event": d.journal_event,
        "trace": f"/runs/{run_id}/trace/{d.port}/{d.offset}" if d.recorded is not None else None,
    }
