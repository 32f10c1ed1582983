"""`tape worker` on librdkafka's mock cluster: killed mid-stream, restarted, and still exactly
the bytes of an embedded run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from engine.app.mirror import kafka_chain, mirror_session
from engine.app.pipelines import SHIPPED
from engine.app.worker.loop import committed_states, state_key
from engine.log import EmbeddedLog
from engine.log.kafka import KafkaLog, MockCluster
from engine.runtime import execute
from engine.runtime.manifest import RunManifest

TAPE = [str(Path(sys.executable).with_name("tape"))]
SESSION = "demo-btcusdt-usdm"
GROUP = "workers-under-test"


@pytest.fixture(scope="module")
def cluster() -> MockCluster:
    return MockCluster(brokers=3)


def _worker(url: str, data: Path, *extra: str) -> subprocess.Popen[str]:
    args = ["worker", "--log", url, "--pipeline", "default", "--session", SESSION]
    args += ["--group", GROUP, "--worker-id", "w1", *extra]
    env = {**os.environ, "TAPE_DATA": str(data)}
    return subprocess.Popen(
        [*TAPE, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_killed_worker_restarts_to_the_embedded_run_bytes(
    cluster: MockCluster, samples: Path
) -> None:
    source = EmbeddedLog(samples)
    reference = execute(source, SESSION, pipelines=SHIPPED).manifest
    log = KafkaLog(cluster.bootstrap)
    mirror_session(source, log, SESSION, pipelines=SHIPPED)
    journal_end = log.watermarks(f"{SESSION}.journal")[1]

    first = _worker(cluster.url, samples, "--commit-every", "200")
    assert first.stdout is not None
    lines = []
    for line in first.stdout:
        lines.append(line)
        if line.startswith("committed transaction 3:"):
            first.send_signal(signal.SIGKILL)
            break
    first.wait()
    assert first.returncode == -signal.SIGKILL, "".join(lines)

    state = committed_states(log)[state_key(GROUP, "default", f"{SESSION}.journal", 0)]
    assert 0 < state.journal_next < journal_end, "the worker was not killed mid-stream"

    second = _worker(cluster.url, samples, "--commit-every", "5000", "--idle-exit", "3")
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out
    assert "complete; its manifest is in the meta topic" in out

    runs = log.meta("run/")
    assert len(runs) == 1, sorted(runs)
    manifest = msgspec.json.decode(next(iter(runs.values())), type=RunManifest)
    assert manifest.journal_stop == reference.journal_stop
    assert [(o.port, o.count, o.chain) for o in manifest.outputs] == [
        (o.port, o.count, o.chain) for o in reference.outputs
    ]
    assert manifest.outputs_hash == reference.outputs_hash
    for output in manifest.outputs:
        # Hash the topic as stored (read committed), independently of the worker's manifest.
        assert kafka_chain(log, output.topic) == (output.count, output.chain)
    # Commit markers take offsets: the transactional topics are not contiguous.
    book = next(o for o in manifest.outputs if o.port == "book")
    low, high = log.watermarks(book.topic)
    assert high - low > book.count
