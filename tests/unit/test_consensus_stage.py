"""The consensus stage on constructed inputs: weights, dead band, confidence, missing
contributors, adaptation to realised accuracy, label bookkeeping, config, slicing, restore."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events.control import InstrumentSpec
from engine.events.decisions import (
    CONTRIBUTORS,
    D_WARMING_UP,
    DECISION,
    L_UNDEFINED,
    LABEL,
    PREDICTION,
    VOTES,
    new_records,
)
from engine.events.features import F_WARMING_UP, new_vectors
from engine.runtime import ConfigError, Slice, StageContext
from streams.agents import evaluate as ev
from streams.consensus import CONSENSUS_STAGE, ConsensusStage
from tests.consensus_reference import replay

SPEC = InstrumentSpec("BTCUSDT", "BINANCE-SPOT", "UTC", 2, 8, 1, 1, "USDT")
NAN3 = (math.nan, math.nan, math.nan)


def stage(**config: Any) -> ConsensusStage:
    return ConsensusStage(StageContext("s", SPEC, {**CONSENSUS_STAGE.defaults(SPEC), **config}, 0))


def settings_of(s: ConsensusStage) -> dict[str, Any]:
    return dataclasses.asdict(s.config)


class Inputs:
    """Vectors with their predictions and votes, and labels, built row by row."""

    def __init__(self) -> None:
        self.vec: list[tuple[int, int]] = []
        self.pred: list[tuple[int, tuple[float, ...], tuple[float, ...]]] = []
        self.vote: list[tuple[int, list[int], list[float], list[int]]] = []
        self.lab: list[tuple[int, int, int, int]] = []

    def vector(
        self,
        cause: int,
        meta: tuple[float, ...] | None = NAN3,
        online: tuple[float, ...] | None = NAN3,
        votes: tuple[list[int], list[float], list[int]] | None = None,
        flags: int = 0,
    ) -> None:
        self.vec.append((cause, flags))
        if meta is not None and online is not None:
            self.pred.append((cause, meta, online))
        if votes is not None:
            self.vote.append((cause, *votes))

    def label(self, cause: int, origin: int, label: int, flags: int = 0) -> None:
        self.lab.append((cause, origin, label, flags))

    def arrays(self, start: int = 0, stop: int = 10**9) -> dict[str, np.ndarray]:
        def within(rows: list[Any]) -> list[Any]:
            return [r for r in rows if start <= r[0] < stop]

        vec, pred, vote, lab = (within(x) for x in (self.vec, self.pred, self.vote, self.lab))
        vectors = new_vectors(len(vec), 1)
        for i, (cause, flags) in enumerate(vec):
            vectors[i]["cause"], vectors[i]["ts_event"], vectors[i]["flags"] = cause, cause, flags
        preds = new_records(PREDICTION, len(pred))
        for i, (cause, meta, online) in enumerate(pred):
            preds[i]["cause"], preds[i]["meta"], preds[i]["online"] = cause, meta, online
        votes = new_records(VOTES, len(vote))
        for i, (cause, v, c, r) in enumerate(vote):
            votes[i]["cause"], votes[i]["votes"], votes[i]["confidence"] = cause, v, c
            votes[i]["reasons"] = r
        labels = new_records(LABEL, len(lab))
        for i, (cause, origin, label, flags) in enumerate(lab):
            labels[i]["cause"], labels[i]["origin"] = cause, origin
            labels[i]["label"], labels[i]["flags"] = label, flags
        return {"features": vectors, "predictions": preds, "votes": votes, "labels": labels}

    def run(self, s: ConsensusStage, cuts: Sequence[int] = ()) -> np.ndarray:
        end = max([c for c, _ in self.vec] + [r[0] for r in self.lab] + [0]) + 1
        outs, start = [], 0
        for stop in [*sorted({c for c in cuts if 0 < c < end}), end]:
            piece = Slice(start, stop, inputs=self.arrays(start, stop))
            out = s.process(piece)[0]
            assert isinstance(out, np.ndarray)
            outs.append(out)
            start = stop
        joined = np.zeros(sum(len(o) for o in outs), DECISION.dtype)
        at = 0
        for o in outs:
            joined[at : at + len(o)] = o
            at += len(o)
        return joined


AGREE = ([1, -1, 0, 0], [0.5, 0.4, 0.0, 0.0], [0, 0, 0, ev.NO_DATA])


# -- one decision, by hand ---------------------------------------------------------------------


def test_weights_score_and_dead_band_by_hand() -> None:
    x = Inputs()
    x.vector(1, meta=(0.2, 0.2, 0.6), online=(0.5, 0.3, 0.2), votes=AGREE)
    d = x.run(stage())[0]
    # models 0.6 split equally; agents 0.4 over the three available: 0.3, 0.2, 0.25 of 0.75
    w = [0.3, 0.3, 0.4 * 0.3 / 0.75, 0.4 * 0.2 / 0.75, 0.4 * 0.25 / 0.75, 0.0]
    assert d["weights"].tolist() == pytest.approx(w, abs=1e-15)
    assert d["votes"].tolist() == [1, -1, 1, -1, 0, 0]
    assert d["confidences"][:5].tolist() == [0.6, 0.5, 0.5, 0.4, 0.0]
    assert math.isnan(d["confidences"][5])
    score = 0.3 * 0.6 - 0.3 * 0.5 + w[2] * 0.5 - w[3] * 0.4
    assert float(d["score"]) == pytest.approx(score, abs=1e-15)  # 0.0673: inside 0.1
    assert (int(d["direction"]), float(d["confidence"])) == (0, 0.0)
    assert float(d["model_score"]) == pytest.approx((0.18 - 0.15) / 0.6, abs=1e-15)
    assert float(d["agent_score"]) == pytest.approx((w[2] * 0.5 - w[3] * 0.4) / 0.4, abs=1e-15)
    narrow = x.run(stage(dead_band=0.05))[0]
    assert int(narrow["direction"]) == 1
    assert float(narrow["confidence"]) == float(narrow["score"]) == float(d["score"])


def test_everyone_sure_and_agreeing_is_full_confidence() -> None:
    x = Inputs()
    x.vector(1, meta=(0.0, 0.0, 1.0), online=(0.0, 0.0, 1.0), votes=([1] * 4, [1.0] * 4, [0] * 4))
    d = x.run(stage())[0]
    assert (int(d["direction"]), float(d["confidence"])) == (1, pytest.approx(1.0, abs=1e-15))


def test_a_flat_model_and_a_silent_agent_pull_confidence_down() -> None:
    x = Inputs()
    x.vector(
        1,
        meta=(0.1, 0.8, 0.1),
        online=(0.0, 0.0, 1.0),
        votes=([1, 0, 1, 1], [1.0, 0.0, 1.0, 1.0], [0] * 4),
    )
    d = x.run(stage())[0]
    assert d["votes"].tolist() == [0, 1, 1, 0, 1, 1]
    # all but the flat meta (0.3) and the silent liquidity agent (0.4 x 0.2)
    assert float(d["confidence"]) == pytest.approx(1.0 - 0.3 - 0.08, abs=1e-15)


def test_ties_between_classes_stay_flat() -> None:
    x = Inputs()
    x.vector(1, meta=(0.4, 0.2, 0.4), online=(0.3, 0.4, 0.3))
    d = x.run(stage())[0]
    assert d["votes"][:2].tolist() == [0, 0]
    assert d["confidences"][:2].tolist() == [0.2, 0.4]


def test_without_a_bundle_online_takes_the_models_part() -> None:
    x = Inputs()
    x.vector(1, meta=NAN3, online=(0.1, 0.2, 0.7), votes=AGREE)
    d = x.run(stage())[0]
    assert d["weights"][:2].tolist() == [0.0, 0.6]
    assert math.isnan(d["confidences"][0])
    assert sum(d["weights"].tolist()) == pytest.approx(1.0, abs=1e-15)


def test_without_any_model_the_agents_decide_alone() -> None:
    x = Inputs()
    x.vector(1, meta=None, online=None, votes=AGREE)
    d = x.run(stage())[0]
    assert d["weights"].tolist() == pytest.approx([0, 0, 0.4, 0.8 / 3, 1 / 3, 0], abs=1e-15)
    assert math.isnan(d["model_score"])
    assert float(d["agent_score"]) == float(d["score"])


def test_with_nothing_available_the_decision_is_flat_and_weightless() -> None:
    x = Inputs()
    x.vector(1, meta=None, online=None, votes=([0] * 4, [0.0] * 4, [ev.NO_DATA] * 4))
    d = x.run(stage())[0]
    assert d["weights"].tolist() == [0.0] * 6
    assert (int(d["direction"]), float(d["score"]), float(d["confidence"])) == (0, 0.0, 0.0)


def test_a_warming_vector_gives_a_flagged_flat_decision() -> None:
    x = Inputs()
    x.vector(1, meta=(0, 0, 1.0), online=(0, 0, 1.0), votes=AGREE, flags=F_WARMING_UP)
    d = x.run(stage())[0]
    assert int(d["flags"]) == D_WARMING_UP
    assert (int(d["direction"]), float(d["confidence"])) == (0, 0.0)
    assert float(d["score"]) > 0.5


def test_missing_ports_leave_their_contributors_out() -> None:
    x = Inputs()
    x.vector(1, meta=(0, 0, 1.0), online=(0, 0, 1.0), votes=AGREE)
    inputs = x.arrays()
    only_features = Slice(0, 2, inputs={"features": inputs["features"]})
    d = stage().process(only_features)[0][0]  # type: ignore[index]
    assert d["weights"].tolist() == [0.0] * 6


def test_a_record_for_no_vector_is_refused() -> None:
    x = Inputs()
    x.vector(1, meta=(0, 0, 1.0), online=NAN3)
    inputs = x.arrays()
    inputs["predictions"]["cause"] = 0
    with pytest.raises(
        ValueError, match=r"port 'predictions' has a record \(cause 0\) that matches"
    ):
        stage().process(Slice(0, 2, inputs=inputs))


# -- adaptation ----------------------------------------------------------------------------------


def oracle_run(adapt: str, n: int = 60) -> tuple[ConsensusStage, np.ndarray, list[int]]:
    """Meta always right, online always wrong, order flow always right, liquidity always
    wrong; each vector's label matures two vectors later."""
    rng = np.random.default_rng(7)
    truth = rng.choice([-1, 1], n).tolist()
    x = Inputs()
    for i, y in enumerate(truth):
        cause = 10 * i + 5
        right = (0.1, 0.1, 0.8) if y == 1 else (0.8, 0.1, 0.1)
        x.vector(cause, meta=right, online=right[::-1], votes=([y, -y, 0, 0], [0.6] * 4, [0] * 4))
        if i >= 2:
            x.label(cause, 10 * (i - 2) + 5, truth[i - 2])
    s = stage(adapt=adapt)
    return s, x.run(s), truth


def test_a_contributor_that_is_always_right_gains_weight() -> None:
    s, decisions, _ = oracle_run("within")
    scored = 58
    alpha = 1.0 - 2.0 ** (-1.0 / 100.0)
    good = bad = 0.5
    for _ in range(scored):
        good, bad = good + alpha * (1.0 - good), bad + alpha * (0.0 - bad)
    acc = s.inspect()["accuracy"]
    assert (acc["meta"], acc["order_flow"]) == (good, good)
    assert (acc["online"], acc["liquidity"]) == (bad, bad)
    assert acc["tape_reading"] == acc["footprint"] == 0.5  # never called: the prior
    last = decisions[-1]["weights"].tolist()
    assert last[0] == pytest.approx(0.6 * good / (good + bad), abs=1e-15)
    assert last[1] == pytest.approx(0.6 * bad / (good + bad), abs=1e-15)
    assert last[0] + last[1] == pytest.approx(0.6, abs=1e-15)  # the group split holds
    first = decisions[0]["weights"].tolist()
    assert first[0] == first[1] == 0.3
    assert np.all(np.diff(decisions["weights"][:, 0]) >= 0)  # meta only ever gains
    assert s.inspect()["scored_calls"]["meta"] == scored


def test_adapt_none_keeps_the_base_weights_and_all_moves_the_split() -> None:
    _, fixed, _ = oracle_run("none")
    assert (fixed["weights"][:, 0] == 0.3).all()
    _, within, _ = oracle_run("within")
    assert within["weights"][:, :2].sum(axis=1) == pytest.approx(0.6, abs=1e-15)
    x = Inputs()
    for i in range(30):
        x.vector(2 * i, meta=(0, 0, 1.0), online=(0, 0, 1.0), votes=([-1] * 4, [0.5] * 4, [0] * 4))
        x.label(2 * i + 1, 2 * i, 1)
    d = x.run(stage(adapt="all", accuracy_halflife=2.0))
    # models always right (accuracy near 1), agents always wrong (held at the 0.05 floor)
    assert d["weights"][-1, :2].sum() == pytest.approx(0.6 / (0.6 + 0.4 * 0.05), abs=1e-3)
    assert x.run(stage(accuracy_halflife=2.0))["weights"][-1, :2].sum() == pytest.approx(0.6)


def test_label_bookkeeping() -> None:
    x = Inputs()
    for i in range(6):
        x.vector(10 * i, meta=(0, 0, 1.0), online=(0.3, 0.4, 0.3))  # online: flat, unscored
    x.label(15, 0, 1, L_UNDEFINED)  # undefined: dropped, not scored
    x.label(25, 20, 1)  # the vector at 10 never gets a label
    x.label(26, 3, 1)  # no vector at 3
    x.label(40, 30, -1)  # matures at the offset of the vector at 40, used before it
    s = stage()
    d = x.run(s)
    info = s.inspect()
    assert (info["labels"], info["labels_scored"], info["labels_undefined"]) == (4, 2, 1)
    assert (info["labels_unmatched"], info["vectors_never_labelled"]) == (1, 1)
    assert info["pending"] == 2
    alpha = 1.0 - 2.0 ** (-1.0 / 100.0)
    after_one = 0.5 + alpha * 0.5
    after_two = after_one + alpha * (0.0 - after_one)
    assert info["accuracy"] == {**dict.fromkeys(CONTRIBUTORS, 0.5), "meta": after_two}
    assert d["weights"][:3, 0].tolist() == [0.5, 0.5, 0.5]  # no model or agent: models alone
    assert d[3]["weights"][0] == pytest.approx(after_one / (after_one + 0.5), abs=1e-15)
    # the label maturing at 40 is applied before the vector at 40 is decided
    assert d[4]["weights"][0] == pytest.approx(after_two / (after_two + 0.5), abs=1e-15)


def test_a_full_queue_drops_the_oldest_call() -> None:
    x = Inputs()
    for i in range(5):
        x.vector(i, meta=(0, 0, 1.0), online=NAN3)
    x.label(5, 0, 1)
    s = stage(max_pending=3)
    x.run(s)
    info = s.inspect()
    assert (info["calls_dropped_unscored"], info["labels_unmatched"], info["pending"]) == (2, 1, 3)


# -- config ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model_weight": 0.7}, "model_weight and agent_weight must be >= 0 and sum to 1"),
        ({"shares": {"meta": 1.0}}, "shares must name every contributor exactly"),
        (
            {"shares": {**dict.fromkeys(CONTRIBUTORS, 0.0), "meta": 1.0}},
            "shares of order_flow, liquidity, tape_reading, footprint must be >= 0 with a "
            "positive sum",
        ),
        ({"dead_band": 1.0}, r"dead_band must be in \[0, 1\)"),
        ({"adapt": "sometimes"}, "adapt must be one of 'none', 'within', 'all'"),
        ({"accuracy_prior": 2.0}, r"accuracy_prior must be in \[0, 1\]"),
        ({"accuracy_halflife": 0.0}, "accuracy_halflife must be > 0"),
        ({"accuracy_floor": 0.0}, r"accuracy_floor must be in \(0, 1\]"),
        ({"max_pending": 0}, "max_pending must be >= 1"),
        ({"deadband": 0.1}, r"unknown setting\(s\) \['deadband'\]"),
        ({"dead_band": "wide"}, "Expected `float`"),
    ],
)
def test_config_errors_say_what_is_allowed(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        stage(**config)


# -- any slicing, and restore --------------------------------------------------------------------


@st.composite
def inputs(draw: st.DrawFn) -> Inputs:
    """Vectors at increasing offsets with random contributions; labels two or more vectors
    later (sometimes undefined, sometimes for no vector)."""
    x, causes, offset = Inputs(), [], 0
    triple = st.sampled_from([(0.2, 0.2, 0.6), (0.7, 0.2, 0.1), (0.3, 0.4, 0.3), NAN3])
    for _ in range(draw(st.integers(1, 60))):
        offset += draw(st.integers(1, 4))
        votes = (
            [draw(st.sampled_from([-1, 0, 1])) for _ in range(4)],
            [draw(st.sampled_from([0.0, 0.25, 0.9])) for _ in range(4)],
            [draw(st.sampled_from([0, 0, ev.NO_DATA])) for _ in range(4)],
        )
        flags = draw(st.sampled_from([0, 0, 0, F_WARMING_UP]))
        x.vector(offset, draw(triple), draw(triple), votes if draw(st.booleans()) else None, flags)
        causes.append(offset)
        if len(causes) > 2 and draw(st.booleans()):
            origin = causes[draw(st.integers(0, len(causes) - 3))]
            if not x.lab or origin > x.lab[-1][1]:
                x.label(offset, origin, draw(st.sampled_from([-1, 0, 1])),
                        draw(st.sampled_from([0, 0, L_UNDEFINED])))  # fmt: skip
    return x


@settings(max_examples=30)
@given(x=inputs(), cuts=st.lists(st.integers(0, 250), max_size=8))
def test_any_slicing_gives_the_same_bytes_and_the_reference_agrees(
    x: Inputs, cuts: list[int]
) -> None:
    s = stage()
    whole = x.run(s)
    assert x.run(stage(), cuts).tobytes() == whole.tobytes()
    assert x.run(stage(), list(range(250))).tobytes() == whole.tobytes()
    a = x.arrays()
    expected = replay(settings_of(s), a["features"], a["predictions"], a["votes"], a["labels"])
    for got, ref in zip(whole, expected, strict=True):
        assert int(got["direction"]) == ref.direction
        assert float(got["score"]) == ref.score
        assert float(got["confidence"]) == ref.confidence
        assert got["weights"].tolist() == ref.weights
        assert got["votes"].tolist() == ref.votes
        assert np.array_equal(got["confidences"], ref.confidences, equal_nan=True)


@settings(max_examples=20)
@given(x=inputs(), at=st.integers(0, 250))
def test_restore_mid_stream_continues_exactly(x: Inputs, at: int) -> None:
    whole = x.run(stage()).tobytes()
    first = stage()
    end = max([c for c, _ in x.vec] + [r[0] for r in x.lab]) + 1
    at = min(at, end)
    head = first.process(Slice(0, at, inputs=x.arrays(0, at)))[0]
    second = stage()
    second.restore(first.snapshot())
    assert second.snapshot() == first.snapshot()
    tail = second.process(Slice(at, end, inputs=x.arrays(at, end)))[0]
    assert isinstance(head, np.ndarray)
    assert isinstance(tail, np.ndarray)
    assert head.tobytes() + tail.tobytes() == whole
    with pytest.raises(ValueError, match=r"not this one"):
        stage(dead_band=0.2).restore(first.snapshot())


def test_the_kernel_repeats_the_event_flags_faithfully() -> None:
    """numba caches per source file, so the kernel keeps its own copies of these bits."""
    from streams.consensus import kernel

    assert kernel.NO_DATA == ev.NO_DATA == 1
    assert (kernel.L_UNDEFINED, kernel.D_WARMING_UP) == (L_UNDEFINED, D_WARMING_UP)
    assert kernel.WARMING_UP == F_WARMING_UP
