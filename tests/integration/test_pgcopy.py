"""The numpy-built binary COPY payload (engine.app.store.pgcopy) decodes, in PostgreSQL itself,
to the values the frame holds: every column type the store uses (int8, int4, float8 with NaN as
NULL, bool, text constants, NULL constants, integer columns with a NULL mask, unsigned ids past
2**63). The expected rows are written out here in plain Python from the test's inputs, and read
back with SELECT from a real server: never compared with the encoder's own output.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.app.store import migrate, pgcopy
from engine.app.store.frame import Frame
from engine.app.store.sql import PG_TYPES


@pytest.fixture
def pg(postgres_url: str) -> Any:
    """An upgraded store in a schema of its own and a SQLAlchemy engine on it."""
    migrate.upgrade(postgres_url)
    engine = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    yield engine
    engine.dispose()


def copy_in(engine: sa.Engine, frames: list[Frame]) -> None:
    table = frames[0].table
    with engine.begin() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(f'COPY "{table}" FROM STDIN BINARY') as c:
            c.write(pgcopy.HEADER)
            for frame in frames:
                c.write(pgcopy.encode(frame, PG_TYPES[table]))
            c.write(pgcopy.TRAILER)


def read_back(engine: sa.Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        sql = f'SELECT * FROM "{table}" ORDER BY "topic", "partition", "offset"'
        return [tuple(r) for r in connection.execute(sa.text(sql))]


def test_trades_every_integer_kind_text_constants_and_null_masks(pg: sa.Engine) -> None:
    big = 2**64 - 5  # an unsigned venue id past int64: stored as its signed pattern
    ids = np.array([7, big, 0, 2**63], dtype=np.uint64)
    is_trade = np.array([True, False, True, False])
    frame = Frame(
        "trades",
        4,
        {
            "topic": "séance.journal",
            "partition": 3,
            "offset": np.array([10, 11, 12, 2**40], dtype=np.int64),
            "run_id": None,
            "cause": np.array([10, 11, 12, 2**40], dtype=np.int64),
            "ts_event": np.array([-1, 0, 2**62, 1_700_000_000_000_000_000], dtype=np.int64),
            "session": "",
            "type_id": np.array([1, 5, 1, 5], dtype=np.uint8),
            "side": np.array([0, 1, 2, 255], dtype=np.uint8),
            "flags": np.array([0, 65535, 1, 2], dtype=np.uint16),
            "ts_recv": np.array([5, 6, 7, 8], dtype=np.int64),
            "price": np.array([-(2**63), 2**63 - 1, 0, -5], dtype=np.int64),
            "size": np.array([1, 2, 3, 4], dtype=np.int64),
            "trade_id": ids.astype(np.int64),
            "order_id": ids.astype(np.int64),
        },
        nulls={"trade_id": ~is_trade, "order_id": is_trade},
    )
    copy_in(pg, [frame])
    signed = [7, big - 2**64, 0, -(2**63)]
    expected = [
        ("séance.journal", 3, 10, None, 10, -1, "", 1, 0, 0, 5, -(2**63), 1, 7, None),
        ("séance.journal", 3, 11, None, 11, 0, "", 5, 1, 65535, 6, 2**63 - 1, 2, None, signed[1]),
        ("séance.journal", 3, 12, None, 12, 2**62, "", 1, 2, 1, 7, 0, 3, 0, None),
        ("séance.journal", 3, 2**40, None, 2**40, 1_700_000_000_000_000_000, "", 5, 255, 2, 8,
         -5, 4, None, signed[3]),
    ]  # fmt: skip
    assert read_back(pg, "trades") == expected


def test_several_frames_in_one_copy_and_a_frame_without_nulls(pg: sa.Engine) -> None:
    def frame(first: int, n: int) -> Frame:
        offsets = np.arange(first, first + n, dtype=np.int64)
        return Frame(
            "top_of_book",
            n,
            {
                "topic": "run.x.book",
                "partition": 0,
                "offset": offsets,
                "run_id": "x",
                "cause": offsets * 2,
                "ts_event": offsets + 100,
                "status": np.full(n, 3, dtype=np.uint8),
                "ts_recv": offsets + 101,
                "update_id": offsets + 102,
                "bid_price": offsets - 1,
                "bid_size": offsets * 0,
                "ask_price": offsets + 1,
                "ask_size": offsets * 7,
            },
        )

    copy_in(pg, [frame(0, 3), frame(3, 1), frame(4, 2)])
    expected = [
        ("run.x.book", 0, i, "x", 2 * i, i + 100, 3, i + 101, i + 102, i - 1, 0, i + 1, 7 * i)
        for i in range(6)
    ]
    assert read_back(pg, "top_of_book") == expected


floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(st.booleans(), st.integers(-(2**63), 2**63 - 1), floats, floats, floats, floats),
        min_size=1,
        max_size=40,
    )
)
def test_mids_bool_and_floats_with_nan_as_null(pg: sa.Engine, rows: list[tuple[Any, ...]]) -> None:
    with pg.begin() as connection:
        connection.execute(sa.text('DELETE FROM "mids"'))
    n = len(rows)
    offsets = np.arange(n, dtype=np.int64)
    cols = list(zip(*rows, strict=True))
    frame = Frame(
        "mids",
        n,
        {
            "topic": "run.y.mid",
            "partition": 1,
            "offset": offsets,
            "run_id": "y",
            "cause": offsets,
            "ts_event": offsets,
            "two_sided": np.array(cols[0], dtype=np.uint8),
            "spread": np.array(cols[1], dtype=np.int64),
            **{
                name: np.array(cols[k], dtype=np.float64)
                for k, name in enumerate(("mid", "microprice", "log_return", "ewm_variance"), 2)
            },
        },
    )
    copy_in(pg, [frame])
    expected = [
        ("run.y.mid", 1, i, "y", i, i, row[0], row[1],
         *(None if math.isnan(v) else v for v in row[2:]))
        for i, row in enumerate(rows)
    ]  # fmt: skip
    got = read_back(pg, "mids")
    assert got == expected
    # -0.0 == 0.0 in Python: check the sign bit survived too.
    for stored, row in zip(got, rows, strict=True):
        for s, v in zip(stored[8:], row[2:], strict=True):
            if s is not None:
                assert math.copysign(1, s) == math.copysign(1, v)


def test_frame_rows_give_sqlite_the_same_python_values() -> None:
    ids = np.array([4, 2**64 - 1], dtype=np.uint64).astype(np.int64)
    frame = Frame(
        "mids",
        2,
        {
            "topic": "t",
            "partition": 0,
            "offset": np.array([0, 1], dtype=np.int64),
            "run_id": None,
            "cause": ids,
            "ts_event": np.array([5, 6], dtype=np.int64),
            "two_sided": np.array([True, False]),
            "spread": np.array([1, 2], dtype=np.int64),
            "mid": np.array([1.5, math.nan]),
            "microprice": np.array([math.inf, -0.0]),
            "log_return": np.array([math.nan, math.nan]),
            "ewm_variance": np.array([0.25, 1e-300]),
        },
    )
    assert frame.rows() == [
        ("t", 0, 0, None, 4, 5, True, 1, 1.5, math.inf, None, 0.25),
        ("t", 0, 1, None, -1, 6, False, 2, None, -0.0, None, 1e-300),
    ]
