"""Shared by the models and training tests: a pipeline with the models stage, a trained
bundle on a copy of the samples, and a run helper."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.app.pipelines import SHIPPED
from engine.app.training import Cutoff, TrainOptions, TrainResult, train
from engine.events.decisions import LABEL, PREDICTION
from engine.events.features import FEATURES_VECTOR
from engine.log import EmbeddedLog
from engine.log.journal import journal_topic
from engine.models import ModelStore
from engine.runtime import Pipeline, RunConfig, Runner, Topology
from engine.runtime.runs import session_opened
from engine.runtime.topology import resolve
from streams.book.stage import BOOK_STAGE
from streams.features import FEATURES_STAGE
from streams.labels import LABELS_STAGE
from streams.mid import MID_STAGE
from streams.models import MODELS_STAGE
from tests.features_reference import fixed_topic

PIPELINE = Pipeline(
    "test-models",
    (BOOK_STAGE, MID_STAGE, FEATURES_STAGE, LABELS_STAGE, MODELS_STAGE),
    doc="tests: everything up to the models stage",
)
PIPELINES = SHIPPED.extended(PIPELINE)
"""The shipped pipelines and this module's."""
SESSION = "demo-aapl"


@dataclass
class Trained:
    """A bundle trained on a private copy of the samples (its store is ``<data>/models``)."""

    data: Path
    store: ModelStore
    result: TrainResult


def copy_samples(samples_master: Path, into: Path) -> Path:
    """A private copy of the ingested samples."""
    shutil.copytree(samples_master, into, ignore=shutil.ignore_patterns("writer.lock"))
    return into


def train_on(data: Path, until: str = "80%", **options: Any) -> Trained:
    """Train a bundle on the AAPL sample up to a share of the session."""
    store = ModelStore(data / "models")
    fraction = float(until.rstrip("%")) / 100
    result = train(
        EmbeddedLog(data), SESSION, TrainOptions(Cutoff(until, fraction=fraction), **options), store
    )
    return Trained(data, store, result)


def config(bundle: str = "", **models: Any) -> RunConfig:
    """A ``test-models`` run config."""
    return RunConfig(pipeline="test-models", stages={"models": {"bundle": bundle, **models}})


def topology(log: EmbeddedLog, run_config: RunConfig, store: ModelStore | None) -> Topology:
    opened = session_opened(log, SESSION)
    resolved = resolve(PIPELINES, run_config, opened.instrument)
    return Topology(PIPELINE, resolved, SESSION, opened.instrument, store)


def run_outputs(
    data: Path, scratch: Path, run_config: RunConfig, store: ModelStore | None, batch: int = 65536
) -> dict[str, np.ndarray[Any, Any]]:
    """Run ``test-models`` over the AAPL sample into ``scratch``; features, labels, predictions."""
    log = EmbeddedLog(data)
    runner = Runner(
        log, journal_topic(SESSION), EmbeddedLog(scratch), "t", topology(log, run_config, store)
    )
    runner.begin()
    runner.advance(batch=batch)
    runner.close()
    out = EmbeddedLog(scratch)
    return {
        "features": fixed_topic(out, "run.t.features", FEATURES_VECTOR.dtype),
        "labels": fixed_topic(out, "run.t.labels", LABEL.dtype),
        "predictions": fixed_topic(out, "run.t.predictions", PREDICTION.dtype),
    }


def copy_journal(
    data: Path,
    into: str,
    insert: dict[int, list[Any]] | None = None,
    close: bool = True,
    session: str = SESSION,
) -> None:
    """Journal ``session``'s events again as session ``into``, with ``insert[k]`` journaled
    just before the event at offset ``k`` (what a live session where an operator acted at
    that moment holds); without ``close``, the final ``session.closed`` is left out (a session
    still open)."""
    import msgspec

    from engine.events import decode
    from engine.events.control import SessionClosed, SessionOpened
    from engine.events.market import MARKET_RECORD
    from engine.log import FixedBatch
    from engine.log.journal import JournalWriter

    log = EmbeddedLog(data)
    writer = JournalWriter(log, into)
    pending = dict(insert or {})
    for batch in log.reader(journal_topic(session)).batches():
        for k in range(batch.base_offset, batch.next_offset):
            for event in pending.pop(k, []):
                writer.event(event)
            if isinstance(batch, FixedBatch):
                writer.market(
                    batch.view(MARKET_RECORD)[k - batch.base_offset : k - batch.base_offset + 1]
                )
                continue
            event = decode(batch.values()[k - batch.base_offset])
            if isinstance(event, SessionOpened):
                event = msgspec.structs.replace(event, session=into)
            if isinstance(event, SessionClosed) and not close:
                continue
            writer.event(event)
    writer.close()
