"""``BulkHistogram`` exposes exactly what prometheus_client's own ``Histogram`` does for the
same observations, whether they come one by one or as one array."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from engine.app.metrics import LATENCY_BUCKETS, BulkHistogram

values = st.lists(
    st.one_of(
        st.floats(0, 20, allow_nan=False),
        st.sampled_from(LATENCY_BUCKETS),  # on a bound: counted in that bucket (le)
    ),
    max_size=200,
)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")  # the library's creation time: not a measurement
    }


@given(one=values, many=values)
def test_the_same_exposition_as_the_librarys_histogram(one: list[float], many: list[float]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("t_seconds", "help", ["session"], buckets=LATENCY_BUCKETS,
                          registry=theirs)  # fmt: skip
    bulk = BulkHistogram("t_seconds", "help", ["session"], LATENCY_BUCKETS, ours)
    reference.labels("a")  # a series exists from its first use, observed or not
    for v in one + many:
        reference.labels("a").observe(v)
    for v in one:
        bulk.labels("a").observe(v)
    bulk.labels("a").observe_many(np.asarray(many, np.float64))
    expected, got = _samples(theirs), _samples(ours)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-9), key


def test_series_per_label_and_nothing_before_use() -> None:
    registry = CollectorRegistry()
    bulk = BulkHistogram("t_seconds", "help", ["session"], (0.1, 1.0), registry)
    assert not _samples(registry)
    bulk.labels("a").observe_many(np.array([0.05, 0.5, 5.0]))
    bulk.labels("b").observe(0.1)
    got = _samples(registry)
    assert got[("t_seconds_bucket", (("le", "0.1"), ("session", "a")))] == 1
    assert got[("t_seconds_bucket", (("le", "1.0"), ("session", "a")))] == 2
    assert got[("t_seconds_bucket", (("le", "+Inf"), ("session", "a")))] == 3
    assert got[("t_seconds_count", (("session", "a"),))] == 3
    assert got[("t_seconds_sum", (("session", "a"),))] == pytest.approx(5.55)
    assert got[("t_seconds_bucket", (("le", "0.1"), ("session", "b")))] == 1


def test_buckets_must_increase_and_labels_match() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        BulkHistogram("t_seconds", "help", ["session"], (1.0, 0.1), CollectorRegistry())
    bulk = BulkHistogram("t_seconds", "help", ["session"], (0.1,), CollectorRegistry())
    with pytest.raises(ValueError, match="takes labels"):
        bulk.labels("a", "b")
