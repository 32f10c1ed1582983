"""``tape monitor``'s faust-streaming app: live tables per session, served as JSON.

Two agents read the cluster: one the session journals (``<session>.journal``), one the run
topics the figures need (``run.<run id>.{portfolio,decisions,risk,orders,executions}``). Each
folds batches of records into :mod:`engine.app.monitor.figures` and keeps the result in a faust
Table (``sessions`` by session, ``runs`` by run id), backed by faust's changelog topics, so a
restarted monitor starts from its tables instead of from the start of every topic.

Why faust here and not in the worker: faust's consumer commits are at-least-once, and its
exactly-once mode has open duplicate bugs. These tables are views, recomputable from the log
at any time, and the folds skip records they have already seen (by offset, kept in the table),
so a redelivered batch changes nothing. The deterministic pipeline stays on the transactional
confluent-kafka loop (docs/operations.md).

**Read committed, always.** faust reads ``read_committed`` only in its exactly-once mode; the
monitor forces it in at-least-once mode too (:class:`_ReadCommittedThread`), so records of an
aborted or still open worker transaction never enter a table.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import faust
import msgspec
from confluent_kafka.admin import AdminClient
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport
from faust.web import Request, Response, View

from engine.app.monitor.figures import (
    RUN_PORTS,
    RunFigures,
    SessionFigures,
    runs_of,
    split_run_topic,
    to_builtins,
)

DISCOVER_EVERY = 2.0
"""Seconds between looks for new journals and run topics."""
RESUBSCRIBE_AFTER = 3.0
"""Seconds faust's conductor waits after a subscription change before subscribing anew."""
BATCH = 5_000
"""Records folded per table update (or fewer, after ``WITHIN`` seconds)."""
WITHIN = 0.5


class _ReadCommittedThread(AIOKafkaConsumerThread):
    """faust's aiokafka consumer thread with ``isolation_level=read_committed`` whatever the
    processing guarantee (faust sets it only for exactly-once)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka keeps the level as given until start() builds its fetcher with it.
        consumer._isolation_level = "read_committed"
        return consumer


class _ReadCommittedConsumer(Consumer):
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ReadCommittedThread(self, loop=self.loop, beacon=self.beacon)


class ReadCommittedTransport(Transport):
    """The aiokafka transport with the read-committed consumer."""

    Consumer = _ReadCommittedConsumer


class MonitorApp(faust.App):
    """A faust App on :class:`ReadCommittedTransport`."""

    def _new_transport(self) -> Any:
        return ReadCommittedTransport(self.conf.broker_consumer, self)


def _pattern(sessions: list[str] | None) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Subscription patterns of (journals, run topics), for every session or the given ones."""
    ports = "|".join(RUN_PORTS)
    if not sessions:
        return re.compile(r"^.+\.journal$"), re.compile(rf"^run\..+\.({ports})$")
    names = "|".join(re.escape(s) for s in sessions)
    stems = "|".join(re.escape(re.sub(r"[^A-Za-z0-9_-]", "_", s)) for s in sessions)
    return re.compile(rf"^({names})\.journal$"), re.compile(rf"^run\.({stems})-.+\.({ports})$")


def build_app(
    bootstrap: str,
    *,
    app_id: str = "tapedeck-monitor",
    sessions: list[str] | None = None,
    web_port: int = 6066,
    web_host: str = "127.0.0.1",
    datadir: Path | None = None,
) -> faust.App:
    """The monitor app on ``bootstrap`` (``HOST:PORT[,HOST:PORT]``); see the module docstring."""
    app = MonitorApp(
        app_id,
        broker=[f"kafka://{b}" for b in bootstrap.split(",")],
        store="memory://",
        web_enabled=True,
        web_port=web_port,
        web_bind=web_host,
        web_host=web_host,
        datadir=str(datadir) if datadir else None,
        consumer_auto_offset_reset="earliest",
        topic_partitions=1,
        key_serializer="json",  # the tables' keys (names); their values are JSON bytes
        value_serializer="raw",
    )
    # faust waits 45 s after a subscription change before subscribing anew (to gather the
    # changes of a rebalance); a new run's topics should show in seconds, not a minute.
    cast(Any, app.topics)._resubscribe_sleep_lock_seconds = RESUBSCRIBE_AFTER
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wanted = Subscriptions(*_pattern(sessions))
    wanted.update(_topic_names(admin))
    source = app.topic(
        *wanted.names(),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    # Updated once per batch (outside faust's per-event context): the key picks the changelog
    # partition, as the tables have one partition there is nothing to co-partition.
    tables: dict[str, Any] = {
        "partitions": 1,
        "key_type": str,
        "value_type": bytes,
        "use_partitioner": True,
    }
    session_table = app.Table("sessions", help="SessionFigures by session", **tables)
    run_table = app.Table("runs", help="RunFigures by run id", **tables)

    @app.timer(interval=DISCOVER_EVERY)
    async def discover() -> None:
        """Subscribe to journals and run topics created since the last look (faust's pattern
        subscriptions do not work, so the monitor lists the cluster's topics itself)."""
        names = await asyncio.get_running_loop().run_in_executor(None, _topic_names, admin)
        if not wanted.update(names):
            return
        for channel in list(app.topics):
            if not channel.internal and set(channel.topics) <= set(wanted.names()):
                channel.topics = wanted.names()  # the agent's iterator (a clone of ``source``)
                app.topics.discard(channel)  # re-registering makes the consumer subscribe anew
                app.topics.add(channel)

    @app.agent(source)
    async def fold(stream: Any) -> AsyncIterator[None]:
        async for events in stream.take_events(BATCH, within=WITHIN):
            for topic, batch in _by_topic(events).items():
                offsets, values = [m.offset for m in batch], [m.value for m in batch]
                named = split_run_topic(topic)
                if named is not None:
                    run_id, port = named
                    figures = _load(run_table, run_id, RunFigures)
                    figures.add(port, offsets, values)
                    run_table[run_id] = msgspec.json.encode(figures)
                elif topic.endswith(".journal"):
                    session = topic.removesuffix(".journal")
                    journal = _load(session_table, session, SessionFigures)
                    journal.add(offsets, values)
                    session_table[session] = msgspec.json.encode(journal)
            yield None

    def run_view(run_id: str) -> dict[str, Any] | None:
        raw = run_table.get(run_id)
        return None if raw is None else msgspec.json.decode(raw, type=RunFigures).view()

    @app.page("/")
    class Index(View):  # the faust views are classes: one GET each
        async def get(self, request: Request) -> Response:
            return self.json(
                {"sessions": sorted(session_table.keys()), "runs": sorted(run_table.keys())}
            )

    @app.page("/sessions/{session}/")
    class SessionPage(View):
        async def get(self, request: Request, session: str) -> Response:
            raw = session_table.get(session)
            runs = runs_of(session, run_table.keys())
            if raw is None and not runs:
                return self.notfound(f"no journal or run of session {session!r} seen yet")
            journal = None if raw is None else msgspec.json.decode(raw, type=SessionFigures)
            return self.json(
                {
                    "session": session,
                    "journal": None if journal is None else journal.view(),
                    "runs": {r: run_view(r) for r in runs},
                }
            )

    @app.page("/runs/{run_id}/")
    class RunPage(View):
        async def get(self, request: Request, run_id: str) -> Response:
            view = run_view(run_id)
            if view is None:
                return self.notfound(f"no output of run {run_id!r} seen yet")
            return self.json({"run": run_id, **view})

    @app.page("/raw/runs/{run_id}/")
    class RawRunPage(View):
        async def get(self, request: Request, run_id: str) -> Response:
            raw = run_table.get(run_id)
            if raw is None:
                return self.notfound(f"no output of run {run_id!r} seen yet")
            return self.json(to_builtins(msgspec.json.decode(raw, type=RunFigures)))

    del discover, fold, Index, SessionPage, RunPage, RawRunPage  # registered on app
    return app


@dataclass
class Subscriptions:
    """The topics the monitor reads: those on the cluster matching its two patterns."""

    journal_pattern: re.Pattern[str]
    run_pattern: re.Pattern[str]
    journals: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)

    def update(self, names: Iterable[str]) -> bool:
        """Add the matching ``names`` not yet subscribed; whether there were any."""
        fresh = False
        for name in sorted(names):
            for pattern, chosen in ((self.journal_pattern, self.journals),
                                    (self.run_pattern, self.runs)):  # fmt: skip
                if pattern.match(name) and name not in chosen:
                    chosen.append(name)
                    fresh = True
        return fresh

    def names(self) -> list[str]:
        """Every topic to read."""
        return [*self.journals, *self.runs]


def _topic_names(admin: AdminClient) -> list[str]:
    return list(admin.list_topics(timeout=10).topics)


def _by_topic(events: list[Any]) -> dict[str, list[Any]]:
    """The batch's messages per topic, each topic's in offset order."""
    out: dict[str, list[Any]] = {}
    for event in events:
        out.setdefault(event.message.topic, []).append(event.message)
    return out


def _load(table: Any, key: str, kind: type[Any]) -> Any:
    raw = table.get(key)
    return kind() if raw is None else msgspec.json.decode(raw, type=kind)
