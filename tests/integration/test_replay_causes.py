"""A replay that says why it differs: a port the pipeline no longer writes fails verify by
name; another fingerprint is shown before comparing; a divergence names its likely cause."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.pipelines import SHIPPED
from engine.log import EmbeddedLog
from engine.runtime import Catalog, Pipeline, RunConfig, execute, verify
from engine.runtime.causes import stage_libraries
from engine.runtime.manifest import code_version, read_manifest, write_manifest
from streams.book.stage import BOOK_STAGE
from streams.mid import MID_STAGE
from tests.integration.test_runs import PIPELINES, bumped_from

TWO_PORTS = Pipeline("test-two-ports", (BOOK_STAGE, MID_STAGE))
ONE_PORT = Pipeline("test-two-ports", (BOOK_STAGE,))
"""The same pipeline name, as a later version of the code that dropped its mid stage."""


def tape(data: Path, catalog: Catalog, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--data", str(data), *args], obj=catalog)
    return result.exit_code, " ".join(result.output.split())


def test_verify_fails_naming_a_port_the_pipeline_no_longer_writes(samples: Path) -> None:
    log = EmbeddedLog(samples)
    execute(log, "demo-wdo", RunConfig(pipeline="test-two-ports"), run_id="v1",
            pipelines=SHIPPED.extended(TWO_PORTS))  # fmt: skip
    today = SHIPPED.extended(ONE_PORT)
    result = verify(log, "v1", pipelines=today)
    assert not result.identical
    assert result.missing_ports == ["mid"]
    assert result.differing_ports == []  # book still matches: only mid vanished
    code, out = tape(samples, today, "replay", "v1", "--verify", "--quiet")
    assert code == 1
    assert "port 'mid' (topic run.v1.mid) is in the run's manifest, but pipeline" in out
    assert "bit-for-bit identical" not in out


def _tampered(samples: Path, run_id: str, **packages: str) -> None:
    """Rewrite a run's manifest as if it had run with other library versions and CPU."""
    manifest = read_manifest(samples, run_id)
    platform = {**manifest.code.platform, "cpu": "pentium4", "cpu_features": "sse,sse2,x87"}
    code = msgspec.structs.replace(
        manifest.code, packages={**manifest.code.packages, **packages}, platform=platform
    )
    write_manifest(samples, msgspec.structs.replace(manifest, code=code))


def test_another_fingerprint_is_shown_before_comparing(samples: Path) -> None:
    execute(EmbeddedLog(samples), "demo-wdo", run_id="f1", pipelines=PIPELINES)
    _tampered(samples, "f1", numba="0.0.0")
    code, out = tape(samples, PIPELINES, "replay", "f1", "--verify", "--quiet")
    assert code == 0, out
    warning = out.index("this replay runs on another fingerprint than run f1")
    assert out.index(f"numba 0.0.0 vs {code_version().packages['numba']}") > warning
    assert "cpu pentium4 vs" in out
    assert "cpu_features: -x87 +" in out
    assert "+avx" not in out.split("cpu_features:")[0]
    assert out.index("bit-for-bit identical") > out.index("cpu_features")


def test_a_divergence_names_the_likely_cause(samples: Path) -> None:
    log = EmbeddedLog(samples)
    execute(log, "demo-aapl", RunConfig(pipeline="test-bumped"), run_id="c1", pipelines=PIPELINES)
    _tampered(samples, "c1", numpy="0.0.0")
    with bumped_from(0):
        result = verify(log, "c1", pipelines=PIPELINES)
        code, out = tape(samples, PIPELINES, "replay", "c1", "--verify", "--quiet")
    assert result.differing_ports == ["mid"]
    numpy_cause = f"numpy 0.0.0 vs {np.__version__} now, which stage 'bumped' uses"
    assert numpy_cause in result.likely_causes
    platform = [i for i, c in enumerate(result.likely_causes) if c.startswith("platform")]
    assert all(result.likely_causes.index(numpy_cause) < i for i in platform)
    assert code == 1
    assert "likely cause" in out
    assert numpy_cause in out


def test_with_nothing_recorded_differing_the_stage_is_called_nondeterministic(
    samples: Path,
) -> None:
    log = EmbeddedLog(samples)
    manifest = execute(log, "demo-aapl", RunConfig(pipeline="test-bumped"), run_id="n1",
                       pipelines=PIPELINES).manifest  # fmt: skip
    clean = msgspec.structs.replace(manifest.code, dirty=False, commit="unknown")
    write_manifest(samples, msgspec.structs.replace(manifest, code=clean))
    with bumped_from(0):
        result = verify(log, "n1", pipelines=PIPELINES)
    assert result.likely_causes == [
        "nothing recorded differs for stage 'bumped' (code, libraries, platform): it gave other "
        "bytes from the same inputs, so it is not deterministic; a bug: report it with this output"
    ]


def test_the_libraries_of_a_stage_are_what_its_package_imports() -> None:
    assert stage_libraries("streams.models.stage") >= {"numba", "llvmlite", "river", "numpy"}
    assert "river" not in stage_libraries("streams.book.stage")
