"""The models stage without a bundle, and its online model: config, flags, the label/vector
ordering rule, NaN handling, snapshot/restore and slicing on synthetic streams."""

from __future__ import annotations

import itertools
import math
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events.control import InstrumentSpec
from engine.events.decisions import (
    L_UNDEFINED,
    LABEL,
    P_NO_BUNDLE,
    P_NO_MODEL,
    P_ONLINE_COLD,
    PREDICTION,
    new_records,
)
from engine.events.features import new_vectors
from engine.runtime import ConfigError, RunConfig, Slice, StageContext
from engine.runtime.topology import resolve
from streams.features import INDEX
from streams.models import ONLINE_FEATURES, ModelsStage
from streams.models.online import OnlineModel, OnlineState
from tests.models_helpers import PIPELINE, PIPELINES

BTC = InstrumentSpec("BTCUSDT", "BINANCE-USDM", "UTC", 2, 3, 10, 1, "USDT")


def stage(**config: Any) -> ModelsStage:
    resolved = resolve(PIPELINES, RunConfig(pipeline=PIPELINE.name, stages={"models": config}), BTC)
    return ModelsStage(StageContext("s", BTC, resolved["stages"]["models"], 0))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"bundle": "abc123"}, "bundle must be a full sha256 .* `tape run --bundle PREFIX`"),
        ({"online_features": ["spread_bps", "nope"]}, r"unknown: \['nope'\]"),
        ({"online_features": []}, "none given"),
        ({"online_lr": 0.0}, "online_lr must be a finite number > 0"),
        ({"online_l2": -1.0}, "online_l2 must be >= 0"),
        ({"lr": 0.1}, r"unknown setting\(s\) \['lr'\]"),
    ],
)
def test_config_errors_say_what_is_allowed(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        stage(**config)


def test_a_bundle_needs_a_model_store() -> None:
    with pytest.raises(LookupError, match="given no model store"):
        stage(bundle="ab" * 32)


# -- synthetic streams -------------------------------------------------------------------------

Row = tuple[int, list[float], int, int]
"""(cause, feature values, label, label flags)."""


@st.composite
def streams(draw: st.DrawFn) -> list[Row]:
    """Vectors at increasing causes, each labelled a few events later (some undefined), with
    NaNs in the features."""
    rows, cause = [], 0
    for _ in range(draw(st.integers(1, 60))):
        cause += draw(st.integers(1, 3))
        values = [
            math.nan if draw(st.integers(0, 9)) == 0 else draw(st.floats(-5, 5, width=32))
            for _ in ONLINE_FEATURES
        ]
        flags = L_UNDEFINED if draw(st.integers(0, 15)) == 0 else 0
        rows.append((cause, values, draw(st.sampled_from([-1, 0, 1])), flags))
    return rows


def _slices(rows: list[Row], delay: int, cuts: list[int]) -> list[Slice]:
    """Journal slices of the stream: vector ``i`` at its cause; its label ``delay`` offsets
    later (the journal runs on past the last vector so every label matures)."""
    end = rows[-1][0] + delay + 1
    bounds = sorted({0, end, *(c for c in cuts if 0 < c < end)})
    columns = [INDEX[n] for n in ONLINE_FEATURES]
    out = []
    for start, stop in itertools.pairwise(bounds):
        mine = [r for r in rows if start <= r[0] < stop]
        vectors = new_vectors(len(mine), 1)
        vectors["values"] = np.nan
        for i, (cause, values, _, _) in enumerate(mine):
            vectors[i]["cause"], vectors[i]["ts_event"] = cause, cause * 10**6
            vectors["values"][i, columns] = values
        matured = [r for r in rows if start <= r[0] + delay < stop]
        labels = new_records(LABEL, len(matured))
        for i, (cause, _, label, flags) in enumerate(matured):
            labels[i]["cause"], labels[i]["origin"] = cause + delay, cause
            labels[i]["label"], labels[i]["flags"] = label, flags
        out.append(Slice(start, stop, inputs={"features": vectors, "labels": labels}))
    return out


def _feed(models: ModelsStage, pieces: list[Slice]) -> bytes:
    return b"".join(models.process(p)[0].tobytes() for p in pieces)


@settings(max_examples=20)
@given(rows=streams(), delay=st.sampled_from([0, 1, 5]), cuts=st.lists(st.integers(0, 200)))
def test_predictions_do_not_depend_on_slicing(rows: list[Row], delay: int, cuts: list[int]) -> None:
    whole = _feed(stage(), _slices(rows, delay, []))
    assert _feed(stage(), _slices(rows, delay, cuts)) == whole
    one_by_one = _feed(stage(), _slices(rows, delay, list(range(rows[-1][0] + delay + 1))))
    assert one_by_one == whole


@settings(max_examples=15)
@given(rows=streams(), delay=st.sampled_from([1, 4]), at=st.integers(0, 200))
def test_restore_mid_stream_continues_exactly(rows: list[Row], delay: int, at: int) -> None:
    pieces = _slices(rows, delay, [at])
    whole = _feed(stage(), pieces)
    first = stage()
    head = [p for p in pieces if p.stop <= at]
    bytes_head = _feed(first, head)
    second = stage()
    second.restore(first.snapshot())
    assert second.snapshot() == first.snapshot()
    assert bytes_head + _feed(second, pieces[len(head) :]) == whole


def test_flags_before_and_after_the_first_label() -> None:
    rows: list[Row] = [(c, [0.1 * c] * len(ONLINE_FEATURES), 1, 0) for c in range(1, 6)]
    out = np.frombuffer(_feed(stage(), _slices(rows, 2, [])), dtype=PREDICTION.dtype)
    cold = out[:2]  # labels of causes 1, 2 mature at 3, 4
    assert (cold["flags"] == P_NO_BUNDLE | P_ONLINE_COLD | P_NO_MODEL).all()
    assert np.isnan(cold["probs"]).all()
    assert (cold["direction"] == 0).all()
    warm = out[2:]
    assert (warm["flags"] == P_NO_BUNDLE).all()
    assert np.isnan(warm["meta"]).all()
    assert np.array_equal(warm["probs"], warm["online"])
    assert np.allclose(warm["probs"].sum(axis=1), 1.0)
    best = warm["probs"].argmax(axis=1)
    assert (warm["direction"] == best - 1).all()
    assert (warm["confidence"] == warm["probs"].max(axis=1)).all()


def test_a_label_maturing_at_a_vectors_event_is_learnt_before_that_vector() -> None:
    """Vector 1's label matures at offset 2, which also causes vector 2: vector 2 is the first
    prediction of a warm model (the documented order: labels first)."""
    rows: list[Row] = [
        (1, [1.0] * len(ONLINE_FEATURES), 1, 0),
        (2, [2.0] * len(ONLINE_FEATURES), 0, 0),
    ]
    out = np.frombuffer(_feed(stage(), _slices(rows, 1, [])), dtype=PREDICTION.dtype)
    assert out[0]["flags"] & P_ONLINE_COLD
    assert not out[1]["flags"] & P_ONLINE_COLD


def test_undefined_labels_teach_nothing() -> None:
    rows: list[Row] = [(c, [1.0] * len(ONLINE_FEATURES), 1, L_UNDEFINED) for c in range(1, 5)]
    models = stage()
    _feed(models, _slices(rows, 1, []))
    assert models.inspect()["online_labels_learnt"] == 0


# -- the online model ------------------------------------------------------------------------


def test_nan_features_never_reach_river() -> None:
    names = ["a", "b", "c"]
    model = OnlineModel(names, 0.05, 0.0, 5.0)
    model.learn([1.0, math.nan, 2.0], 1)
    model.learn([2.0, math.nan, 3.0], -1)
    state = model.state()
    assert [k for k, _ in state.counts] == ["a", "c"]
    assert all(math.isfinite(v) for _, v in state.means + state.variances)
    probs = model.predict([math.nan, math.nan, math.nan])
    assert probs is not None
    assert all(math.isfinite(p) for p in probs)
    assert {c for c, _ in state.weights} == {0, 2}  # the classes seen so far (down, up)


@settings(max_examples=25)
@given(
    steps=st.lists(
        st.tuples(
            st.lists(st.one_of(st.floats(-100, 100), st.just(math.nan)), min_size=4, max_size=4),
            st.sampled_from([-1, 0, 1, None]),  # None: predict only
        ),
        min_size=1,
        max_size=40,
    ),
    at=st.integers(0, 40),
)
def test_online_state_round_trips_and_continues_bit_identically(
    steps: list[tuple[list[float], int | None]], at: int
) -> None:
    names = ["w", "x", "y", "z"]

    def play(model: OnlineModel, part: list[tuple[list[float], int | None]]) -> list[Any]:
        out = []
        for values, label in part:
            if label is None:
                out.append(model.predict(values))
            else:
                model.learn(values, label)
        return out

    straight = OnlineModel(names, 0.05, 0.01, 5.0)
    expected = play(straight, steps)
    first = OnlineModel(names, 0.05, 0.01, 5.0)
    got = play(first, steps[:at])
    raw = msgspec.msgpack.encode(first.state())
    second = OnlineModel(names, 0.05, 0.01, 5.0)
    second.load(msgspec.msgpack.decode(raw, type=OnlineState))
    assert msgspec.msgpack.encode(second.state()) == raw
    got += play(second, steps[at:])
    assert repr(got) == repr(expected)
    assert msgspec.msgpack.encode(second.state()) == msgspec.msgpack.encode(straight.state())


def test_online_state_of_another_version_is_refused() -> None:
    model = OnlineModel(["a"], 0.05, 0.0, 5.0)
    state = msgspec.structs.replace(model.state(), version=99)
    with pytest.raises(ValueError, match="online model state version 99"):
        model.load(state)
