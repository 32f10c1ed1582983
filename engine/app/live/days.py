"""A 24/7 venue traded one session per day: at the daily roll the day's session closes itself
and the next day's opens, in the same process.

``tape live --session btc --roll 00:00`` trades ``btc-2026-12-02`` until 00:00 UTC, seals it
(``complete``, reason ``daily roll``), then opens ``btc-2026-12-03`` with a fresh snapshot from
the venue. A day's session is an ordinary live session: its own journal, its own run (run id
``<--run-id>-<day>`` when one is given, so a restart after a crash resumes the day's run),
replayable and verifiable alone. The roll is decided by the injected clock outside the
pipeline; processors only see each journal's ``session.opened`` and ``session.closed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from engine.app.live.hours import NS, Clock, WallClock
from engine.app.live.session import LiveConfig, LiveResult, LiveSession, PipelineHost
from engine.app.live.status import LiveStatus
from engine.log import EmbeddedLog

if TYPE_CHECKING:  # a session on Kafka is given its cluster; confluent-kafka only then
    from engine.log.kafka import KafkaLog

ROLLED = "daily roll"
"""The reason a day's session closes at the roll (:class:`~engine.app.live.hours.AlwaysOpen`)."""


def day_session(base: str, day: str) -> str:
    """The name of ``base``'s session for trading day ``day`` (ISO date)."""
    return f"{base}-{day}"


class DailySessions:
    """Run ``config`` as one live session per trading day of ``config.hours`` until stopped.

    ``config.session`` and ``config.run_id`` are the bases of each day's names; ``duration``
    bounds the whole run, across rolls. ``on_closed`` is called with each day's result and
    config as it seals (the CLI prints its report). With ``kafka`` each day's session journals
    and runs on that cluster, as :class:`LiveSession` does."""

    def __init__(
        self,
        log: EmbeddedLog,
        config: LiveConfig,
        clock: Clock | None = None,
        on_status: Callable[[LiveStatus], None] | None = None,
        on_closed: Callable[[LiveResult, LiveConfig], None] | None = None,
        kafka: tuple[KafkaLog, PipelineHost] | None = None,
    ) -> None:
        self.log, self.config, self.kafka = log, config, kafka
        self.clock = clock or WallClock()
        self.on_status, self.on_closed = on_status, on_closed
        self.current: LiveSession | None = None
        self._stopped = False

    def stop(self, reason: str, status: str = "stopped") -> None:
        """Stop the day's session and open no other (a signal handler, a test)."""
        self._stopped = True
        if self.current is not None:
            self.current.stop(reason, status)

    async def run(self) -> list[LiveResult]:
        """Trade day after day; return each day's result, the last one being why it ended."""
        base, results = self.config, []
        deadline = None if base.duration is None else self.clock.now() + round(base.duration * NS)
        now = self.clock.now()
        while not self._stopped:
            window = base.hours.window(now)
            duration = None if deadline is None else max(0.0, (deadline - now) / NS)
            config = replace(
                base,
                session=day_session(base.session, window.day),
                run_id=None if base.run_id is None else day_session(base.run_id, window.day),
                duration=duration,
            )
            self.current = LiveSession(self.log, config, self.clock, self.on_status, self.kafka)
            result = await self.current.run()
            results.append(result)
            if self.on_closed is not None:
                self.on_closed(result, config)
            if result.reason != ROLLED:
                break
            while (now := self.clock.now()) < window.closes:  # a timer may wake a hair early
                await self.clock.sleep_until(window.closes)
        return results
