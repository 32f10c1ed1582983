"""When a live session is open: a venue's calendar, or 24/7 with a daily roll; and the clock.

The live session asks its :class:`Hours` when the next session opens and when it closes, and
sleeps on its :class:`Clock` until then. Both are injected, so a test runs a trading day in
seconds (:class:`ScaledClock`); nothing here is ever read by a processor, which only sees the
journal (``session.opened`` / ``session.closed`` carry the times).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from typing import Protocol

NS = 1_000_000_000


class Clock(Protocol):
    """Local time, and sleeping until a local time."""

    def now(self) -> int:
        """Nanoseconds since the epoch, UTC."""

    async def sleep_until(self, ns: int) -> None:
        """Return once :meth:`now` has reached ``ns``."""


class WallClock:
    """The machine's clock."""

    def now(self) -> int:
        """Nanoseconds since the epoch, UTC."""
        return time.time_ns()

    async def sleep_until(self, ns: int) -> None:
        """Sleep until ``ns``."""
        await asyncio.sleep(max(0.0, (ns - self.now()) / NS))


class ScaledClock:
    """A clock that starts at ``start`` (ns) and runs ``speed`` times faster than the machine's:
    a trading day in seconds, for tests and demos."""

    def __init__(self, start: int, speed: float) -> None:
        self.start, self.speed = start, speed
        self._origin = time.monotonic_ns()

    def now(self) -> int:
        """Scaled nanoseconds since the epoch."""
        return self.start + round((time.monotonic_ns() - self._origin) * self.speed)

    async def sleep_until(self, ns: int) -> None:
        """Sleep the machine time it takes this clock to reach ``ns``."""
        await asyncio.sleep(max(0.0, (ns - self.now()) / NS / self.speed))


@dataclass(frozen=True)
class Window:
    """One trading session: it opens at ``opens`` and closes itself at ``closes`` (ns)."""

    opens: int
    closes: int
    reason: str
    """Why it closes then: ``market close`` or ``daily roll``."""
    day: str
    """The session's trading day (ISO date), for naming rolled sessions."""


class Hours(Protocol):
    """When a venue trades."""

    def window(self, now: int) -> Window:
        """The session in progress at ``now``, or the next one."""


class CalendarHours:
    """A venue's trading calendar from ``exchange_calendars`` (e.g. ``XNYS``, ``BVMF``):
    sessions open at the open and close at the close, early closes and holidays included."""

    def __init__(self, name: str) -> None:
        import exchange_calendars as xc  # imports pandas, which is slow: only when asked

        try:
            self.calendar = xc.get_calendar(name)
        except xc.errors.InvalidCalendarName:
            known = ", ".join(sorted(xc.get_calendar_names(include_aliases=False))[:12])
            raise ValueError(f"no exchange calendar {name!r} (e.g. {known}, ...)") from None
        self.name = name

    def window(self, now: int) -> Window:
        """The session in progress at ``now``, or the next one."""
        import pandas as pd

        minute = pd.Timestamp(now, unit="ns", tz="UTC").floor("min")
        cal = self.calendar
        if cal.is_open_on_minute(minute):
            session = cal.minute_to_session(minute)
        else:
            session = cal.minute_to_session(cal.next_open(minute))
        opens, closes = cal.session_open(session), cal.session_close(session)
        return Window(opens.value, closes.value, "market close", session.date().isoformat())


class AlwaysOpen:
    """24/7 (crypto): a session runs from one daily roll (UTC) to the next, or, without a
    roll, from now on until stopped."""

    def __init__(self, roll: day_time | None = None) -> None:
        self.roll = roll

    def window(self, now: int) -> Window:
        """From ``now`` to the next roll (no roll: to the end of time)."""
        at = datetime.fromtimestamp(now / NS, UTC)
        if self.roll is None:
            return Window(now, 2**63 - 1, "", at.date().isoformat())
        roll = datetime.combine(at.date(), self.roll, UTC)
        start = roll if roll <= at else roll - timedelta(days=1)
        end = start + timedelta(days=1)
        return Window(now, round(end.timestamp() * NS), "daily roll", start.date().isoformat())
