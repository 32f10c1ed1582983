"""The Binance feed adapter against the exchange simulator, over real loopback sockets.

A recording streamed through the simulator and journaled live equals the same recording
ingested from the file; gaps resynchronise the book; reconnects lose and repeat nothing;
malformed frames are quarantined and the session goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.app.bookcheck import check_session
from engine.app.exchange_sim import load, parse
from engine.app.pipelines import SHIPPED
from engine.events.control import FeedDisconnected, FeedGapDetected, FeedSubscribed
from engine.events.market import F_FIRST, F_GAP, F_LAST
from engine.log import EmbeddedLog
from engine.runtime import RunConfig, execute
from engine.runtime.runs import read_port
from tests.live_support import SPOT, USDM, feed_recording, journal, quarantined

TRADE, LEVEL, QUOTE, SNAPSHOT = 1, 6, 7, 8
SYNCED, STALE = 1, 2


def _comparable(
    records: np.ndarray[Any, Any], untimed: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """The records with receive times zeroed, and the event times of messages that carry
    none (derived from receive times) zeroed too."""
    out = records.copy()
    out["ts_event"][untimed] = 0
    out["ts_recv"] = 0
    return out


@pytest.mark.parametrize(
    ("recording", "ingested"), [(SPOT, "demo-btcusdt-spot"), (USDM, "demo-btcusdt-usdm")]
)
def test_live_journal_equals_the_file_ingest(
    recording: Path, ingested: str, samples_master: Path, tmp_path: Path
) -> None:
    stats = feed_recording(tmp_path, recording, "live")
    live, live_events = journal(tmp_path, "live")
    filed, filed_events = journal(samples_master, ingested)
    assert stats.repeats == 0
    assert stats.quarantined == 0
    assert stats.connections == 1
    assert len(live) == len(filed) > 10_000
    # spot snapshots and book tickers carry no venue time: the file stamps them with the
    # recorder's receive time, the live feed with the venue time it estimates, so their event
    # times are compared only for being in the venue's time base (the recorder's clock was
    # 1.3 s behind the venue's)
    untimed = filed["ts_event"] == filed["ts_recv"]
    assert _comparable(live, untimed).tobytes() == _comparable(filed, untimed).tobytes()
    assert (np.abs(live["ts_event"][untimed] - filed["ts_event"][untimed]) < 5e9).all()
    assert (live["ts_recv"] > filed["ts_recv"]).all()  # received now, not in 2024
    gaps = [(g.expected_update_id, g.received_update_id, g.detail)
            for g in live_events if isinstance(g, FeedGapDetected)]  # fmt: skip
    assert gaps == [
        (g.expected_update_id, g.received_update_id, g.detail)
        for g in filed_events
        if isinstance(g, FeedGapDetected)
    ]
    assert [type(e).__name__ for e in live_events] == [
        "SessionOpened", "FeedSubscribed", *(["FeedGapDetected"] * len(gaps)), "FeedDisconnected"
    ]  # fmt: skip


def _final_book(data: Path, session: str) -> np.ndarray[Any, Any]:
    log = EmbeddedLog(data)
    outcome = execute(log, session, RunConfig(pipeline="book"), pipelines=SHIPPED)
    tops = read_port(log, outcome.manifest.run_id, SHIPPED.get("book").stages[0].outputs[0])
    assert isinstance(tops, np.ndarray)
    return tops


def _snapshot_offsets(records: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    first = (records["type_id"] == SNAPSHOT) & (records["flags"] & F_FIRST != 0)
    return np.flatnonzero(first)


def test_a_gap_is_journaled_resnapshotted_and_the_book_resyncs(
    samples_master: Path, tmp_path: Path
) -> None:
    # at 20 times the recorded pace the feed keeps up, so the new snapshot lands soon after
    # the gap and the book is compared with the venue's tickers after it too
    stats = feed_recording(tmp_path, SPOT, "live", [parse("drop:40@1000")], speed=20)
    records, events = journal(tmp_path, "live")
    gaps = [e for e in events if isinstance(e, FeedGapDetected)]
    assert stats.gaps == len(gaps) == 1
    assert stats.snapshots == 2
    assert "spot continuity" in gaps[0].detail
    flagged = np.flatnonzero(records["flags"] & F_GAP)
    snapshots = _snapshot_offsets(records)
    assert len(snapshots) == 2
    assert snapshots[1] > flagged[0]
    tops = _final_book(tmp_path, "live")
    stale_after_gap = tops[tops["status"] & STALE != 0]
    assert len(stale_after_gap) > 0  # the book knew it was stale...
    assert tops["status"][-1] == SYNCED  # ...until the snapshot resynchronised it
    report = check_session(EmbeddedLog(tmp_path), "live")
    assert report.ok
    assert report.mismatched == 0
    assert report.gaps == 1
    # the book is stale only briefly: it is compared almost as often as without the gap
    unfaulted = check_session(EmbeddedLog(samples_master), "demo-btcusdt-spot").compared
    assert unfaulted - 40 < report.compared < unfaulted


def _ids(records: np.ndarray[Any, Any], type_id: int, last_only: bool = False) -> list[int]:
    mask = records["type_id"] == type_id
    if last_only:
        mask &= records["flags"] & F_LAST != 0
    return records["id"][mask].tolist()


def _recorded_ids(path: Path) -> dict[str, list[int]]:
    """Trade ids, book-ticker update ids and depth last-update ids, in recording order."""
    import msgspec

    out: dict[str, list[int]] = {"trade": [], "ticker": [], "depth": []}
    for msg in load(path).messages:
        if msg.kind in ("trade", "ticker"):
            data = msgspec.json.decode(msg.body)["data"]
            out[msg.kind].append(data["t"] if msg.kind == "trade" else data["u"])
        elif msg.depth is not None and (msg.depth.b or msg.depth.a):
            out["depth"].append(msg.depth.u)
    return out


def _assert_every_message_once(records: np.ndarray[Any, Any], recording: Path) -> None:
    expected = _recorded_ids(recording)
    assert _ids(records, TRADE) == expected["trade"]
    assert _ids(records, QUOTE) == expected["ticker"]
    assert _ids(records, LEVEL, last_only=True) == expected["depth"]


def test_a_disconnect_reconnects_resnapshots_and_loses_or_repeats_nothing(tmp_path: Path) -> None:
    # the simulator closes every connection before message 1500 and, reconnected, starts 25
    # messages back: the feed must skip those 25 and lose none
    stats = feed_recording(tmp_path, USDM, "live", [parse("close:25@1500")])
    records, events = journal(tmp_path, "live")
    assert stats.connections == 2
    assert stats.repeats == 25
    kinds = [type(e) for e in events if isinstance(e, FeedSubscribed | FeedDisconnected)]
    assert kinds == [FeedSubscribed, FeedDisconnected, FeedSubscribed, FeedDisconnected]
    drop = next(e for e in events if isinstance(e, FeedDisconnected))
    assert drop.connection == 1
    assert drop.reason == "closed"
    _assert_every_message_once(records, USDM)
    assert len(_snapshot_offsets(records)) == 2  # re-snapshotted after the reconnect
    assert _final_book(tmp_path, "live")["status"][-1] == SYNCED
    report = check_session(EmbeddedLog(tmp_path), "live")
    assert report.ok
    assert report.mismatched == 0


def test_a_malformed_frame_is_quarantined_and_the_session_goes_on(tmp_path: Path) -> None:
    stats = feed_recording(tmp_path, SPOT, "live", [parse("malformed@1200")])
    (bad,) = quarantined(tmp_path, "live")
    assert stats.quarantined == 1
    assert bad.reason == "bad_json"
    assert "not valid JSON" in bad.detail
    assert bad.line > 1200
    assert bad.byte_offset > 0
    assert bad.source.startswith("ws://127.0.0.1:")
    assert '{"stream"' in bad.raw
    records, _ = journal(tmp_path, "live")
    _assert_every_message_once(records, SPOT)
