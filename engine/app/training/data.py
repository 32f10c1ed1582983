"""Training data from the log: a ``labels`` pipeline run, its features joined with its labels.

Training reads the same log replay reads: the run's ``features`` and ``labels`` topics become
polars frames, joined on the vector's cause (``labels.origin``). Nothing is recomputed outside
the pipeline, so a row of training data is exactly what the live pipeline saw and learnt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from engine.app.pipelines import SHIPPED
from engine.events.decisions import L_UNDEFINED, LABEL
from engine.events.features import FEATURES_VECTOR
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic
from engine.runtime import RunConfig, RunManifest, execute, list_runs
from engine.runtime.manifest import code_version
from engine.runtime.processor import Port
from engine.runtime.runner import Progress
from engine.runtime.runs import read_port, session_opened
from engine.runtime.topology import config_hash, resolve
from streams.features import NAMES

PIPELINE = "labels"


class TrainError(Exception):
    """Training that cannot go ahead; the message says why and what to do."""


@dataclass(frozen=True)
class Cutoff:
    """``--until``: labels matured at or before a journal offset, a time, or a fraction of the
    session's event-time span (exactly one is set)."""

    text: str
    offset: int | None = None
    ts: int | None = None
    fraction: float | None = None


def labels_run(
    log: EmbeddedLog,
    session: str,
    labels: dict[str, Any],
    on_progress: Callable[[Progress], None] | None = None,
) -> tuple[RunManifest, bool]:
    """A complete ``labels`` run over the whole session with these label settings: an
    identical existing one (same config, journal range and code) or a new one; and whether it
    was reused."""
    spec = session_opened(log, session).instrument
    config = RunConfig(pipeline=PIPELINE, stages={"labels": labels} if labels else {})
    wanted = config_hash(resolve(SHIPPED, config, spec))
    reader = log.reader(journal_topic(session))
    here = code_version()
    for m in reversed(list_runs(log.root)):
        if (
            m.session == session
            and m.pipeline == PIPELINE
            and m.status == "complete"
            and m.config_hash == wanted
            and (m.journal_start, m.journal_stop) == (reader.start_offset, reader.end_offset)
            and not m.code.differences(here)
        ):
            return m, True
    return execute(log, session, config, pipelines=SHIPPED, on_progress=on_progress).manifest, False


def _fixed(log: EmbeddedLog, run_id: str, port: Port) -> np.ndarray[Any, Any]:
    records = read_port(log, run_id, port)
    assert isinstance(records, np.ndarray)
    return records


def load_rows(log: EmbeddedLog, manifest: RunManifest) -> pl.DataFrame:
    """Every labelled vector of the run, in origin order: ``origin``, ``origin_ts``,
    ``maturity`` (journal offset), ``maturity_ts``, ``label``, ``undefined``, then the 65
    features by name."""
    vectors = _fixed(log, manifest.run_id, Port("features", FEATURES_VECTOR))
    labels = _fixed(log, manifest.run_id, Port("labels", LABEL))
    features = pl.DataFrame(np.ascontiguousarray(vectors["values"]), schema=list(NAMES))
    features = features.with_columns(origin=pl.Series(vectors["cause"].astype(np.int64)))
    outcomes = pl.DataFrame(
        {
            "origin": labels["origin"].astype(np.int64),
            "origin_ts": labels["origin_ts"].astype(np.int64),
            "maturity": labels["cause"].astype(np.int64),
            "maturity_ts": labels["ts_event"].astype(np.int64),
            "label": labels["label"].astype(np.int64),
            "undefined": (labels["flags"] & L_UNDEFINED) != 0,
        }
    )
    joined = outcomes.join(features, on="origin", how="inner", validate="1:1")
    return joined.sort("origin")


def session_span(log: EmbeddedLog, manifest: RunManifest) -> tuple[int, int]:
    """The first and last market event time of the run's journal range (its event-time span)."""
    reader = log.reader(manifest.journal_topic)
    first, last = None, None
    for batch in reader.batches(manifest.journal_start, manifest.journal_stop):
        if isinstance(batch, FixedBatch):
            ts = batch.view(MARKET_RECORD)["ts_event"]
            if len(ts):
                low, high = int(ts.min()), int(ts.max())
                first = low if first is None else min(first, low)
                last = high if last is None else max(last, high)
    if first is None or last is None:
        raise TrainError(f"session {manifest.session} has no market events to train on")
    return first, last


def matured_by(
    rows: pl.DataFrame, cutoff: Cutoff, span: tuple[int, int]
) -> tuple[pl.DataFrame, int]:
    """The rows whose label matured at or before the cutoff, and the cutoff as a time (ns).

    An offset cutoff keeps labels matured at journal offsets <= it; its time is reported as
    the latest maturity kept.
    """
    if cutoff.offset is not None:
        kept = rows.filter(pl.col("maturity") <= cutoff.offset)
        until_ts = int(kept["maturity_ts"].max()) if len(kept) else span[0]  # type: ignore[arg-type]
        return kept, until_ts
    if cutoff.fraction is not None:
        until_ts = span[0] + round(cutoff.fraction * (span[1] - span[0]))
    else:
        assert cutoff.ts is not None
        until_ts = cutoff.ts
    return rows.filter(pl.col("maturity_ts") <= until_ts), until_ts
