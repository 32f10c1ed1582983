"""The composition root of pipelines: stages from ``streams`` assembled into the pipelines
Tapedeck ships, and :data:`SHIPPED`, the catalog every command runs, replays and traces with.

This is the only place that knows every stage; the runtime is handed pipelines as values."""

from __future__ import annotations

from engine.runtime.topology import Catalog, Pipeline
from streams.agents import AGENTS_STAGE
from streams.book.stage import BOOK_STAGE
from streams.consensus import CONSENSUS_STAGE
from streams.features import FEATURES_STAGE
from streams.labels import LABELS_STAGE
from streams.mid import MID_STAGE
from streams.models import MODELS_STAGE
from streams.toy import TOY_STAGE
from streams.trading import TRADING_STAGE
from streams.trading.venue_stage import EXECUTION_STAGE

BOOK = Pipeline("book", (BOOK_STAGE,), doc="the order book alone: top 10 levels after each change")
MID = Pipeline(
    "mid",
    (BOOK_STAGE, MID_STAGE),
    doc="order book, then mid / microprice / return variance",
)
FEATURES = Pipeline(
    "features",
    (BOOK_STAGE, MID_STAGE, FEATURES_STAGE),
    doc="order book, mid, then the 65 features (docs/features.md) at the configured cadence",
)
LABELS = Pipeline(
    "labels",
    (BOOK_STAGE, MID_STAGE, FEATURES_STAGE, LABELS_STAGE),
    doc="order book, mid, the 65 features, then a label per vector when it matures "
    "(docs/models.md): the training data of `tape train`",
)
DEFAULT = Pipeline(
    "default",
    (
        BOOK_STAGE,
        MID_STAGE,
        FEATURES_STAGE,
        LABELS_STAGE,
        MODELS_STAGE,
        AGENTS_STAGE,
        CONSENSUS_STAGE,
        TRADING_STAGE,
    ),
    doc="the whole decision pipeline: book, mid, features, labels, models, agents, "
    "consensus, then risk / simulated execution / portfolio (docs/pipeline.md)",
)
TOY = Pipeline(
    "toy",
    (BOOK_STAGE, MID_STAGE, TOY_STAGE, EXECUTION_STAGE),
    doc="the comparable benchmark (bench/toy_lobster.py, docs/toy-benchmark.md): order "
    "book, mid, the toy strategy (EMA of mid and L1 imbalance -> market orders) and the "
    "simulated venue; book and mid are not written",
    transient=("book", "mid"),
)

SHIPPED = Catalog(BOOK, MID, FEATURES, LABELS, DEFAULT, TOY)
"""Every pipeline ``tape`` offers, by name."""
