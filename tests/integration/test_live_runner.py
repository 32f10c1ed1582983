"""The live runner's hand-off rules, the append wake-up, and the real-money gate."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.app.brokers import BrokerRefusedError, LiveMoney
from engine.app.cli import app
from engine.app.feeds.binance import FeedConfig
from engine.app.ingest import binance
from engine.app.live.session import LiveConfig, LiveSession
from engine.events import decode
from engine.events.control import ClockTicked, HaltTrading
from engine.log import EmbeddedLog
from engine.log.journal import JournalWriter, journal_topic
from engine.log.notify import AppendWaiter
from engine.runtime import RunConfig
from engine.runtime.driver import PortOutput, slice_of
from engine.runtime.live import LiveRunner, split
from engine.runtime.processor import Slice
from engine.runtime.runs import start_run
from tests.trading_support import PIPELINES


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _on_disk(log: EmbeddedLog, run_id: str, port: str) -> int:
    return log.reader(f"run.{run_id}.{port}").end_offset


def test_orders_are_on_disk_in_their_step_and_other_ports_within_the_bound(samples: Path) -> None:
    log = EmbeddedLog(samples)
    config = RunConfig(pipeline="test-trading", stages={"decisions": {"every": 8}})
    run = start_run(log, "demo-btcusdt-usdm", config, pipelines=PIPELINES, run_id="lv")
    emitted = {"orders": 0, "book": 0}
    seen_on_disk: list[bool] = []

    def hook(output: PortOutput, piece: Slice) -> None:
        if output.port.name in emitted:
            emitted[output.port.name] += len(output.events)
        if output.port.name == "orders":  # what the gateway would hand over now is on disk
            seen_on_disk.append(_on_disk(log, "lv", "orders") == emitted["orders"])

    clock = _Clock()
    live = LiveRunner(run.runner, hook=hook, visible_within=0.1, clock=clock)
    for batch in log.reader(journal_topic("demo-btcusdt-usdm")).batches(size=64):
        live.step(slice_of(batch))
        assert _on_disk(log, "lv", "book") <= emitted["book"]
        clock.now += 0.01
        if (due := live.drain_due()) is None:  # drained (or nothing to drain)
            assert _on_disk(log, "lv", "book") == emitted["book"]
        else:  # waiting less than the bound
            assert 0 < due <= 0.1
    assert seen_on_disk
    assert all(seen_on_disk)
    assert emitted["book"] > 200


def test_split_cuts_market_and_control_slices() -> None:
    records = np.zeros(10, dtype=[("x", "<i8")])
    records["x"] = np.arange(10)
    whole = Slice(100, 110, market=records)
    whole.derived["journal_columns"] = "of the whole slice"
    parts = split(whole, [103, 107])
    assert all(not p.derived for p in parts)  # views of the whole are not a part's
    assert [(p.start, p.stop) for p in parts] == [(100, 103), (103, 107), (107, 110)]
    assert parts[1].market is not None
    assert parts[1].market["x"].tolist() == [3, 4, 5, 6]
    ticks = tuple(ClockTicked(i, i) for i in range(3))
    assert [p.control for p in split(Slice(5, 8, control=ticks), [7])] == [ticks[:2], ticks[2:]]


def test_a_follower_sleeps_until_the_writer_appends(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    writer = JournalWriter(log, "w")
    reader = log.reader(journal_topic("w"))
    with AppendWaiter(reader.directory) as waiter:
        assert waiter.mode == "inotify"  # Linux: woken by the kernel, no polling

        def append() -> None:
            time.sleep(0.2)
            writer.event(ClockTicked(1, 1))
            writer.flush()

        thread = threading.Thread(target=append)
        thread.start()
        assert waiter.wait(30.0)  # returns on the append, long before the timeout
        thread.join()
    assert reader.read(0) is not None
    writer.close()


def _config(broker: str, consent: LiveMoney) -> LiveConfig:
    feed = FeedConfig("BTCUSDT", "spot", "ws://127.0.0.1:9", "http://127.0.0.1:9")
    spec = binance.instrument("spot", "BTCUSDT")
    return LiveConfig("x", feed, spec, PIPELINES, broker=broker, consent=consent)


@pytest.mark.parametrize(
    ("consent", "said"),
    [
        (LiveMoney(False, {}), "starts only with --live-money AND"),
        (LiveMoney(True, {}), "starts only with --live-money AND"),
        (LiveMoney(False, {"name": "bigbank", "live_money": True}), "starts only with"),
        (LiveMoney(True, {"name": "other", "live_money": True}), "starts only with"),
        (LiveMoney(True, {"name": "bigbank", "live_money": True}), "no adapter for broker"),
    ],
)
def test_a_broker_other_than_paper_needs_both_consents(
    consent: LiveMoney, said: str, tmp_path: Path
) -> None:
    with pytest.raises(BrokerRefusedError, match=said):
        LiveSession(EmbeddedLog(tmp_path), _config("bigbank", consent))
    assert not (tmp_path / "topics").exists()  # refused before anything was written


def test_tape_live_refuses_real_money_without_consent(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["--data", str(tmp_path), "live", "binance", "BTCUSDT", "--session", "x",
         "--ws-url", "ws://127.0.0.1:9", "--rest-url", "http://127.0.0.1:9",
         "--broker", "bigbank", "--live-money"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "would trade real money" in result.output
    assert not (tmp_path / "topics").exists()


def test_tape_halt_without_a_live_session_journals_directly(samples: Path) -> None:
    runner = CliRunner()
    args = ["--data", str(samples), "halt", "demo-btcusdt-spot", "--reason", "maintenance"]
    result = runner.invoke(app, [*args, "--operator", "ops@desk"])
    assert result.exit_code == 0, result.output
    assert "HaltTrading journaled at demo-btcusdt-spot.journal offset" in result.output
    reader = EmbeddedLog(samples).reader(journal_topic("demo-btcusdt-spot"))
    last = list(reader.batches())[-1]
    (event,) = [decode(v) for v in last.values()][-1:]
    assert isinstance(event, HaltTrading)
    assert (event.reason, event.operator) == ("maintenance", "ops@desk")
    assert f"offset {reader.end_offset - 1:,}" in result.output
    missing = runner.invoke(app, ["--data", str(samples), "flatten", "no-such-session"])
    assert missing.exit_code == 1
    assert "no session 'no-such-session'" in missing.output
