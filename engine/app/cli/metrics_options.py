"""``--metrics-port``: Prometheus ``/metrics`` from a live process (docs/dashboard.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from engine.app.cli.root import err_console, fail
from engine.app.metrics import PipelineMetrics, RunMeter, serve
from engine.log import EmbeddedLog
from engine.runtime.runner import Progress

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


@contextmanager
def metrics_endpoint(port: int | None) -> Iterator[PipelineMetrics | None]:
    """Metrics served on ``http://127.0.0.1:PORT/metrics`` while inside (None: no port)."""
    if port is None:
        yield None
        return
    metrics = PipelineMetrics()
    try:
        server = serve(metrics, port)
    except OSError as exc:
        fail(f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror}; choose another port")
    err_console.print(f"metrics: http://127.0.0.1:{server.port}/metrics")
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
