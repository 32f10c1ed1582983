"""What kind of market-data file this is, from its first bytes: so that a file given to the
wrong importer, an empty file or a file in the wrong encoding gets a clear message up front.

:func:`sniff` recognises the formats Tapedeck reads (Binance recordings, LOBSTER message and
orderbook files, B3 and Tardis.dev CSV, Databento DBN), plain or compressed, and tells what is
wrong with the rest when it can (empty, UTF-16, a CSV without its header). It never decides
about single lines: the importers quarantine those.
"""

from __future__ import annotations

import re
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from engine.app.ingest.source import InputFile, compression

IMPORTERS = {
    "binance": "a Binance recording (`<receive_ts_ns> <json>` lines)",
    "lobster": "a LOBSTER message or orderbook file",
    "b3": "a B3 top-of-book CSV",
    "tardis": "a Tardis.dev CSV file",
    "databento": "a Databento DBN file",
}
TARDIS_HEADER = b"exchange,symbol,timestamp,local_timestamp,"
_NUMBER = re.compile(rb"-?\d+(\.\d+)?")
_BINANCE = re.compile(rb"\d{10,20} [{\[]")
_TARDIS_DATA = re.compile(rb"[a-z0-9-]+,[A-Za-z0-9_./:-]+,\d{13,17},\d{13,17},")


class SniffError(ValueError):
    """The file cannot be any market data: empty, or in an encoding Tapedeck does not read."""


@dataclass(frozen=True)
class Sniffed:
    """What a file looks like: the importer that reads it (``""``: not recognised)."""

    importer: str
    detail: str = ""


def sniff(path: Path) -> Sniffed:
    """Recognise the format of ``path`` from its first line (or DBN's magic bytes)."""
    if path.stat().st_size == 0:
        raise SniffError(f"{path} is empty (0 bytes): there is nothing to ingest")
    with closing(InputFile(path).lines().chunks(1 << 16)) as chunks:
        head = next(chunks, b"")
    if not head.strip():
        kind = compression(path)
        raise SniffError(
            f"{path} holds no data" + (f" (an empty {kind} stream)" if kind else " (blank)")
        )
    if head.startswith(b"DBN"):
        return Sniffed("databento", "Databento DBN")
    _check_encoding(path, head)
    first = head.split(b"\n", 1)[0].rstrip(b"\r").removeprefix(b"\xef\xbb\xbf")
    if _BINANCE.match(first):
        return Sniffed("binance")
    if first.startswith(TARDIS_HEADER):
        return Sniffed("tardis", "Tardis.dev CSV with its header")
    if _TARDIS_DATA.match(first):
        return Sniffed("tardis", "Tardis.dev CSV rows without their header line")
    columns = first.split(b",")
    if b"timestamp" in columns and b"bid_price_1" in columns:
        return Sniffed("b3")
    if all(_NUMBER.fullmatch(c) for c in columns):
        if len(columns) == 6:
            return Sniffed("lobster", "LOBSTER message rows")
        if len(columns) % 4 == 0:
            return Sniffed("lobster", f"LOBSTER orderbook rows ({len(columns) // 4} levels)")
    return Sniffed("")


def _check_encoding(path: Path, head: bytes) -> None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:4096]:
        raise SniffError(
            f"{path} is UTF-16 (or another wide encoding): Tapedeck reads UTF-8 or ASCII "
            f"text. Convert it first, e.g. `iconv -f UTF-16 -t UTF-8 {path.name} > "
            f"{path.stem}.utf8{path.suffix}`"
        )


def wrong_importer(path: Path, importer: str) -> str | None:
    """Why ``importer`` cannot read ``path`` and which one can, or None when it may."""
    found = sniff(path)
    if found.importer in ("", importer):
        return None
    return (
        f"{path} looks like {IMPORTERS[found.importer]}"
        f"{f' ({found.detail})' if found.detail else ''}, not {IMPORTERS[importer]}: "
        f"use `tape ingest {found.importer}`"
    )
