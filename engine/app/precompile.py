"""Compile every numba loop into numba's on-disk cache, once per install.

``scripts/bootstrap.py`` runs ``python -m engine.app.precompile`` after installing. The compiled
loops (ingest parsers, book, features, labels, the tree evaluator, agents, consensus, the
simulated venue) are cached beside their sources the first time they run, which takes about a
minute; doing it at install time means the first ``tape demo`` or ``tape run`` does not pay it.
It exercises them for real: two bundled samples are ingested into a temporary directory, a
model bundle is trained on one, and the default pipeline runs over both (one of them trades).
Nothing is left behind but the cache.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

SAMPLES = Path(__file__).resolve().parents[2] / "replays" / "samples"


class PrecompileError(Exception):
    """A warm-up command failed; the message holds its output."""


def _tape(data: str) -> Callable[..., Any]:
    from engine.app.cli import app

    def tape(*args: str) -> Any:
        result = CliRunner().invoke(app, ["--data", data, *args], standalone_mode=False)
        if result.exit_code != 0:
            raise PrecompileError(f"`tape {' '.join(args)}` failed:\n{result.output}")
        return result.return_value

    return tape


def main() -> int:
    """Run the warm-up; print one line, or the failing command's output."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        tape = _tape(tmp)
        tape("ingest", "lobster", str(SAMPLES / "lobster_AAPL_2012-06-21_message_10.csv.gz"),
             str(SAMPLES / "lobster_AAPL_2012-06-21_orderbook_10.csv.gz"), "--symbol", "AAPL",
             "--date", "2012-06-21", "--session", "aapl", "--quiet")  # fmt: skip
        tape("ingest", "binance", str(SAMPLES / "binance_spot_btcusdt_20240808.gz"),
             "--session", "spot", "--quiet")  # fmt: skip
        bundle = tape("train", "aapl", "--until", "60%", "--quiet")
        tape("run", "aapl", "--bundle", str(bundle), "--quiet")
        tape("run", "spot", "--quiet")  # the one that trades
    print(f"compiled and cached the engine's loops in {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PrecompileError as exc:
        print(f"precompile: {exc}")
        sys.exit(1)
