"""The analyst view of the log: one SQL table per kind of event, linked back to the log.

Every event-derived row keeps where it came from: ``topic``, ``partition`` and ``offset`` (its
primary key: one log record is at most one row), ``run_id`` (``NULL`` for rows from a session
journal or quarantine) and ``cause``, the journal offset whose processing produced it (a journal
row is its own cause: ``cause = offset``). Times are ``BIGINT`` nanoseconds since the Unix epoch,
UTC, as in the events; prices and sizes are the events' integers in the instrument's units
(``instruments.price_scale`` / ``size_scale``); money and model outputs are ``DOUBLE``.
``docs/analysts.md`` lists every table and column.

``runs`` and ``run_outputs`` come from run manifests, not from log records, so they carry the
run's journal range instead of a log position. ``book_deltas`` (L2/L3 book changes from the
journal) exists in every database but is filled only when the projector is asked to.
"""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import BigInteger, Boolean, Double, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from engine.events.decisions import AGENTS, CONTRIBUTORS
from streams.features.schema import NAMES as FEATURE_NAMES

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint and index names are derived, so models and migrations name them identically."""

LOG_COLUMNS = ("topic", "partition", "offset", "run_id", "cause")
"""The columns every event row carries to link it back to the log."""

PROBABILITY_SETS = ("probs", "context", "micro", "meta", "online")
"""The ``(down, flat, up)`` triples of ``model.prediction``, flattened to ``<set>_<class>``."""
CLASS_NAMES = ("down", "flat", "up")


class Base(DeclarativeBase):
    """Declarative base of every store table; its ``metadata`` is what migrations must equal."""

    metadata = MetaData(naming_convention=NAMING)


def _i64(index: bool = False) -> Mapped[int]:
    return mapped_column(BigInteger, nullable=False, index=index)


def _f64() -> Mapped[float | None]:
    # Nullable: the projector stores NaN as NULL (SQLite cannot hold NaN).
    return mapped_column(Double, nullable=True)


class LogRow:
    """Columns of a row projected from one log record, and the indexes every such table has."""

    # sort_order < 0: the log position comes first in every table, then the event's own fields.
    topic: Mapped[str] = mapped_column(String(200), primary_key=True, sort_order=-9)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True, sort_order=-8)
    offset: Mapped[int] = mapped_column(BigInteger, primary_key=True, sort_order=-7)
    run_id: Mapped[str | None] = mapped_column(String(100), nullable=True, sort_order=-6)
    cause: Mapped[int] = mapped_column(BigInteger, nullable=False, sort_order=-5)
    ts_event: Mapped[int] = mapped_column(BigInteger, nullable=False, sort_order=-4)

    INDEXES: ClassVar[tuple[tuple[str, ...], ...]] = (("run_id", "cause"), ("run_id", "ts_event"))
    """Column lists of the table's indexes (named ``ix_<table>_<columns>``)."""
    UNIQUE: ClassVar[tuple[str, ...]] = ()
    """Columns of a unique index, if the table has one besides its key."""

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:  # noqa: N805 (a declared class attribute)
        name: str = cls.__tablename__  # type: ignore[attr-defined]
        indexes = [Index(f"ix_{name}_{'_'.join(cols)}", *cols) for cols in cls.INDEXES]
        if cls.UNIQUE:
            unique = f"uq_{name}_{'_'.join(cls.UNIQUE)}"
            indexes.append(Index(unique, *cls.UNIQUE, unique=True))
        return tuple(indexes)


class JournalRow(LogRow):
    """A row from a session's journal or quarantine: ``run_id`` is NULL, ``cause = offset``."""

    INDEXES = (("session", "ts_event"),)

    session: Mapped[str] = mapped_column(String(100), nullable=False, sort_order=-3)


# --- from the journal (and the session manifests) ----------------------------------------------


class Instrument(JournalRow, Base):
    """One row per instrument (venue, symbol): the ``session.opened`` that first announced it."""

    __tablename__ = "instruments"
    UNIQUE = ("venue", "symbol")

    venue: Mapped[str] = mapped_column(String(50), nullable=False)
    symbol: Mapped[str] = mapped_column(String(50), nullable=False)
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False)
    price_scale: Mapped[int] = mapped_column(Integer, nullable=False)
    size_scale: Mapped[int] = mapped_column(Integer, nullable=False)
    tick_size: Mapped[int] = _i64()
    lot_size: Mapped[int] = _i64()
    currency: Mapped[str] = mapped_column(String(16), nullable=False)


class Session(JournalRow, Base):
    """``session.opened``: one row per session, with the instrument it carries."""

    __tablename__ = "sessions"
    UNIQUE = ("session",)

    ts_recv: Mapped[int] = _i64()
    venue: Mapped[str] = mapped_column(String(50), nullable=False)
    symbol: Mapped[str] = mapped_column(String(50), nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)


class ControlEvent(JournalRow, Base):
    """``session.closed``, ``control.halt_trading`` / ``resume_trading`` /
    ``flatten_position`` and ``feed.trading_status_changed``; ``kind`` is the event name. Clock
    ticks are not stored."""

    __tablename__ = "control_events"

    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    ts_recv: Mapped[int] = _i64()
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    operator: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class Trade(JournalRow, Base):
    """Trade prints: ``market.trade`` and ``market.order_executed`` (type id in ``type_id``)."""

    __tablename__ = "trades"

    type_id: Mapped[int] = mapped_column(Integer, nullable=False)
    side: Mapped[int] = mapped_column(Integer, nullable=False)
    flags: Mapped[int] = mapped_column(Integer, nullable=False)
    ts_recv: Mapped[int] = _i64()
    price: Mapped[int] = _i64()
    size: Mapped[int] = _i64()
    trade_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    order_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class BookDelta(JournalRow, Base):
    """Raw book changes (order added/cancelled/deleted, level updated, snapshot level): high
    volume, so the projector fills this table only when switched on."""

    __tablename__ = "book_deltas"

    type_id: Mapped[int] = mapped_column(Integer, nullable=False)
    side: Mapped[int] = mapped_column(Integer, nullable=False)
    flags: Mapped[int] = mapped_column(Integer, nullable=False)
    aux: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ts_recv: Mapped[int] = _i64()
    price: Mapped[int] = _i64()
    size: Mapped[int] = _i64()
    venue_id: Mapped[int] = _i64()
    first_update_id: Mapped[int] = _i64()


class Gap(JournalRow, Base):
    """``feed.gap_detected``: the venue's update sequence broke here."""

    __tablename__ = "gaps"

    ts_recv: Mapped[int] = _i64()
    expected_update_id: Mapped[int] = _i64()
    received_update_id: Mapped[int] = _i64()
    detail: Mapped[str] = mapped_column(Text, nullable=False)


class QuarantinedRecord(JournalRow, Base):
    """``quarantine.record_quarantined`` from ``<session>.quarantine``: input never dropped."""

    __tablename__ = "quarantine"

    ts_recv: Mapped[int] = _i64()
    source: Mapped[str] = mapped_column(Text, nullable=False)
    line: Mapped[int] = _i64()
    byte_offset: Mapped[int] = _i64()
    raw: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[str] = mapped_column(String(64), nullable=False)
    detail: Mapped[str] = mapped_column(Text, nullable=False)


# --- runs (from manifests) -----------------------------------------------------------------------


class Run(Base):
    """One run, from ``<data>/runs/<run id>/manifest.json``."""

    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    session: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    pipeline: Mapped[str] = mapped_column(String(100), nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    journal_topic: Mapped[str] = mapped_column(String(200), nullable=False)
    journal_start: Mapped[int] = _i64()
    journal_stop: Mapped[int] = _i64()
    code_commit: Mapped[str] = mapped_column(String(64), nullable=False)
    code_dirty: Mapped[bool] = mapped_column(Boolean, nullable=False)
    config_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    outputs_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    started: Mapped[str] = mapped_column(String(64), nullable=False)
    wall_seconds: Mapped[float] = mapped_column(Double, nullable=False)


class RunOutput(Base):
    """One output topic of a run, as its manifest summarises it."""

    __tablename__ = "run_outputs"

    run_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    port: Mapped[str] = mapped_column(String(64), primary_key=True)
    stage: Mapped[str] = mapped_column(String(64), nullable=False)
    topic: Mapped[str] = mapped_column(String(200), nullable=False)
    schema: Mapped[str] = mapped_column(String(100), nullable=False)
    count: Mapped[int] = _i64()
    chain: Mapped[str] = mapped_column(String(64), nullable=False)
    first_ts: Mapped[int] = _i64()
    last_ts: Mapped[int] = _i64()


# --- from run topics ----------------------------------------------------------------------------


class TopOfBook(LogRow, Base):
    """Best bid and ask of each ``book.top`` (``run.<id>.book``); deeper levels stay in the log."""

    __tablename__ = "top_of_book"

    status: Mapped[int] = mapped_column(Integer, nullable=False)
    ts_recv: Mapped[int] = _i64()
    update_id: Mapped[int] = _i64()
    bid_price: Mapped[int] = _i64()
    bid_size: Mapped[int] = _i64()
    ask_price: Mapped[int] = _i64()
    ask_size: Mapped[int] = _i64()


class Mid(LogRow, Base):
    """``book.mid`` (``run.<id>.mid``): mid, microprice, spread and return variance."""

    __tablename__ = "mids"

    two_sided: Mapped[bool] = mapped_column(Boolean, nullable=False)
    spread: Mapped[int] = _i64()
    mid: Mapped[float | None] = _f64()
    microprice: Mapped[float | None] = _f64()
    log_return: Mapped[float | None] = _f64()
    ewm_variance: Mapped[float | None] = _f64()


class FeatureVector(LogRow, Base):
    """``features.vector`` (``run.<id>.features``): one column per feature, named as in
    ``streams.features.schema.NAMES`` (added below), NULL where the value is NaN."""

    __tablename__ = "feature_vectors"

    flags: Mapped[int] = mapped_column(Integer, nullable=False)
    schema: Mapped[int] = mapped_column(Integer, nullable=False)


for _name in FEATURE_NAMES:
    # Declarative maps a column assigned to the class after creation, in this order.
    setattr(FeatureVector, _name, mapped_column(_name, Double, nullable=True))


class Label(LogRow, Base):
    """``labels.label`` (``run.<id>.labels``); ``origin`` is the labelled vector's cause."""

    __tablename__ = "labels"

    label: Mapped[int] = mapped_column(Integer, nullable=False)
    flags: Mapped[int] = mapped_column(Integer, nullable=False)
    origin: Mapped[int] = _i64(index=True)
    origin_ts: Mapped[int] = _i64()
    mid_start: Mapped[float | None] = _f64()
    mid_end: Mapped[float | None] = _f64()
    move: Mapped[float | None] = _f64()


class Prediction(LogRow, Base):
    """``model.prediction`` (``run.<id>.predictions``); triples as ``<set>_down|flat|up``."""

    __tablename__ = "predictions"

    flags: Mapped[int] = mapped_column(Integer, nullable=False)
    direction: Mapped[int] = mapped_column(Integer, nullable=False)
    confidence: Mapped[float | None] = _f64()


for _set in PROBABILITY_SETS:
    for _cls in CLASS_NAMES:
        setattr(Prediction, f"{_set}_{_cls}", mapped_column(Double, nullable=True))


class Votes(LogRow, Base):
    """``agents.votes`` (``run.<id>.votes``): ``<agent>_vote``, ``_confidence``, ``_reasons``."""

    __tablename__ = "votes"


for _agent in AGENTS:
    setattr(Votes, f"{_agent}_vote", mapped_column(Integer, nullable=False))
    setattr(Votes, f"{_agent}_confidence", mapped_column(Double, nullable=True))
    setattr(Votes, f"{_agent}_reasons", mapped_column(BigInteger, nullable=False))


class Decision(LogRow, Base):
    """``consensus.decision`` (``run.<id>.decisions``): per contributor (meta, online, the four
    agents) ``<who>_vote``, ``<who>_weight`` and ``<who>_confidence``."""

    __tablename__ = "decisions"

    flags: Mapped[int] = mapped_column(Integer, nullable=False)
    direction: Mapped[int] = mapped_column(Integer, nullable=False)
    confidence: Mapped[float | None] = _f64()
    score: Mapped[float | None] = _f64()
    model_score: Mapped[float | None] = _f64()
    agent_score: Mapped[float | None] = _f64()


for _who in CONTRIBUTORS:
    setattr(Decision, f"{_who}_vote", mapped_column(Integer, nullable=False))
    setattr(Decision, f"{_who}_weight", mapped_column(Double, nullable=True))
    setattr(Decision, f"{_who}_confidence", mapped_column(Double, nullable=True))


class RiskEvent(LogRow, Base):
    """``risk.*`` (``run.<id>.risk``); ``kind`` is the event name, other columns NULL where the
    kind has no such field. The event's ``limit`` field is ``limit_value`` (a SQL keyword)."""

    __tablename__ = "risk_events"

    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    decision_cause: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    direction: Mapped[int | None] = mapped_column(Integer, nullable=True)
    confidence: Mapped[float | None] = _f64()
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    value: Mapped[float | None] = _f64()
    limit_value: Mapped[float | None] = _f64()
    requested: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    granted: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    trading_day: Mapped[str | None] = mapped_column(String(10), nullable=True)
    time_zone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    equity: Mapped[float | None] = _f64()
    day_start_equity: Mapped[float | None] = _f64()
    loss: Mapped[float | None] = _f64()


class Order(LogRow, Base):
    """``orders.order_submitted`` and ``orders.cancel_requested`` (``run.<id>.orders``)."""

    __tablename__ = "orders"
    INDEXES = (*LogRow.INDEXES, ("run_id", "order_id"))

    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    order_id: Mapped[int] = _i64()
    parent_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    side: Mapped[int | None] = mapped_column(Integer, nullable=True)
    order_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(32), nullable=True)
    price: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reduce_only: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    reference_mid: Mapped[float | None] = _f64()
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    arrives_at: Mapped[int] = _i64()


class Execution(LogRow, Base):
    """``executions.*`` (``run.<id>.executions``): acknowledgements, fills, cancellations and
    rejections; fills are ``kind = 'executions.order_filled'``."""

    __tablename__ = "executions"
    INDEXES = (*LogRow.INDEXES, ("run_id", "order_id"))

    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    order_id: Mapped[int] = _i64()
    side: Mapped[int | None] = mapped_column(Integer, nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(32), nullable=True)
    price: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    remaining: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    fee: Mapped[float | None] = _f64()
    liquidity: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reference_price: Mapped[float | None] = _f64()
    slippage: Mapped[float | None] = _f64()
    queue_ahead: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class PortfolioState(LogRow, Base):
    """``portfolio.state`` (``run.<id>.portfolio``): position, PnL and equity marked to mid."""

    __tablename__ = "portfolio_states"

    reason: Mapped[int] = mapped_column(Integer, nullable=False)
    position: Mapped[int] = _i64()
    avg_price: Mapped[float | None] = _f64()
    mid: Mapped[float | None] = _f64()
    realised: Mapped[float | None] = _f64()
    unrealised: Mapped[float | None] = _f64()
    fees: Mapped[float | None] = _f64()
    equity: Mapped[float | None] = _f64()
    peak_equity: Mapped[float | None] = _f64()
    drawdown: Mapped[float | None] = _f64()
    exposure: Mapped[float | None] = _f64()


# --- the projector's own bookkeeping ------------------------------------------------------------


class ConsumerOffset(Base):
    """The projector's committed position in each topic partition, per consumer group: the next
    offset it will project. Written in the same transaction as the rows of each batch, so the
    rows and the position never disagree (``engine.app.store.projector``)."""

    __tablename__ = "consumer_offsets"

    consumer_group: Mapped[str] = mapped_column(String(100), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = _i64()
