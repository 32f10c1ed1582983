"""Importers + ``tape book-check`` on the committed samples (and the full shared files, which
are also run and replayed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.app.cli import app

SAMPLES = Path(__file__).resolve().parents[2] / "replays" / "samples"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
RUNNER = CliRunner()


def _tape(data: Path, *args: str) -> tuple[int, str]:
    result = RUNNER.invoke(app, ["--data", str(data), *args])
    return result.exit_code, result.output


def _counts(output: str) -> dict[str, int]:
    return {
        name: int(m.group(1).replace(",", ""))
        for name in ("compared", "matched", "mismatched", "resynced")
        if (m := re.search(rf"{name}\s*│\s*([\d,]+)", output))
    }


def _lobster(root: Path) -> list[str]:
    if root == SAMPLES:
        names = [
            "lobster_AAPL_2012-06-21_message_10.csv.gz",
            "lobster_AAPL_2012-06-21_orderbook_10.csv.gz",
        ]
    else:
        names = [
            f"lobster/AAPL_2012-06-21_34200000_57600000_{k}_10.csv"
            for k in ("message", "orderbook")
        ]
    return ["lobster", *(str(root / n) for n in names), "--symbol", "AAPL", "--date", "2012-06-21"]


def _inputs(root: Path) -> dict[str, list[str]]:
    if root == SAMPLES:
        spot, usdm = (
            "binance_spot_btcusdt_20240808_head3000.gz",
            "binance_usdm_btcusdt_20240808_head3000.gz",
        )
        b3 = "b3_wdou25_20250811_head2000.csv.gz"
    else:
        spot, usdm = (
            "crypto/binance_spot_btcusdt_20240808.gz",
            "crypto/binance_usdm_btcusdt_20240808.gz",
        )
        b3 = "b3/book_data_processed_sample.csv"
    return {
        "aapl": _lobster(root),
        "spot": ["binance", str(root / spot)],
        "usdm": ["binance", str(root / usdm)],
        "wdo": ["b3", str(root / b3)],
    }


def _ingest_and_check(root: Path, data: Path) -> dict[str, dict[str, int]]:
    results = {}
    for session, args in _inputs(root).items():
        code, out = _tape(data, "ingest", *args, "--session", session, "--quiet")
        assert code == 0, out
        code, out = _tape(data, "book-check", session)
        assert code == 0, out
        counts = _counts(out)
        assert counts["mismatched"] == 0, out
        assert counts["compared"] == counts["matched"] > 0, out
        results[session] = counts
    return results


def test_samples_book_check_zero_mismatches(tmp_path: Path) -> None:
    results = _ingest_and_check(SAMPLES, tmp_path)
    assert results["aapl"]["compared"] == 999
    assert results["aapl"]["resynced"] == 0  # the journal carries the depth LOBSTER reveals
    assert results["spot"]["compared"] > 200
    assert results["usdm"]["compared"] > 200


def test_reingest_is_noop_and_other_input_refused(tmp_path: Path) -> None:
    inputs = _inputs(SAMPLES)
    assert _tape(tmp_path, "ingest", *inputs["spot"], "--session", "s", "--quiet")[0] == 0
    code, out = _tape(tmp_path, "ingest", *inputs["spot"], "--session", "s", "--quiet")
    assert code == 0
    assert "nothing to do" in out
    code, out = _tape(tmp_path, "ingest", *inputs["usdm"], "--session", "s", "--quiet")
    assert code == 1
    assert "differs" in out
    code, out = _tape(tmp_path, "stats", "s.journal")
    assert code == 0
    assert "market.level_updated" in out


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
def test_full_shared_files_zero_mismatches(tmp_path: Path) -> None:
    results = _ingest_and_check(SHARED, tmp_path)
    assert results["aapl"]["compared"] == 999
    assert results["spot"]["compared"] >= 3433
    for session in results:  # the runtime on the full files: run, then replay bit for bit
        code, out = _tape(tmp_path, "run", session, "--run-id", f"full-{session}", "--quiet")
        assert code == 0, out
        code, out = _tape(tmp_path, "replay", f"full-{session}", "--verify", "--quiet")
        assert code == 0, out
        assert "bit-for-bit identical" in out
