"""Prometheus metrics: scraped from a live `tape run --follow --metrics-port` while a feed
grows its journal; the counters move (docs/dashboard.md, "Metrics")."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.dashboard_support import LiveFeed
from tests.metrics_support import free_port, scrape, value

TAPE = str(Path(sys.executable).with_name("tape"))
HISTORY = 1900
"""demo-wdo events written before the feed goes live (its risk rejections are among them)."""
DOC = Path(__file__).parents[2] / "docs" / "dashboard.md"


def test_every_metric_is_documented_with_its_labels() -> None:
    from engine.app.live.meter import LiveMetrics  # tape live's: tape run's and worker's, and more

    text = DOC.read_text()
    for family in LiveMetrics().registry.collect():
        suffix = "_total" if family.type == "counter" else ""
        row = re.search(rf"^\| `{family.name}{suffix}` \|([^\n]*)$", text, re.M)
        assert row, f"{family.name}{suffix} is not in docs/dashboard.md"
        assert family.type in row.group(1)


def test_counters_move_while_a_live_run_follows_a_growing_journal(
    samples_master: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(samples_master, data, ignore=shutil.ignore_patterns("writer.lock"))
    feed = LiveFeed(data, "demo-wdo", "live-wdo", history=HISTORY, burst=5, close=False)
    feed.start(pause=0.05)
    port = free_port()
    run = subprocess.Popen(
        [TAPE, "--data", str(data), "--fsync", "never",
         "run", "live-wdo", "--follow", "--metrics-port", str(port), "--quiet",
         "--run-id", "live-1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                samples = scrape(port)
            except OSError:
                time.sleep(0.1)
                continue
            seen.append(samples)
            done = value(samples, "tapedeck_events_processed_total", session="live-wdo")
            if done == HISTORY:
                feed.go.set()  # the run caught up with the history: the feed goes live
            rejected = value(samples, "tapedeck_risk_rejections_total",
                             session="live-wdo", reason="low_confidence")  # fmt: skip
            if not feed.thread.is_alive() and done == feed.written and rejected > 0:
                break
            time.sleep(0.2)
        processed = [value(s, "tapedeck_events_processed_total", session="live-wdo") for s in seen]
        assert len(set(processed)) >= 3, processed  # it moved several times while we watched
        assert processed == sorted(processed)
        last = seen[-1]
        assert processed[-1] == feed.written, "the run did not process what the feed wrote"
        assert value(last, "tapedeck_journal_lag_events", session="live-wdo") == 0
        # every live event's end-to-end latency was observed, into a well-formed histogram
        # (how fast is measured in bench/live_latency.py: timing stays out of tests)
        live = feed.written - HISTORY
        e2e = value(last, "tapedeck_end_to_end_latency_seconds_count", session="live-wdo")
        everything = value(last, "tapedeck_end_to_end_latency_seconds_bucket",
                           session="live-wdo", le="+Inf")  # fmt: skip
        assert e2e >= live
        assert everything == e2e
        assert value(last, "tapedeck_end_to_end_latency_seconds_sum", session="live-wdo") > 0
        assert value(last, "tapedeck_processing_seconds_count", session="live-wdo") > 0
        assert value(last, "tapedeck_risk_rejections_total",
                     session="live-wdo", reason="low_confidence") > 0  # fmt: skip
    finally:
        feed.close_session()
        output, _ = run.communicate(timeout=120)
    assert run.returncode == 0, output
    assert f"http://127.0.0.1:{port}/metrics" in output


def test_a_worker_counts_what_its_run_reports(samples: Path) -> None:
    from engine.app.analysis import topic_frame
    from engine.app.mirror import mirror_session
    from engine.app.pipelines import SHIPPED
    from engine.log import EmbeddedLog
    from engine.log.kafka import KafkaLog, MockCluster
    from engine.runtime import execute

    source = EmbeddedLog(samples)
    run = execute(source, "demo-wdo", pipelines=SHIPPED).manifest
    risk = topic_frame(source, f"run.{run.run_id}.risk", event="risk.decision_rejected")
    rejections = dict(risk["reason"].value_counts().iter_rows())
    assert rejections  # the sample's session does reject decisions
    cluster = MockCluster(brokers=1)
    log = KafkaLog(cluster.bootstrap)
    mirror_session(source, log, "demo-wdo", pipelines=SHIPPED)
    journal_end = log.watermarks("demo-wdo.journal")[1]
    port = free_port()
    worker = subprocess.Popen(
        [TAPE, "--data", str(samples), "worker", "--log", cluster.url, "--session", "demo-wdo",
         "--worker-id", "m1", "--commit-every", "300", "--idle-exit", "4",
         "--metrics-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        samples_seen, deadline = [], time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            with contextlib.suppress(OSError):
                samples_seen.append(scrape(port))
            done = samples_seen and value(samples_seen[-1], "tapedeck_events_processed_total",
                                          session="demo-wdo")  # fmt: skip
            if done == journal_end:
                break
            time.sleep(0.1)
        last = samples_seen[-1]
    finally:
        output, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, output
    assert value(last, "tapedeck_events_processed_total", session="demo-wdo") == journal_end
    assert value(last, "tapedeck_journal_lag_events", session="demo-wdo") == 0
    assert value(last, "tapedeck_processing_seconds_count", session="demo-wdo") >= 2
    for reason, count in rejections.items():
        counted = value(last, "tapedeck_risk_rejections_total", session="demo-wdo", reason=reason)
        assert counted == count, (reason, counted, count)
