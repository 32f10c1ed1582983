"""Compile every numba loop into numba's on-disk cache, once per install.

``scripts/bootstrap.py`` runs ``python -m engine.app.precompile`` after installing. The compiled
loops (every format's ingest parser, book, features, labels, the tree evaluator, agents,
consensus, the simulated venue) are cached beside their sources the first time they run, which
takes about a minute; doing it at install time means the first ``tape demo`` or ``tape run``
does not pay it. It exercises them for real: the bundled samples of each format (and a DBN
record written here) are ingested into a temporary directory, a model bundle is trained on one,
and the default pipeline runs over two (one of them trades). Nothing is left behind but the
cache.
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


def _dbn(tmp: Path) -> Path:
    """A DBN file of one MBO record, written with Databento's own package (none is bundled)."""
    import datetime
    from types import SimpleNamespace

    import databento_dbn

    dbn: Any = databento_dbn  # its stubs type the enum members as str
    day = datetime.date(2024, 1, 1)
    interval = SimpleNamespace(start_date=day, end_date=day + datetime.timedelta(1), symbol="1")
    metadata = dbn.Metadata(
        dataset="GLBX.MDP3", schema=dbn.Schema.MBO, start=0, stype_in=dbn.SType.RAW_SYMBOL,
        stype_out=dbn.SType.INSTRUMENT_ID, symbols=["X"], partial=[], not_found=[],
        mappings=[SimpleNamespace(raw_symbol="X", intervals=[interval])],
    )  # fmt: skip
    record = dbn.MBOMsg(
        publisher_id=1, instrument_id=1, ts_event=1, order_id=1, price=10**9, size=1,
        action=dbn.Action.ADD, side=dbn.Side.BID, ts_recv=2, flags=128,
    )  # fmt: skip
    path = tmp / "warm.mbo.dbn"
    path.write_bytes(bytes(metadata.encode()) + bytes(record))
    return path


def _online_learner() -> None:
    """The online learner's one-vector calls (the runs above use its slice walk only)."""
    from streams.models.learner import CompiledLearner

    learner = CompiledLearner(["a", "b"], 0.02, 0.0, 5.0)
    learner.learn([1.0, float("nan")], 1)
    learner.predict([0.5, 2.0])


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
        tape("ingest", "tardis", *(str(p) for p in sorted(SAMPLES.glob("tardis_*.csv.gz"))),
             "--session", "tardis", "--quiet")  # fmt: skip
        tape("ingest", "databento", str(_dbn(Path(tmp))), "--session", "dbn", "--quiet")
        bundle = tape("train", "aapl", "--until", "60%", "--quiet")
        tape("run", "aapl", "--bundle", str(bundle), "--quiet")
        tape("run", "spot", "--quiet")  # the one that trades
        _online_learner()
    print(f"compiled and cached the engine's loops in {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PrecompileError as exc:
        print(f"precompile: {exc}")
        sys.exit(1)
