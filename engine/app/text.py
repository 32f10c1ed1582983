"""How times read on every screen (terminal, dashboard, report files)."""

from __future__ import annotations

from datetime import UTC, datetime


def format_ns(ns: int) -> str:
    """UTC ISO-8601 time with nanoseconds: ``2012-06-21T13:30:00.004241176Z``."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"
