"""``--metrics-port``: Prometheus ``/metrics`` from a live process (docs/dashboard.md)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.markup import escape

from engine.app.cli.root import err_console, fail
from engine.app.metrics import PipelineMetrics, RunMeter, serve
from engine.log import EmbeddedLog
from engine.runtime.runner import Progress


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        help="Serve Prometheus metrics on http://127.0.0.1:PORT/metrics while running "
        "(0: any free port).",
        min=0,
        max=65535,
    ),
]


MetricsHost = Annotated[
    str,
    typer.Option(
        "--metrics-host",
        help="Address the metrics listen on; anything but loopback is warned about.",
    ),
]


@contextmanager
def metrics_endpoint(
    port: int | None, host: str = "127.0.0.1", metrics: PipelineMetrics | None = None
) -> Iterator[PipelineMetrics | None]:
    """``metrics`` (default: a new :class:`PipelineMetrics`) served on
    ``http://HOST:PORT/metrics`` while inside; None and nothing served without a port."""
    if port is None:
        yield None
        return
    metrics = metrics or PipelineMetrics()
    if not is_loopback(host):
        err_console.print(
            f"[bold yellow]warning:[/] serving metrics on {host}, not loopback: anyone who can "
            "reach this address can read the session's orders, fills and PnL"
        )
    try:
        server = serve(metrics, port, host)
    except OSError as exc:
        fail(f"cannot serve metrics on {host}:{port}: {exc.strerror}; choose another port")
    shown = escape(f"[{host}]" if ":" in host else host)
    err_console.print(f"metrics: http://{shown}:{server.port}/metrics")
    try:
        yield metrics
    finally:
        server.close()


@contextmanager
def metered(
    port: int | None,
    log: EmbeddedLog,
    session: str,
    run_id: str,
    progress: Callable[[Progress], None],
) -> Iterator[Callable[[Progress], None]]:
    """``progress``, also feeding a metrics endpoint on ``port`` when one is asked for."""
    with metrics_endpoint(port) as metrics:
        if metrics is None:
            yield progress
            return
        meter = RunMeter(metrics, log, session, run_id).start()

        def both(p: Progress) -> None:
            progress(p)
            meter(p)

        try:
            yield both
        finally:
            meter.stop()
