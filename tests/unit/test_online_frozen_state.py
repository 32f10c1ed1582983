"""The online model's state format against a frozen, committed sample.

``tests/data/online_state_v2.msgpack`` was written by learning :func:`sequence` (seeded, so it
is the same every time) and committing the state. Reloading it must give the model that
learning the sequence gives today: the same predictions, the same state bytes, and the same
future. If a river upgrade changed what the names the state is restored through mean, or
changed its arithmetic, these fail here rather than in a replay. The file is never rewritten
by the tests; ``python -m tests.unit.test_online_frozen_state`` rewrites it on purpose.
"""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import numpy as np

from streams.models.online import ONLINE_STATE_VERSION, OnlineModel, OnlineState

FROZEN = Path(__file__).parents[1] / "data" / f"online_state_v{ONLINE_STATE_VERSION}.msgpack"
NAMES = [f"f{i}" for i in range(14)]


def sequence(seed: int, n: int) -> list[tuple[list[float], int]]:
    """``n`` labelled vectors of 14 features (a tenth NaN), labels -1 / 0 / +1, seeded."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(NAMES))) * rng.uniform(0.1, 50, size=len(NAMES))
    x[rng.random(x.shape) < 0.1] = np.nan
    y = np.sign(np.nan_to_num(x[:, 0]) + rng.normal(size=n) * 5).astype(int)
    return [(row.tolist(), int(label)) for row, label in zip(x, y, strict=True)]


def learnt(steps: list[tuple[list[float], int]]) -> OnlineModel:
    model = OnlineModel(NAMES, 0.02, 0.001, 5.0)
    for values, label in steps:
        model.learn(values, label)
    return model


def frozen() -> OnlineModel:
    model = OnlineModel(NAMES, 0.02, 0.001, 5.0)
    model.load(msgspec.msgpack.decode(FROZEN.read_bytes(), type=OnlineState))
    return model


def test_the_frozen_state_reloads_to_the_model_learning_gives() -> None:
    again = learnt(sequence(7, 400))
    restored = frozen()
    assert restored.learned == 400
    assert msgspec.msgpack.encode(restored.state()) == FROZEN.read_bytes()
    assert msgspec.msgpack.encode(again.state()) == FROZEN.read_bytes(), (
        "learning the frozen sequence no longer gives the frozen state: river's arithmetic or "
        "the state format changed; if on purpose, bump ONLINE_STATE_VERSION and refreeze"
    )
    for values, _ in sequence(8, 50):
        a, b = restored.predict(values), again.predict(values)
        assert a is not None
        assert repr(a) == repr(b)
        assert math.isclose(sum(a), 1.0)


def test_a_reloaded_model_learns_on_exactly_as_one_never_stopped() -> None:
    restored, again = frozen(), learnt(sequence(7, 400))
    for values, label in sequence(9, 100):
        restored.learn(values, label)
        again.learn(values, label)
    assert msgspec.msgpack.encode(restored.state()) == msgspec.msgpack.encode(again.state())


if __name__ == "__main__":
    FROZEN.write_bytes(msgspec.msgpack.encode(learnt(sequence(7, 400)).state()))
    print(f"wrote {FROZEN}")
