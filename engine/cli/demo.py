"""``tape demo``: the bundled real-data samples, end to end, with nothing to set up.

What exists so far runs on real data: each sample in ``replays/samples/`` is ingested into a
session journal (a no-op when it already is), its order book is rebuilt and checked against
the venue's own record of the book, every batch of every topic is CRC-checked, and the log is
shown. Later stages of the pipeline join the demo as they land.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.rule import Rule

from engine.cli.app import app, console, context, fail
from engine.cli.book_commands import book_check
from engine.cli.ingest_commands import ingest_b3, ingest_binance, ingest_lobster
from engine.cli.log_commands import dump, stats, topics, verify

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

    _step("3. verify the CRC32C of every batch in the log")
    log = context(ctx).log
    for topic in log.topics():
        ctx.invoke(verify, ctx, topic=topic)

    _step("4. what is in the log")
    ctx.invoke(topics, ctx)
    ctx.invoke(stats, ctx, topic=f"{AAPL}.journal")
    ctx.invoke(dump, ctx, topic=f"{AAPL}.journal", from_offset=19, limit=12)

    _step("done")
    console.print(
        "Try: [bold]tape dump demo-btcusdt-spot.journal --from 500 --format json[/], "
        "[bold]tape stats demo-wdo.journal[/], [bold]tape book-check demo-aapl[/]. "
        "See README.md and docs/."
    )


def _step(title: str) -> None:
    console.print(Rule(f"[bold]{title}", align="left"))
