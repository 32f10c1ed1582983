"""A compiled evaluator of CatBoost oblivious-tree models, built from their JSON export.

Why it exists: CatBoost's own ``predict`` is exact but costs a few hundred microseconds per
call whatever the batch size (about 390 us measured for one row), while the live budget is
1 ms per journal event for the whole pipeline. Here the trees become flat numpy arrays and one
numba loop evaluates a row in a few microseconds, with the same arithmetic per row whether it
is called for one vector (live) or a batch (replay).

What it reproduces (``save_model(format="json")``):

* each split is ``x > border`` on float32 values: CatBoost stores borders as float32 and casts
  the features to float32 before comparing, so ``x`` and ``border`` are both rounded to float32
  here too;
* a NaN feature goes to the side its ``nan_value_treatment`` says: ``AsTrue`` (trained with
  ``nan_mode=Max``) takes the ``>`` branch, ``AsFalse`` (``Min``) and ``AsIs`` do not;
* split ``i`` of a tree sets bit ``i`` of the leaf index; a leaf holds one value per
  dimension; tree outputs are summed in tree order (float64), then ``scale * sum + bias``;
* for MultiClass models, probabilities are the softmax of the raw values.

Missing values: CatBoost separates NaN from numbers with a border at -inf (``nan_mode=Min``) or
+inf (``Max``), which its JSON export cannot write (``invalid float value: -inf``). So models
never see NaN: :func:`model_inputs` replaces it with ``MISSING`` (-1e30, below every feature
value, exactly what ``nan_mode=Min`` means), in training and in inference alike.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import msgspec
import numpy as np
from numba import njit

Array = np.ndarray[Any, Any]
NAN_AS_TRUE = 1
MISSING = -1e30
"""What a NaN input becomes (exactly representable in float32, below any feature value)."""


def model_inputs(values: Array, columns: Array | list[int]) -> Array:
    """The columns a model reads, from a (rows, features) matrix, NaN as ``MISSING``."""
    picked = np.asarray(values, np.float64)[:, columns]
    return np.ascontiguousarray(np.where(np.isnan(picked), MISSING, picked))


class ModelFormatError(ValueError):
    """A model that is not a CatBoost oblivious-tree model over float features."""


class Trees(NamedTuple):
    """A model as flat arrays (tree ``t``'s splits are ``split_start[t] .. split_start[t+1]``)."""

    split_start: Array
    """int64, one more than the number of trees."""
    split_column: Array
    """int64: which input column each split reads."""
    split_border: Array
    """float32 borders."""
    split_nan: Array
    """int8: 1 when NaN takes the ``>`` branch."""
    leaf_start: Array
    """int64: index of each tree's first leaf value."""
    leaf_values: Array
    """float64, ``dimension`` values per leaf."""
    scale: float
    bias: Array
    dimension: int
    columns: int
    """How many input columns the model reads (the features it was trained on)."""


def compile_model(raw: bytes) -> Trees:
    """The evaluator arrays of a CatBoost JSON model (``save_model(format="json")``)."""
    try:
        model = msgspec.json.decode(raw)
        floats = model["features_info"]["float_features"]
        trees = model["oblivious_trees"]
        scale, bias = model["scale_and_bias"]
    except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"not a CatBoost JSON model: {exc}") from None
    if any(v for key, v in model["features_info"].items() if key != "float_features"):
        raise ModelFormatError("only models over float features are supported")
    column = [int(f["flat_feature_index"]) for f in floats]
    nan_true = [1 if f.get("nan_value_treatment") == "AsTrue" else 0 for f in floats]
    bias_values = list(bias) if isinstance(bias, list) else [bias]
    dimension = len(bias_values)
    split_start, split_column, split_border, split_nan = [0], [], [], []
    leaf_start: list[int] = []
    leaf_values: list[float] = []
    for tree in trees:
        for split in tree["splits"]:
            if split.get("split_type") != "FloatFeature":
                raise ModelFormatError(f"unsupported split {split}")
            feature = int(split["float_feature_index"])
            split_column.append(column[feature])
            split_border.append(float(split["border"]))
            split_nan.append(nan_true[feature])
        split_start.append(len(split_column))
        values = tree["leaf_values"]
        if len(values) != dimension << len(tree["splits"]):
            raise ModelFormatError("leaf values do not match the tree depth and dimension")
        leaf_start.append(len(leaf_values))
        leaf_values.extend(float(v) for v in values)
    return Trees(
        np.array(split_start, np.int64),
        np.array(split_column, np.int64),
        np.array(split_border, np.float64).astype(np.float32),
        np.array(split_nan, np.int8),
        np.array(leaf_start, np.int64),
        np.array(leaf_values, np.float64),
        float(scale),
        np.array(bias_values, np.float64),
        dimension,
        max(column, default=-1) + 1,
    )


def raw_values(trees: Trees, x: Array) -> Array:
    """The raw formula values (``RawFormulaVal``) of each row of ``x``, shape (rows, dimension)."""
    if x.ndim != 2 or x.shape[1] < trees.columns:
        raise ValueError(f"expected rows of >= {trees.columns} features, got shape {x.shape}")
    out = np.zeros((len(x), trees.dimension), np.float64)
    _evaluate(
        np.ascontiguousarray(x, np.float64),
        trees.split_start,
        trees.split_column,
        trees.split_border,
        trees.split_nan,
        trees.leaf_start,
        trees.leaf_values,
        trees.scale,
        trees.bias,
        out,
    )
    return out


def probabilities(trees: Trees, x: Array) -> Array:
    """Softmax of the raw values: class probabilities of a MultiClass model, per row."""
    raw = raw_values(trees, x)
    _softmax(raw)
    return raw


@njit(cache=True, inline="always")
def _goes_right(value: np.float32, border: float, nan_rule: int) -> bool:
    """One oblivious split, as CatBoost decides it: the float32 value above the border, or
    NaN where the split sends NaN that way."""
    nan = math.isnan(value)
    return bool((nan and nan_rule == NAN_AS_TRUE) or (not nan and value > border))


@njit(cache=True, inline="always")
def _add_leaf(out: Array, r: int, leaf_values: Array, base: int) -> None:
    for d in range(out.shape[1]):
        out[r, d] += leaf_values[base + d]


@njit(cache=True, inline="always")
def _scale_row(out: Array, r: int, scale: float, bias: Array) -> None:
    for d in range(out.shape[1]):
        out[r, d] = scale * out[r, d] + bias[d]


@njit(cache=True)
def _evaluate(
    x: Array,
    split_start: Array,
    split_column: Array,
    split_border: Array,
    split_nan: Array,
    leaf_start: Array,
    leaf_values: Array,
    scale: float,
    bias: Array,
    out: Array,
) -> None:
    dimension = out.shape[1]
    for r in range(x.shape[0]):
        for t in range(len(leaf_start)):
            index = 0
            for s in range(split_start[t], split_start[t + 1]):
                if _goes_right(np.float32(x[r, split_column[s]]), split_border[s], split_nan[s]):
                    index |= 1 << (s - split_start[t])
            _add_leaf(out, r, leaf_values, leaf_start[t] + index * dimension)
        _scale_row(out, r, scale, bias)


def mapped_probabilities(
    trees: Trees, values: Array, extra: Array, columns: Array, out: Array
) -> None:
    """Class probabilities into ``out`` (rows, dimension), reading the model's inputs in
    place: its column ``c`` is ``values[:, columns[c]]`` (NaN as ``MISSING``, what
    :func:`model_inputs` gives) when ``columns[c] >= 0``, else ``extra[b, :, j]`` with
    ``-columns[c] - 1 == 3 * b + j`` (a base model's probability, as :func:`meta_inputs` of
    :mod:`streams.models.ensemble` copies it). The same floats as ``probabilities(trees,
    model_inputs(...))`` without building the input matrix."""
    out[:] = 0.0
    _evaluate_mapped(
        values,
        extra,
        columns,
        trees.split_start,
        trees.split_column,
        trees.split_border,
        trees.split_nan,
        trees.leaf_start,
        trees.leaf_values,
        trees.scale,
        trees.bias,
        out,
    )
    _softmax(out)


@njit(cache=True)
def _evaluate_mapped(
    values: Array,
    extra: Array,
    columns: Array,
    split_start: Array,
    split_column: Array,
    split_border: Array,
    split_nan: Array,
    leaf_start: Array,
    leaf_values: Array,
    scale: float,
    bias: Array,
    out: Array,
) -> None:
    dimension = out.shape[1]
    for r in range(values.shape[0]):
        for t in range(len(leaf_start)):
            index = 0
            for s in range(split_start[t], split_start[t + 1]):
                c = columns[split_column[s]]
                if c >= 0:
                    picked = values[r, c]
                    if math.isnan(picked):
                        picked = MISSING
                else:
                    picked = extra[(-c - 1) // 3, r, (-c - 1) % 3]
                if _goes_right(np.float32(picked), split_border[s], split_nan[s]):
                    index |= 1 << (s - split_start[t])
            _add_leaf(out, r, leaf_values, leaf_start[t] + index * dimension)
        _scale_row(out, r, scale, bias)


@njit(cache=True)
def _softmax(values: Array) -> None:
    for r in range(values.shape[0]):
        top = values[r, 0]
        for d in range(1, values.shape[1]):
            top = max(top, values[r, d])
        total = 0.0
        for d in range(values.shape[1]):
            values[r, d] = math.exp(values[r, d] - top)
            total += values[r, d]
        for d in range(values.shape[1]):
            values[r, d] = values[r, d] / total
