"""tape run / runs / replay / trace on the real samples, through the CLI and the API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.pipelines import SHIPPED
from engine.events.book import BOOK_MID
from engine.events.market import F_LAST
from engine.log import EmbeddedLog
from engine.runtime import (
    ConfigError,
    ContractError,
    Pipeline,
    RunConfig,
    RunError,
    Stage,
    execute,
    read_manifest,
    state_at,
    trace,
    verify,
)
from engine.runtime.manifest import write_manifest
from engine.runtime.processor import Output, Port, Slice, StageContext
from engine.runtime.replay import offset_at_time
from streams.book.stage import BOOK_STAGE
from streams.mid.processor import MidStage

TAPE = [str(Path(sys.executable).with_name("tape"))]


def tape(data: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--data", str(data), *args], obj=PIPELINES)
    return result.exit_code, result.output


# -- a pipeline whose code can be "changed" between a run and its replay ----------------------

BUMP_FROM: int | None = None
"""When set, the ``bumped`` stage adds 0.5 to every mid caused at or after this offset."""


@contextmanager
def bumped_from(offset: int) -> Iterator[None]:
    """Within the block, the ``bumped`` stage changes every mid caused from ``offset`` on."""
    global BUMP_FROM
    BUMP_FROM = offset
    try:
        yield
    finally:
        BUMP_FROM = None


class _Bumped(MidStage):
    def process(self, piece: Slice) -> tuple[Output, ...]:
        (out,) = super().process(piece)
        assert isinstance(out, np.ndarray)
        if BUMP_FROM is not None:
            out["mid"][out["cause"] >= BUMP_FROM] += 0.5
        return (out,)


BUMPED = Pipeline(
    "test-bumped",
    (BOOK_STAGE, Stage("bumped", _Bumped, (Port("mid", BOOK_MID),), inputs=("book",))),
)


class _Liar:
    """Emits a mid whose cause lies outside the slice it came from."""

    def __init__(self, context: StageContext) -> None:
        pass

    def process(self, piece: Slice) -> tuple[Output, ...]:
        out = np.zeros(1 if piece.market is not None else 0, BOOK_MID.dtype)
        out["type_id"], out["cause"] = BOOK_MID.type_id, piece.stop + 5
        return (out,)

    def snapshot(self) -> bytes:
        return b""

    def restore(self, state: bytes) -> None:
        pass

    def inspect(self) -> dict[str, Any]:
        return {}


LIAR = Pipeline("test-liar", (Stage("liar", _Liar, (Port("mid", BOOK_MID),)),))
PIPELINES = SHIPPED.extended(BUMPED, LIAR)
"""The shipped pipelines and this module's."""


# -- runs and verification ---------------------------------------------------------------------


def test_run_runs_and_verify_through_the_cli(samples: Path) -> None:
    code, out = tape(samples, "run", "demo-aapl", "--run-id", "a1", "--quiet")
    assert code == 0, out
    assert "run a1 complete" in out
    assert "run.a1.book" in out
    assert "run.a1.mid" in out
    manifest = read_manifest(samples, "a1")
    assert manifest.status == "complete"
    assert manifest.session == "demo-aapl"
    assert manifest.journal_start == 0
    assert manifest.journal_stop > 1000
    assert manifest.config["stages"]["book"]["window"] == 10  # NASDAQ: the LOBSTER window
    assert [o.port for o in manifest.outputs] == [
        p.name for _, p in PIPELINES.get("default").ports()
    ]
    assert manifest.outputs[0].count == manifest.outputs[1].count > 0
    trading = manifest.report["trading"]
    assert trading["in_sample"] is None  # no bundle: nothing was fitted on this session
    assert trading["out_of_sample"]["account"]["starting_equity"] == 100_000.0
    assert trading["out_of_sample"]["window"]["intervals"] == [[0, manifest.journal_stop]]
    assert "trading report of a1" in out
    assert len(manifest.config_hash) == 64
    assert manifest.code.python
    code, out = tape(samples, "runs")
    assert code == 0
    assert "a1" in out
    assert "complete" in out
    code, out = tape(samples, "replay", "a1", "--verify", "--quiet")
    assert code == 0, out
    total = sum(o.count for o in manifest.outputs)
    assert f"bit-for-bit identical: {total:,} events in {len(manifest.outputs)} topics" in out


def test_same_session_twice_gives_the_same_hashes_and_a_complete_run_is_not_rerun(
    samples: Path,
) -> None:
    log = EmbeddedLog(samples)
    first = execute(log, "demo-btcusdt-usdm", pipelines=PIPELINES).manifest
    second = execute(log, "demo-btcusdt-usdm", pipelines=PIPELINES).manifest
    assert first.run_id != second.run_id
    assert first.outputs_hash == second.outputs_hash
    with pytest.raises(RunError, match="already complete"):
        execute(log, "demo-btcusdt-usdm", run_id=first.run_id, pipelines=PIPELINES)


def test_divergence_is_reported_with_fields_and_cause(samples: Path) -> None:
    global BUMP_FROM
    log = EmbeddedLog(samples)
    run = execute(
        log, "demo-aapl", RunConfig(pipeline="test-bumped"), run_id="b1", pipelines=PIPELINES
    ).manifest
    mids = log.reader("run.b1.mid").read(0, 10**6)
    assert mids is not None
    causes = mids.view(BOOK_MID.dtype)["cause"]
    bump = BUMP_FROM = int(causes[300])
    try:
        result = verify(log, "b1", pipelines=PIPELINES)
        code, out = tape(samples, "replay", "b1", "--verify", "--quiet")
    finally:
        BUMP_FROM = None
    assert not result.identical
    assert result.differing_ports == ["mid"]
    d = result.divergence
    assert d is not None
    assert d.port == "mid"
    assert d.offset == 300
    assert d.cause == bump
    assert d.fields == ["mid"]
    assert d.replayed is not None
    assert d.recorded is not None
    assert d.replayed["mid"] == d.recorded["mid"] + 0.5
    assert d.journal_event is not None
    assert d.journal_event["type"].startswith("market.")
    assert code == 1
    assert "first divergence: topic run.b1.mid offset 300" in out
    assert f"caused by journal offset {bump}" in out
    assert run.outputs_hash
    assert verify(log, "b1", pipelines=PIPELINES).identical


def test_verify_warns_when_the_code_version_differs(samples: Path) -> None:
    log = EmbeddedLog(samples)
    manifest = execute(log, "demo-wdo", run_id="w1", pipelines=PIPELINES).manifest
    code = msgspec.structs.replace(manifest.code, commit="0" * 40, dirty=False)
    write_manifest(samples, msgspec.structs.replace(manifest, code=code))
    result = verify(log, "w1", pipelines=PIPELINES)
    assert result.identical
    assert any("commit 000000000000" in d for d in result.code_differences)
    exit_code, out = tape(samples, "replay", "w1", "--verify", "--quiet")
    assert exit_code == 0
    assert "warning: code differs" in out


def test_contract_breaking_processor_fails_loudly(samples: Path) -> None:
    with pytest.raises(ContractError, match=r"causes .* must lie in the slice"):
        execute(
            EmbeddedLog(samples), "demo-wdo", RunConfig(pipeline="test-liar"), pipelines=PIPELINES
        )


def test_config_errors_speak_to_the_user(samples: Path, tmp_path: Path) -> None:
    log = EmbeddedLog(samples)
    with pytest.raises(ConfigError, match="no pipeline named 'nope'"):
        execute(log, "demo-wdo", RunConfig(pipeline="nope"), pipelines=PIPELINES)
    with pytest.raises(ConfigError, match="unknown setting"):
        execute(log, "demo-wdo", RunConfig(stages={"book": {"depth": 3}}), pipelines=PIPELINES)
    with pytest.raises(ConfigError, match="does not have"):
        execute(
            log, "demo-wdo", RunConfig(pipeline="mid", stages={"features": {}}), pipelines=PIPELINES
        )
    with pytest.raises(RunError, match="no session 'ghost'"):
        execute(log, "ghost", pipelines=PIPELINES)
    bad = tmp_path / "bad.toml"
    bad.write_text("snapshot_every = 'often'\n")
    code, out = tape(samples, "run", "demo-wdo", "--config", str(bad))
    assert code == 2
    assert "snapshot_every" in out
    good = tmp_path / "run.toml"
    good.write_text('pipeline = "book"\nseed = 7\n[stages.book]\nlevels = 5\n')
    code, out = tape(samples, "run", "demo-wdo", "--config", str(good), "--run-id", "c1")
    assert code == 0, out
    manifest = read_manifest(samples, "c1")
    assert manifest.pipeline == "book"
    assert manifest.config["seed"] == 7
    assert manifest.config["stages"]["book"]["levels"] == 5


# -- kill and resume ---------------------------------------------------------------------------


def test_sigkilled_run_resumes_to_identical_outputs(samples: Path, tmp_path: Path) -> None:
    """A real `tape run` process is SIGKILLed after its first snapshots, then resumed."""
    reference = execute(EmbeddedLog(samples), "demo-btcusdt-spot", pipelines=PIPELINES).manifest
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"snapshot_every": 1000}))
    env = {**os.environ, "TAPE_DATA": str(samples)}
    args = ["run", "demo-btcusdt-spot", "--run-id", "k1", "--config", str(config), "--batch", "1"]
    proc = subprocess.Popen([*TAPE, *args, "--quiet"], env=env, stdout=subprocess.DEVNULL)
    snaps = samples / "runs" / "k1" / "snapshots"
    deadline = time.monotonic() + 120
    while len(list(snaps.glob("*.snapshot"))) < 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "no snapshot appeared"
        time.sleep(0.01)
    assert proc.poll() is None, "tape run exited before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = read_manifest(samples, "k1")
    assert killed.status == "running", "the run finished before it could be killed"
    code, out = tape(samples, *args[:-2], "--quiet")  # resumes with its recorded config
    assert code == 0, out
    assert "resumed run k1 from its snapshot at journal offset" in out
    resumed = read_manifest(samples, "k1")
    assert resumed.resumed_from
    assert resumed.resumed_from[0] % 1000 == 0
    assert resumed.outputs_hash == reference.outputs_hash
    assert [(o.count, o.chain) for o in resumed.outputs] == [
        (o.count, o.chain) for o in reference.outputs
    ]
    assert verify(EmbeddedLog(samples), "k1", pipelines=PIPELINES).identical


def test_resume_with_another_config_is_refused(samples: Path, tmp_path: Path) -> None:
    log = EmbeddedLog(samples)
    manifest = execute(log, "demo-wdo", run_id="r1", pipelines=PIPELINES).manifest
    write_manifest(samples, msgspec.structs.replace(manifest, status="running"))
    with pytest.raises(RunError, match="another config"):
        execute(log, "demo-wdo", RunConfig(seed=1), run_id="r1", pipelines=PIPELINES)


# -- trace and --until --------------------------------------------------------------------------


def test_trace_follows_causes_back_to_the_journal(samples: Path) -> None:
    log = EmbeddedLog(samples)
    execute(log, "demo-aapl", run_id="t1", pipelines=PIPELINES)
    root = trace(log, "t1", "mid", 400, pipelines=PIPELINES)
    assert root.port == "mid"
    assert root.offset == 400
    cause = root.event["cause"]
    (book,) = root.inputs
    assert book.port == "book"
    assert book.event["offset"] == cause
    assert book.relation == f"caused by journal {cause}"
    journal = [link for link in book.inputs if link.port == "journal"]
    assert [link.offset for link in journal if link.relation == "cause"] == [cause]
    assert journal[-1].offset == cause
    assert journal[-1].event["flags"] & F_LAST
    assert trace(log, "t1", "run.t1.mid", 400, pipelines=PIPELINES).event == root.event
    code, out = tape(samples, "trace", "t1", "mid", "400")
    assert code == 0
    assert f"caused by journal {cause}" in out
    assert "market." in out
    with pytest.raises(RunError, match="there is no 99999999"):
        trace(log, "t1", "mid", 99999999, pipelines=PIPELINES)


def test_until_gives_the_same_state_with_and_without_snapshots(samples: Path) -> None:
    log = EmbeddedLog(samples)
    execute(
        log, "demo-btcusdt-spot", RunConfig(snapshot_every=2000), run_id="u1", pipelines=PIPELINES
    )
    for offset in (1999, 2000, 7777):
        fast = state_at(log, "u1", offset, pipelines=PIPELINES)
        slow = state_at(log, "u1", offset, use_snapshots=False, pipelines=PIPELINES)
        assert fast.from_snapshot is not None
        assert slow.from_snapshot is None
        # compared as JSON: states hold NaN (no mid yet), and NaN != NaN in a dict comparison
        assert msgspec.json.encode(fast.states) == msgspec.json.encode(slow.states)
        assert fast.offset == offset
    manifest = read_manifest(samples, "u1")
    ts = state_at(log, "u1", 5000, pipelines=PIPELINES).journal_event
    assert ts is not None
    assert offset_at_time(log, manifest, ts["ts_event"]) >= 5000
    code, out = tape(samples, "replay", "u1", "--until", "7777")
    assert code == 0
    assert "stage book" in out
    assert "stage mid" in out
    code, out = tape(samples, "replay", "u1", "--until", "yesterday")
    assert code == 2
    assert "give a journal offset or a time" in out
