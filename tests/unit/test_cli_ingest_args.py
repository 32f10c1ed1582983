"""Ingest arguments outside what the fixed-point converters support are refused up front."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.app.cli import app

SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "replays/samples/binance_spot_btcusdt_20240808_head3000.gz"
)


@pytest.mark.parametrize("scale", ["-1", "19", "25"])
@pytest.mark.parametrize("option", ["--price-scale", "--size-scale"])
def test_scale_outside_0_to_18_is_refused(tmp_path: Path, option: str, scale: str) -> None:
    args = ["--data", str(tmp_path), "ingest", "binance", str(SAMPLE), "--session", "s"]
    result = CliRunner().invoke(app, [*args, option, scale])
    assert result.exit_code == 2
    assert option in result.output
    assert not (tmp_path / "topics").exists()
