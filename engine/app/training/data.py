"""Training data from the log: a ``labels`` pipeline run, its features joined with its labels.

Training reads the same log replay reads: the run's ``features`` and ``labels`` topics become
polars frames, joined on the vector's cause (``labels.origin``). Nothing is recomputed outside
the pipeline, so a row of training data is exactly what the live pipeline saw and learnt.

Several sessions (``tape train A B C``) are read the same way and stacked oldest first; they
must not overlap in time and must share the label and feature settings. Column ``part`` is a
row's session index, so journal offsets are only ever compared within one session.
"""

from __future__ import annotations

import itertools
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
from engine.models import SessionSource
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

    An offset cutoff keeps labels matured at journal offsets <= it (offsets of the last
    session, when rows of several are stacked); its time is reported as the latest maturity
    kept.
    """
    if cutoff.offset is not None:
        earlier = pl.col("part") < pl.col("part").max() if "part" in rows.columns else False
        kept = rows.filter((pl.col("maturity") <= cutoff.offset) | earlier)
        until_ts = int(kept["maturity_ts"].max()) if len(kept) else span[0]  # type: ignore[arg-type]
        return kept, until_ts
    if cutoff.fraction is not None:
        until_ts = span[0] + round(cutoff.fraction * (span[1] - span[0]))
    else:
        assert cutoff.ts is not None
        until_ts = cutoff.ts
    return rows.filter(pl.col("maturity_ts") <= until_ts), until_ts


@dataclass(frozen=True)
class Labelled:
    """The defined labelled rows of one or more sessions, oldest first (column ``part`` is
    the index into ``sources``), and the ``labels`` runs they came from."""

    rows: pl.DataFrame
    sources: list[SessionSource]
    manifests: list[RunManifest]
    reused: list[bool]
    """Per session, whether an identical ``labels`` run was reused."""

    @property
    def settings(self) -> dict[str, Any]:
        """The ``labels`` stage settings every session shares."""
        stages: dict[str, dict[str, Any]] = self.manifests[-1].config["stages"]  # type: ignore[assignment]
        return dict(stages["labels"])

    @property
    def horizon_ns(self) -> int:
        """The label horizon, ns: the embargo of every split."""
        return int(self.settings["horizon_ms"]) * 1_000_000


def labelled(
    log: EmbeddedLog,
    sessions: list[str],
    labels: dict[str, Any],
    on_progress: Callable[[Progress], None] | None = None,
    step: Callable[[str], None] = lambda _: None,
) -> Labelled:
    """Defined labelled rows of ``sessions`` with these label settings (see the module
    docstring); a :class:`TrainError` says why sessions cannot be stacked."""
    parts: list[tuple[SessionSource, RunManifest, pl.DataFrame]] = []
    reused: dict[str, bool] = {}
    for session in sessions:
        step(f"labels run over {session}")
        manifest, reused[session] = labels_run(log, session, labels, on_progress)
        first, last = session_span(log, manifest)
        rows = load_rows(log, manifest)
        source = SessionSource(
            session,
            manifest.run_id,
            manifest.journal_topic,
            manifest.journal_start,
            manifest.journal_stop,
            first,
            last,
        )
        parts.append((source, manifest, rows.filter(~rows["undefined"])))
    parts.sort(key=lambda p: p[0].first_ts)
    _stackable(parts)
    frames = [rows.with_columns(part=pl.lit(i, pl.Int64)) for i, (_, _, rows) in enumerate(parts)]
    return Labelled(
        pl.concat(frames),
        [p[0] for p in parts],
        [p[1] for p in parts],
        [reused[p[0].session] for p in parts],
    )


def _stackable(parts: list[tuple[SessionSource, RunManifest, pl.DataFrame]]) -> None:
    for (a, ma, _), (b, mb, _) in itertools.pairwise(parts):
        if b.first_ts <= a.last_ts:
            raise TrainError(
                f"sessions {a.session} and {b.session} overlap in time; training across "
                "sessions needs them one after another (train on each separately instead)"
            )
        sa: dict[str, Any] = ma.config["stages"]  # type: ignore[assignment]
        sb: dict[str, Any] = mb.config["stages"]  # type: ignore[assignment]
        for stage in ("features", "labels"):
            if sa[stage] != sb[stage]:
                raise TrainError(
                    f"sessions {a.session} and {b.session} have different {stage} settings "
                    f"({sa[stage]} vs {sb[stage]}): rows of one model must mean the same thing"
                )
