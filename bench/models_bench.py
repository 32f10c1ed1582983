"""Labels, models and training costs on the bundled samples and the shared real data.

Run: ``.venv/bin/python bench/models_bench.py``. Ingests the samples and the shared files into a
temporary data directory, then reports, per session:

1. label class balance with the per-venue defaults (docs/models.md);
2. ``tape train`` wall time (``--until 80%``, defaults) and the bundle's holdout accuracy;
3. the ``labels`` stage's own throughput (time inside its ``process``, per journal event);
4. the compiled evaluator's cost per vector for each model of the bundle (batch and one row);
5. the river online model's cost per predict and per learn;
6. the whole pipeline (book, mid, features, labels, models with the bundle and the online
   model) in replay (events/s) and one journal event at a time (p50 / p99 / max per event).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.app.pipelines import SHIPPED
from engine.app.training import Cutoff, TrainOptions, train
from engine.app.training.data import TrainError, labels_run, load_rows
from engine.log import EmbeddedLog
from engine.log.journal import journal_topic
from engine.models import ModelStore, load_card
from engine.runtime import Pipeline, RunConfig, Runner, Topology, execute, read_manifest
from engine.runtime.runs import session_opened
from engine.runtime.topology import resolve
from streams.book.stage import BOOK_STAGE
from streams.features import FEATURES_STAGE, INDEX, NAMES
from streams.labels import LABELS_STAGE
from streams.mid import MID_STAGE
from streams.models import MODELS_STAGE, ONLINE_FEATURES
from streams.models.online import OnlineModel
from streams.models.trees import compile_model, model_inputs, raw_values

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import ingest_samples  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
PIPELINE = Pipeline(
    "bench-models", (BOOK_STAGE, MID_STAGE, FEATURES_STAGE, LABELS_STAGE, MODELS_STAGE)
)
PIPELINES = SHIPPED.extended(PIPELINE)
LIVE_EVENTS = 20_000


def ingest_shared(data: Path) -> list[str]:
    from typer.testing import CliRunner

    from engine.app.cli import app

    inputs = {
        "spot": ["binance", str(SHARED / "crypto" / "binance_spot_btcusdt_20240808.gz")],
        "usdm": ["binance", str(SHARED / "crypto" / "binance_usdm_btcusdt_20240808.gz")],
        "wdo": ["b3", str(SHARED / "b3" / "book_data_processed_sample.csv")],
    }
    for session, command in inputs.items():
        args = ["--data", str(data), "--fsync", "never", "ingest", *command, "--session", session]
        result = CliRunner().invoke(app, [*args, "--quiet"])
        assert result.exit_code == 0, result.output
    return list(inputs)


def class_balance(labels: np.ndarray) -> str:
    shares = [np.mean(labels == c) for c in (-1, 0, 1)]
    return f"{len(labels)} labels, down/flat/up {'/'.join(f'{s:.2f}' for s in shares)}"


def timed_labels(log: EmbeddedLog, session: str) -> float:
    """Seconds spent inside the labels stage's process over the whole journal."""
    opened = session_opened(log, session)
    resolved = resolve(PIPELINES, RunConfig(pipeline="labels"), opened.instrument)
    topology = Topology(PIPELINE_LABELS, resolved, session, opened.instrument)
    stage = topology.stages[-1][1]
    spent = [0.0]
    original = stage.process

    def process(piece: Any) -> Any:
        began = time.perf_counter()
        out = original(piece)
        spent[0] += time.perf_counter() - began
        return out

    stage.process = process  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as scratch:
        runner = Runner(log, journal_topic(session), EmbeddedLog(Path(scratch)), "b", topology)
        runner.begin()
        runner.advance()
        runner.close()
    return spent[0]


PIPELINE_LABELS = Pipeline("labels-bench", (BOOK_STAGE, MID_STAGE, FEATURES_STAGE, LABELS_STAGE))


def evaluator_costs(store: ModelStore, bundle: str, values: np.ndarray) -> str:
    card = load_card(store, bundle)
    parts = []
    for role, member in card.models.items():
        if not all(c in INDEX for c in member.columns):
            continue  # a meta-learner over other models' outputs
        trees = compile_model(store.get(member.hash))
        x = model_inputs(values, [INDEX[c] for c in member.columns])
        raw_values(trees, x[:1])
        began = time.perf_counter()
        raw_values(trees, x)
        batch = (time.perf_counter() - began) / len(x) * 1e6
        began = time.perf_counter()
        for i in range(min(2000, len(x))):
            raw_values(trees, x[i : i + 1])
        single = (time.perf_counter() - began) / min(2000, len(x)) * 1e6
        trees_n = len(trees.leaf_start)
        parts.append(f"{role} ({trees_n} trees): {batch:.2f} us/vector batch, {single:.2f} one row")
    return "; ".join(parts)


def river_costs(values: np.ndarray, labels: np.ndarray) -> str:
    model = OnlineModel(list(ONLINE_FEATURES), 0.02, 0.0, 5.0)
    columns = [INDEX[n] for n in ONLINE_FEATURES]
    rows = values[:, columns].tolist()
    learn = predict = 0.0
    for row, label in zip(rows, labels.tolist(), strict=True):
        began = time.perf_counter()
        model.learn(row, label)
        learn += time.perf_counter() - began
        began = time.perf_counter()
        model.predict(row)
        predict += time.perf_counter() - began
    n = len(rows)
    return f"predict {predict / n * 1e6:.1f} us, learn {learn / n * 1e6:.1f} us ({n} vectors)"


def live(log: EmbeddedLog, session: str, config: RunConfig, store: ModelStore) -> str:
    opened = session_opened(log, session)
    resolved = resolve(PIPELINES, config, opened.instrument)
    topology = Topology(PIPELINE, resolved, session, opened.instrument, store)
    with tempfile.TemporaryDirectory() as scratch:
        runner = Runner(log, journal_topic(session), EmbeddedLog(Path(scratch)), "b", topology)
        runner.begin()
        stop = min(runner.reader.end_offset, runner.offset + LIVE_EVENTS)
        costs = []
        while runner.offset < stop:
            began = time.perf_counter()
            runner.advance(stop=runner.offset + 1, batch=1)
            costs.append(time.perf_counter() - began)
        runner.close()
    us = np.array(costs) * 1e6
    return (
        f"{len(us)} events one at a time: p50 {np.percentile(us, 50):.0f} us, p99 "
        f"{np.percentile(us, 99):.0f} us, max {us.max():.0f} us"
    )


def bench(log: EmbeddedLog, session: str) -> None:
    print(f"\n== {session}")
    manifest, _ = labels_run(log, session, {})
    rows = load_rows(log, read_manifest(log.root, manifest.run_id))
    rows = rows.filter(~rows["undefined"])
    values, labels = rows.select(NAMES).to_numpy(), rows["label"].to_numpy()
    print(f"labels {manifest.config['stages']['labels']}: {class_balance(labels)}")  # type: ignore[index]
    end = log.reader(journal_topic(session)).end_offset
    spent = timed_labels(log, session)
    print(f"labels stage: {spent * 1e3:.1f} ms for {end:,} events = {end / spent:,.0f} events/s")
    print("river: " + river_costs(values, labels))
    store = ModelStore(log.root / "models")
    began = time.perf_counter()
    try:
        result = train(log, session, TrainOptions(Cutoff("80%", fraction=0.8)), store)
    except TrainError as exc:
        print(f"train --until 80%: {exc}")
        return
    meta = result.card.metrics["meta"]
    print(
        f"train --until 80%: {time.perf_counter() - began:.2f} s; meta holdout accuracy "
        f"{meta.accuracy:.3f} vs baseline {meta.baseline_accuracy:.3f}"
    )
    print("evaluator: " + evaluator_costs(store, result.bundle, values))
    config = RunConfig(pipeline=PIPELINE.name, stages={"models": {"bundle": result.bundle}})
    walls = [
        execute(log, session, config, models=store, pipelines=PIPELINES).manifest.wall_seconds
        for _ in range(3)
    ]
    best = min(walls)
    print(f"whole pipeline (replay, best of 3): {best:.3f} s = {end / best:,.0f} events/s")
    print("whole pipeline live: " + live(log, session, config, store))


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        ingest_samples(data)
        sessions = ["demo-aapl", "demo-btcusdt-spot", "demo-btcusdt-usdm", "demo-wdo"]
        if SHARED.is_dir():
            sessions += ingest_shared(data)
        log = EmbeddedLog(data)
        for session in sessions:
            bench(log, session)


if __name__ == "__main__":
    main()
