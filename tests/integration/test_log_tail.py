"""A reader following a live writer in another process sees every record exactly once, in
order, across segment rolls."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.app.cli import app
from engine.log import Consumer, EmbeddedLog, TopicPartition, records_of
from tests.factories import fixed_topic, numbered_records

WRITER = Path(__file__).with_name("writer_process.py")
GIVE_UP_AFTER = 60.0
"""Seconds before a hung follower fails the test instead of blocking the suite."""


@pytest.mark.integration
def test_followers_see_every_record_once_in_order(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    fixed_topic(log, segment_bytes=4096)
    big, small = Consumer(log), Consumer(log)
    big.assign([TopicPartition("ticks", 0, 0)])
    small.assign([TopicPartition("ticks", 0, 0)])
    args = ["--batches", "40", "--max-batch", "12", "--delay", "0.005", "--seed", "11"]
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(tmp_path), "ticks", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    seen: dict[str, list[tuple[int, bytes]]] = {"big": [], "small": []}
    give_up = time.monotonic() + GIVE_UP_AFTER
    writer_done = False
    while time.monotonic() < give_up:
        got = False
        for name, consumer, most in (("big", big, 10_000), ("small", small, 7)):
            batch = consumer.poll_batch(most, timeout=0.05)
            if batch is not None:
                assert len(batch) <= most
                seen[name] += [(r.offset, r.value) for r in records_of(batch)]
                got = True
        if not got and writer_done:
            break
        writer_done = proc.poll() is not None
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    lines = out.splitlines()
    assert lines[-1] == "closed"
    total = sum(int(line.split()[1]) for line in lines[1:-1])
    assert len(list((tmp_path / "topics/ticks/0").glob("*.data"))) >= 3, "no segment rolls"
    expected = numbered_records(0, total)
    for records in seen.values():
        assert [o for o, _ in records] == list(range(total))
        assert b"".join(v for _, v in records) == expected.tobytes()


@pytest.mark.integration
def test_tape_tail_prints_every_record_then_exits_when_idle(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    fixed_topic(log, segment_bytes=4096)
    with log.writer("ticks") as writer:
        for start in range(0, 150, 30):
            writer.append_array(numbered_records(start, 30))
    result = CliRunner().invoke(
        app, ["--data", str(tmp_path), "tail", "ticks", "--from", "0", "--idle-exit", "0.2"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["offset"] for row in rows] == list(range(150))
    assert [row["timestamp"] for row in rows] == [1_000 * o for o in range(150)]
    for offset in (0, 100):  # type ids 0 and 100 name no fixed-width event: shown as hex
        assert rows[offset]["type"] == "?"
        assert rows[offset]["value_hex"] == numbered_records(offset, 1).tobytes().hex()
