"""What the pages show, as JSON-ready dicts: sessions, runs, a run's charts, traces.

Built from the log and the run manifests only (the log is the truth); nothing here writes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from engine.app.runview import RunData, downsample, open_run
from engine.app.runview.card import feature_drift, periods
from engine.app.runview.series import pairs
from engine.app.web.verifier import Job
from engine.events.control import SessionOpened
from engine.log import EmbeddedLog
from engine.runtime import Catalog, Link, RunError, list_runs, trace
from engine.runtime.manifest import RunManifest
from engine.runtime.runs import session_opened
from streams.trading.report import Report, report_rows

MAX_MARKERS = 2000
"""Order and fill markers drawn per view at most (evenly thinned beyond)."""
MAX_TABLE_ROWS = 500
"""Orders and fills listed in the run page's tables at most (the first ones)."""


class RunCache:
    """Recently opened runs; a complete run never changes, a running one is re-read."""

    def __init__(self, log: EmbeddedLog, models: Path, size: int = 4) -> None:
        self.log, self.models, self.size = log, models, size
        self._runs: OrderedDict[str, RunData] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, manifest: RunManifest) -> RunData:
        """The run's data, from the cache while its manifest is unchanged."""
        with self._lock:
            cached = self._runs.get(manifest.run_id)
            if cached is not None and cached.manifest == manifest and manifest.status == "complete":
                self._runs.move_to_end(manifest.run_id)
                return cached
        run = open_run(self.log, manifest.run_id, self.models)
        with self._lock:
            self._runs[manifest.run_id] = run
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)
        return run


def sessions(log: EmbeddedLog) -> list[dict[str, Any]]:
    """Every session journal: instrument, source, events and time range."""
    out = []
    for topic in sorted(t for t in log.topics() if t.endswith(".journal")):
        name = topic.removesuffix(".journal")
        start, end = log.watermarks(topic)
        try:
            opened: SessionOpened | None = session_opened(log, name)
        except RunError:  # a journal that does not start with session.opened: list it anyway
            opened = None
        out.append(
            {
                "session": name,
                "events": end - start,
                "venue": opened.instrument.venue if opened else "?",
                "symbol": opened.instrument.symbol if opened else "?",
                "source": opened.source if opened else "",
            }
        )
    return out


def runs(log: EmbeddedLog, job_of: Callable[[str], Job | None]) -> list[dict[str, Any]]:
    """Every run: status, pipeline, bundle, outputs hash, verification state here."""
    out = []
    for m in list_runs(log.root):
        job = job_of(m.run_id)
        out.append(
            {
                "run_id": m.run_id,
                "session": m.session,
                "pipeline": m.pipeline,
                "status": m.status,
                "bundle": m.models.get("bundle", ""),
                "outputs_hash": m.outputs_hash,
                "events": sum(o.count for o in m.outputs),
                "started": m.started,
                "verification": job.state if job is not None else "not verified here",
            }
        )
    return out


def run_summary(run: RunData, job: Job | None) -> dict[str, Any]:
    """A run's page: manifest, report, model card with its periods, rejections, tables."""
    m = run.manifest
    stamps = [(o.first_ts, o.last_ts) for o in m.outputs if o.count]
    orders, fills = run.orders(), run.fills()
    card = run.card
    return {
        "run_id": m.run_id,
        "session": m.session,
        "pipeline": m.pipeline,
        "status": m.status,
        "journal": {"topic": m.journal_topic, "start": m.journal_start, "stop": m.journal_stop},
        "outputs_hash": m.outputs_hash,
        "code": {"commit": m.code.commit, "dirty": m.code.dirty},
        "ports": [{"port": o.port, "count": o.count, "chain": o.chain} for o in m.outputs],
        "time_range": [min(s for s, _ in stamps) / 1e6, max(e for _, e in stamps) / 1e6]
        if stamps
        else None,
        "instrument": msgspec.structs.asdict(run.instrument),
        "report": _report(m, run.instrument.currency, run.instrument.size_scale),
        "min_confidence": _setting(m, "trading", "min_confidence"),
        "rejections": run.rejections(),
        "orders": orders[:MAX_TABLE_ROWS],
        "fills": fills[:MAX_TABLE_ROWS],
        "orders_total": len(orders),
        "fills_total": len(fills),
        "card": None if card is None else _card(card, run),
        "bundle": m.models.get("bundle", ""),
        "verification": None if job is None else job.view(),
    }


def _setting(m: RunManifest, stage: str, key: str) -> Any:
    """One resolved stage setting of the run (None: the run has no such stage)."""
    stages: dict[str, dict[str, Any]] = m.config.get("stages", {})  # type: ignore[assignment]
    return stages.get(stage, {}).get(key)


def _report(m: RunManifest, currency: str, size_scale: int) -> list[list[str]] | None:
    if "trading" not in m.report:
        return None
    report = msgspec.convert(m.report["trading"], Report)
    return [list(row) for row in report_rows(report, currency, size_scale)]


def _card(card: Any, run: RunData) -> dict[str, Any]:
    data = card.data
    return {
        "session": data.session,
        "labels_run": data.run_id,
        "until": data.until,
        "train": {"rows": data.train.rows, "first_ts": data.train.first_ts,
                  "last_ts": data.train.last_ts},
        "holdout": {"rows": data.holdout.rows, "first_ts": data.holdout.first_ts,
                    "last_ts": data.holdout.last_ts},
        "metrics": {
            role: {"rows": s.rows, "accuracy": s.accuracy, "log_loss": s.log_loss,
                   "baseline_accuracy": s.baseline_accuracy}
            for role, s in card.metrics.items()
        },
        "periods": [
            {"label": p.label, "start": p.start_ns / 1e6, "end": p.end_ns / 1e6}
            for p in periods(card, run)
        ],
        "same_session": data.session == run.manifest.session,
    }  # fmt: skip


MAIN_LINES = ("mid", "equity", "drawdown", "position")
"""Lines drawn on the large charts; the rest (decisions, probabilities, votes) get half the
points, as their charts are half the height."""


def charts(run: RunData, start: int | None, end: int | None, points: int) -> dict[str, Any]:
    """Every line of the run in ``[start, end]`` (ns), downsampled to ``points``, and markers."""
    lines = {}
    raw = 0
    for name, line in run.lines().items():
        shown = line.window(start, end)
        raw += len(shown.ts)
        lines[name] = pairs(downsample(shown, points if name in MAIN_LINES else points // 2))
    return {
        "lines": lines,
        "raw_points": raw,
        "orders": _markers(run.orders(), start, end),
        "fills": _markers(run.fills(), start, end),
    }


def _markers(rows: list[dict[str, Any]], start: int | None, end: int | None) -> dict[str, Any]:
    inside = [
        r for r in rows if (start is None or r["ts"] >= start) and (end is None or r["ts"] <= end)
    ]
    step = max(1, -(-len(inside) // MAX_MARKERS))
    shown = inside[::step]
    return {
        "total": len(inside),
        "points": [{**r, "ms": r["ts"] / 1e6} for r in shown],
    }


def drift(run: RunData) -> dict[str, Any]:
    """Feature drift between the bundle's training rows and the run (PSI per model input)."""
    card = run.card
    if card is None:
        return {"available": False, "reason": "the run used no model bundle"}
    found = feature_drift(card, run)
    if not found:
        return {"available": False, "reason": "the training rows' features are not in this log"}
    return {
        "available": True,
        "features": [
            {"feature": d.feature, "psi": d.psi, "train_mean": d.train_mean,
             "run_mean": d.run_mean}
            for d in found
        ],
    }  # fmt: skip


def trace_tree(log: EmbeddedLog, run_id: str, port: str, offset: int, pipelines: Catalog) -> Any:
    """The causal chain of one event (``tape trace``) as nested dicts."""
    return _link(trace(log, run_id, port, offset, pipelines=pipelines))


def _link(link: Link) -> dict[str, Any]:
    return {
        "port": link.port,
        "offset": link.offset,
        "relation": link.relation,
        "event": link.event,
        "inputs": [_link(child) for child in link.inputs],
    }
