"""``tape worker``: host the deterministic topology on a Kafka cluster's journal partitions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from engine.app.cli.metrics_options import MetricsPort, metrics_endpoint
from engine.app.cli.model_options import Models, model_store, with_bundle
from engine.app.cli.root import LOG_ENV, app, console, context, fail
from engine.app.cli.run_commands import load_config
from engine.log import LogError

if TYPE_CHECKING:
    from engine.app.worker import Worker
    from engine.app.worker.loop import WorkerProgress
from engine.log.locate import open_log
from engine.models import ModelStoreError
from engine.runtime import ConfigError, RunError

KafkaAddress = Annotated[
    str | None,
    typer.Option(
        "--log",
        envvar=LOG_ENV,
        help="The cluster: kafka://HOST:PORT[,HOST:PORT].",
        show_default=False,
    ),
]
Sessions = Annotated[
    list[str] | None,
    typer.Option(help="Only this session's journal (repeatable; default: every journal)."),
]
Group = Annotated[str, typer.Option(help="Consumer group: workers sharing it split the sessions.")]
WorkerId = Annotated[
    str | None,
    typer.Option(
        "--worker-id",
        help="Stable name of this worker (default: host name). A restarted worker must "
        "keep its name so it can abort its predecessor's open transaction at once.",
        show_default=False,
    ),
]
ConfigFile = Annotated[
    Path | None, typer.Option(help="Run config file (TOML or JSON), as for `tape run`.")
]
Bundle = Annotated[
    str | None,
    typer.Option("--bundle", help="Model bundle hash or prefix: sets stages.models.bundle."),
]
CommitEvery = Annotated[
    int, typer.Option(help="Journal events per transaction (results never depend on it).", min=1)
]
IdleExit = Annotated[
    float | None,
    typer.Option(
        help="Exit after this many seconds without journal events once every session it "
        "hosts is complete (default: run until stopped).",
        show_default=False,
    ),
]
SessionTimeout = Annotated[
    float,
    typer.Option(
        help="Seconds a silent worker stays in the group; after that its sessions move to "
        "another worker (Kafka's session.timeout.ms).",
        min=1,
    ),
]
TransactionTimeout = Annotated[
    float,
    typer.Option(
        help="Seconds the broker lets a transaction stay open before aborting it: how long "
        "readers and a worker taking over wait for a dead worker's last transaction "
        "(Kafka's transaction.timeout.ms; at most the broker's transaction.max.timeout.ms).",
        min=1,
    ),
]


@app.command()
def worker(
    ctx: typer.Context,
    log_address: KafkaAddress = None,
    pipeline: Annotated[str, typer.Option(help="Pipeline every session runs.")] = "default",
    session: Sessions = None,
    group: Group = "tapedeck-workers",
    worker_id: WorkerId = None,
    config: ConfigFile = None,
    models: Models = None,
    bundle: Bundle = None,
    commit_every: CommitEvery = 20_000,
    idle_exit: IdleExit = None,
    metrics_port: MetricsPort = None,
    session_timeout: SessionTimeout = 45.0,
    transaction_timeout: TransactionTimeout = 60.0,
) -> None:
    """Process session journals on Kafka with the pipeline, exactly once, as one of a group."""
    if not log_address or not log_address.startswith("kafka://"):
        fail(
            "tape worker runs on a Kafka cluster: pass --log kafka://HOST:PORT (or set "
            f"{LOG_ENV}); on one machine `tape run` does the same work on the embedded log"
        )
    from engine.app.worker import Worker  # confluent-kafka: loaded by this command only
    from engine.app.worker.loop import WorkerTimeouts
    from engine.log.kafka import KafkaLog

    store = model_store(context(ctx).data, models)
    pipelines = context(ctx).pipelines
    with metrics_endpoint(metrics_port) as metrics:
        try:
            log = open_log(log_address)
            assert isinstance(log, KafkaLog)
            run_config = load_config(config, pipeline)
            if bundle is not None:
                run_config = with_bundle(run_config, store, bundle, pipelines)
            hosted = Worker(
                log,
                pipeline,
                pipelines=pipelines,
                group=group,
                worker_id=worker_id,
                sessions=session,
                config=run_config,
                models=store,
                commit_every=commit_every,
                metrics=metrics,
                timeouts=WorkerTimeouts(session_timeout, transaction_timeout),
            )
            console.print(
                f"worker {hosted.worker_id} joined group {group} on {log.servers}, pipeline "
                f"{pipeline}; waiting for journal partitions"
            )
            done = hosted.run(idle_exit, _report(hosted))
        except (LogError, RunError, ConfigError, ModelStoreError) as exc:
            fail(str(exc), code=1)
        except KeyboardInterrupt:
            console.print("stopped; everything up to the last committed transaction is kept")
            raise typer.Exit(130) from None
    console.print(
        f"worker {hosted.worker_id} done: {done.events:,} journal events in {done.cycles} "
        f"transactions; complete runs: {', '.join(done.completed) or 'none'}"
    )


def _report(hosted: Worker) -> Callable[[WorkerProgress], None]:
    completed = 0

    def on_cycle(progress: WorkerProgress) -> None:
        nonlocal completed
        where = ", ".join(
            f"{task.session}@{task.next:,}" + (" (complete)" if task.closed else "")
            for task in hosted.tasks.values()
        )
        console.print(f"committed transaction {progress.cycles}: {where}", highlight=False)
        for run_id in progress.completed[completed:]:
            console.print(f"run {run_id} complete; its manifest is in the meta topic")
        completed = len(progress.completed)

    return on_cycle
