"""A bundle's CatBoost models ready to evaluate: its base models, then the meta-learner.

The card (engine.models.card) names each model's input columns. The base models (``context``
and ``micro`` by default; any roles the card names) read features by name; the meta-learner
reads ``<role>.<class>`` (the base models' probabilities) and possibly features.
:func:`meta_inputs` builds its input matrix and is what training uses too, so the meta-learner
is trained on exactly the numbers it will see.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine.models.card import CLASS_NAMES, META, ModelCard
from streams.features import FEATURE_SCHEMA_VERSION, INDEX
from streams.models.trees import (
    Trees,
    compile_model,
    mapped_probabilities,
    model_inputs,
    probabilities,
)

Array = np.ndarray[Any, Any]


class BundleError(ValueError):
    """A bundle this build cannot evaluate (schema, columns, shape); the message says why."""


def feature_columns(names: list[str], role: str) -> list[int]:
    """Positions of ``names`` in a feature vector."""
    unknown = [n for n in names if n not in INDEX]
    if unknown:
        raise BundleError(f"the {role} model reads features this build does not have: {unknown}")
    return [INDEX[n] for n in names]


def meta_inputs(columns: list[str], bases: dict[str, Array], values: Array) -> Array:
    """The meta-learner's input rows: base model probabilities and features, by column name."""
    out = np.empty((len(values), len(columns)), np.float64)
    features = [(i, INDEX[c]) for i, c in enumerate(columns) if c in INDEX]
    if features:
        out[:, [i for i, _ in features]] = model_inputs(values, [j for _, j in features])
    for i, column in enumerate(columns):
        if column in INDEX:
            continue
        role, _, name = column.partition(".")
        if role not in bases or name not in CLASS_NAMES:
            allowed = ", ".join(f"{b}.<down|flat|up>" for b in bases)
            raise BundleError(
                f"the meta model reads {column!r}, which is neither a feature nor one of {allowed}"
            )
        out[:, i] = bases[role][:, CLASS_NAMES.index(name)]
    return out


class Ensemble:
    """The compiled models of one bundle."""

    def __init__(self, card: ModelCard, fetch: Callable[[str], bytes]) -> None:
        if card.data.feature_schema != FEATURE_SCHEMA_VERSION:
            raise BundleError(
                f"the bundle was trained on feature schema {card.data.feature_schema}; this "
                f"build computes schema {FEATURE_SCHEMA_VERSION}: train it again"
            )
        self.card = card
        self.trees: dict[str, Trees] = {}
        for role, member in card.models.items():
            trees = compile_model(fetch(member.hash))
            if trees.dimension != len(CLASS_NAMES) or trees.columns > len(member.columns):
                raise BundleError(
                    f"the {role} model ({member.hash[:16]}) has {trees.dimension} outputs and "
                    f"reads {trees.columns} columns; expected 3 outputs over "
                    f"{len(member.columns)} columns"
                )
            self.trees[role] = trees
        self.bases = card.bases()
        self.columns = {r: feature_columns(card.models[r].columns, r) for r in self.bases}
        self.meta_columns = card.models[META].columns
        empty = {b: np.zeros((0, 3)) for b in self.bases}
        meta_inputs(self.meta_columns, empty, np.zeros((0, len(INDEX))))
        self.maps = {r: np.array(self.columns[r], np.int64) for r in self.bases}
        self.maps[META] = np.array(
            [
                INDEX[c]
                if c in INDEX
                else -(3 * self.bases.index(c.partition(".")[0])
                       + CLASS_NAMES.index(c.partition(".")[2])) - 1
                for c in self.meta_columns
            ],
            np.int64,
        )  # fmt: skip
        """Per role, where each input column comes from (``mapped_probabilities``)."""

    def predict(self, values: Array) -> dict[str, Array]:
        """(rows, 3) probabilities of each role for the (rows, 65) feature ``values``: the
        numbers of ``probabilities(trees, model_inputs(...))`` for the bases and of
        :func:`meta_inputs` for the meta-learner, read in place (no input matrices)."""
        n = len(values)
        bases = np.zeros((len(self.bases), n, 3), np.float64)
        for b, role in enumerate(self.bases):
            mapped_probabilities(self.trees[role], values, bases, self.maps[role], bases[b])
        meta = np.zeros((n, 3), np.float64)
        mapped_probabilities(self.trees[META], values, bases, self.maps[META], meta)
        out = {role: bases[b] for b, role in enumerate(self.bases)}
        out[META] = meta
        return out

    def predict_unfused(self, values: Array) -> dict[str, Array]:
        """:meth:`predict` the way training evaluates: input matrices built first
        (``model_inputs``, ``meta_inputs``), then the trees. The tests hold the two equal."""
        out = {
            r: probabilities(self.trees[r], model_inputs(values, self.columns[r]))
            for r in self.bases
        }
        out[META] = probabilities(self.trees[META], meta_inputs(self.meta_columns, out, values))
        return out
