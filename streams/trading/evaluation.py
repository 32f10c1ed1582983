"""Which part of a run is evidence: out-of-sample and in-sample windows, and the run's
trading report over each, beside its baselines.

A bundle trained on part of a session has seen that part; its predictions there say nothing
about skill. The ``models`` stage flags every prediction made before the bundle's
``in_sample_until`` (its training cut plus the embargo) with ``P_IN_SAMPLE``. Here the run's
journal offsets are cut where that flag changes: the **out-of-sample** window is every stretch
of unflagged predictions, the **in-sample** window every stretch of flagged ones. A run without
a bundle has no flagged prediction: the online model and the consensus learn only from labels
that matured before each decision (prequential), so the whole run is out of sample; a
pipeline without a ``models`` stage is all one window too. With several bundles in a run
(walk-forward folds, promotions: ``model.switched`` events), each bundle's out-of-sample
stretch is also reported on its own.

:func:`trading_report` is a pure function of the run's outputs, so anyone can recompute it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from engine.events.control import InstrumentSpec
from engine.events.decisions import P_IN_SAMPLE
from engine.events.models import ModelSwitched
from engine.runtime.processor import Output
from streams.trading.baselines import Baselines, Held, Market, compare
from streams.trading.config import TradingConfig
from streams.trading.report import EVERYTHING, Report, build_report, inside, trips

OUT_OF_SAMPLE = "out-of-sample"
IN_SAMPLE = "in-sample"
END = EVERYTHING[0][1]


class Window(msgspec.Struct, frozen=True, kw_only=True):
    """Part of a run, as intervals ``[start, stop)`` of journal offsets."""

    name: str
    """``out-of-sample``, ``in-sample``, or the bundle it was under (``fold 2``, ...)."""
    sample: str
    """``out-of-sample`` or ``in-sample``."""
    intervals: list[tuple[int, int]]
    first_ts: int
    """Event time of the window's first and last ``portfolio.state`` (0: none)."""
    last_ts: int
    bundle: str = ""
    """For a bundle's own window: its hash."""


class WindowReport(msgspec.Struct, frozen=True, kw_only=True):
    """The account over a window, beside the baselines over the same window."""

    window: Window
    account: Report
    baselines: Baselines | None
    """None: the run has no ``mid`` port to price the baselines with."""


class TradingReport(msgspec.Struct, frozen=True, kw_only=True):
    """A run's trading report: the evidence, and what is not (see the module docstring)."""

    basis: str
    """How the windows were decided, in words."""
    out_of_sample: WindowReport | None
    """None: every prediction was in sample."""
    in_sample: WindowReport | None
    """None: no prediction was in sample. Not evidence of skill: the models saw this period."""
    bundles: list[WindowReport]
    """Each bundle's out-of-sample stretch, when more than one bundle was in effect."""


NO_MODELS = "the pipeline has no models stage: nothing was fitted"
NONE_IN_SAMPLE = (
    "no prediction was in sample (no bundle, or one fitted before this period): every "
    "decision used only what was known before it"
)
FLAGGED = (
    "predictions before a bundle's training cut plus its embargo are in sample "
    "(model.prediction flag 0x08); the rest are out of sample"
)
Intervals = list[tuple[int, int]]


def sample_windows(predictions: np.ndarray[Any, Any] | None) -> tuple[Intervals, Intervals, str]:
    """(out-of-sample intervals, in-sample intervals, basis) from the predictions' flags."""
    if predictions is None:
        return [EVERYTHING[0]], [], NO_MODELS
    flagged = (predictions["flags"] & P_IN_SAMPLE) != 0
    if not flagged.any():
        return [EVERYTHING[0]], [], NONE_IN_SAMPLE
    causes = predictions["cause"].astype(np.int64)
    change = np.flatnonzero(np.diff(flagged.astype(np.int8))) + 1
    bounds = [0, *causes[change].tolist(), END]
    states = [bool(flagged[0]), *flagged[change].tolist()]
    spans = list(zip(itertools.pairwise(bounds), states, strict=True))
    return [a for a, flag in spans if not flag], [a for a, flag in spans if flag], FLAGGED


def bundle_windows(switches: list[Any], oos: list[tuple[int, int]]) -> list[Window]:
    """Each bundle's out-of-sample stretch, when the run switched bundle at least once."""
    events = [e for e in switches if isinstance(e, ModelSwitched)]
    if len(events) < 2:
        return []
    out = []
    for event, after in zip(events, [*events[1:], None], strict=True):
        stop = END if after is None else after.cause
        parts = [
            (max(a, event.cause), min(b, stop))
            for a, b in oos
            if max(a, event.cause) < min(b, stop)
        ]
        if not parts:
            continue
        name = (
            f"fold {event.fold}"
            if event.fold >= 0
            else f"{event.source} {event.bundle[:12] or 'none'}"
        )
        out.append(
            Window(
                name=name,
                sample=OUT_OF_SAMPLE,
                intervals=parts,
                first_ts=0,
                last_ts=0,
                bundle=event.bundle,
            )
        )
    return out


class Run:
    """The outputs a trading report reads, with the stage's config and instrument."""

    def __init__(
        self,
        config: TradingConfig,
        instrument: InstrumentSpec,
        read: Callable[[str], Output | None],
        seed: int,
    ) -> None:
        self.config, self.seed = config, seed
        self.portfolio = _array(read("portfolio"))
        self.executions = list(read("executions") or [])
        self.risk = list(read("risk") or [])
        mids = read("mid")
        value = (
            10.0 ** -(instrument.price_scale + instrument.size_scale) * config.contract_multiplier
        )
        self.market = (
            Market.of(mids, value, config.taker_fee_bp) if isinstance(mids, np.ndarray) else None
        )
        self.trips = trips(self.portfolio)

    def report(self, window: Window) -> WindowReport:
        """The account and the baselines over ``window``."""
        account = build_report(
            self.portfolio,
            self.executions,
            self.risk,
            self.config.mark_interval_ms,
            window.intervals,
            self.config.starting_equity,
        )
        causes = self.portfolio["cause"].astype(np.int64)
        ts = self.portfolio["ts_event"].astype(np.int64)
        chosen = inside(causes, window.intervals)
        stamped = msgspec.structs.replace(
            window,
            first_ts=int(ts[chosen][0]) if chosen.any() else 0,
            last_ts=int(ts[chosen][-1]) if chosen.any() else 0,
        )
        return WindowReport(
            window=stamped, account=account, baselines=self._baselines(window, account)
        )

    def _baselines(self, window: Window, account: Report) -> Baselines | None:
        if self.market is None:
            return None
        ts = self.portfolio["ts_event"].astype(np.int64)
        causes = self.portfolio["cause"].astype(np.int64)
        held = []
        for trip in self.trips:
            where = [
                k for k, (lo, hi) in enumerate(window.intervals) if lo <= causes[trip.opened] < hi
            ]
            if not where:
                continue
            hi = window.intervals[where[0]][1]
            end = trip.closed if trip.closed is not None else int(np.searchsorted(causes, hi)) - 1
            size = abs(int(self.portfolio["position"][trip.opened]))
            held.append(Held(where[0], int(ts[end] - ts[trip.opened]), size))
        return compare(
            account.net_pnl, self.market, window.intervals, held, self._fallback_size(), self.seed
        )

    def _fallback_size(self) -> int:
        """The largest position risk allows at the first mid, in whole lots (buy and hold
        without round trips to size it by)."""
        if self.market is None or not len(self.market.ask):
            return 0
        c = self.config
        notional = c.starting_equity * c.max_position_pct / 100
        per_lot = float(self.market.ask[0]) * self.market.value * c.lot_size
        return int(notional // per_lot) * c.lot_size if per_lot > 0 else 0


def trading_report(
    run: Run, predictions: Output | None, switches: Output | None, journal: tuple[int, int]
) -> TradingReport:
    """The run's report over its out-of-sample and in-sample windows and each bundle's own;
    intervals are clipped to the run's ``journal`` range."""
    oos, ins, basis = sample_windows(_array(predictions) if predictions is not None else None)
    oos, ins = _clipped(oos, journal), _clipped(ins, journal)

    def window(name: str, intervals: list[tuple[int, int]]) -> WindowReport | None:
        if not intervals:
            return None
        return run.report(
            Window(name=name, sample=name, intervals=intervals, first_ts=0, last_ts=0)
        )

    return TradingReport(
        basis=basis,
        out_of_sample=window(OUT_OF_SAMPLE, oos),
        in_sample=window(IN_SAMPLE, ins),
        bundles=[run.report(w) for w in bundle_windows(list(switches or []), oos)],
    )


def _clipped(intervals: list[tuple[int, int]], journal: tuple[int, int]) -> list[tuple[int, int]]:
    start, stop = journal
    return [(max(a, start), min(b, stop)) for a, b in intervals if max(a, start) < min(b, stop)]


def _array(output: Output | None) -> np.ndarray[Any, Any]:
    assert isinstance(output, np.ndarray)
    return output
