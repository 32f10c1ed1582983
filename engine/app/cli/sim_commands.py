"""``tape exchange-sim``: replay a Binance recording over Binance's protocol on loopback."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from engine.app.cli.root import app, err_console, fail

if TYPE_CHECKING:  # the simulator loads aiohttp: only when the command runs
    from engine.app.exchange_sim import Fault, Recording


@app.command("exchange-sim")
def exchange_sim(
    file: Annotated[
        Path, typer.Argument(help="Binance recording: `<receive_ts_ns> <json>` lines.")
    ],
    host: Annotated[str, typer.Option(help="Loopback address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free one).", min=0, max=65535)] = 0,
    speed: Annotated[
        float, typer.Option(help="Replay at the recorded pace times this.", min=0.0001)
    ] = 1.0,
    max_speed: Annotated[
        bool, typer.Option("--max-speed", help="As fast as the client reads.")
    ] = False,
    market: Annotated[
        str | None, typer.Option(help="spot or usdm (default: detected from the file).")
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="KIND[:N]@MESSAGE: drop:N, close[:N], stall:SECONDS, malformed, or pace:X (X "
            "times the recorded pace from there; 0: max) before stream message MESSAGE "
            "(0-based). Repeatable. Also: POST /control."
        ),
    ] = None,
    snapshot_wait: Annotated[
        float, typer.Option(help="Seconds the stream waits at a recorded snapshot for a client.")
    ] = 5.0,
    exit_at_end: Annotated[
        bool, typer.Option("--exit-at-end", help="Exit once the whole recording was sent.")
    ] = False,
) -> None:
    """Serve a recording as Binance's REST depth and combined WebSocket stream (docs/live.md).

    The first line printed is `ws-url=ws://HOST:PORT rest-url=http://HOST:PORT`."""
    if not file.is_file():
        fail(f"recording {file} does not exist")
    from engine.app.exchange_sim import FaultError, NotLoopbackError, load, parse

    if market not in (None, "spot", "usdm"):
        fail(f"--market must be spot or usdm, got {market!r}")
    try:
        faults = [parse(text) for text in fault or []]
        recording = load(file, market)
    except (FaultError, ValueError) as exc:
        fail(str(exc))
    try:
        asyncio.run(_serve(recording, host, port, None if max_speed else speed, faults,
                           snapshot_wait, exit_at_end))  # fmt: skip
    except NotLoopbackError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")


async def _serve(
    recording: Recording,
    host: str,
    port: int,
    speed: float | None,
    faults: list[Fault],
    snapshot_wait: float,
    exit_at_end: bool,
) -> None:
    from engine.app.exchange_sim import Exchange, serving

    exchange = Exchange(recording, speed, faults, snapshot_wait)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serving(exchange, host, port) as urls:
        print(urls, flush=True)
        pace = "as fast as the client reads" if speed is None else f"x{speed:g}"
        err_console.print(
            f"replaying {recording.stream_count:,} messages of {recording.path.name} "
            f"({recording.market} {recording.symbol}) {pace}; Ctrl-C stops"
        )
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                if exit_at_end and exchange.status.done and not exchange.clients:
                    break
    sys.stdout.flush()
