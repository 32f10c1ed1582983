"""Test helpers for Prometheus metrics: scrape a ``/metrics`` endpoint and look samples up."""

from __future__ import annotations

import socket
import urllib.request

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample on ``http://127.0.0.1:PORT/metrics``: (name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent: a labelled series appears on first use)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def by_label(samples: Samples, name: str, label: str, **labels: str) -> dict[str, float]:
    """The values of ``name``'s series that carry ``labels``, by the value of ``label``."""
    found = {}
    for (sample, pairs), v in samples.items():
        got = dict(pairs)
        if sample == name and label in got and all(got.get(k) == x for k, x in labels.items()):
            found[got[label]] = v
    return found


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
