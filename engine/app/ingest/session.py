"""Running an importer into a session: idempotency, quarantine, progress and the summary.

Importers are pure converters (lines in, events out); this module is the I/O edge around them.
A converter yields, in journal order, numpy arrays of market records, low-rate control events,
and :class:`Bad` items for input it could not convert. This driver writes the first two to the
session journal through :class:`~engine.log.journal.JournalWriter` and the last to the quarantine.

A compressed input cut short (:attr:`~engine.app.ingest.source.InputFile.cut`) is not a failure:
what was readable is ingested, the incomplete last line is quarantined as ``truncated``, and the
session is marked as ending early (``session.closed`` says where; the sidecar lists it in
``ended_early``). ``--strict`` stops there instead.

Idempotency: ``<data>/sessions/<name>.json`` records the fingerprint (sha256 of the input bytes,
the importer and its version, and the arguments that change the output). An identical re-run is
a no-op; anything else for an existing session is refused. An interrupted or ``--strict``-stopped
ingest removes what it wrote, so no half session is ever left behind as if it were whole.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from engine.app.ingest.prefetch import Prefetch
from engine.app.ingest.source import InputFile, Line
from engine.events.book import TOP_RECORD_SIZE
from engine.events.control import (
    InstrumentSpec,
    RecordQuarantined,
    SessionClosed,
    SessionOpened,
)
from engine.log import EmbeddedLog, PartitionWriter, TopicCodec, TopicConfig
from engine.log.journal import JournalWriter, journal_topic, quarantine_topic


class IngestError(Exception):
    """An ingest that cannot proceed; the message says why and what to do."""


class StrictStopError(IngestError):
    """``--strict`` met its first bad record."""


@dataclass(frozen=True)
class Bad:
    """An input record a converter could not turn into events."""

    source: str
    line: int
    byte_offset: int
    raw: str
    reason: str
    detail: str
    ts_recv: int = 0

    @classmethod
    def at(cls, source: str, line: Line, reason: str, detail: str, ts_recv: int = 0) -> Bad:
        """The bad record on ``line`` of ``source``, kept with its position and raw text."""
        return cls(source, line.number, line.offset, line.text(), reason, detail, ts_recv)

    def record(self) -> RecordQuarantined:
        """The ``quarantine.record_quarantined`` event that keeps it."""
        return RecordQuarantined(
            self.ts_recv,
            self.ts_recv,
            self.source,
            self.line,
            self.byte_offset,
            self.raw,
            self.reason,
            self.detail,
        )


@dataclass(frozen=True)
class Oracle:
    """Rows of a venue's own book (``book.top`` records) for ``<session>.oracle``.

    Their ``offset`` field holds the 0-based ordinal of the market record each row follows
    (counting market records only); the driver turns it into that record's journal offset.
    """

    tops: np.ndarray[Any, Any]


Item = np.ndarray[Any, Any] | msgspec.Struct | Bad | Oracle


@dataclass
class Summary:
    """What an ingest did, for the user and the sidecar."""

    session: str
    lines: int = 0
    records: int = 0
    events: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    """Warnings: what the user should know about what was (not) ingested."""
    info: list[str] = field(default_factory=list)
    """Facts worth telling that need no action (e.g. where a continued session started)."""
    counts: dict[str, int] = field(default_factory=dict)
    """Other things the importer counted for the user, e.g. timestamps rounded."""
    ended_early: list[str] = field(default_factory=list)
    """Where each input that was cut short stops (file, compressed offset, last line)."""
    seconds: float = 0.0
    skipped: bool = False


class Manifest(msgspec.Struct, frozen=True):
    """The sidecar ``<data>/sessions/<name>.json`` of an ingested session."""

    session: str
    importer: str
    fingerprint: str
    inputs: list[str]
    status: str
    lines: int = 0
    records: int = 0
    quarantined: dict[str, int] = {}
    ended_early: list[str] = []
    """Inputs that were cut short, and where; empty when every input was whole."""


def manifest_path(log: EmbeddedLog, session: str) -> Path:
    """Where a session's sidecar lives."""
    return log.root / "sessions" / f"{session}.json"


def read_manifest(log: EmbeddedLog, session: str) -> Manifest | None:
    """A session's sidecar, or None when the session was not ingested."""
    path = manifest_path(log, session)
    return msgspec.json.decode(path.read_bytes(), type=Manifest) if path.is_file() else None


def check_new(log: EmbeddedLog, session: str, fingerprint: str, inputs: list[str]) -> bool:
    """True if this exact ingest already happened (a no-op); raise if it conflicts."""
    existing = read_manifest(log, session)
    if existing is not None and existing.status == "complete":
        if existing.fingerprint == fingerprint:
            return True
        raise IngestError(
            f"session {session!r} already holds a different ingest ({existing.importer} of "
            f"{', '.join(existing.inputs)}, fingerprint {existing.fingerprint[:12]}); this input "
            f"(fingerprint {fingerprint[:12]}) differs. Use another --session name."
        )
    if existing is None and log.has_topic(journal_topic(session)):
        raise IngestError(
            f"session {session!r} has a journal that no ingest recorded (written by a feed or "
            "another tool); refusing to add to it. Use another --session name."
        )
    _remove_session(log, session)  # leftovers of an interrupted ingest
    return False


def session_topics(session: str) -> list[str]:
    """Every topic an ingest may write for ``session``."""
    return [journal_topic(session), quarantine_topic(session), f"{session}.oracle"]


def _remove_session(log: EmbeddedLog, session: str) -> None:
    for topic in session_topics(session):
        shutil.rmtree(log.root / "topics" / topic, ignore_errors=True)
    manifest_path(log, session).unlink(missing_ok=True)


def _write_manifest(log: EmbeddedLog, manifest: Manifest) -> None:
    path = manifest_path(log, manifest.session)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(manifest)))
    tmp.replace(path)


@dataclass
class IngestJob:
    """One ingest: where it goes, what it is, and the converted stream of items."""

    log: EmbeddedLog
    session: str
    importer: str
    fingerprint: str
    inputs: list[str]
    instrument: InstrumentSpec
    source: str
    strict: bool = False
    header: tuple[msgspec.Struct, ...] = ()
    """Events written right after ``session.opened``, at its time (e.g. ``feed.book_described``)."""


def run(
    job: IngestJob,
    items: Iterable[Item],
    lines: Callable[[], int],
    inputs: Sequence[InputFile] = (),
) -> Summary:
    """Write ``items`` into the session; ``lines()`` tells how many input lines were read.

    ``inputs`` are the files the items come from: any that was cut short is reported.
    """
    summary = Summary(job.session)
    if check_new(job.log, job.session, job.fingerprint, job.inputs):
        summary.skipped = True
        return summary
    _write_manifest(
        job.log, Manifest(job.session, job.importer, job.fingerprint, job.inputs, "in_progress")
    )
    started = time.perf_counter()
    writer = JournalWriter(job.log, job.session)
    ahead = Prefetch(items)
    try:
        try:
            last_ts = _drive(job, writer, ahead, summary)
        finally:
            ahead.close()
        _report_cuts(job, writer, inputs, summary, last_ts)
        reason = "end of input"
        if summary.ended_early:
            reason = "input ended early: " + "; ".join(summary.ended_early)
        writer.event(SessionClosed(last_ts, last_ts, job.session, reason))
        summary.events += 1
        writer.close()
    except BaseException:
        writer.close()
        _remove_session(job.log, job.session)
        raise
    summary.lines = lines()
    summary.seconds = time.perf_counter() - started
    _write_manifest(
        job.log,
        Manifest(
            job.session,
            job.importer,
            job.fingerprint,
            job.inputs,
            "complete",
            summary.lines,
            summary.records,
            dict(sorted(summary.quarantined.items())),
            summary.ended_early,
        ),
    )
    return summary


def _report_cuts(
    job: IngestJob, writer: JournalWriter, inputs: Sequence[InputFile], s: Summary, ts: int
) -> None:
    """Quarantine the incomplete line of each cut input and say where it stops."""
    for inp in inputs:
        if inp.cut is None:
            continue
        where = inp.cut.where(inp.last_complete_line)
        if inp.partial is not None:
            detail = f"the input ends inside this line: {where}"
            _quarantine(job, writer, Bad.at(str(inp.path), inp.partial, "truncated", detail, ts), s)
        if job.strict:
            raise StrictStopError(
                f"{where}.\n--strict stops at an input that ends early; nothing was kept. "
                "Run without --strict to ingest everything readable (the session is then "
                "marked as ending early)."
            )
        s.ended_early.append(where)


def oracle_topic(session: str) -> str:
    """Topic of the venue's own book rows, which ``tape book-check`` compares against."""
    return f"{session}.oracle"


class _OracleWriter:
    """Writes oracle rows with their ordinals turned into journal offsets."""

    def __init__(self, log: EmbeddedLog, session: str) -> None:
        self.log, self.session = log, session
        self.writer: PartitionWriter | None = None
        # (first ordinal, first journal offset) of market arrays not yet fully referenced
        self.runs: list[tuple[int, int, int]] = []
        self.ordinals = 0

    def saw_market(self, n: int, journal_offset: int) -> None:
        self.runs.append((self.ordinals, journal_offset, n))
        self.ordinals += n

    def write(self, tops: np.ndarray[Any, Any]) -> None:
        # A plain copy of a structured array with padding (book.top has 4 bytes after
        # ``levels``) copies field by field and leaves the padding uninitialised, which made
        # the oracle bytes differ from run to run; copying the raw records keeps them zero.
        tops = tops.view(np.dtype((np.void, tops.dtype.itemsize))).copy().view(tops.dtype)
        ordinals = tops["offset"].astype(np.int64)
        offsets = np.zeros(len(tops), dtype=np.uint64)
        for start, base, n in self.runs:
            hit = (ordinals >= start) & (ordinals < start + n)
            offsets[hit] = (base + ordinals[hit] - start).astype(np.uint64)
        tops["offset"] = offsets
        # rows before the first record keep offset 0; drop runs no later row can refer to
        low = int(ordinals.max()) if len(ordinals) else 0
        self.runs = [r for r in self.runs if r[0] + r[2] > low]
        if self.writer is None:
            topic = oracle_topic(self.session)
            config = TopicConfig(
                "book.top", 1, TopicCodec.FIXED, record_size=TOP_RECORD_SIZE, timestamp_offset=8
            )
            self.log.create_topic(topic, config)
            self.writer = self.log.writer(topic)
        self.writer.append_array(tops)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _drive(job: IngestJob, writer: JournalWriter, items: Iterator[Item], summary: Summary) -> int:
    opened = False
    last_ts = 0
    oracle = _OracleWriter(job.log, job.session)
    try:
        for item in items:
            if isinstance(item, Oracle):
                oracle.write(item.tops)
                continue
            if isinstance(item, np.ndarray):
                oracle.saw_market(
                    len(item), writer.next_offset + (0 if opened else 1 + len(job.header))
                )
            opened, last_ts = _one(job, writer, item, summary, opened, last_ts)
        if not opened:
            _open(job, writer, 0, summary)
    finally:
        oracle.close()
    return last_ts


def _one(
    job: IngestJob, writer: JournalWriter, item: Item, summary: Summary, opened: bool, last_ts: int
) -> tuple[bool, int]:
    if isinstance(item, Bad):
        _quarantine(job, writer, item, summary)
        return opened, last_ts
    assert not isinstance(item, Oracle)
    ts = int(item["ts_event"][0]) if isinstance(item, np.ndarray) else int(item.ts_event)  # type: ignore[attr-defined]
    if not opened:
        _open(job, writer, ts, summary)
    if isinstance(item, np.ndarray):
        writer.market(item)
        summary.records += len(item)
        return True, int(item["ts_event"][-1])
    writer.event(item)
    summary.events += 1
    return True, max(last_ts, ts)


def _open(job: IngestJob, writer: JournalWriter, ts: int, summary: Summary) -> None:
    writer.event(SessionOpened(ts, ts, job.session, job.instrument, job.source))
    for event in job.header:
        writer.event(msgspec.structs.replace(event, ts_event=ts, ts_recv=ts))
    summary.events += 1 + len(job.header)


def _quarantine(job: IngestJob, writer: JournalWriter, bad: Bad, summary: Summary) -> None:
    writer.quarantine(bad.record())
    summary.quarantined[bad.reason] += 1
    if job.strict:
        raise StrictStopError(
            f"{bad.source}:{bad.line} (byte {bad.byte_offset}): {bad.reason}: {bad.detail}\n"
            f"  line: {bad.raw[:200]}\n--strict stops at the first bad record; nothing was kept. "
            "Fix the input, or run without --strict to quarantine bad records and go on."
        )
