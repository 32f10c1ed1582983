"""``engine.app.analysis`` and ``tape export`` on a real run: the default pipeline over the LOBSTER
AAPL sample. Expected values come from the catalogue's own decoder (``to_dict``, one record
at a time) and the run manifest, never from the code under test."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from engine.app import analysis
from engine.app.cli import app
from engine.app.pipelines import SHIPPED
from engine.events import to_dict
from engine.log import EmbeddedLog, FixedBatch
from engine.runtime import execute
from engine.runtime.manifest import RunManifest
from streams.features.schema import NAMES

SESSION = "demo-aapl"


@pytest.fixture(scope="module")
def log(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> EmbeddedLog:
    """A data directory with the AAPL session only."""
    data = tmp_path_factory.mktemp("analysis") / "data"
    others = [f"{s}*" for s in ("demo-btcusdt", "demo-wdo")]
    shutil.copytree(samples_master, data, ignore=shutil.ignore_patterns("writer.lock", *others))
    return EmbeddedLog(data)


@pytest.fixture(scope="module")
def aapl(log: EmbeddedLog) -> RunManifest:
    """One default run over the session."""
    return execute(log, SESSION, pipelines=SHIPPED).manifest


def _dicts(log: EmbeddedLog, topic: str, start: int = 0, stop: int | None = None) -> list[Any]:
    """(offset, to_dict) of every record, decoded one by one through the catalogue."""
    reader = log.reader(topic)
    end = reader.end_offset if stop is None else stop
    out, offset = [], start
    while offset < end and (batch := reader.read(offset, end - offset)) is not None:
        values = batch.records.tobytes() if isinstance(batch, FixedBatch) else None
        for i, value in enumerate(batch.values()):
            out.append((batch.base_offset + i, to_dict(value)))
        assert values is None or len(values) == len(batch) * log.config(topic).record_size
        offset = batch.next_offset
    return out


def _ns(column: pl.Series) -> list[int]:
    return column.dt.epoch("ns").to_list()


def test_run_frames_have_the_manifest_counts_and_types(log: EmbeddedLog, aapl: RunManifest) -> None:
    frames = analysis.run_frames(log, aapl.run_id)
    assert list(frames) == [out.port for out in aapl.outputs]
    for out in aapl.outputs:
        frame = frames[out.port]
        assert frame.height == out.count, out.port
        assert frame.columns[:2] == ["offset", "type"]
        if out.count:
            assert frame["offset"].to_list() == list(range(out.count))
            assert _ns(frame["ts_event"])[0] == out.first_ts
            assert _ns(frame["ts_event"])[-1] == out.last_ts
            assert frame.schema["ts_event"] == pl.Datetime("ns", "UTC")
    assert frames["portfolio"].height > 0
    assert frames["decisions"].height > 0


@pytest.mark.parametrize("port", ["book", "mid", "decisions", "predictions", "portfolio", "risk"])
def test_frame_rows_equal_the_catalogue_decoding(
    log: EmbeddedLog, aapl: RunManifest, port: str
) -> None:
    frame = analysis.topic_frame(log, f"run.{aapl.run_id}.{port}")
    expected = _dicts(log, f"run.{aapl.run_id}.{port}")
    assert frame.height == len(expected) > 0
    assert frame["offset"].to_list() == [o for o, _ in expected]
    events = [e for _, e in expected]
    assert [f"{t}@1" for t in frame["type"]] == [e.pop("type") for e in events]
    for name in events[0]:
        want = [e[name] for e in events]
        # book.top's causing journal offset is `cause` in frames (and in the SQL store).
        column = frame["cause" if name == "offset" else name]
        if name in analysis.TIME_COLUMNS:
            assert column.dtype == pl.Datetime("ns", "UTC")
            assert _ns(column) == want, (port, name)
        elif column.dtype.is_float() or isinstance(column.dtype, pl.Array):
            got = np.array(column.to_list(), dtype=float)
            np.testing.assert_array_equal(got, np.array(want, dtype=float), err_msg=name)
        else:
            assert column.to_list() == want, (port, name)


def test_features_are_one_column_each_with_nan_kept(log: EmbeddedLog, aapl: RunManifest) -> None:
    frame = analysis.topic_frame(log, f"run.{aapl.run_id}.features")
    assert frame.columns[-len(NAMES) :] == list(NAMES)
    values = np.array([event["values"] for _, event in _dicts(log, f"run.{aapl.run_id}.features")])
    matrix = frame.select(NAMES).to_numpy()
    # The short sample never finishes the 90 s warm-up: many features are NaN, and stay NaN.
    assert np.isnan(values).sum() > 0
    np.testing.assert_array_equal(np.isnan(matrix), np.isnan(values))
    np.testing.assert_array_equal(np.nan_to_num(matrix), np.nan_to_num(values))
    assert frame.select(NAMES).null_count().sum_horizontal().item() == 0


def test_journal_frame_is_the_run_journal_with_datetimes(
    log: EmbeddedLog, aapl: RunManifest
) -> None:
    frame = analysis.journal_frame(log, aapl.run_id)
    expected = _dicts(log, aapl.journal_topic, aapl.journal_start, aapl.journal_stop)
    assert frame.height == aapl.journal_stop - aapl.journal_start == len(expected)
    assert frame["offset"].to_list() == [o for o, _ in expected]
    assert Counter(frame["type"]) == Counter(e["type"].removesuffix("@1") for _, e in expected)
    assert _ns(frame["ts_event"]) == [e["ts_event"] for _, e in expected]
    assert _ns(frame["ts_recv"]) == [e["ts_recv"] for _, e in expected]
    assert frame.schema["ts_recv"] == pl.Datetime("ns", "UTC")
    days = frame["ts_event"].dt.date().unique().to_list()
    assert days == [datetime(2012, 6, 21, tzinfo=UTC).date()]  # LOBSTER's sample day
    opened = frame.filter(pl.col("type") == "session.opened").row(0, named=True)
    assert opened["session"] == SESSION
    assert opened["instrument"] == expected[0][1]["instrument"]


def test_one_event_type_keeps_its_own_field_names(log: EmbeddedLog, aapl: RunManifest) -> None:
    trades = analysis.topic_frame(log, aapl.journal_topic, event="market.trade")
    expected = [(o, e) for o, e in _dicts(log, aapl.journal_topic) if e["type"] == "market.trade@1"]
    assert trades.height == len(expected) > 0
    assert trades["offset"].to_list() == [o for o, _ in expected]
    assert trades["trade_id"].to_list() == [e["trade_id"] for _, e in expected]
    assert trades["price"].to_list() == [e["price"] for _, e in expected]
    assert set(trades["type"]) == {"market.trade"}


def test_export_writes_parquet_equal_to_the_frames(
    log: EmbeddedLog, aapl: RunManifest, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    result = CliRunner().invoke(
        app, ["--data", str(log.root), "export", aapl.run_id, str(out), "--format", "parquet"]
    )
    assert result.exit_code == 0, result.output
    frames = {"journal": analysis.journal_frame(log, aapl.run_id)}
    frames.update(analysis.run_frames(log, aapl.run_id))
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.parquet" for n in frames)
    for name, frame in frames.items():
        back = pl.read_parquet(out / f"{name}.parquet")
        assert_frame_equal(back, frame)
        assert f"{name}.parquet" in result.output
    lines = result.output.splitlines()
    for name, frame in frames.items():
        row = next(line for line in lines if f"{name}.parquet" in line)
        assert row.split()[-2] == str(frame.height), row  # the rows column, before the border


def test_export_of_an_unknown_run_is_explained(log: EmbeddedLog, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--data", str(log.root), "export", "nope", str(tmp_path)])
    assert result.exit_code == 2
    assert "no run 'nope'" in " ".join(result.output.split())


def test_the_python_example_in_the_docs_runs(log: EmbeddedLog, aapl: RunManifest) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "analysts.md").read_text()
    section = text[text.index("## DataFrames and Parquet") :]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert aapl.run_id in code
    namespace: dict[str, Any] = {"pl": pl}
    exec(code.replace('"tapedata"', repr(str(log.root))), namespace)
    assert namespace["decisions"].height == namespace["frames"]["decisions"].height > 0
    assert namespace["per_minute"]["n"].sum() == namespace["decisions"].height
    assert namespace["book"]["offset"].to_list() == list(range(100, 200))
    assert namespace["with_features"].height == namespace["decisions"].height
