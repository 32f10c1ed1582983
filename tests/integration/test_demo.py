"""`tape demo` (the README's main command) runs on the bundled samples and is repeatable."""

from pathlib import Path

from typer.testing import CliRunner

from engine.cli import app
from engine.log import EmbeddedLog


def test_demo_ingests_checks_and_reruns_as_noop(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["--data", str(tmp_path), "demo"])
    assert first.exit_code == 0, first.output
    log = EmbeddedLog(tmp_path)
    for session in ("demo-aapl", "demo-btcusdt-spot", "demo-btcusdt-usdm", "demo-wdo"):
        assert log.watermarks(f"{session}.journal")[1] > 1000
    assert first.output.count("mismatched") == 4
    assert "records intact" in first.output

    second = runner.invoke(app, ["--data", str(tmp_path), "demo"])
    assert second.exit_code == 0, second.output
    assert second.output.count("already ingested from this identical input") == 4
