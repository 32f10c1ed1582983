"""`tape demo` (the README's main command) runs on the bundled samples and is repeatable."""

from pathlib import Path

from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.cli.demo import AAPL, DAY, SPOT, USDM, WDO
from engine.log import EmbeddedLog
from engine.runtime import read_manifest

SESSIONS = (AAPL, SPOT, USDM, WDO, DAY)


def test_demo_trains_trades_verifies_and_reruns_as_noop(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["--data", str(tmp_path), "demo"])
    assert first.exit_code == 0, first.output
    log = EmbeddedLog(tmp_path)
    for session in SESSIONS:
        assert log.watermarks(f"{session}.journal")[1] > 1000
    assert first.output.count("mismatched") == len(SESSIONS)
    assert first.output.count("bit-for-bit identical") == len(SESSIONS)
    traded = read_manifest(tmp_path, f"{DAY}-demo")
    assert set(traded.models) == {"bundle", "context", "micro", "meta"}
    report = traded.report["trading"]
    assert report["fills"] > 0
    assert f"trading report of {DAY}-demo" in first.output
    assert "records intact" in first.output

    second = runner.invoke(app, ["--data", str(tmp_path), "demo"])
    assert second.exit_code == 0, second.output
    assert second.output.count("already ingested from this identical input") == len(SESSIONS)
    assert second.output.count("bit-for-bit identical") == len(SESSIONS)
