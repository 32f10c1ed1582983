"""A batch of one table's rows as columns: how fixed-width log records travel to the store.

The mappers of fixed-width topics (market records, book tops, features, predictions...) hand
the writer a :class:`Frame` instead of a list of row tuples: one numpy array per column (or one
value repeated for every row, such as the topic or the run id), so that PostgreSQL's binary
``COPY`` payload can be built for the whole batch with numpy (:mod:`engine.app.store.pgcopy`)
and no Python object is made per value. SQLite, which takes Python rows, gets them from
:meth:`Frame.rows`.

What is ``NULL``: ``NaN`` in a float column (SQLite cannot hold NaN, so the store never does),
and the rows an integer column's ``nulls`` mask marks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np

from engine.app.store.schema import Base

Constant = str | int | bool | None
"""A value every row of the frame has (``None``: SQL NULL)."""
Column = np.ndarray[Any, Any] | Constant

COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(c.name for c in table.columns) for name, table in Base.metadata.tables.items()
}
"""Column names of every table, in table order: the order of a row's values."""


@dataclass(frozen=True)
class Frame:
    """``n`` rows of ``table``: a value per column name, an array of ``n`` or a constant.

    ``nulls`` maps an integer or boolean column to a boolean mask of the rows where it is NULL;
    float columns are NULL where they are NaN.
    """

    table: str
    n: int
    columns: dict[str, Column]
    nulls: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = COLUMNS[self.table]
        missing = [c for c in names if c not in self.columns]
        extra = [c for c in self.columns if c not in names]
        assert not missing, f"{self.table}: no value for {missing}"
        assert not extra, f"{self.table} has no column {extra}"
        for name, value in self.columns.items():
            if isinstance(value, np.ndarray):
                assert value.shape == (self.n,), f"{self.table}.{name}: shape {value.shape}"
                assert value.dtype.kind in "biuf", f"{self.table}.{name}: dtype {value.dtype}"

    def __len__(self) -> int:
        return self.n

    def column(self, name: str) -> list[Any]:
        """One column as Python values (``None`` for NULL)."""
        value = self.columns[name]
        if not isinstance(value, np.ndarray):
            return list(repeat(value, self.n))
        out: list[Any] = value.tolist()
        null = np.isnan(value) if value.dtype.kind == "f" else self.nulls.get(name)
        if null is not None and null.any():
            for i in np.flatnonzero(null).tolist():
                out[i] = None
        return out

    def rows(self) -> list[tuple[Any, ...]]:
        """The rows as tuples in the table's column order (what ``executemany`` takes)."""
        return list(zip(*(self.column(c) for c in COLUMNS[self.table]), strict=True))
