"""Stream processors: pure, deterministic state machines over journal events."""
