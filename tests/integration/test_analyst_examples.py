"""The SQL of docs/analysts.md's "Worked examples" runs on SQLite and PostgreSQL and is right.

Each ```sql block of that section runs through ``run_query`` against a store filled by the
``Projector`` from a default run of the demo's Binance spot session; the expected values are
computed here from the log (``engine.app.analysis``) and the run's manifest, not from the store.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from engine.app import analysis
from engine.app.pipelines import SHIPPED
from engine.app.store import migrate
from engine.app.store.projector import Projector, Scope
from engine.app.store.query import run_query
from engine.events.decisions import AGENTS
from engine.log import EmbeddedLog
from engine.runtime.manifest import RunManifest
from engine.runtime.runs import execute

ROOT = Path(__file__).resolve().parents[2]
SESSION = "demo-btcusdt-spot-day"
RUN = "demo-btcusdt-spot-day-default-1"
MINUTE = 60_000_000_000
LATER = 30_000_000_000


def worked_examples() -> list[str]:
    """The ```sql blocks of the "Worked examples" section, in order."""
    text = (ROOT / "docs" / "analysts.md").read_text()
    section = text.split("\n## Worked examples\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


EXAMPLES = worked_examples()


@pytest.fixture(scope="module")
def demo(
    samples_master: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[EmbeddedLog, RunManifest]:
    """The samples with the demo's default run of the spot session."""
    data = tmp_path_factory.mktemp("examples") / "data"
    shutil.copytree(samples_master, data, ignore=shutil.ignore_patterns("writer.lock"))
    log = EmbeddedLog(data)
    return log, execute(log, SESSION, run_id=RUN, pipelines=SHIPPED).manifest


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest,
    demo: tuple[EmbeddedLog, RunManifest],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """An upgraded store on each backend holding the run and its session's journal."""
    log, run = demo
    admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'store.sqlite'}"
    else:
        server = request.getfixturevalue("postgres_server")
        schema = f"tape_test_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(server, poolclass=sa.NullPool)
        with admin.begin() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
        options = {"options": f"-csearch_path={schema}"}
        url = sa.make_url(server).update_query_dict(options).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        projector = Projector(log, url)
        try:
            projector.project(Scope(run=run.run_id))
        finally:
            projector.close()
        yield url
    finally:
        if admin is not None:
            with admin.begin() as connection:
                connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def _example(url: str, number: int) -> pl.DataFrame:
    frame = run_query(url, EXAMPLES[number - 1]).frame
    assert frame.height > 0, f"example {number} returned no rows"
    return frame


def _ns(frame: pl.DataFrame, column: str = "ts_event") -> np.ndarray:
    return frame[column].dt.epoch("ns").to_numpy()


def test_the_section_has_four_examples_on_the_demo_run() -> None:
    assert len(EXAMPLES) == 4
    assert all(RUN in sql for sql in EXAMPLES)


def test_pnl_by_minute_adds_up_to_the_runs_net_pnl(
    store: str, demo: tuple[EmbeddedLog, RunManifest]
) -> None:
    log, run = demo
    frame = _example(store, 1)
    assert run.report["trading"]["in_sample"] is None  # no bundle: the whole run is one window
    report = run.report["trading"]["out_of_sample"]["account"]
    cumulative = frame["cumulative_pnl"].to_list()
    assert cumulative[-1] == pytest.approx(report["net_pnl"], abs=1e-9)
    assert sum(frame["pnl"]) == pytest.approx(cumulative[-1], abs=1e-9)
    states = analysis.run_frames(log, run.run_id)["portfolio"]
    minutes = sorted({int(t) // MINUTE * 60 for t in _ns(states)})
    assert frame["minute_start_unix_s"].to_list() == minutes
    assert frame["fees"][-1] == pytest.approx(report["fees"], abs=1e-9)


def test_first_orders_causal_chain(store: str, demo: tuple[EmbeddedLog, RunManifest]) -> None:
    log, run = demo
    frames = analysis.run_frames(log, run.run_id)
    first = frames["orders"].row(0, named=True)
    row = _example(store, 2).row(0, named=True)
    assert _example(store, 2).height == 1
    assert (row["order_id"], row["cause"]) == (first["order_id"], first["cause"])
    assert row["side"] == first["side"] == row["decision"]  # an entry goes the decision's way
    votes = frames["votes"].filter(pl.col("cause") == first["cause"])["votes"].to_list()[0]
    assert [row[f"{agent}_vote"] for agent in AGENTS] == list(votes)
    trades = analysis.topic_frame(
        log, f"{SESSION}.journal", event="market.trade", stop=first["cause"] + 1
    )
    last = trades.row(-1, named=True)
    assert (row["trade_offset"], row["trade_price"]) == (last["offset"], last["price"])


def test_features_at_fills_split_by_the_later_mid_move(
    store: str, demo: tuple[EmbeddedLog, RunManifest]
) -> None:
    log, run = demo
    frames = analysis.run_frames(log, run.run_id)
    fills = (
        frames["executions"]
        .filter(pl.col("type") == "executions.order_filled")
        .unique(["order_id", "side", "purpose", "cause", "ts_event"])
    )
    mids = frames["mid"].filter(pl.col("mid").is_not_nan())
    causes, times, mid = mids["cause"].to_numpy(), _ns(mids), mids["mid"].to_numpy()
    expected: Counter[str] = Counter()
    for side, cause, ts in zip(fills["side"], fills["cause"], _ns(fills), strict=True):
        later = np.searchsorted(times, ts + LATER, side="left")
        if later == len(times):
            continue  # no mid 30 s after this fill: the session ended
        at_fill = mid[np.searchsorted(causes, cause, side="right") - 1]
        expected["for" if side * (mid[later] - at_fill) > 0 else "against"] += 1
    frame = _example(store, 3)
    assert dict(zip(frame["move_30s"], frame["fills"], strict=True)) == dict(expected)


def test_agent_accuracy_per_minute_counts_every_matured_vote(
    store: str, demo: tuple[EmbeddedLog, RunManifest]
) -> None:
    log, run = demo
    frames = analysis.run_frames(log, run.run_id)
    labels = dict(zip(frames["labels"]["origin"], frames["labels"]["label"], strict=True))
    votes = frames["votes"]
    counts: Counter[tuple[str, int]] = Counter()
    correct: Counter[tuple[str, int]] = Counter()
    for cause, ts, row in zip(votes["cause"], _ns(votes), votes["votes"].to_list(), strict=True):
        if cause not in labels:
            continue  # its label has not matured by the end of the session
        for agent, vote in zip(AGENTS, row, strict=True):
            if vote != 0:
                key = (agent, int(ts) // MINUTE * 60)
                counts[key] += 1
                correct[key] += vote == labels[cause]
    frame = _example(store, 4)
    got = {(a, m): n for a, m, n in frame.select("agent", "minute_start_unix_s", "votes").rows()}
    assert got == dict(counts)
    for agent, minute, n, right, accuracy in frame.rows():
        assert right == correct[(agent, minute)]
        assert 0.0 <= accuracy <= 1.0
        assert accuracy == pytest.approx(right / n, abs=1e-12)
