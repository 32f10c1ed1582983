"""``tape mirror`` copies a session between logs; ``tape kafka-mock`` runs a Kafka to try it on."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from engine.app.cli.root import app, console, context, fail
from engine.log import EmbeddedLog, LogError
from engine.log.locate import KAFKA_SCHEME, open_log
from engine.log.writer import FsyncPolicy

if TYPE_CHECKING:  # confluent-kafka loads with the commands that use it (fast --help)
    from engine.app.mirror import TopicCopy
    from engine.log.kafka import KafkaLog

Address = "a data directory or kafka://HOST:PORT[,HOST:PORT...]"


@app.command("mirror")
def mirror_command(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(metavar="SRC", help=f"Log to copy from: {Address}.", show_default=False)
    ],
    target: Annotated[
        str, typer.Argument(metavar="DST", help=f"Log to copy to: {Address}.", show_default=False)
    ],
    session: Annotated[
        str, typer.Option("--session", help="Session to copy (its journal, quarantine, oracle).")
    ],
    runs: Annotated[
        list[str] | None,
        typer.Option(
            "--run",
            metavar="RUN_ID",
            help="Also copy this run of the session (its topics and manifest); repeatable.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Copy a session (and runs of it) from SRC to DST and prove the copy identical.

    Topics are copied in order, with every event's exact bytes.
    An interrupted mirror resumes when run again; a complete one copies nothing.
    Both sides' hash chains of every topic must match, or the command fails.
    """
    from engine.app.mirror import mirror_session

    fsync = context(ctx).fsync
    began = time.perf_counter()
    with _opened(source, fsync, must_exist=True) as src, _opened(target, fsync) as dst:
        try:
            with _bars(quiet) as on_progress:
                copies = mirror_session(
                    src, dst, session, runs or [], on_progress, pipelines=context(ctx).pipelines
                )
        except LogError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted: what was copied is kept; run the same command to resume", 130)
    console.print(_table(copies, f"session {session}: {src.url} -> {dst.url}"))
    copied = sum(c.copied for c in copies)
    records = sum(c.records for c in copies)
    console.print(
        f"{copied:,} of {records:,} records copied now in {time.perf_counter() - began:.1f} s; "
        f"all {len(copies)} topics hash identically on both sides"
    )


@contextmanager
def _opened(
    address: str, fsync: FsyncPolicy, must_exist: bool = False
) -> Iterator[EmbeddedLog | KafkaLog]:
    if must_exist and not address.startswith(KAFKA_SCHEME) and not Path(address).is_dir():
        fail(f"{address} is not a data directory; give {Address}")
    try:
        log = open_log(address, fsync)
    except LogError as exc:
        fail(str(exc))
    try:
        yield log
    finally:
        log.close()


@contextmanager
def _bars(quiet: bool) -> Iterator[Callable[[str, int, int], None]]:
    bars = RichProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeRemainingColumn(),
        console=console,
        # Piped output gets only the table: bars there would leave a blank line behind.
        disable=quiet or not console.is_terminal,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def update(topic: str, done: int, total: int) -> None:
        if topic not in tasks:
            tasks[topic] = bars.add_task(topic, total=total)
        # A Kafka source's total is an upper bound (transaction markers take offsets).
        bars.update(tasks[topic], completed=done, total=max(total, done))

    with bars:
        yield update


def _table(copies: list[TopicCopy], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("topic")
    table.add_column("records", justify="right")
    table.add_column("copied now", justify="right")
    table.add_column("source chain")
    table.add_column("target chain")
    table.add_column("identical")
    for c in copies:
        table.add_row(
            c.topic,
            f"{c.records:,}",
            f"{c.copied:,}",
            c.source_chain[:12],
            c.target_chain[:12],
            "[green]yes[/]" if c.identical else "[bold red]NO[/]",
        )
    return table


@app.command("kafka-mock")
def kafka_mock_command(
    brokers: Annotated[int, typer.Option(min=1, help="Brokers in the mock cluster.")] = 3,
) -> None:
    """Run a mock Kafka cluster on loopback until Ctrl-C, to try the Kafka backend.

    It is librdkafka's own mock: the real protocol on 127.0.0.1, so `tape mirror`
    takes the kafka:// address it prints. It keeps its topics in this process's
    memory, only the newest 5 MiB of each partition: small sessions only.
    """
    from engine.log.kafka import MockCluster

    cluster = MockCluster(brokers)
    console.print(cluster.url, soft_wrap=True)
    console.print(
        f"mock Kafka cluster, {brokers} broker(s), in memory until Ctrl-C; try: "
        f"tape mirror tapedata {cluster.url} --session NAME",
        soft_wrap=True,
    )
    sys.stdout.flush()
    # A background service is stopped with SIGTERM: end as cleanly as after Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("mock cluster stopped; what it held is gone")
