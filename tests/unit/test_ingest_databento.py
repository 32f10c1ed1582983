"""Databento DBN: hand-made files written with Databento's own ``databento-dbn`` package (so
they run in a fresh clone), and the real CME files of ``../shared/data/databento`` when present.

The hand-made MBO file walks every action (clear, snapshot adds, add, trade, fill, modify,
cancel, an ``N`` record ending an event) for instrument 7; the book after each event is worked
out by hand in ``MBO_BOOKS``.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import databento_dbn as dbn
import pytest
import zstandard
from ingest_samples import books_after_messages, counts, tape

from engine.app.bookcheck import read_journal
from engine.events import decode
from engine.events.control import InstrumentDefined
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "databento"
P = 10**9  # Databento prices are in 1e-9 units
A, B, N = dbn.Side.ASK, dbn.Side.BID, dbn.Side.NONE
SNAP, LAST = 40, 128  # F_SNAPSHOT | F_BAD_TS_RECV, F_LAST


def _file(tmp: Path, name: str, schema: Any, records: list[Any], compress: bool = True) -> Path:
    day = datetime.date(2024, 1, 1)
    interval = SimpleNamespace(start_date=day, end_date=day + datetime.timedelta(1), symbol="7")
    other = SimpleNamespace(start_date=day, end_date=day + datetime.timedelta(1), symbol="8")
    metadata = dbn.Metadata(
        dataset="GLBX.MDP3",
        schema=schema,
        start=0,
        stype_in=dbn.SType.RAW_SYMBOL,
        stype_out=dbn.SType.INSTRUMENT_ID,
        symbols=["TEST"],
        partial=[],
        not_found=[],
        mappings=[
            SimpleNamespace(raw_symbol="TEST", intervals=[interval]),
            SimpleNamespace(raw_symbol="OTHER", intervals=[other]),
        ],
    )
    raw = bytes(metadata.encode()) + b"".join(bytes(r) for r in records)
    path = tmp / name
    path.write_bytes(zstandard.ZstdCompressor().compress(raw) if compress else raw)
    return path


def _mbo(t: int, action: Any, side: Any, price: float, size: int, oid: int, flags: int) -> Any:
    return dbn.MBOMsg(
        publisher_id=1,
        instrument_id=7,
        ts_event=t - 1,
        order_id=oid,
        price=int(price * P) if price else dbn.UNDEF_PRICE,
        size=size,
        action=action,
        side=side,
        ts_recv=t,
        flags=flags,
        sequence=t,
    )


MBO = [
    _mbo(1000, dbn.Action.CLEAR, N, 0, 0, 0, SNAP),
    _mbo(1000, dbn.Action.ADD, B, 100.00, 5, 1, SNAP),
    _mbo(1000, dbn.Action.ADD, A, 101.00, 3, 2, SNAP),  # the snapshot ends here
    _mbo(1001, dbn.Action.ADD, B, 100.25, 2, 3, LAST),
    _mbo(1002, dbn.Action.TRADE, A, 100.25, 1, 0, 0),  # a seller hits order 3 ...
    _mbo(1002, dbn.Action.FILL, B, 100.25, 1, 3, 0),
    _mbo(1002, dbn.Action.MODIFY, B, 100.25, 1, 3, LAST),  # ... whose modify takes it off
    _mbo(1003, dbn.Action.CANCEL, B, 100.00, 2, 1, LAST),  # part of order 1
    _mbo(1004, dbn.Action.ADD, A, 101.50, 4, 4, 0),
    _mbo(1004, dbn.Action.NONE, N, 0, 0, 0, LAST),  # ends the event of the add before it
    _mbo(1005, dbn.Action.MODIFY, A, 101.25, 3, 2, LAST),  # order 2 moves to a new price
    _mbo(900, dbn.Action.ADD, B, 99.00, 1, 5, LAST),  # ts_recv goes backwards: quarantined
    _mbo(1006, dbn.Action.CANCEL, A, 101.50, 4, 4, LAST),
]
MBO_BOOKS = [  # (bids, asks) after each event, prices in 1e-9 units
    ([(100 * P, 5)], [(101 * P, 3)]),
    ([(int(100.25 * P), 2), (100 * P, 5)], [(101 * P, 3)]),
    ([(int(100.25 * P), 1), (100 * P, 5)], [(101 * P, 3)]),
    ([(int(100.25 * P), 1), (100 * P, 3)], [(101 * P, 3)]),
    ([(int(100.25 * P), 1), (100 * P, 3)], [(101 * P, 3), (int(101.5 * P), 4)]),
    ([(int(100.25 * P), 1), (100 * P, 3)], [(int(101.25 * P), 3), (int(101.5 * P), 4)]),
    ([(int(100.25 * P), 1), (100 * P, 3)], [(int(101.25 * P), 3)]),
]


def test_mbo_rebuilds_as_worked_out(tmp_path: Path) -> None:
    path = _file(tmp_path, "test.mbo.dbn.zst", dbn.Schema.MBO, MBO)
    data = tmp_path / "data"
    code, out = tape(data, "ingest", "databento", str(path), "--session", "mbo")
    assert code == 0, out
    found = counts(out)
    assert found["market records"] == 11  # 13 records, less N and the one quarantined
    assert found["time_backwards"] == 1
    assert (found["records: M modify"], found["records: F fill"], found["records: R clear"]) == (
        2,
        1,
        1,
    )
    assert books_after_messages(data, "mbo") == MBO_BOOKS
    code, out = tape(data, "book-check", "mbo")
    assert code == 0, out
    assert counts(out)["mismatched"] == 0


def _mbp1(
    t: int,
    action: Any,
    side: Any,
    price: float,
    size: int,
    flags: int,
    bid: tuple[float, int],
    ask: tuple[float, int],
) -> Any:
    level = dbn.BidAskPair(
        bid_px=int(bid[0] * P),
        ask_px=int(ask[0] * P),
        bid_sz=bid[1],
        ask_sz=ask[1],
        bid_ct=1,
        ask_ct=1,
    )
    return dbn.MBP1Msg(
        publisher_id=1,
        instrument_id=7,
        ts_event=t - 1,
        price=int(price * P),
        size=size,
        action=action,
        side=side,
        depth=0,
        ts_recv=t,
        flags=flags,
        sequence=t,
        levels=level,
    )


def _trade(t: int, price: float, size: int) -> Any:
    return dbn.TradeMsg(
        publisher_id=1,
        instrument_id=7,
        ts_event=t - 1,
        price=int(price * P),
        size=size,
        action=dbn.Action.TRADE,
        side=A,
        depth=0,
        ts_recv=t,
        flags=0,
        sequence=t,
    )


def _definition(instrument: int, symbol: str) -> Any:
    zero = dict.fromkeys(
        [
            "activation",
            "high_limit_price",
            "low_limit_price",
            "max_price_variation",
            "min_price_increment_amount",
            "price_ratio",
            "inst_attrib_value",
            "underlying_id",
            "market_depth_implied",
            "market_segment_id",
            "max_trade_vol",
            "min_lot_size",
            "min_lot_size_block",
            "min_lot_size_round_lot",
            "min_trade_vol",
            "decay_quantity",
            "original_contract_size",
            "appl_id",
            "maturity_year",
            "decay_start_date",
            "channel_id",
            "main_fraction",
            "price_display_format",
            "sub_fraction",
            "underlying_product",
            "maturity_month",
            "maturity_day",
            "maturity_week",
            "contract_multiplier_unit",
            "flow_schedule_type",
            "tick_rule",
        ],
        0,
    )
    return dbn.InstrumentDefMsg(
        publisher_id=1,
        instrument_id=instrument,
        ts_event=1,
        ts_recv=2,
        raw_symbol=symbol,
        min_price_increment=250_000_000,
        display_factor=P,
        unit_of_measure_qty=50 * P,
        currency="USD",
        exchange="XCME",
        instrument_class=dbn.InstrumentClass.FUTURE,
        security_update_action=dbn.SecurityUpdateAction.ADD,
        expiration=3,
        raw_instrument_id=7,
        market_depth=10,
        contract_multiplier=2**31 - 1,
        unit_of_measure="IPNT",
        match_algorithm=dbn.MatchAlgorithm.FIFO,
        asset="ES",
        security_type="FUT",
        user_defined_instrument=dbn.UserDefinedInstrument.NO,
        **zero,
    )


def test_mbp1_trades_and_definitions(tmp_path: Path) -> None:
    mbp = [
        _mbp1(1000, dbn.Action.ADD, B, 100, 5, LAST, (100, 5), (101, 3)),
        _mbp1(1001, dbn.Action.TRADE, A, 100, 2, 0, (100, 5), (101, 3)),
        _mbp1(1002, dbn.Action.CANCEL, B, 100, 2, LAST, (100, 3), (101, 3)),
    ]
    files = [
        _file(tmp_path, "test.mbp-1.dbn.zst", dbn.Schema.MBP_1, mbp),
        _file(
            tmp_path,
            "test.trades.dbn",
            dbn.Schema.TRADES,
            [_trade(1001, 100, 2), _trade(1003, 101, 1)],
            compress=False,
        ),
        _file(
            tmp_path,
            "test.definition.dbn.zst",
            dbn.Schema.DEFINITION,
            [_definition(7, "TESTH4"), _definition(8, "OTHERH4")],
        ),
    ]
    data = tmp_path / "data"
    code, out = tape(data, "ingest", "databento", *map(str, files), "--session", "s")
    assert code == 0, out
    found = counts(out)
    assert found["trades already in the MBP file (not repeated)"] == 1
    assert found["market records"] == 5  # 3 quotes, the MBP trade, the other trade
    assert "1 definition(s) of other instruments were left out" in out
    journal = read_journal(EmbeddedLog(data), "s")
    spec = journal.opened.instrument
    assert (spec.symbol, spec.price_scale, spec.tick_size, spec.currency) == (
        "TESTH4",
        9,
        250_000_000,
        "USD",
    )
    events = [decode(v) for b in _batches(data, "s") for v in b]
    defined = [e for e in events if isinstance(e, InstrumentDefined)]
    assert [(d.symbol, d.multiplier, d.unit_of_measure, d.tick_size) for d in defined] == [
        ("TESTH4", "50", "IPNT", 250_000_000)
    ]
    records = journal.records
    assert records["type_id"].tolist() == [7, 1, 7, 7, 1]  # the MBP trade precedes its quote
    assert (records["side"][1], records["price"][1], records["size"][1]) == (-1, 100 * P, 2)
    code, out = tape(data, "book-check", "s")
    assert code == 0, out
    assert counts(out)["compared"] == 2  # the quotes that end an event


def test_mbp10_levels_become_snapshots(tmp_path: Path) -> None:
    def levels(bids: list[tuple[float, int]], asks: list[tuple[float, int]]) -> list[Any]:
        out = []
        for k in range(10):
            b, a = (bids[k] if k < len(bids) else (0, 0)), (asks[k] if k < len(asks) else (0, 0))
            out.append(
                dbn.BidAskPair(
                    bid_px=int(b[0] * P) if b[1] else dbn.UNDEF_PRICE,
                    ask_px=int(a[0] * P) if a[1] else dbn.UNDEF_PRICE,
                    bid_sz=b[1],
                    ask_sz=a[1],
                    bid_ct=1,
                    ask_ct=1,
                )
            )
        return out

    def msg(t: int, bids: list[Any], asks: list[Any]) -> Any:
        return dbn.MBP10Msg(
            publisher_id=1,
            instrument_id=7,
            ts_event=t,
            price=100 * P,
            size=1,
            action=dbn.Action.ADD,
            side=B,
            depth=0,
            ts_recv=t,
            flags=LAST,
            sequence=t,
            levels=levels(bids, asks),
        )

    books = [([(100, 5), (99, 2), (98, 1)], [(101, 3), (102, 7)]), ([], [])]
    path = _file(
        tmp_path,
        "test.mbp-10.dbn.zst",
        dbn.Schema.MBP_10,
        [msg(1000 + i, *b) for i, b in enumerate(books)],
    )
    data = tmp_path / "data"
    assert tape(data, "ingest", "databento", str(path), "--session", "s")[0] == 0
    want = [([(int(p * P), s) for p, s in b], [(int(p * P), s) for p, s in a]) for b, a in books]
    assert books_after_messages(data, "s") == want
    code, out = tape(data, "book-check", "s")
    assert code == 0, out


@pytest.mark.parametrize("compress", [True, False])
def test_a_file_cut_short_is_kept_up_to_the_cut(tmp_path: Path, compress: bool) -> None:
    good = [r for r in MBO if r.ts_recv != 900]  # without the record going backwards
    path = _file(tmp_path, "whole.dbn", dbn.Schema.MBO, good, compress=False)
    raw = path.read_bytes()[:-30]  # the last record loses its end
    if compress:  # as a recorder writes it: a block at a time; the last block is cut
        writer = zstandard.ZstdCompressor().compressobj()
        whole = path.read_bytes()
        pieces = [whole[i : i + 56] for i in range(0, len(whole), 56)]
        flush = zstandard.COMPRESSOBJ_FLUSH_BLOCK
        raw = b"".join(writer.compress(piece) + writer.flush(flush) for piece in pieces)[:-12]
    cut = tmp_path / ("cut.dbn.zst" if compress else "cut.dbn")
    cut.write_bytes(raw)
    data = tmp_path / "data"
    code, out = tape(data, "ingest", "databento", str(cut), "--session", "s")
    assert code == 0, out
    assert "input ended early" in out
    assert "last complete record is record" in out
    assert counts(out)["truncated"] == 1
    code, out = tape(data, "ingest", "databento", str(cut), "--session", "t", "--strict")
    assert code == 1
    assert "cut short" in out


def _batches(data: Path, session: str) -> list[list[bytes]]:
    reader = EmbeddedLog(data).reader(journal_topic(session))
    return [list(b.values()) for b in reader.batches() if not isinstance(b, FixedBatch)]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/databento is not present")
def test_real_mbo_rebuilds_consistently(tmp_path: Path) -> None:
    path = SHARED / "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
    data = tmp_path / "data"
    code, out = tape(data, "ingest", "databento", str(path), "--session", "es", "--quiet")
    assert code == 0, out
    found = counts(out)
    # the counts of each action that ../shared/data/README.md gives for this file
    assert (
        found["records: A add"],
        found["records: C cancel"],
        found["records: M modify"],
        found["records: F fill"],
        found["records: T trade"],
    ) == (29_216, 17_999, 12_233, 6_371, 2_973)
    # every price exactly as Databento's own decoder gives it (1e-9 units, no rounding)
    decoder = dbn.DBNDecoder()
    decoder.write(zstandard.ZstdDecompressor().stream_reader(path.open("rb")).read())
    decoded = decoder.decode()[1:]
    journal = read_journal(EmbeddedLog(data), "es")
    assert journal.records["price"].tolist() == [r.price for r in decoded]
    assert journal.records["ts_recv"].tolist() == [r.ts_recv for r in decoded]
    code, out = tape(data, "book-check", "es")
    assert code == 0, out
    found = counts(out)
    assert found["compared"] == found["matched"] > 40_000
    assert found["counted: crossed after a message, before the first trade (pre-open)"] > 0


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/databento is not present")
def test_real_mbp1_trades_and_definitions(tmp_path: Path) -> None:
    window = "2024-07-01T23-58_2024-07-02T00-02.dbn.zst"
    files = [
        SHARED / f"futures_mbp-1_{window}",
        SHARED / f"futures_trades_{window}",
        SHARED / "futures_definition.dbn.zst",
    ]
    data = tmp_path / "data"
    code, out = tape(data, "ingest", "databento", *map(str, files), "--session", "esu")
    assert code == 0, out
    found = counts(out)
    assert found["trades already in the MBP file (not repeated)"] == 120
    assert found["market records"] == 2_288 + 120
    spec = read_journal(EmbeddedLog(data), "esu").opened.instrument
    assert (spec.symbol, spec.tick_size, spec.currency) == ("ESU4", 250_000_000, "USD")
    code, out = tape(data, "book-check", "esu")
    assert code == 0, out
    assert counts(out)["mismatched"] == 0
