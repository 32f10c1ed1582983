"""Which broker a live session uses: paper unless real money is asked for twice.

``--broker paper`` (the default) is the paper broker. Any other name trades real money, so it
starts only when the command line says ``--live-money`` **and** the config file has a
``[broker]`` entry naming the same broker with ``live_money = true``; then the adapter of that
name must have been handed in by the composition root (none ships yet: docs/live.md says how
one plugs in).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.app.brokers.base import Broker

BrokerFactory = Callable[[dict[str, Any]], Broker]
"""Builds a real venue's adapter from its ``[broker]`` config entry."""


class BrokerRefusedError(Exception):
    """The broker asked for may not (or cannot) start; the message says why and what to do."""


@dataclass(frozen=True)
class LiveMoney:
    """Both halves of the consent to trade real money."""

    flag: bool
    """``--live-money`` was given."""
    entry: Mapping[str, Any]
    """The config file's ``[broker]`` table (empty when it has none)."""


def check_consent(name: str, consent: LiveMoney, adapters: Mapping[str, BrokerFactory]) -> None:
    """Raise :class:`BrokerRefusedError` unless broker ``name`` may start (see above); a
    session checks this before it touches anything."""
    if name in ("paper", "simulated"):
        return
    entry = consent.entry
    if not (consent.flag and entry.get("name") == name and entry.get("live_money") is True):
        raise BrokerRefusedError(
            f"broker {name!r} would trade real money, so it starts only with --live-money AND "
            f'a config entry [broker] name = "{name}", live_money = true (given: --live-money '
            f"{'yes' if consent.flag else 'no'}, [broker] {dict(entry) or 'none'}). "
            "Use --broker paper to trade on paper."
        )
    if name not in adapters:
        known = ", ".join(sorted(adapters)) or "none"
        raise BrokerRefusedError(
            f"no adapter for broker {name!r} is installed (installed: {known}); docs/live.md "
            "explains how a real venue's adapter plugs in"
        )


def choose_broker(
    name: str,
    consent: LiveMoney,
    paper: Callable[[], Broker],
    adapters: Mapping[str, BrokerFactory],
) -> Broker:
    """The broker called ``name`` (see the module docstring)."""
    check_consent(name, consent, adapters)
    if name == "paper":
        return paper()
    return adapters[name](dict(consent.entry))
