"""`tape demo` (the README's main command) runs on the bundled samples and is repeatable; the
numbers it prints are the right ones."""

import re
from pathlib import Path

from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.cli.demo import AAPL, DAY, SPOT, USDM, WDO
from engine.app.golden import GOLDEN_BUNDLES, golden_models
from engine.events.decisions import P_IN_SAMPLE, PREDICTION
from engine.log import EmbeddedLog
from engine.models import ModelStore, load_card
from engine.runtime import read_manifest

SESSIONS = (AAPL, SPOT, USDM, WDO, DAY)


def _counts(output: str, label: str) -> list[int]:
    """Every ``label │ N`` row of the book-check tables, in order."""
    return [int(n.replace(",", "")) for n in re.findall(rf"│ {label}\s+│\s+([\d,]+) │", output)]


def test_demo_trains_trades_verifies_and_reruns_as_noop(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["--data", str(tmp_path), "demo"])
    assert first.exit_code == 0, first.output
    out = first.output
    log = EmbeddedLog(tmp_path)
    for session in SESSIONS:
        assert log.watermarks(f"{session}.journal")[1] > 1000

    compared, matched = _counts(out, "compared"), _counts(out, "matched")
    assert len(compared) == len(SESSIONS)  # one book check per session, every row agreeing
    assert matched == compared
    assert min(compared) > 200
    assert _counts(out, "mismatched") == [0] * len(SESSIONS)
    assert out.count("bit-for-bit identical") == len(SESSIONS)

    traded = read_manifest(tmp_path, f"{DAY}-demo")
    store = ModelStore(tmp_path / "models")
    card = load_card(store, traded.models["bundle"])
    committed = load_card(golden_models(), GOLDEN_BUNDLES[DAY])
    assert card.hashes() == committed.hashes()  # models/README.md's command, reproduced
    report = traded.report["trading"]
    oos, ins = report["out_of_sample"], report["in_sample"]
    assert oos["account"]["fills"] + ins["account"]["fills"] > 0
    cut = oos["window"]["intervals"][0][0]
    predictions = log.reader(f"run.{DAY}-demo.predictions").read(0, 10**6)
    assert predictions is not None
    assert PREDICTION.dtype is not None
    p = predictions.view(PREDICTION.dtype)
    flagged = (p["flags"] & P_IN_SAMPLE) != 0
    assert flagged[p["cause"] < cut].all()
    assert not flagged[p["cause"] >= cut].any()  # after the cut: out of sample, all of it
    assert (p["ts_event"][p["cause"] >= cut] >= card.data.in_sample_until).all()
    assert ins["window"]["intervals"] == [[0, cut]]
    for window in (oos, ins):
        b = window["baselines"]
        assert b["strategy"] == window["account"]["net_pnl"]
        assert b["beats_buy_and_hold"] == (b["strategy"] > b["buy_and_hold"])
        assert b["random_draws"] == 1000
    net = oos["account"]["net_pnl"]
    assert f"OUT OF SAMPLE: journal offsets {cut:,}.." in " ".join(out.split())
    assert re.search(rf"│ the strategy\s+│\s+{re.escape(f'{net:+,.2f}')} USDT │", out)
    assert "IN SAMPLE - not evidence" in out
    assert "records intact" in out

    second = runner.invoke(app, ["--data", str(tmp_path), "demo"])
    assert second.exit_code == 0, second.output
    assert second.output.count("already ingested from this identical input") == len(SESSIONS)
    assert second.output.count("bit-for-bit identical") == len(SESSIONS)
