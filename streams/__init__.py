"""Tapedeck processors: pure, deterministic state machines over journal events."""
