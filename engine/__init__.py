"""Tapedeck's core: events, the log, the deterministic runtime and the CLI."""
