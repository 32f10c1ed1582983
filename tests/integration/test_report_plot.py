"""`tape report RUN --plot FILE`: the trading report, and the plot as PNG, SVG or HTML."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.app.cli import app
from tests.dashboard_support import TRADED


@pytest.mark.parametrize(
    ("suffix", "head"), [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".html", b"<!doctype html>")]
)
def test_plot_files(dashboard_demo: Path, tmp_path: Path, suffix: str, head: bytes) -> None:
    out = tmp_path / f"run{suffix}"
    result = CliRunner().invoke(
        app, ["--data", str(dashboard_demo), "report", TRADED, "--plot", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"trading report of {TRADED}" in result.output
    data = out.read_bytes()
    assert data.startswith(head)
    assert len(data) > 20_000
    if suffix != ".png":
        text = data.decode()
        assert "feature drift" in text
        assert "in-sample" in text
    if suffix == ".html":
        assert "<svg" in data.decode()
        assert "net PnL" in data.decode()


def test_unknown_format_and_unknown_run_say_what_to_do(
    dashboard_demo: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    bad = runner.invoke(
        app, ["--data", str(dashboard_demo), "report", TRADED, "--plot", str(tmp_path / "x.jpg")]
    )
    assert bad.exit_code == 2
    assert ".png, .svg, .html" in bad.output
    missing = runner.invoke(app, ["--data", str(dashboard_demo), "report", "no-such-run"])
    assert missing.exit_code == 1
    assert "tape runs" in missing.output
