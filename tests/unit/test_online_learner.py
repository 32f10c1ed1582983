"""The compiled online learner against river, its definition: bit-identical predictions and
state after every step, on real feature vectors and labels (the AAPL sample through the
pipeline) and on seeded sequences with NaN features; and the ``models`` stage, which runs the
compiled learner, against the stage's walk written in Python over river's model.

Bit-identical is checked on the bytes: ``repr`` of each probability (NaN and -0.0 included)
and the msgpack of the state (every float exactly, every dict's order).
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from engine.events.decisions import L_UNDEFINED, P_ONLINE_COLD
from engine.runtime.processor import Slice
from streams.features import INDEX
from streams.models.learner import CompiledLearner
from streams.models.online import OnlineModel, OnlineState
from streams.models.stage import ONLINE_FEATURES
from tests.models_helpers import config, copy_samples, run_outputs
from tests.unit.test_models_stage import stage as models_stage
from tests.unit.test_online_frozen_state import FROZEN, NAMES, sequence

Array = np.ndarray[Any, Any]
COLUMNS = [INDEX[n] for n in ONLINE_FEATURES]


def _state(model: OnlineModel | CompiledLearner) -> bytes:
    return msgspec.msgpack.encode(model.state())


@pytest.fixture(scope="module")
def real(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Array]:
    """Feature vectors and labels of the AAPL sample (no bundle: the online model only)."""
    data = copy_samples(samples_master, tmp_path_factory.mktemp("learner") / "data")
    out = run_outputs(data, tmp_path_factory.mktemp("scratch"), config(), None)
    assert len(out["features"]) > 800
    assert len(out["labels"]) > 800
    return out


def _reference_walk(
    vectors: Array, labels: Array, lr: float = 0.02, l2: float = 0.0, clip: float = 5.0
) -> tuple[Array, Array, OnlineModel]:
    """The models stage's online walk in plain Python over river's model (what the stage did
    before the compiled learner): labels first on a tie, each label teaching its origin."""
    model = OnlineModel(list(ONLINE_FEATURES), lr, l2, clip)
    pending: deque[tuple[int, list[float]]] = deque()
    probs = np.full((len(vectors), 3), np.nan)
    cold = np.zeros(len(vectors), bool)
    rows = list(
        zip(*(labels[f].tolist() for f in ("cause", "origin", "label", "flags")), strict=True)
    )

    def learn(origin: int, label: int, flags: int) -> None:
        while pending and pending[0][0] < origin:
            pending.popleft()
        if not pending or pending[0][0] != origin:
            return
        _, features = pending.popleft()
        if not flags & L_UNDEFINED:
            model.learn(features, label)

    j = 0
    for i, cause in enumerate(vectors["cause"].tolist()):
        while j < len(rows) and rows[j][0] <= cause:
            learn(*rows[j][1:])
            j += 1
        features = vectors["values"][i][COLUMNS].tolist()
        p = model.predict(features)
        if p is None:
            cold[i] = True
        else:
            probs[i] = p
        pending.append((cause, features))
    for row in rows[j:]:
        learn(*row[1:])
    return probs, cold, model


def test_learner_step_by_step_on_real_vectors_is_river_bit_for_bit(
    real: dict[str, Array],
) -> None:
    """Every real vector is predicted by both, then learnt with its real label; the states are
    compared after every step (for the first 300) and every 50th step after."""
    vectors, labels = real["features"], real["labels"]
    label_of = dict(zip(labels["origin"].tolist(), labels["label"].tolist(), strict=True))
    river = OnlineModel(list(ONLINE_FEATURES), 0.02, 0.0, 5.0)
    compiled = CompiledLearner(list(ONLINE_FEATURES), 0.02, 0.0, 5.0)
    learnt = 0
    nans = 0
    for step, (cause, row) in enumerate(
        zip(vectors["cause"].tolist(), vectors["values"], strict=True)
    ):
        features = row[COLUMNS].tolist()
        nans += any(v != v for v in features)
        assert repr(compiled.predict(features)) == repr(river.predict(features)), step
        if cause in label_of:
            river.learn(features, label_of[cause])
            compiled.learn(features, label_of[cause])
            learnt += 1
        if step < 300 or step % 50 == 0:
            assert _state(compiled) == _state(river), step
    assert _state(compiled) == _state(river)
    assert learnt > 800  # real labels
    assert nans > 0  # and vectors with missing features


def test_the_stage_walk_on_real_data_is_the_river_walk(real: dict[str, Array]) -> None:
    """The models stage (compiled learner) over the sample's vectors and labels, in one slice
    and in slices of 997 offsets, against the Python walk over river."""
    vectors, labels = real["features"], real["labels"]
    probs, cold, river = _reference_walk(vectors, labels)
    assert (~cold).sum() > 800
    end = int(max(vectors["cause"].max(), labels["cause"].max())) + 1
    for step in (end, 997):
        stage = models_stage()
        online = []
        for start in range(0, end, step):
            v = vectors[(vectors["cause"] >= start) & (vectors["cause"] < start + step)]
            lab = labels[(labels["cause"] >= start) & (labels["cause"] < start + step)]
            out = stage.process(Slice(start, start + step, inputs={"features": v, "labels": lab}))
            online.append(out[0])
        got = np.concatenate(online)
        assert got["online"].tobytes() == probs.tobytes()
        assert np.array_equal((got["flags"] & P_ONLINE_COLD) != 0, cold)
        assert stage.online.state() == river.state()
        assert _state(stage.online) == _state(river)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_seeded_sequences_with_nans_and_l2(seed: int) -> None:
    """Features that appear late (NaN at first), l2 > 0 and labels of all three classes: the
    dicts' insertion orders differ from the names' order and the two sum orders of river's
    ``dot`` are both taken."""
    steps = sequence(seed, 600)
    for values, _ in steps[:40]:
        values[3] = values[7] = float("nan")
    river = OnlineModel(NAMES, 0.05, 0.001, 3.0)
    compiled = CompiledLearner(NAMES, 0.05, 0.001, 3.0)
    for i, (values, label) in enumerate(steps):
        assert repr(compiled.predict(values)) == repr(river.predict(values)), i
        river.learn(values, label)
        compiled.learn(values, label)
        assert _state(compiled) == _state(river), i


def test_loads_river_states_and_continues_exactly() -> None:
    """The frozen state sample (written by river) loads, re-encodes to the same bytes, and both
    models continue identically from it; a compiled state loads into river the same way."""
    frozen = msgspec.msgpack.decode(FROZEN.read_bytes(), type=OnlineState)
    river = OnlineModel(NAMES, 0.02, 0.001, 5.0)
    compiled = CompiledLearner(NAMES, 0.02, 0.001, 5.0)
    river.load(frozen)
    compiled.load(frozen)
    assert _state(compiled) == FROZEN.read_bytes()
    for values, label in sequence(9, 200):
        assert repr(compiled.predict(values)) == repr(river.predict(values))
        river.learn(values, label)
        compiled.learn(values, label)
    assert _state(compiled) == _state(river)
    again = OnlineModel(NAMES, 0.02, 0.001, 5.0)
    again.load(compiled.state())
    assert _state(again) == _state(river)


def test_a_vector_of_the_wrong_length_is_refused() -> None:
    compiled = CompiledLearner(NAMES, 0.02, 0.0, 5.0)
    with pytest.raises(ValueError, match="takes 14 feature values"):
        compiled.learn([1.0] * 15, 1)
    with pytest.raises(ValueError, match="takes 14 feature values"):
        compiled.predict([1.0] * 13)


def test_a_state_of_other_features_is_refused() -> None:
    frozen = msgspec.msgpack.decode(FROZEN.read_bytes(), type=OnlineState)
    other = CompiledLearner([f"g{i}" for i in range(14)], 0.02, 0.001, 5.0)
    with pytest.raises(ValueError, match="other online_features"):
        other.load(frozen)
    with pytest.raises(ValueError, match="online model state version 99"):
        other.load(msgspec.structs.replace(frozen, version=99))
