"""Walk-forward on the GOOG day: out-of-sample scores per fold for each model design (the
ablation of docs/models.md, "Model layers"), then the default pipeline run with the default
design's walk-forward card, its trading per fold beside the baselines.

Run: ``.venv/bin/python bench/walkforward_goog.py [--data DIR] [--folds 5] [--designs
merged,two,five]``. Ingests ``../shared/data/lobster/GOOG_*`` into DIR (default: a temporary
directory; reused when the session is already there), trains ``tape train goog --walk-forward
--folds N --layers D`` for each design, runs ``tape run goog --bundle <the first design's
card>``, and prints markdown tables; the last line is one JSON object with the pooled
out-of-sample scores and the trading per fold. Takes a few minutes (one core).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.app.cli import app  # noqa: E402
from engine.app.pipelines import SHIPPED  # noqa: E402
from engine.app.training import Cutoff, TrainOptions, Windows, train_walk_forward  # noqa: E402
from engine.log import EmbeddedLog  # noqa: E402
from engine.models import ModelStore, WalkForwardCard  # noqa: E402
from engine.runtime import RunConfig, execute  # noqa: E402

LOBSTER = ROOT.parent / "shared" / "data" / "lobster"
SESSION = "goog"


def ingest(data: Path) -> None:
    """The GOOG day as session ``goog`` (a no-op when it is already ingested)."""
    message = LOBSTER / "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"
    book = LOBSTER / "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz"
    args = ["--data", str(data), "ingest", "lobster", str(message), str(book), "--symbol",
            "GOOG", "--date", "2012-06-21", "--session", SESSION, "--quiet"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def _ts(ns: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ns / 1e9 - 4 * 3600))  # New York, June (EDT)


def fold_table(design: str, card: WalkForwardCard) -> list[str]:
    """Markdown rows: one per fold and the pooled scores of the design's meta model."""
    lines = [
        f"\n{design}: {len(card.folds)} folds, {card.scheme}\n",
        "| fold | fitted on (rows, up to) | tested on (New York time) | rows | accuracy | log loss "
        "| baseline accuracy | baseline log loss |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for f in card.folds:
        m = f.metrics["meta"]
        lines.append(
            f"| {f.index} | {f.train.rows:,}, to {_ts(f.train.last_ts)} | {_ts(f.test.first_ts)}"
            f"-{_ts(f.test.last_ts)} | {f.test.rows:,} | {m.accuracy:.4f} | {m.log_loss:.4f} | "
            f"{m.baseline_accuracy:.4f} | {m.baseline_log_loss:.4f} |"
        )
    m = card.pooled["meta"]
    lines.append(
        f"| pooled | | | {m.rows:,} | {m.accuracy:.4f} | {m.log_loss:.4f} | "
        f"{m.baseline_accuracy:.4f} | {m.baseline_log_loss:.4f} |"
    )
    return lines


def trading_table(report: dict[str, Any]) -> list[str]:
    """Markdown rows: the run's trading per bundle, out of sample, beside the baselines."""
    lines = [
        "\n| bundle | journal offsets | round trips | fills | net PnL | no trade | buy and hold "
        "| random entry (median) | beats (none / B&H / random) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    parts = [*report["bundles"], report["out_of_sample"]]
    for part in parts:
        a, b, w = part["account"], part["baselines"], part["window"]
        beats = "/".join(
            "-" if v is None else ("yes" if v else "no")
            for v in (b["beats_no_trade"], b["beats_buy_and_hold"], b["beats_random"])
        )
        spans = ", ".join(f"{x:,}..{y - 1:,}" for x, y in w["intervals"])
        name = "all out of sample" if part is report["out_of_sample"] else w["name"]
        lines.append(
            f"| {name} | {spans} | {a['round_trips']} | {a['fills']} | "
            f"{a['net_pnl']:+.2f} | 0.00 | "
            f"{b['buy_and_hold']:+.2f} | {b['random_median']:+.2f} | {beats} |"
        )
    ins = report["in_sample"]
    if ins is not None:
        a = ins["account"]
        lines.append(
            f"| in sample (not evidence) | ... | {a['round_trips']} | {a['fills']} | "
            f"{a['net_pnl']:+.2f} | 0.00 | {ins['baselines']['buy_and_hold']:+.2f} | "
            f"{ins['baselines']['random_median']:+.2f} | |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--designs", default="merged,two,five")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="walkforward-goog-"))
    ingest(data)
    log, store = EmbeddedLog(data), ModelStore(data / "models")
    result: dict[str, Any] = {"folds": args.folds, "pooled": {}, "seconds": {}}
    cards = {}
    for design in args.designs.split(","):
        began = time.perf_counter()
        options = TrainOptions(Cutoff("100%", fraction=1.0), layers=design)
        trained = train_walk_forward(
            log, [SESSION], options, Windows(False, folds=args.folds), store
        )
        result["seconds"][design] = round(time.perf_counter() - began, 1)
        cards[design] = trained
        m = trained.card.pooled["meta"]
        result["pooled"][design] = {
            "rows": m.rows, "accuracy": m.accuracy, "log_loss": m.log_loss,
            "baseline_accuracy": m.baseline_accuracy, "baseline_log_loss": m.baseline_log_loss,
            "per_fold_log_loss": [f.metrics["meta"].log_loss for f in trained.card.folds],
        }  # fmt: skip
        print("\n".join(fold_table(design, trained.card)), flush=True)
    first = args.designs.split(",")[0]
    config = RunConfig(stages={"models": {"bundle": cards[first].schedule}})
    run = execute(log, SESSION, config, pipelines=SHIPPED, models=store).manifest
    report = run.report["trading"]
    print(f"\ntrading, {first} walk-forward card {cards[first].schedule[:12]}, run {run.run_id}:")
    print("\n".join(trading_table(report)))
    result["schedule"] = cards[first].schedule
    result["trading"] = [
        {"window": p["window"]["name"], "net_pnl": p["account"]["net_pnl"],
         "round_trips": p["account"]["round_trips"], "buy_and_hold": p["baselines"]["buy_and_hold"],
         "random_median": p["baselines"]["random_median"]}
        for p in [*report["bundles"], report["out_of_sample"]]
    ]  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
