"""The venue's local day and trading session for an event time: the temporal features' input.

The kernel works in integers (ns since the epoch, UTC). Whenever its clock leaves the local day
it holds, the stage asks :meth:`TradingDays.day_of` for the day containing the clock and hands
it back as a row of ``DAY_FIELDS``. Answers depend only on the event time, the time zone and
the calendar (pinned library versions), never on the wall clock: each day is computed once
from its local date and cached by date, and calendars are built with explicit year bounds
(``exchange_calendars`` would otherwise default its range to "today").

Time zones are read from the pinned ``tzdata`` package rather than the host's
``/usr/share/zoneinfo``, so a replay on another machine uses the same rules. Session hours come
from ``exchange_calendars`` (``XNAS`` for NASDAQ, ``BVMF`` for B3: its equity session, which
is what it publishes; the dollar future WDO trades longer hours) or are the whole local day
for ``24/7`` venues (crypto).
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import warnings
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from streams.features import kernel as k

ALWAYS_OPEN = "24/7"
"""Calendar name of venues that trade around the clock: every local day is one session."""
VENUE_CALENDARS = {"NASDAQ": "XNAS", "B3": "BVMF"}
"""Default calendar per venue; venues starting ``BINANCE`` are ``24/7``."""

_NS = 1_000_000_000


def default_calendar(venue: str) -> str:
    """The calendar a venue trades on ('' when unknown: the config must name one)."""
    if venue.startswith("BINANCE"):
        return ALWAYS_OPEN
    return VENUE_CALENDARS.get(venue, "")


@lru_cache(maxsize=32)
def load_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` from the pinned ``tzdata`` package."""
    resource = importlib.resources.files("tzdata").joinpath("zoneinfo", *name.split("/"))
    if not resource.is_file():
        raise ValueError(f"unknown time zone {name!r} (not in the tzdata package)")
    with resource.open("rb") as f:
        return ZoneInfo.from_file(f, key=name)


@lru_cache(maxsize=16)
def _exchange_calendar(code: str, year: int) -> Any:
    import exchange_calendars  # imported lazily: pandas is slow to import and only this needs it

    with warnings.catch_warnings():
        # exchange_calendars 4.13 reads tz-aware Series.values, which pandas 3.1 deprecates
        # (the values are still the UTC instants it expects); both versions are pinned.
        warnings.filterwarnings("ignore", "Series.values returning", DeprecationWarning)
        return exchange_calendars.get_calendar(code, start=f"{year}-01-01", end=f"{year}-12-31")


def check_calendar(code: str) -> None:
    """Raise ``ValueError`` naming the choices when ``code`` is not a known calendar."""
    if code == ALWAYS_OPEN:
        return
    import exchange_calendars

    names = exchange_calendars.get_calendar_names(include_aliases=True)
    if code not in names:
        raise ValueError(
            f"unknown trading calendar {code!r}; use {ALWAYS_OPEN!r} or an exchange_calendars "
            f"code such as XNAS, XNYS, BVMF ({len(names)} known)"
        )


def _offset(zone: ZoneInfo, second: int) -> int:
    offset = dt.datetime.fromtimestamp(second, zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def _midnight(zone: ZoneInfo, day: dt.date) -> int:
    """UTC second of the local day's first instant."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())


def _session(code: str, day: dt.date, start: int, end: int) -> tuple[int, int, int, int, int]:
    """(is session, open, close, break start, break end), times in ns (0 when none)."""
    if code == ALWAYS_OPEN:
        return 1, start * _NS, end * _NS, 0, 0
    calendar = _exchange_calendar(code, day.year)
    label = day.isoformat()
    if not calendar.is_session(label):
        return 0, 0, 0, 0, 0
    times = [
        calendar.session_open(label),
        calendar.session_close(label),
        calendar.session_break_start(label),
        calendar.session_break_end(label),
    ]
    # A session without a break gives NaT for both break times.
    ns = [0 if value is None or value != value else int(value.value) for value in times]
    return 1, ns[0], ns[1], ns[2], ns[3]


@lru_cache(maxsize=256)
def _day(zone_name: str, code: str, day: dt.date) -> tuple[int, ...]:
    zone = load_zone(zone_name)
    start, end = _midnight(zone, day), _midnight(zone, day + dt.timedelta(days=1))
    off0, off1 = _offset(zone, start), _offset(zone, end - 1)
    transition = end
    if off0 != off1:  # a DST change inside the day: find its first second
        lo, hi = start, end - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if _offset(zone, mid) == off1:
                hi = mid
            else:
                lo = mid + 1
        transition = lo
    session = _session(code, day, start, end)
    row = [0] * k.N_D
    row[k.D_START], row[k.D_END] = start * _NS, end * _NS
    row[k.D_OFF0], row[k.D_TRANS], row[k.D_OFF1] = off0 * _NS, transition * _NS, off1 * _NS
    row[k.D_WEEKDAY] = day.weekday()
    row[k.D_SESSION], row[k.D_OPEN], row[k.D_CLOSE] = session[0], session[1], session[2]
    row[k.D_BREAK_START], row[k.D_BREAK_END] = session[3], session[4]
    return tuple(row)


class TradingDays:
    """Local days of one venue: time zone plus trading calendar."""

    def __init__(self, time_zone: str, calendar: str) -> None:
        self.zone_name, self.calendar = time_zone, calendar
        self.zone = load_zone(time_zone)
        check_calendar(calendar)

    def local_date(self, t_ns: int) -> dt.date:
        """The venue's local date at event time ``t_ns``."""
        return dt.datetime.fromtimestamp(t_ns // _NS, self.zone).date()

    def day_of(self, t_ns: int) -> np.ndarray[Any, np.dtype[np.int64]]:
        """The kernel's day row (``kernel.D_*``) of the local day containing ``t_ns``."""
        row = np.array(_day(self.zone_name, self.calendar, self.local_date(t_ns)), np.int64)
        if not row[k.D_START] <= t_ns < row[k.D_END]:
            raise ValueError(f"local day bounds {row[:2]} do not contain {t_ns}")
        return row
