"""``tape demo``: the bundled real-data samples, end to end, with nothing to set up.

What exists so far runs on real data: each sample in ``replays/samples/`` is ingested into a
session journal (a no-op when it already is), its order book is rebuilt and checked against
the venue's own record of the book, the default pipeline runs over each session and is
replayed and verified bit for bit, one derived event is traced back to its journal records,
every batch of every topic is CRC-checked, and the log is shown. Later stages of the pipeline
join the demo as they land.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.rule import Rule

from engine.cli.app import app, console, context, fail
from engine.cli.book_commands import book_check
from engine.cli.ingest_commands import ingest_b3, ingest_binance, ingest_lobster
from engine.cli.log_commands import dump, stats, topics, verify
from engine.cli.run_commands import replay_command, run_command, runs_command, trace_command

SAMPLES = Path(__file__).resolve().parents[2] / "replays" / "samples"

AAPL = "demo-aapl"
SPOT = "demo-btcusdt-spot"
USDM = "demo-btcusdt-usdm"
WDO = "demo-wdo"


@app.command()
def demo(ctx: typer.Context) -> None:
    """Ingest the bundled real samples, rebuild and check their books, show the log."""
    if not SAMPLES.is_dir():
        fail(f"the bundled samples are missing: {SAMPLES} does not exist (a broken checkout?)")
    console.print(f"data directory: {context(ctx).data.resolve()}")
    _step("1. ingest real market data into session journals")
    ctx.invoke(
        ingest_lobster,
        ctx,
        message_csv=SAMPLES / "lobster_AAPL_2012-06-21_message_10.csv.gz",
        orderbook_csv=SAMPLES / "lobster_AAPL_2012-06-21_orderbook_10.csv.gz",
        symbol="AAPL",
        day="2012-06-21",
        session=AAPL,
    )
    ctx.invoke(
        ingest_binance,
        ctx,
        file=SAMPLES / "binance_spot_btcusdt_20240808_head3000.gz",
        session=SPOT,
    )
    ctx.invoke(
        ingest_binance,
        ctx,
        file=SAMPLES / "binance_usdm_btcusdt_20240808_head3000.gz",
        session=USDM,
    )
    ctx.invoke(ingest_b3, ctx, file=SAMPLES / "b3_wdou25_20250811_head2000.csv.gz", session=WDO)

    _step("2. rebuild each order book and check it against the venue's own")
    for session in (AAPL, SPOT, USDM, WDO):
        ctx.invoke(book_check, ctx, session=session)

    _step("3. run the default pipeline over each session, then replay it and compare")
    runs = []
    for session in (AAPL, SPOT, USDM, WDO):
        run_id = f"{session}-demo"
        if not (context(ctx).data / "runs" / run_id / "manifest.json").is_file():
            ctx.invoke(run_command, ctx, session=session, run_id=run_id, quiet=True)
        ctx.invoke(replay_command, ctx, run_id=run_id, verify_run=True, quiet=True)
        runs.append(run_id)
    ctx.invoke(runs_command, ctx)

    _step("4. trace one derived event back to the journal records that caused it")
    ctx.invoke(trace_command, ctx, run_id=f"{AAPL}-demo", topic="mid", offset=500)

    _step("5. verify the CRC32C of every batch in the log")
    log = context(ctx).log
    for topic in log.topics():
        ctx.invoke(verify, ctx, topic=topic)

    _step("6. what is in the log")
    ctx.invoke(topics, ctx)
    ctx.invoke(stats, ctx, topic=f"{AAPL}.journal")
    ctx.invoke(dump, ctx, topic=f"{AAPL}.journal", from_offset=19, limit=12)

    _step("done")
    console.print(
        f"Try: [bold]tape replay {runs[1]} --until 5000[/], "
        f"[bold]tape trace {runs[0]} book 100[/], "
        "[bold]tape dump demo-btcusdt-spot.journal --from 500 --format json[/], "
        "[bold]tape book-check demo-aapl[/]. See README.md and docs/replay.md."
    )


def _step(title: str) -> None:
    console.print(Rule(f"[bold]{title}", align="left"))
