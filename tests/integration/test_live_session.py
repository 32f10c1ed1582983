"""``tape live`` as a real process against ``tape exchange-sim``: clean stops, kills and
restarts, and the finished run replayed bit for bit."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np

from engine.events.broker import BrokerOrderFilled
from engine.events.control import ClockTicked, SessionClosed, SessionResumed
from engine.log import EmbeddedLog
from engine.runtime import read_manifest, verify
from tests.live_support import USDM, Simulator, journal, live_process, wait_for_journal
from tests.trading_support import PIPELINES

TRADE = 1


def _verified(data: Path, run_id: str) -> None:
    result = verify(EmbeddedLog(data), run_id, pipelines=PIPELINES)
    assert result.identical, result.differing_ports


def test_sigterm_stops_cleanly_and_the_same_command_resumes(tmp_path: Path) -> None:
    args = ("--market", "usdm", "--pipeline", "test-trading", "--tick-ms", "100")
    with Simulator(USDM, "--max-speed") as urls:
        proc = live_process(tmp_path, urls, "s", "r", *args)
        wait_for_journal(tmp_path, "s", 4000)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)  # a clean stop well within 10 s
        assert proc.returncode == 0, err.decode()
        assert b"session s closed (SIGTERM received)" in out
        manifest = read_manifest(tmp_path, "r")
        assert manifest.status == "stopped"
        _, events = journal(tmp_path, "s")
        assert isinstance(events[-1], SessionClosed)
        assert events[-1].reason == "SIGTERM received"
        _verified(tmp_path, "r")  # a stopped run verifies as it stands
        stopped_at = manifest.journal_stop

        again = live_process(tmp_path, urls, "s", "r", *args, "--end-with-feed")
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err.decode()
    manifest = read_manifest(tmp_path, "r")
    assert manifest.status == "complete"
    assert manifest.journal_stop > stopped_at
    assert manifest.resumed_from  # from the snapshot taken at the clean stop
    records, events = journal(tmp_path, "s")
    assert any(isinstance(e, SessionResumed) for e in events)
    assert any(isinstance(e, ClockTicked) for e in events)
    trades = records["id"][records["type_id"] == TRADE]
    assert len(np.unique(trades)) == len(trades)  # no trade journaled twice across the stop
    _verified(tmp_path, "r")


def test_sigkill_then_the_same_command_continues_and_the_run_verifies(tmp_path: Path) -> None:
    args = ("--market", "usdm", "--pipeline", "test-trading", "--tick-ms", "100", "--end-with-feed")
    with Simulator(USDM, "--max-speed") as urls:
        proc = live_process(tmp_path, urls, "k", "rk", *args)
        wait_for_journal(tmp_path, "k", 6000)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        before, before_events = journal(tmp_path, "k")
        assert read_manifest(tmp_path, "rk").status == "running"

        again = live_process(tmp_path, urls, "k", "rk", *args)
        _out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err.decode()
    after, after_events = journal(tmp_path, "k")
    # nothing journaled was lost: the restarted journal extends what was there
    assert after[: len(before)].tobytes() == before.tobytes()
    assert after_events[: len(before_events)] == before_events
    trades = after["id"][after["type_id"] == TRADE]
    assert len(np.unique(trades)) == len(trades)  # nothing journaled twice
    manifest = read_manifest(tmp_path, "rk")
    assert manifest.status == "complete"
    assert manifest.resumed_from
    fills = [e for e in after_events if isinstance(e, BrokerOrderFilled) and e.account == "rk"]
    assert fills  # the paper broker traded, before and after the kill
    _verified(tmp_path, "rk")
