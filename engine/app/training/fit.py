"""Fitting one CatBoost model and turning it into a content-addressable artifact.

The artifact is CatBoost's JSON export with the fields that differ between identical trainings
removed (``model_guid``, ``train_finish_time``, and the output options and learning curve),
re-encoded with sorted keys. Floats keep their exact values (shortest round-trip form), so the
compiled evaluator built from the artifact reproduces the trained model bit for bit, and two
trainings with the same data, parameters, seed and thread count give the same bytes and hash.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from catboost import CatBoostClassifier

from streams.models.trees import Trees, compile_model

KEPT_MODEL_INFO = ("catboost_version_info", "class_params", "params")
"""The parts of CatBoost's ``model_info`` that are a pure function of the training."""


@dataclass(frozen=True)
class Params:
    """CatBoost settings of one model (recorded in the card)."""

    iterations: int
    depth: int
    learning_rate: float
    border_count: int = 64
    l2_leaf_reg: float = 3.0

    def catboost(self, seed: int, threads: int) -> dict[str, Any]:
        """Keyword arguments for ``CatBoostClassifier``."""
        return {
            "loss_function": "MultiClass",
            "class_names": [0, 1, 2],
            "iterations": self.iterations,
            "depth": self.depth,
            "learning_rate": self.learning_rate,
            "border_count": self.border_count,
            "l2_leaf_reg": self.l2_leaf_reg,
            "random_seed": seed,
            "thread_count": threads,
            "allow_writing_files": False,
            "verbose": False,
        }


@dataclass(frozen=True)
class Fitted:
    """A trained model: its artifact bytes, its compiled evaluator, and CatBoost's object."""

    artifact: bytes
    trees: Trees
    model: CatBoostClassifier


def artifact(model: CatBoostClassifier) -> bytes:
    """The model's canonical JSON (see the module docstring)."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.json"
        model.save_model(str(path), format="json")
        exported = msgspec.json.decode(path.read_bytes())
    info = exported.get("model_info", {})
    exported["model_info"] = {k: info[k] for k in KEPT_MODEL_INFO if k in info}
    return msgspec.json.encode(exported, order="sorted")


def fit(x: np.ndarray, labels: np.ndarray, params: Params, seed: int, threads: int) -> Fitted:
    """Train on model inputs ``x`` (``streams.models.trees.model_inputs``: NaN as ``MISSING``)
    and labels -1 / 0 / +1."""
    model = CatBoostClassifier(**params.catboost(seed, threads))
    model.fit(x, labels.astype(np.int64) + 1)
    raw = artifact(model)
    return Fitted(raw, compile_model(raw), model)
