"""The ``toy`` benchmark pipeline on real data: the strategy against a plain Python reference of
the peers' rules run on the LOBSTER files themselves (not on our book), its spacing and position
cap, market orders filled from the book in effect, the bench's tiling, and independence from
slicing and restarts."""

from __future__ import annotations

import gzip
import math
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bench.toy_lobster import tile
from engine.app.cli import app
from engine.app.ingest.lobster import midnight_ns
from engine.app.ingest.lobster_rows import EMPTY_ASK, EMPTY_BID
from engine.app.pipelines import SHIPPED
from engine.events import decode
from engine.events.book import BOOK_TOP_DTYPE
from engine.events.market import MARKET_RECORD
from engine.events.trading import OrderAcknowledged, OrderCancelled, OrderFilled, OrderSubmitted
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic
from engine.runtime import RunConfig, Runner
from engine.runtime.topology import ConfigError, Pipeline
from tests.conftest import SAMPLES
from tests.sliced import Chains, resumed_chains, sliced_chains, topology

MESSAGES = SAMPLES / "lobster_AAPL_2012-06-21_message_10.csv.gz"
BOOKS = SAMPLES / "lobster_AAPL_2012-06-21_orderbook_10.csv.gz"
TILES = 5
WRITTEN = Pipeline(
    "test-toy", SHIPPED.get("toy").stages, doc="test only: the toy pipeline, every port kept"
)
PIPELINES = SHIPPED.extended(WRITTEN)
"""The ``toy`` pipeline with its book kept, so the tests can read the tops it acted on."""
CAP_BINDS = {"toy": {"spacing_s": 2.0, "max_position": 200}}
"""A config under which the position cap refuses signals (1 order per 2 s, cap of 2 orders)."""


@pytest.fixture(scope="module")
def tiled_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sample tiled ``TILES`` times as the bench does: (messages, orderbook)."""
    messages, books, _ = tile(tmp_path_factory.mktemp("csv"), TILES, MESSAGES, BOOKS)
    return messages, books


@pytest.fixture(scope="module")
def tiled(tiled_csv: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiled sample ingested as session ``tiled``."""
    data = tmp_path_factory.mktemp("tiled")
    messages, books = tiled_csv
    ingest = ["ingest", "lobster", str(messages), str(books), "--symbol", "AAPL"]
    ingest += ["--date", "2012-06-21", "--session", "tiled", "--quiet"]
    result = CliRunner().invoke(app, ["--data", str(data), "--fsync", "never", *ingest])
    assert result.exit_code == 0, result.output
    return data


class Run(NamedTuple):
    tops: np.ndarray[Any, Any]
    orders: list[Any]
    executions: list[Any]
    chains: list[tuple[str, int, str]]


def _run(
    data: Path, session: str, scratch: Path, stages: dict[str, Any], name: str = "test-toy"
) -> Run:
    log, sink = EmbeddedLog(data), EmbeddedLog(scratch)
    config = RunConfig(pipeline=name, stages=stages)
    runner = Runner(
        log, journal_topic(session), sink, "t", topology(log, session, config, pipelines=PIPELINES)
    )
    runner.begin()
    runner.advance()
    runner.close()
    batches = {port: _batches(sink, port) for port in ("orders", "executions")}
    tops = [b.view(BOOK_TOP_DTYPE) for b in _batches(sink, "book") if isinstance(b, FixedBatch)]
    return Run(
        np.concatenate(tops) if tops else np.zeros(0, BOOK_TOP_DTYPE),
        [decode(v) for b in batches["orders"] for v in b.values()],
        [decode(v) for b in batches["executions"] for v in b.values()],
        [(s.port, s.count, s.chain) for s in runner.summaries()],
    )


def _batches(log: EmbeddedLog, port: str) -> list[Any]:
    topic = f"run.t.{port}"
    if not log.has_topic(topic):
        return []
    reader, found = log.reader(topic), []
    offset = reader.start_offset
    while (batch := reader.read(offset, 1 << 20)) is not None:
        found.append(batch)
        offset = batch.next_offset
    return found


@pytest.fixture(scope="module")
def runs(
    samples_master: Path, tiled: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Run]:
    def scratch() -> Path:
        return tmp_path_factory.mktemp("run")

    return {
        "demo-aapl": _run(samples_master, "demo-aapl", scratch(), {}),
        "tiled": _run(tiled, "tiled", scratch(), {}),
        "tiled-cap": _run(tiled, "tiled", scratch(), CAP_BINDS),
        "tiled-now": _run(
            tiled, "tiled", scratch(), {"toy": {**CAP_BINDS["toy"], "latency_ms": 0}}
        ),
    }


# -- the rules -------------------------------------------------------------------------------


def reference(messages: Path, books: Path, **overrides: float) -> tuple[list[tuple], int]:
    """The peers' toy (``ToyLogic.on_book`` of ``shared/peers/lobster_common.py``) in plain
    Python, called where NautilusTrader calls it, over the LOBSTER files themselves: a trade
    print (message type 4 or 5) first, then a quote when the row's level 1 changed and both
    sides are there. (ts, side, mid in price units) of each order, and how many signals the
    position cap refused."""
    c = {"qty": 100, "cap": 500, "bp": 1.0, "imbalance": 0.2, "tau": 30.0, "spacing": 60.0}
    c.update(overrides)
    midnight = midnight_ns(date(2012, 6, 21))
    orders: list[tuple] = []
    refused = 0
    quote = seen = None
    ema, last_ts, last_order, position = 0.0, -1, -(1 << 62), 0

    def on_book(ts: int) -> None:
        nonlocal ema, last_ts, last_order, position, refused
        assert quote is not None
        bid, ask, bq, aq = quote[2] / 1e4, quote[0] / 1e4, float(quote[3]), float(quote[1])
        if not (ask > bid > 0.0) or bq + aq <= 0.0:
            return
        mid = 0.5 * (bid + ask)
        if last_ts < 0:
            ema = mid
        else:
            ema += (1.0 - math.exp(-(ts - last_ts) / (c["tau"] * 1e9))) * (mid - ema)
        last_ts = ts
        if ts - last_order < int(c["spacing"] * 1e9):
            return
        imb, dev = (bq - aq) / (bq + aq), (mid - ema) / ema
        side = 0
        if dev > c["bp"] * 1e-4 and imb > c["imbalance"]:
            side = 1
        elif dev < -c["bp"] * 1e-4 and imb < -c["imbalance"]:
            side = -1
        if side and abs(position + side * c["qty"]) > c["cap"]:
            refused += 1
        elif side:
            position += side * int(c["qty"])
            last_order = ts
            orders.append((ts, side, (quote[2] + quote[0]) / 2))

    for message, row in zip(_lines(messages), _lines(books), strict=True):
        seconds, kind = message.split(",")[:2]
        ts = midnight + int(Decimal(seconds) * 10**9)
        if kind in ("4", "5") and quote is not None:
            on_book(ts)
        l1 = tuple(int(x) for x in row.split(",")[:4])
        if l1 != seen:
            seen = l1
            if l1[1] > 0 and l1[3] > 0 and l1[0] != EMPTY_ASK and l1[2] != EMPTY_BID:
                quote = l1
                on_book(ts)
    return orders, refused


GOOG = SAMPLES.parents[1].parent / "shared" / "data" / "lobster"
GOOG_PAIR = [
    GOOG / f"GOOG_2012-06-21_34200000_57600000_{k}_10.csv.gz" for k in ("message", "orderbook")
]


@pytest.mark.skipif(not GOOG.is_dir(), reason="../shared/data/lobster is not present")
def test_the_goog_day_gives_the_peers_orders(tmp_path: Path) -> None:
    """The full GOOG day, untiled: the rebuilt book equals every orderbook row with nothing
    taken from the oracle, and the toy sends exactly the reference's orders: the 284 that
    NautilusTrader 1.221.0 sends on it (docs/toy-benchmark.md)."""
    ingest = ["ingest", "lobster", *map(str, GOOG_PAIR), "--symbol", "GOOG"]
    ingest += ["--date", "2012-06-21", "--session", "goog", "--quiet"]
    for args in (ingest, ["book-check", "goog"]):
        result = CliRunner().invoke(app, ["--data", str(tmp_path / "d"), "--fsync", "never", *args])
        assert result.exit_code == 0, result.output
    assert re.search(r"resynced\s*│\s*0\s", result.output), result.output
    run = _run(tmp_path / "d", "goog", tmp_path / "run", {}, name="toy")
    expected, _ = reference(*GOOG_PAIR)
    assert len(expected) == 284
    assert [(o.ts_event, o.side, o.reference_mid) for o in run.orders] == expected


def _lines(path: Path) -> list[str]:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode().split()


@pytest.mark.parametrize(("name", "minimum"), [("demo-aapl", 1), ("tiled", TILES - 1)])
def test_orders_follow_the_reference_rules(
    runs: dict[str, Run], tiled_csv: tuple[Path, Path], name: str, minimum: int
) -> None:
    """Every order the stage sent, and only those, in order, with ids from 1, 100-share market
    entries arriving 1 ms after they were sent, each caused by a journal record of its time."""
    run = runs[name]
    expected, _ = reference(*((MESSAGES, BOOKS) if name == "demo-aapl" else tiled_csv))
    assert len(expected) >= minimum  # 60 s spacing, 49 s per copy of the sample
    assert [(o.ts_event, o.side, o.reference_mid) for o in run.orders] == expected
    assert [o.order_id for o in run.orders] == list(range(1, len(expected) + 1))
    for o in run.orders:
        assert (o.kind, o.purpose, o.size, o.price, o.reduce_only) == (
            "market",
            "entry",
            100,
            0,
            False,
        )
        assert o.arrives_at == o.ts_event + 1_000_000


def test_the_position_cap_and_spacing_hold(
    runs: dict[str, Run], tiled_csv: tuple[Path, Path]
) -> None:
    """With 2 s spacing and a cap of 200 the cap refuses signals; the position of the orders
    sent never leaves +/-200 and orders are at least 2 s apart (60 s with the defaults)."""
    for name, spacing, cap in (("tiled", 60, 500), ("tiled-cap", 2, 200)):
        orders = runs[name].orders
        positions = np.cumsum([o.side * o.size for o in orders])
        assert np.abs(positions).max() <= cap
        assert min(np.diff([o.ts_event for o in orders])) >= spacing * 1_000_000_000
    capped = runs["tiled-cap"]
    expected, refused = reference(*tiled_csv, spacing=2.0, cap=200)
    assert refused > 0
    assert [(o.ts_event, o.side, o.reference_mid) for o in capped.orders] == expected


def _clock(data: Path, session: str) -> np.ndarray[Any, Any]:
    """The venue's clock after each journal offset: the running max of market times."""
    reader = EmbeddedLog(data).reader(journal_topic(session))
    times, offset = [], reader.start_offset
    while (batch := reader.read(offset, 1 << 20)) is not None:
        if isinstance(batch, FixedBatch):
            times += batch.view(MARKET_RECORD)["ts_event"].tolist()
        else:
            times += [0] * len(batch.values())
        offset = batch.next_offset
    return np.maximum.accumulate(np.array(times, np.int64))


@pytest.mark.parametrize("name", ["tiled", "tiled-cap", "tiled-now"])
def test_market_orders_fill_at_the_book_in_effect_when_they_arrive(
    runs: dict[str, Run], tiled: Path, name: str
) -> None:
    """Each order is acknowledged at the first journal event whose time reaches its arrival
    (with no latency: the event that caused it), then walks the opposite side of the book top
    in effect there, level by level, taking min(what is left, the level's size); what ten
    levels cannot fill is cancelled."""
    run = runs[name]
    clock = _clock(tiled, "tiled")
    reports: dict[int, list[Any]] = {}
    for e in run.executions:
        reports.setdefault(e.order_id, []).append(e)
    assert set(reports) == {o.order_id for o in run.orders}
    for o in run.orders:
        assert isinstance(o, OrderSubmitted)
        at = o.cause + int(np.searchsorted(clock[o.cause :], o.arrives_at))
        top = run.tops[np.searchsorted(run.tops["offset"], at, side="right") - 1]
        side = "ask" if o.side > 0 else "bid"
        expected: list[tuple] = [("ack", at)]
        left = o.size
        for price, size in zip(
            top[f"{side}_price"].tolist(), top[f"{side}_size"].tolist(), strict=True
        ):
            if left == 0 or price == 0:
                break
            take = min(left, size)
            left -= take
            expected.append(("fill", at, price, take, left))
        if left:
            expected.append(("cancel", at, left, "book_too_thin"))
        assert [_brief(r) for r in reports[o.order_id]] == expected, o


def _brief(report: Any) -> tuple:
    if isinstance(report, OrderAcknowledged):
        return ("ack", report.cause)
    if isinstance(report, OrderFilled):
        assert report.liquidity == "taker"
        return ("fill", report.cause, report.price, report.size, report.remaining)
    assert isinstance(report, OrderCancelled), report
    return ("cancel", report.cause, report.remaining, report.reason)


def test_config_errors_name_the_stage_and_what_is_allowed(tiled: Path, tmp_path: Path) -> None:
    for stages, message in (
        ({"toy": {"order_size": 0}}, "order_size must be > 0"),
        ({"toy": {"tau_s": -1.0}}, "tau_s must be > 0"),
        ({"toy": {"max_position": 50}}, "max_position must be >= order_size"),
        ({"toy": {"speed": 1}}, "unknown setting"),
        ({"execution": {"queue_model": "lifo"}}, "queue_model must be one of"),
    ):
        with pytest.raises(ConfigError, match=message):
            _run(tiled, "tiled", tmp_path, stages)


# -- the bench's tiling ----------------------------------------------------------------------


def test_the_tiled_book_jumps_back_at_each_seam_as_the_orderbook_does(tiled: Path) -> None:
    """At each seam the orderbook file jumps back to the first row's book; the journal's depth
    corrections carry the jump, so the rebuilt book equals every row, none taken from it."""
    result = CliRunner().invoke(app, ["--data", str(tiled), "book-check", "tiled"])
    assert result.exit_code == 0, result.output
    assert re.search(r"compared\s*│\s*4,995\s", result.output), result.output
    assert re.search(r"resynced\s*│\s*0\s", result.output), result.output


def test_tiling_shifts_each_copy_by_the_span_plus_one_millisecond(tmp_path: Path) -> None:
    messages, books, rows = tile(tmp_path, 3, MESSAGES, BOOKS)
    lines = messages.read_text().splitlines()
    assert rows == len(lines) == 3 * (rows // 3)
    n = rows // 3
    ns = [int(Decimal(line.split(",", 1)[0]) * 10**9) for line in lines]
    span = ns[n - 1] - ns[0] + 1_000_000
    for k in (1, 2):
        assert [t - k * span for t in ns[k * n : (k + 1) * n]] == ns[:n]
        assert [x.split(",", 1)[1] for x in lines[k * n : (k + 1) * n]] == [
            x.split(",", 1)[1] for x in lines[:n]
        ]
    assert ns == sorted(ns)
    assert books.read_text().splitlines() == 3 * books.read_text().splitlines()[:n]


# -- determinism -----------------------------------------------------------------------------


def _chains(tiled: Path, scratch: Path, cuts: list[int], batch: int) -> Chains:
    config = RunConfig(pipeline="toy", stages=CAP_BINDS)
    return sliced_chains(tiled, "tiled", scratch, config, cuts, batch, pipelines=PIPELINES)


@pytest.fixture(scope="module")
def chains(tiled: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    return _chains(tiled, tmp_path_factory.mktemp("c"), [], 65536)


def test_the_toy_pipeline_writes_only_orders_and_executions(chains: list[tuple]) -> None:
    assert [port for port, _, _ in chains] == ["orders", "executions"]
    assert all(count > 0 for _, count, _ in chains)


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cuts=st.lists(st.integers(0, TILES * 1000), max_size=6),
    batch=st.sampled_from([7, 97, 1000, 65536]),
)
def test_outputs_do_not_depend_on_slicing(
    tiled: Path,
    tmp_path_factory: pytest.TempPathFactory,
    chains: list[tuple],
    cuts: list[int],
    batch: int,
) -> None:
    assert _chains(tiled, tmp_path_factory.mktemp("sliced"), cuts, batch) == chains


def test_one_event_at_a_time_gives_identical_bytes(
    tiled: Path, chains: list[tuple], tmp_path: Path
) -> None:
    assert _chains(tiled, tmp_path, [], 1) == chains


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(every=st.sampled_from([97, 499, 2048]), kill_at=st.integers(1, TILES * 1000))
def test_resume_from_a_snapshot_matches_an_uninterrupted_run(
    tiled: Path,
    tmp_path_factory: pytest.TempPathFactory,
    chains: list[tuple],
    every: int,
    kill_at: int,
) -> None:
    scratch = tmp_path_factory.mktemp("resume")
    config = RunConfig(pipeline="toy", snapshot_every=every, stages=CAP_BINDS)
    got = resumed_chains(tiled, "tiled", scratch, config, kill_at, pipelines=PIPELINES)
    assert got == chains


def test_snapshots_round_trip_and_refuse_another_config(tiled: Path, tmp_path: Path) -> None:
    """Mid-run with an order in flight: each stage's state restores into a fresh instance
    bit for bit; a state taken under another config is refused."""
    log = EmbeddedLog(tiled)
    config = RunConfig(pipeline="toy", stages=CAP_BINDS)
    top = topology(log, "tiled", config, pipelines=PIPELINES)
    runner = Runner(log, journal_topic("tiled"), EmbeddedLog(tmp_path), "t", top)
    runner.begin()
    toy, execution = top.stages[2][1], top.stages[3][1]
    while runner.offset < runner.reader.end_offset and not execution.inspect()["orders"]:
        runner.advance(stop=runner.offset + 1, batch=1)
    runner.close()
    assert execution.inspect()["orders"], "an order must be in flight mid-run"
    assert toy.inspect()["next_order_id"] > 1
    fresh = topology(log, "tiled", config, pipelines=PIPELINES).stages
    for (_, stage), (_, new) in zip(top.stages, fresh, strict=True):
        state = stage.snapshot()
        new.restore(state)
        assert new.snapshot() == state
    other = RunConfig(
        pipeline="toy", stages={"toy": {"tau_s": 10.0}, "execution": {"taker_fee_bp": 1.0}}
    )
    changed = topology(log, "tiled", other, pipelines=PIPELINES).stages
    for index in (2, 3):
        with pytest.raises(ValueError, match="config"):
            changed[index][1].restore(top.stages[index][1].snapshot())
