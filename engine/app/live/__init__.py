"""``tape live``: a live trading session (feed in, journal, runner, broker out) (docs/live.md)."""
