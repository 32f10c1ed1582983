"""What a LOBSTER pair is, from its file names and contents: symbol, day, depth.

LOBSTER names its files ``{TICKER}_{YYYY-MM-DD}_{start}_{end}_{message|orderbook}_{LEVELS}.csv``
(start and end in milliseconds after midnight), and an orderbook file has four columns per
level. :func:`resolve` combines the names, the orderbook's column count and the user's flags
into one :class:`LobsterInput`, or says exactly what disagrees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from engine.app.ingest.source import open_input

_NAME = re.compile(
    r"(?:^|_)(?P<symbol>[A-Za-z][A-Za-z0-9.]*)_(?P<day>\d{4}-\d{2}-\d{2})_"
    r"(?:(?P<start>\d+)_(?P<end>\d+)_)?(?P<kind>message|orderbook)_(?P<levels>\d+)"
    r"\.csv(?:\.gz|\.zst)?$"
)


class LobsterInputError(ValueError):
    """The LOBSTER inputs or flags do not describe one pair; the message says what differs."""


@dataclass(frozen=True)
class LobsterName:
    """What a LOBSTER file name says."""

    symbol: str
    day: str
    kind: str
    levels: int


def parse_name(path: Path) -> LobsterName | None:
    """The parts of a LOBSTER file name, or None when the name is not LOBSTER's."""
    m = _NAME.search(path.name)
    if m is None:
        return None
    return LobsterName(m["symbol"], m["day"], m["kind"], int(m["levels"]))


def orderbook_levels(path: Path) -> int:
    """Levels of an orderbook file, from the column count of its first line (4 per level)."""
    with open_input(path) as f:
        first = f.readline()
    columns = first.count(b",") + 1
    if not first.strip() or columns % 4:
        raise LobsterInputError(
            f"{path}: line 1 has {columns} columns; a LOBSTER orderbook file has 4 per level "
            "(ask price, ask size, bid price, bid size)"
        )
    return columns // 4


@dataclass(frozen=True)
class LobsterInput:
    """One LOBSTER ingest: the files and what they hold."""

    messages: Path
    orderbook: Path | None
    symbol: str
    day: date
    levels: int
    notes: list[str] = field(default_factory=list)
    """What the user should know: a flag overriding the file name."""


def resolve(
    messages: Path,
    orderbook: Path | None,
    symbol: str | None,
    day: str | None,
    levels: int | None,
) -> LobsterInput:
    """Symbol, day and depth from the names, the orderbook's columns and the flags.

    Flags override the names (a note says so). The two names must describe one pair, and the
    depth must agree wherever it is stated (name, orderbook columns, ``--levels``): a depth is a
    fact about the file, not a choice.
    """
    m_name = parse_name(messages)
    b_name = parse_name(orderbook) if orderbook is not None else None
    if m_name is not None and m_name.kind != "message":
        raise LobsterInputError(
            f"{messages.name} is named as an orderbook file; give the message file first"
            + (", then its orderbook file" if orderbook is not None else "")
        )
    if b_name is not None and b_name.kind != "orderbook":
        raise LobsterInputError(f"{orderbook} is named as a message file, not an orderbook file")
    if m_name is not None and b_name is not None:
        mine = (m_name.symbol, m_name.day, m_name.levels)
        theirs = (b_name.symbol, b_name.day, b_name.levels)
        if mine != theirs:
            raise LobsterInputError(
                f"the files are not a pair: {messages.name} is {_says(m_name)}, "
                f"{orderbook.name if orderbook else ''} is {_says(b_name)}"
            )
    name = m_name or b_name
    notes: list[str] = []
    chosen_symbol = _pick("--symbol", symbol, name.symbol if name else None, messages, notes)
    chosen_day = _pick("--date", day, name.day if name else None, messages, notes)
    try:
        trading_day = date.fromisoformat(chosen_day)
    except ValueError:
        raise LobsterInputError(f"--date {chosen_day!r} is not YYYY-MM-DD") from None
    depth = _depth(messages, orderbook, name, levels)
    return LobsterInput(messages, orderbook, chosen_symbol, trading_day, depth, notes)


def _says(name: LobsterName) -> str:
    return f"{name.symbol} {name.day} at {name.levels} levels"


def _pick(flag: str, given: str | None, named: str | None, path: Path, notes: list[str]) -> str:
    if given is not None:
        if named is not None and given != named:
            notes.append(f"{flag} {given} overrides {named} from the file name {path.name}")
        return given
    if named is None:
        raise LobsterInputError(
            f"{path.name} is not named as LOBSTER names its files "
            f"(TICKER_YYYY-MM-DD_START_END_message_LEVELS.csv), so it does not say the "
            f"{'symbol' if flag == '--symbol' else 'trading day'}: pass {flag}"
        )
    return named


def _depth(
    messages: Path, orderbook: Path | None, name: LobsterName | None, levels: int | None
) -> int:
    stated: list[tuple[str, int]] = []
    if orderbook is not None:
        stated.append((f"{orderbook.name} has", orderbook_levels(orderbook)))
    if name is not None:
        stated.append(("the file name says", name.levels))
    if levels is not None:
        stated.append(("--levels says", levels))
    if not stated:
        raise LobsterInputError(
            f"the depth of {messages.name} is unknown: its name does not say it and there is "
            "no orderbook file; pass --levels N (the number of levels it was requested with)"
        )
    if len({n for _, n in stated}) > 1:
        raise LobsterInputError(
            "the depth does not agree: " + ", ".join(f"{who} {n} levels" for who, n in stated)
        )
    depth = stated[0][1]
    if depth < 1:
        raise LobsterInputError(f"a LOBSTER file has at least 1 level, not {depth}")
    return depth
